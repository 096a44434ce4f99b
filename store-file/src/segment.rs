//! Segment files: their names, the open-segment record the engine keeps, and creating one.

use std::io;
use std::path::{Path, PathBuf};

use crate::disk::{Disk, FileRef, Mode};
use crate::format::{SegmentHeader, StoreId, HEADER_LEN, KIND_LOG};

/// The file name of segment `id`: `seg-` + 16 lowercase hex digits + `.log`, so that names
/// sort like numbers.
pub(crate) fn segment_file_name(id: u64) -> String {
    format!("seg-{id:016x}.log")
}

/// The suffix of a compaction's output while it is being written.
pub(crate) const COMPACT_SUFFIX: &str = ".compact";

/// The segment number in a segment file name, if `name` is exactly one this store writes:
/// `seg-` + 16 digits or lowercase `a`–`f` + `.log`. Any other spelling (upper case, a
/// sign, another length) is an unrelated file, and the store never touches it.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The segment number in the name of a compaction's unfinished output
/// (`seg-XXXXXXXXXXXXXXXX.log.compact`, canonical spelling only).
pub(crate) fn parse_compact_file_name(name: &str) -> Option<u64> {
    parse_segment_file_name(name.strip_suffix(COMPACT_SUFFIX)?)
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The segment number on disk (in its file name).
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: FileRef,
    /// Bytes in the file (for the active segment: bytes written, not counting the buffer).
    pub(crate) len: u64,
    /// [`KIND_LOG`](crate::format::KIND_LOG) or [`KIND_COMPACTED`](crate::format::KIND_COMPACTED).
    pub(crate) kind: u16,
    /// Replaced by a compaction whose install is still moving index entries off it: kept
    /// open for reads (its file may be gone already), counted nowhere.
    pub(crate) retired: bool,
}

/// Removes a file left by a failed step. The step's own error is what the caller reports;
/// a failed removal is logged (the file is also removed at the next open).
pub(crate) fn remove_leftover(disk: &dyn Disk, path: &Path) {
    match disk.remove(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a leftover file");
        }
        _ => {}
    }
}

/// Where a new log segment goes in the store's chain of segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    pub(crate) store_id: StoreId,
    /// The segment before it (0: none).
    pub(crate) prev: u64,
    /// That segment's sealed length (0 when there is none).
    pub(crate) prev_len: u64,
}

/// Creates log segment `id` with its header, and makes the file and its directory entry
/// durable before anything is appended to it. On error the file is removed again.
pub(crate) fn create_segment(
    disk: &dyn Disk,
    dir: &Path,
    id: u64,
    base_version: u64,
    link: Link,
) -> io::Result<Segment> {
    let path = dir.join(segment_file_name(id));
    let file = disk.open(&path, Mode::CreateNew)?;
    let header = SegmentHeader {
        id,
        kind: KIND_LOG,
        covers_from: id,
        base_version,
        store_id: link.store_id,
        prev: link.prev,
        prev_len: link.prev_len,
        sealed_len: 0,
    };
    let result = file
        .write_all_at(&header.encode(), 0)
        .and_then(|()| file.sync_all())
        .and_then(|()| disk.sync_dir(dir));
    if let Err(e) = result {
        drop(file);
        remove_leftover(disk, &path);
        return Err(e);
    }
    Ok(Segment {
        id,
        path,
        file,
        len: HEADER_LEN as u64,
        kind: KIND_LOG,
        retired: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        assert_eq!(segment_file_name(1), "seg-0000000000000001.log");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(0xabc)),
            Some(0xabc)
        );
        assert_eq!(parse_segment_file_name("seg-1.log"), None);
        assert_eq!(
            parse_segment_file_name("seg-0000000000000001.log.compact"),
            None
        );
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn only_the_canonical_spelling_is_a_segment() {
        assert_eq!(parse_segment_file_name("seg-00000000000000AB.log"), None);
        assert_eq!(parse_segment_file_name("seg-00000000000000aB.log"), None);
        assert_eq!(parse_segment_file_name("seg-+000000000000001.log"), None);
        assert_eq!(
            parse_segment_file_name("seg-00000000000000ab.log"),
            Some(0xab)
        );
        assert_eq!(
            parse_compact_file_name("seg-00000000000000AB.log.compact"),
            None
        );
        assert_eq!(parse_compact_file_name("seg-junk.compact"), None);
        assert_eq!(
            parse_compact_file_name("seg-00000000000000ab.log.compact"),
            Some(0xab)
        );
    }
}
