//! Compaction's background half: rewrite the live records of the sealed segments into one
//! new file, off the actor thread. The actor installs the result (see `engine.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use store_core::{Error, Result};

use crate::disk::{Disk, FileRef, Mode};
use crate::format::{
    encode_frame_header, SegmentHeader, StoreId, FRAME_HEADER_LEN, HEADER_LEN, KIND_COMPACTED,
    KIND_PUT,
};
use crate::scan::{walk, Visit, Walk};

/// Frames of the output are cut at about this many payload bytes.
const FRAME_TARGET: usize = 1 << 20;

/// A sealed segment to compact. Sealed segments never change, so the compactor reads them
/// through the engine's own handles while the engine keeps serving reads from them.
pub(crate) struct Input {
    /// The engine's in-memory id of the segment (what index locations name).
    pub(crate) id: u64,
    /// The segment number on disk (in its file name).
    pub(crate) disk_id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: FileRef,
    pub(crate) len: u64,
}

/// One compaction: every sealed segment, oldest (lowest disk id) first, so tombstones can
/// be dropped.
pub(crate) struct Job {
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) store_id: StoreId,
    pub(crate) inputs: Vec<Input>,
    /// Where the output is written; renamed over the last input by the engine.
    pub(crate) tmp: PathBuf,
    pub(crate) cutoff: SystemTime,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) skip_corrupt: bool,
    /// The highest version assigned so far (at least every version in the inputs).
    pub(crate) base_version: u64,
}

impl Job {
    /// The oldest input's segment number.
    pub(crate) fn first(&self) -> u64 {
        self.inputs.first().map_or(0, |i| i.disk_id)
    }
    /// The newest input's segment number: the output's.
    pub(crate) fn last(&self) -> u64 {
        self.inputs.last().map_or(0, |i| i.disk_id)
    }
}

/// A record that was copied: where it is in the output.
pub(crate) struct Moved {
    pub(crate) key: String,
    pub(crate) version: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

/// The finished, fsynced output, waiting to be installed.
pub(crate) struct Output {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) tmp: PathBuf,
    pub(crate) file: FileRef,
    pub(crate) len: u64,
    pub(crate) moved: Vec<Moved>,
    /// Newest records that were left out because they had expired: key and version.
    pub(crate) expired: Vec<(String, u64)>,
    pub(crate) input_bytes: u64,
    /// Damaged frames skipped (only with `skip_corrupt_frames`).
    pub(crate) skipped_frames: u64,
}

/// Runs `job`; on failure nothing is left behind.
pub(crate) fn run(job: &Job) -> Result<Output> {
    let result = build(job);
    if result.is_err() {
        crate::segment::remove_leftover(&*job.disk, &job.tmp);
    }
    result
}

/// The newest record of a key among the inputs.
struct Latest {
    seg: u64,
    offset: u64,
    put: bool,
}

fn build(job: &Job) -> Result<Output> {
    // Pass 1: the newest record of every key.
    let mut latest: HashMap<String, Latest> = HashMap::new();
    let mut skipped = 0;
    for input in &job.inputs {
        for_each_record(job, input, &mut skipped, &mut |offset, record, _raw| {
            let newest = Latest {
                seg: input.id,
                offset,
                put: record.kind == KIND_PUT,
            };
            match latest.get_mut(record.key) {
                Some(slot) => *slot = newest,
                None => {
                    latest.insert(record.key.to_owned(), newest);
                }
            }
            Ok(())
        })?;
    }

    // Pass 2: copy each key's newest put, unless it expired; tombstones go (every older
    // segment is an input too, so there is nothing left for them to hide).
    let io = |what: &str| {
        let context = format!("{what} {}", job.tmp.display());
        move |e| Error::io(context, e)
    };
    let out = job
        .disk
        .open(&job.tmp, Mode::Truncate)
        .map_err(io("creating compaction output"))?;
    let mut header = SegmentHeader {
        id: job.last(),
        kind: KIND_COMPACTED,
        covers_from: job.first(),
        base_version: job.base_version,
        store_id: job.store_id,
        // The inputs include the oldest segment, so nothing comes before the output.
        prev: 0,
        prev_len: 0,
        sealed_len: 0,
    };
    out.write_all_at(&header.encode(), 0)
        .map_err(io("writing compaction output"))?;
    let mut pos = HEADER_LEN as u64;
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    let mut count = 0u32;
    let mut moved = Vec::new();
    let mut expired = Vec::new();
    let flush = |out: &FileRef, frame: &mut Vec<u8>, count: &mut u32, pos: &mut u64| {
        if *count == 0 {
            return Ok(());
        }
        let (head, payload) = frame.split_at_mut(FRAME_HEADER_LEN);
        encode_frame_header(head, payload, *count);
        out.write_all_at(frame, *pos)
            .map_err(io("writing compaction output"))?;
        *pos += frame.len() as u64;
        frame.truncate(FRAME_HEADER_LEN);
        *count = 0;
        Ok::<(), Error>(())
    };
    for input in &job.inputs {
        for_each_record(job, input, &mut 0, &mut |offset, record, raw| {
            if record.kind != KIND_PUT {
                return Ok(());
            }
            match latest.get(record.key) {
                Some(l) if l.put && l.seg == input.id && l.offset == offset => {}
                _ => return Ok(()),
            }
            if matches!(record.expires_at, Some(at) if at <= job.cutoff) {
                expired.push((record.key.to_owned(), record.version));
                return Ok(());
            }
            moved.push(Moved {
                key: record.key.to_owned(),
                version: record.version,
                offset: pos + frame.len() as u64,
                len: raw.len() as u32,
            });
            // Records carry their own checksum, independent of where they sit.
            frame.extend_from_slice(raw);
            count += 1;
            if frame.len() - FRAME_HEADER_LEN >= FRAME_TARGET {
                flush(&out, &mut frame, &mut count, &mut pos)?;
            }
            Ok(())
        })?;
    }
    drop(latest);
    flush(&out, &mut frame, &mut count, &mut pos)?;
    if job.cancel.load(Ordering::Relaxed) {
        return Err(Error::Closed);
    }
    // The header records the output's length, so a shortened copy is noticed at open.
    header.sealed_len = pos;
    out.write_all_at(&header.encode(), 0)
        .map_err(io("writing compaction output"))?;
    out.sync_all().map_err(io("syncing compaction output"))?;
    Ok(Output {
        first: job.first(),
        last: job.last(),
        tmp: job.tmp.clone(),
        file: out,
        len: pos,
        moved,
        expired,
        input_bytes: job.inputs.iter().map(|i| i.len).sum(),
        skipped_frames: skipped,
    })
}

/// Calls `visit(record offset in the file, record, raw record bytes)` for every record of
/// every valid frame of `input`, in order, with the scanner and damage policy recovery uses
/// (inputs are sealed, so no damage is a torn tail).
fn for_each_record(
    job: &Job,
    input: &Input,
    skipped: &mut u64,
    visit: &mut Visit<'_>,
) -> Result<()> {
    let how = Walk {
        path: &input.path,
        by: "compaction",
        tail: false,
        skip_corrupt: job.skip_corrupt,
        cancel: Some(&job.cancel),
    };
    walk(
        &*input.file,
        HEADER_LEN as u64,
        input.len,
        &how,
        skipped,
        visit,
    )
    .map(|_| ())
}
