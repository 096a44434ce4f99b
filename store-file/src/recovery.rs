//! Opening a store directory: read the manifest, find the segments and check that they are
//! this store's and that none is missing or shortened, clean up after interrupted work,
//! replay every frame into the index, cut off a torn tail.

use std::collections::BTreeMap;
use std::path::Path;

use store_core::{Error, Result};

use crate::disk::{Disk, Mode};
use crate::format::{
    HeaderProblem, Manifest, SegmentHeader, StoreId, HEADER_LEN, KIND_COMPACTED, KIND_LOG,
};
use crate::index::IndexState;
use crate::manifest::{self, show_id, LOST_MANIFEST_SKIP, MANIFEST_FILE, MANIFEST_TMP};
use crate::scan::{walk, Ending, Walk};
use crate::segment::{
    create_segment, parse_compact_file_name, parse_segment_file_name, segment_file_name, Link,
    Segment,
};
use crate::FileOptions;

/// Segment numbers stay below this (the engine gives compaction outputs in-memory ids from
/// here up); a file claiming a higher one was not written by this store.
const MAX_SEGMENT: u64 = 1 << 62;

/// What opening found and repaired.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Repairs: tail truncations, leftover files removed, frames skipped.
    pub(crate) repairs: u64,
    pub(crate) truncated_bytes: u64,
    pub(crate) skipped_frames: u64,
    /// Segments found missing or shortened (opened anyway only with `skip_corrupt_frames`).
    pub(crate) lost_segments: u64,
    /// Records replayed.
    pub(crate) records: u64,
}

/// A recovered store, ready for the engine.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// The segment appends go to; 0 when there is none (a read-only open of a store
    /// without segments).
    pub(crate) active: u64,
    pub(crate) state: IndexState,
    pub(crate) report: Report,
    /// The manifest as it is on disk now (for a read-only open: as it was found).
    pub(crate) manifest: Manifest,
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn corrupt(message: String) -> Error {
    let error = Error::Corrupt(message);
    tracing::error!(%error, "opening the store failed");
    error
}

/// A segment's header as found, with its open file.
struct Found {
    segment: Segment,
    header: SegmentHeader,
}

