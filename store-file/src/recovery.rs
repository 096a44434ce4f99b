//! Opening a store directory: find the segments, clean up after interrupted work, replay
//! every frame into the index, cut off a torn tail.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use store_core::{Error, Result};

use crate::format::{
    Records, SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN, KIND_COMPACTED, KIND_LOG,
};
use crate::index::IndexState;
use crate::segment::{
    create_segment, parse_segment_file_name, read_exact_at, sync_dir, FrameScanner, Scan, Segment,
    COMPACT_SUFFIX,
};
use crate::FileOptions;

/// What opening found and repaired.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Repairs: tail truncations, leftover files removed, frames skipped.
    pub(crate) repairs: u64,
    pub(crate) truncated_bytes: u64,
    pub(crate) skipped_frames: u64,
    /// Records replayed.
    pub(crate) records: u64,
}

/// A recovered store, ready for the engine.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: BTreeMap<u64, Segment>,
    pub(crate) active: u64,
    pub(crate) state: IndexState,
    pub(crate) report: Report,
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Recovers the store in `dir` (already created and locked).
pub(crate) fn recover(dir: &Path, options: &FileOptions) -> Result<Recovered> {
    let mut report = Report::default();
    let mut ids = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error("listing store directory", dir))?;
    let mut removed_any = false;
    for entry in entries {
        let entry = entry.map_err(io_error("listing store directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("seg-") && name.ends_with(COMPACT_SUFFIX) {
            // The output of a compaction that never finished: the segments it was built
            // from are all still there.
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(io_error("removing unfinished compaction output", &path))?;
            tracing::warn!(file = %path.display(), "removed the output of an interrupted compaction");
            report.repairs += 1;
            removed_any = true;
        } else if let Some(id) = parse_segment_file_name(name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();

    // Headers.
    let mut segments: BTreeMap<u64, Segment> = BTreeMap::new();
    let mut covers: BTreeMap<u64, u64> = BTreeMap::new();
    let mut base_version = 0u64;
    let count = ids.len();
    for (i, id) in ids.into_iter().enumerate() {
        let path = dir.join(crate::segment::segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error("opening segment", &path))?;
        let len = file
            .metadata()
            .map_err(io_error("reading the size of segment", &path))?
            .len();
        let mut bytes = vec![0u8; (len as usize).min(HEADER_LEN)];
        read_exact_at(&file, &mut bytes, 0)
            .map_err(io_error("reading the header of segment", &path))?;
        match SegmentHeader::decode(&bytes) {
            Ok(header) if header.id == id => {
                segments.insert(
                    id,
                    Segment {
                        id,
                        path,
                        file: Arc::new(file),
                        len,
                        kind: header.kind,
                        retired: false,
                    },
                );
                base_version = base_version.max(header.base_version);
                covers.insert(id, header.covers_from);
                if header.kind == KIND_COMPACTED && header.covers_from > id {
                    return Err(Error::Corrupt(format!(
                        "{}: compacted segment claims to cover segments from {:#x}, after itself",
                        segments[&id].path.display(),
                        header.covers_from
                    )));
                }
            }
            Ok(header) => {
                return Err(Error::Corrupt(format!(
                    "{}: the header names segment {:#x}, the file name segment {id:#x}",
                    path.display(),
                    header.id
                )));
            }
            Err(problem) if i + 1 == count && len <= HEADER_LEN as u64 => {
                // The newest segment was being created when the process stopped: its header
                // was never completed, so nothing was ever appended to it.
                drop(file);
                std::fs::remove_file(&path)
                    .map_err(io_error("removing unfinished segment", &path))?;
                tracing::warn!(file = %path.display(), %problem, "removed a segment whose creation was interrupted");
                report.repairs += 1;
                removed_any = true;
            }
            Err(problem) => {
                return Err(Error::Corrupt(format!(
                    "{}: {problem}; the file is not a readable segment of this format",
                    path.display()
                )));
            }
        }
    }

    // Segments replaced by a compacted one are leftovers of a compaction interrupted after
    // its output was installed: drop them (replaying them could bring back deleted keys).
    let covered: Vec<u64> = segments
        .values()
        .filter(|s| s.kind == KIND_COMPACTED)
        .flat_map(|c| {
            let from = covers[&c.id];
            segments
                .range(from..c.id)
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
        })
        .collect();
    for id in covered {
        if let Some(segment) = segments.remove(&id) {
            drop(segment.file);
            std::fs::remove_file(&segment.path)
                .map_err(io_error("removing compacted-away segment", &segment.path))?;
            tracing::warn!(file = %segment.path.display(), "removed a segment that an interrupted compaction had already replaced");
            report.repairs += 1;
            removed_any = true;
        }
    }
    if removed_any {
        sync_dir(dir).map_err(io_error("syncing store directory", dir))?;
    }

    // Replay.
    let mut state = IndexState {
        last_version: base_version,
        ..Default::default()
    };
    let last_id = segments.keys().next_back().copied();
    for segment in segments.values_mut() {
        let tail = Some(segment.id) == last_id && segment.kind == KIND_LOG;
        replay_segment(segment, tail, options, &mut state, &mut report)?;
    }

    // The newest log segment takes further appends; after a compaction a fresh one does.
    let active = match segments.values().next_back() {
        Some(s) if s.kind == KIND_LOG => s.id,
        other => {
            let id = other.map_or(1, |s| s.id + 1);
            let segment = create_segment(dir, id, state.last_version)
                .map_err(io_error("creating segment in", dir))?;
            segments.insert(id, segment);
            id
        }
    };
    Ok(Recovered {
        segments,
        active,
        state,
        report,
    })
}

fn replay_segment(
    segment: &mut Segment,
    tail: bool,
    options: &FileOptions,
    state: &mut IndexState,
    report: &mut Report,
) -> Result<()> {
    let file: &File = &segment.file;
    let path = segment.path.clone();
    let mut scanner = FrameScanner::new(file, HEADER_LEN as u64, segment.len);
    loop {
        let scan = scanner
            .next_frame()
            .map_err(io_error("reading segment", &path))?;
        match scan {
            Scan::End => return Ok(()),
            Scan::Frame {
                offset,
                count,
                payload,
            } => {
                // Check the whole frame before applying any of it: a batch is all or nothing.
                if let Some(Err(problem)) = Records::new(payload, count).find(|r| r.is_err()) {
                    let message = format!(
                        "{}: the frame at offset {offset} passed its checksum but holds a malformed record ({problem})",
                        path.display()
                    );
                    if !options.skip_corrupt_frames {
                        return Err(Error::Corrupt(message));
                    }
                    tracing::warn!("{message}; skipped");
                    report.skipped_frames += 1;
                    report.repairs += 1;
                    continue;
                }
                let base = offset + FRAME_HEADER_LEN as u64;
                for (at, record) in Records::new(payload, count).flatten() {
                    state.replay(
                        segment.id,
                        base + at as u64,
                        &record,
                        options.cache_values_up_to,
                    );
                    report.records += 1;
                }
            }
            Scan::Bad {
                offset,
                problem,
                search_from,
            } => {
                let next = scanner
                    .find_valid_frame_from(search_from)
                    .map_err(io_error("reading segment", &path))?;
                match next {
                    None if tail => {
                        // A torn write (the process or machine stopped mid-append) or garbage
                        // after the last complete frame: cut it off.
                        let cut = segment.len - offset;
                        file.set_len(offset)
                            .and_then(|()| file.sync_all())
                            .map_err(io_error("truncating the torn tail of segment", &path))?;
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            bytes = cut,
                            %problem,
                            "cut off a torn or garbage tail; every complete record before it is kept"
                        );
                        segment.len = offset;
                        report.truncated_bytes += cut;
                        report.repairs += 1;
                        return Ok(());
                    }
                    next if options.skip_corrupt_frames => {
                        let resume = next.unwrap_or(segment.len);
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            bytes = resume - offset,
                            %problem,
                            "skipped damaged bytes (skip_corrupt_frames is on); the writes they held are lost"
                        );
                        report.skipped_frames += 1;
                        report.repairs += 1;
                        scanner.seek(resume);
                    }
                    next => {
                        let after = match next {
                            Some(at) => format!("valid frames follow at offset {at}"),
                            None => "in a sealed segment".to_owned(),
                        };
                        return Err(Error::Corrupt(format!(
                            "{}: {problem} at offset {offset} ({after}, so this is not a torn \
                             write); refusing to open rather than lose or invent data. Restore \
                             the file from a backup, or open with \
                             FileOptions::skip_corrupt_frames to drop the damaged frame",
                            path.display()
                        )));
                    }
                }
            }
        }
    }
}