/// Recovers the store in `dir` (already created and locked).
pub(crate) fn recover(disk: &dyn Disk, dir: &Path, options: &FileOptions) -> Result<Recovered> {
    let read_only = options.read_only;
    let mut report = Report::default();
    let names = disk
        .list(dir)
        .map_err(io_error("listing store directory", dir))?;
    let mut ids = Vec::new();
    let mut leftovers = Vec::new();
    let mut manifest_tmp = false;
    for name in &names {
        if let Some(id) = parse_segment_file_name(name) {
            ids.push(id);
        } else if parse_compact_file_name(name).is_some() {
            leftovers.push(dir.join(name));
        } else if name == MANIFEST_TMP {
            manifest_tmp = true;
        }
    }
    ids.sort_unstable();

    let found_manifest =
        match manifest::read(disk, dir).map_err(io_error("reading", &dir.join(MANIFEST_FILE)))? {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(problem)) => {
                let message = format!(
                    "{}: {problem}; the file is not a readable manifest of this format",
                    dir.join(MANIFEST_FILE).display()
                );
                if !options.skip_corrupt_frames {
                    return Err(corrupt(message));
                }
                tracing::warn!("{message}; rebuilt from the segments (skip_corrupt_frames is on)");
                report.repairs += 1;
                None
            }
        };

    // Headers.
    let mut found: Vec<Found> = Vec::new();
    let mut removed_any = false;
    let count = ids.len();
    for (i, id) in ids.into_iter().enumerate() {
        let path = dir.join(segment_file_name(id));
        let mode = if read_only {
            Mode::Read
        } else {
            Mode::ReadWrite
        };
        let file = disk
            .open(&path, mode)
            .map_err(io_error("opening segment", &path))?;
        let len = file
            .len()
            .map_err(io_error("reading the size of segment", &path))?;
        let mut bytes = vec![0u8; (len as usize).min(HEADER_LEN)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(io_error("reading the header of segment", &path))?;
        let expected_next = found_manifest.map_or(1, |m| m.last_segment.saturating_add(1));
        match SegmentHeader::decode(&bytes) {
            Ok(header) if header.id == id && id >= MAX_SEGMENT => {
                return Err(corrupt(format!(
                    "{}: segment number {id:#x} is beyond any this store creates (below {MAX_SEGMENT:#x})",
                    path.display()
                )));
            }
            Ok(header) if header.id == id && header.covers_from > id => {
                return Err(corrupt(format!(
                    "{}: the segment claims to cover segments from {:#x}, after itself",
                    path.display(),
                    header.covers_from
                )));
            }
            Ok(header) if header.id == id => {
                let segment = Segment {
                    id,
                    path,
                    file,
                    len,
                    kind: header.kind,
                    retired: false,
                };
                found.push(Found { segment, header });
            }
            Ok(header) => {
                return Err(corrupt(format!(
                    "{}: the header names segment {:#x}, the file name segment {id:#x}",
                    path.display(),
                    header.id
                )));
            }
            Err(
                problem @ (HeaderProblem::TooShort
                | HeaderProblem::BadMagic
                | HeaderProblem::BadChecksum),
            ) if found_manifest.is_some()
                && i + 1 == count
                && len <= HEADER_LEN as u64
                && id == expected_next =>
            {
                // The next segment was being created when the process stopped: its header
                // was never completed, so nothing was ever appended to it, and its number
                // is the one this store (whose manifest is written before its first
                // segment) would have created next. A complete header of another format
                // or kind is never taken for this.
                drop(file);
                if !read_only {
                    disk.remove(&path)
                        .map_err(io_error("removing unfinished segment", &path))?;
                    removed_any = true;
                }
                tracing::warn!(file = %path.display(), %problem, "removed a segment whose creation was interrupted");
                report.repairs += 1;
            }
            Err(problem) => {
                return Err(corrupt(format!(
                    "{}: {problem}; the file is not a readable segment of this format",
                    path.display()
                )));
            }
        }
    }

    // Identity: every segment must be this store's.
    let store_id: StoreId = match (&found_manifest, found.first()) {
        (Some(m), _) => m.store_id,
        (None, Some(first)) => first.header.store_id,
        (None, None) => manifest::new_store_id(),
    };
    for f in &found {
        if f.header.store_id != store_id {
            return Err(corrupt(format!(
                "{}: the segment belongs to store {}, not to this store ({}): it was copied in \
                 from another store directory. Nothing was changed; move the file out of {} to \
                 open the store",
                f.segment.path.display(),
                show_id(&f.header.store_id),
                show_id(&store_id),
                dir.display()
            )));
        }
    }

    // Leftovers of an interrupted compaction: its inputs are all still there. Removed only
    // when they are provably this store's (its id in the header) or hold less than a header.
    for path in leftovers {
        let file = disk
            .open(&path, Mode::Read)
            .map_err(io_error("opening", &path))?;
        let len = file.len().map_err(io_error("reading the size of", &path))?;
        let mut bytes = vec![0u8; (len as usize).min(HEADER_LEN)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(io_error("reading", &path))?;
        drop(file);
        let ours = match SegmentHeader::decode(&bytes) {
            Ok(header) => header.store_id == store_id,
            Err(_) => len < HEADER_LEN as u64,
        };
        if !ours {
            tracing::warn!(file = %path.display(), "a file named like this store's compaction output is not this store's; left alone");
            continue;
        }
        if !read_only {
            disk.remove(&path)
                .map_err(io_error("removing unfinished compaction output", &path))?;
            removed_any = true;
        }
        tracing::warn!(file = %path.display(), "removed the output of an interrupted compaction");
        report.repairs += 1;
    }
    if manifest_tmp && !read_only {
        let tmp = dir.join(MANIFEST_TMP);
        disk.remove(&tmp)
            .map_err(io_error("removing unfinished manifest", &tmp))?;
        removed_any = true;
    }

    // Segments replaced by a compacted one are leftovers of a compaction interrupted after
    // its output was installed: drop them (replaying them could bring back deleted keys).
    let mut segments: BTreeMap<u64, Found> = found.into_iter().map(|f| (f.segment.id, f)).collect();
    let covered: Vec<u64> = segments
        .values()
        .filter(|f| f.header.kind == KIND_COMPACTED)
        .flat_map(|c| {
            segments
                .range(c.header.covers_from..c.segment.id)
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
        })
        .collect();
    for id in covered {
        if let Some(f) = segments.remove(&id) {
            let path = f.segment.path.clone();
            drop(f);
            if !read_only {
                disk.remove(&path)
                    .map_err(io_error("removing compacted-away segment", &path))?;
                removed_any = true;
            }
            tracing::warn!(file = %path.display(), "removed a segment that an interrupted compaction had already replaced");
            report.repairs += 1;
        }
    }
    if removed_any {
        disk.sync_dir(dir)
            .map_err(io_error("syncing store directory", dir))?;
    }

    // Lost files: the segments must form one chain from the oldest (no predecessor) to the
    // newest the manifest knows of, and every sealed one must have its sealed length.
    let mut lost: Vec<String> = Vec::new();
    if found_manifest.is_none() && !segments.is_empty() {
        lost.push(format!(
            "{} is missing, so the highest version this store handed out cannot be proven",
            dir.join(MANIFEST_FILE).display()
        ));
    }
    let mut previous: Option<&Found> = None;
    for f in segments.values() {
        let h = &f.header;
        match previous {
            None if h.prev != 0 => lost.push(format!(
                "the oldest segment {} follows segment {:#x}, which is missing",
                f.segment.path.display(),
                h.prev
            )),
            Some(p) if h.prev != p.segment.id => lost.push(format!(
                "segment {} follows segment {:#x}, but the segment before it is {:#x}: the \
                 segments in between are missing",
                f.segment.path.display(),
                h.prev,
                p.segment.id
            )),
            Some(p) if p.header.kind == KIND_LOG && h.prev_len != p.segment.len => {
                lost.push(format!(
                    "segment {} holds {} bytes, but it held {} when it was sealed: it was \
                     shortened or extended",
                    p.segment.path.display(),
                    p.segment.len,
                    h.prev_len
                ))
            }
            _ => {}
        }
        if h.kind == KIND_COMPACTED && h.sealed_len != f.segment.len {
            lost.push(format!(
                "compacted segment {} holds {} bytes, but it was written with {}",
                f.segment.path.display(),
                f.segment.len,
                h.sealed_len
            ));
        }
        previous = Some(f);
    }
    if let Some(m) = &found_manifest {
        let newest = segments.keys().next_back().copied().unwrap_or(0);
        if newest < m.last_segment {
            lost.push(format!(
                "the manifest names segment {} as the newest, but the newest one there is \
                 {newest:#x}: the newest segments are missing",
                dir.join(segment_file_name(m.last_segment)).display()
            ));
        }
    }
    if !lost.is_empty() {
        let message = format!(
            "{}: files of the store are missing or damaged: {}",
            dir.display(),
            lost.join("; ")
        );
        if !options.skip_corrupt_frames {
            return Err(corrupt(format!(
                "{message}. Nothing was changed; restore the files from a backup, or open \
                 with FileOptions::skip_corrupt_frames to serve what is left (versions then \
                 continue above every version the store may have handed out)"
            )));
        }
        tracing::warn!("{message}; opening what is left (skip_corrupt_frames is on)");
        report.lost_segments += lost.len() as u64;
        report.repairs += lost.len() as u64;
    }

    // Replay.
    let mut state = IndexState::default();
    let mut segments: BTreeMap<u64, Segment> = segments
        .into_iter()
        .map(|(id, f)| {
            state.last_version = state.last_version.max(f.header.base_version);
            (id, f.segment)
        })
        .collect();
    let last_id = segments.keys().next_back().copied();
    for segment in segments.values_mut() {
        let tail = Some(segment.id) == last_id && segment.kind == KIND_LOG;
        replay_segment(segment, tail, options, &mut state, &mut report)?;
    }

    // Versions: never below what the manifest reserved; a rebuilt manifest cannot prove
    // anything, so skip far ahead.
    let ceiling = match &found_manifest {
        Some(m) => m.ceiling,
        None if segments.is_empty() => 0,
        None => state.last_version.saturating_add(LOST_MANIFEST_SKIP),
    };
    state.last_version = state.last_version.max(ceiling);
    let mut manifest = Manifest {
        store_id,
        ceiling,
        last_segment: found_manifest.map_or(0, |m| m.last_segment),
    };

    // The newest log segment takes further appends; after a compaction (or in a new store)
    // a fresh one does.
    let newest = segments.values().next_back();
    let active = match newest {
        Some(s) if s.kind == KIND_LOG => s.id,
        _ if read_only => newest.map_or(0, |s| s.id),
        other => {
            if found_manifest.is_none() {
                // Written before the first segment, so that a crash between the two leaves
                // a store this code recognises.
                manifest::write(disk, dir, &manifest)
                    .map_err(io_error("writing the manifest of", dir))?;
            }
            let (id, link) = match other {
                Some(s) => (
                    s.id + 1,
                    Link {
                        store_id,
                        prev: s.id,
                        prev_len: s.len,
                    },
                ),
                None => (
                    1,
                    Link {
                        store_id,
                        prev: 0,
                        prev_len: 0,
                    },
                ),
            };
            let segment = create_segment(disk, dir, id, state.last_version, link)
                .map_err(io_error("creating segment in", dir))?;
            segments.insert(id, segment);
            id
        }
    };
    if !read_only && (found_manifest.is_none() || manifest.last_segment != active) {
        manifest.last_segment = active;
        manifest::write(disk, dir, &manifest).map_err(io_error("writing the manifest of", dir))?;
    }
    Ok(Recovered {
        segments,
        active,
        state,
        report,
        manifest,
    })
}

fn replay_segment(
    segment: &mut Segment,
    tail: bool,
    options: &FileOptions,
    state: &mut IndexState,
    report: &mut Report,
) -> Result<()> {
    let how = Walk {
        path: &segment.path,
        by: "recovery",
        tail,
        skip_corrupt: options.skip_corrupt_frames,
        cancel: None,
    };
    let cache = options.cache_values_up_to;
    let id = segment.id;
    let mut skipped = 0;
    let ending = walk(
        &*segment.file,
        HEADER_LEN as u64,
        segment.len,
        &how,
        &mut skipped,
        &mut |offset, record, _raw| {
            state.replay(id, offset, record, cache);
            report.records += 1;
            Ok(())
        },
    );
    report.skipped_frames += skipped;
    report.repairs += skipped;
    if let Ending::TornTail { offset, problem } = ending? {
        // A torn write (the process or machine stopped mid-append) or garbage after the
        // last complete frame: cut it off (a read-only open only ignores it).
        let cut = segment.len - offset;
        if !options.read_only {
            let path = &segment.path;
            segment
                .file
                .set_len(offset)
                .and_then(|()| segment.file.sync_all())
                .map_err(io_error("truncating the torn tail of segment", path))?;
        }
        tracing::warn!(
            file = %segment.path.display(),
            offset,
            bytes = cut,
            %problem,
            read_only = options.read_only,
            "cut off a torn or garbage tail; every complete record before it is kept"
        );
        segment.len = offset;
        report.truncated_bytes += cut;
        report.repairs += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::OsDisk;

    fn write_store(dir: &Path, header: SegmentHeader) {
        let manifest = Manifest {
            store_id: header.store_id,
            ceiling: 0,
            last_segment: header.id,
        };
        std::fs::write(dir.join(MANIFEST_FILE), manifest.encode()).unwrap();
        let mut bytes = header.encode().to_vec();
        if header.kind == KIND_COMPACTED {
            let header = SegmentHeader {
                sealed_len: bytes.len() as u64,
                ..header
            };
            bytes = header.encode().to_vec();
        }
        std::fs::write(dir.join(segment_file_name(header.id)), bytes).unwrap();
    }

    /// Headers that claim the impossible are refused by name, never a panic (a compacted
    /// segment covering from after itself once reached a `BTreeMap::range` panic).
    #[test]
    fn impossible_headers_are_corruption() {
        let base = SegmentHeader {
            id: 3,
            kind: KIND_COMPACTED,
            covers_from: 1,
            base_version: 0,
            store_id: [5; 16],
            prev: 0,
            prev_len: 0,
            sealed_len: 0,
        };
        for (header, needle) in [
            (
                SegmentHeader {
                    covers_from: 9,
                    ..base
                },
                "after itself",
            ),
            (
                SegmentHeader {
                    id: u64::MAX,
                    covers_from: 1,
                    ..base
                },
                "beyond",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_store(dir.path(), header);
            match recover(&OsDisk, dir.path(), &FileOptions::default()) {
                Err(Error::Corrupt(message)) => assert!(message.contains(needle), "{message}"),
                other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), base);
        let recovered = recover(&OsDisk, dir.path(), &FileOptions::default()).unwrap();
        assert_eq!(
            recovered.active, 4,
            "a fresh log segment follows the compacted one"
        );
    }
}
