//! Segment files: names, positional I/O, and the frame scanner used by recovery and
//! compaction.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{
    decode_frame_header, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, FRAME_MAGIC, HEADER_LEN,
    KIND_LOG,
};

/// The file name of segment `id`: `seg-` + 16 lowercase hex digits + `.log`, so that names
/// sort like numbers.
pub(crate) fn segment_file_name(id: u64) -> String {
    format!("seg-{id:016x}.log")
}

/// The suffix of a compaction's output while it is being written.
pub(crate) const COMPACT_SUFFIX: &str = ".compact";

/// The segment number in a segment file name, if `name` is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The segment number on disk (in its file name).
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
    /// Bytes in the file (for the active segment: bytes written, not counting the buffer).
    pub(crate) len: u64,
    /// [`KIND_LOG`](crate::format::KIND_LOG) or [`KIND_COMPACTED`](crate::format::KIND_COMPACTED).
    pub(crate) kind: u16,
    /// Replaced by a compaction whose install is still moving index entries off it: kept
    /// open for reads (its file may be gone already), counted nowhere.
    pub(crate) retired: bool,
}

/// Reads exactly `buf.len()` bytes at `offset` without moving any file cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset` without moving any file cursor.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Removes a file left by a failed step. The step's own error is what the caller reports;
/// a failed removal is logged (the file is also removed at the next open).
pub(crate) fn remove_leftover(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a leftover file");
        }
        _ => {}
    }
}

/// Makes the directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates segment `id` with its header, and makes the file and its directory entry
/// durable before anything is appended to it. On error the file is removed again.
pub(crate) fn create_segment(dir: &Path, id: u64, base_version: u64) -> io::Result<Segment> {
    let path = dir.join(segment_file_name(id));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let header = SegmentHeader {
        id,
        kind: KIND_LOG,
        covers_from: id,
        base_version,
    };
    let result = write_all_at(&file, &header.encode(), 0)
        .and_then(|()| file.sync_all())
        .and_then(|()| sync_dir(dir));
    if let Err(e) = result {
        drop(file);
        remove_leftover(&path);
        return Err(e);
    }
    Ok(Segment {
        id,
        path,
        file: Arc::new(file),
        len: HEADER_LEN as u64,
        kind: KIND_LOG,
        retired: false,
    })
}

/// Why the scanner stopped at a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The frame header or payload runs past the end of the file.
    Incomplete,
    /// The frame header's magic or checksum is wrong.
    BadHeader,
    /// The payload checksum is wrong.
    BadPayload,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::Incomplete => "incomplete frame (it runs past the end of the file)",
            Problem::BadHeader => "frame header magic or checksum mismatch",
            Problem::BadPayload => "frame payload checksum mismatch",
        })
    }
}

/// What the scanner found at its position.
pub(crate) enum Scan<'a> {
    /// A whole, verified frame.
    Frame {
        offset: u64,
        count: u32,
        payload: &'a [u8],
    },
    /// The clean end of the file.
    End,
    /// Not a valid frame; the scanner has not moved. `search_from` is where a following
    /// valid frame could start: right after the frame when its header is valid (its length
    /// is then trustworthy, so the search never looks inside its payload), the end of the
    /// file when that frame runs past it, else the next byte.
    Bad {
        offset: u64,
        problem: Problem,
        search_from: u64,
    },
}

/// How much the scanner reads at a time.
const CHUNK: usize = 1 << 20;

/// Reads frames one after the other from a segment through a large buffer (positional
/// reads, so several scanners can share a file).
pub(crate) struct FrameScanner<'f> {
    file: &'f File,
    end: u64,
    pos: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_pos: u64,
}

impl<'f> FrameScanner<'f> {
    /// A scanner over `file[start..end]`.
    pub(crate) fn new(file: &'f File, start: u64, end: u64) -> Self {
        Self {
            file,
            end,
            pos: start,
            buf: Vec::new(),
            buf_pos: 0,
        }
    }

    pub(crate) fn seek(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// Makes `buf` hold `file[pos..pos + need]`; `false` when that runs past `end`.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        let want_end = match self.pos.checked_add(need as u64) {
            Some(e) if e <= self.end => e,
            _ => return Ok(false),
        };
        if self.pos >= self.buf_pos && want_end <= self.buf_pos + self.buf.len() as u64 {
            return Ok(true);
        }
        let len = (need.max(CHUNK) as u64).min(self.end - self.pos) as usize;
        self.buf.clear();
        self.buf.resize(len, 0);
        read_exact_at(self.file, &mut self.buf, self.pos)?;
        self.buf_pos = self.pos;
        Ok(true)
    }

    fn at(&self, len: usize) -> &[u8] {
        let start = (self.pos - self.buf_pos) as usize;
        &self.buf[start..start + len]
    }

    fn header(&mut self) -> io::Result<Option<FrameHeader>> {
        if !self.fill(FRAME_HEADER_LEN)? {
            return Ok(None);
        }
        Ok(decode_frame_header(self.at(FRAME_HEADER_LEN)))
    }

    /// The frame at the current position; advances past it only when it is valid.
    pub(crate) fn next_frame(&mut self) -> io::Result<Scan<'_>> {
        let offset = self.pos;
        if offset >= self.end {
            return Ok(Scan::End);
        }
        if !self.fill(FRAME_HEADER_LEN)? {
            return Ok(Scan::Bad {
                offset,
                problem: Problem::Incomplete,
                search_from: self.end,
            });
        }
        let Some(header) = self.header()? else {
            return Ok(Scan::Bad {
                offset,
                problem: Problem::BadHeader,
                search_from: offset + 1,
            });
        };
        let total = FRAME_HEADER_LEN + header.len as usize;
        if !self.fill(total)? {
            return Ok(Scan::Bad {
                offset,
                problem: Problem::Incomplete,
                search_from: self.end,
            });
        }
        let payload_ok = crc32fast::hash(&self.at(total)[FRAME_HEADER_LEN..]) == header.crc;
        if !payload_ok {
            return Ok(Scan::Bad {
                offset,
                problem: Problem::BadPayload,
                search_from: offset + total as u64,
            });
        }
        self.pos += total as u64;
        let start = (offset - self.buf_pos) as usize;
        Ok(Scan::Frame {
            offset,
            count: header.count,
            payload: &self.buf[start + FRAME_HEADER_LEN..start + total],
        })
    }

    /// The offset of the first valid frame at or after `from`, if there is one. Used to
    /// tell a torn tail (nothing valid follows) from damage in the middle of a file, and to
    /// resynchronise after damage. Leaves the scanner where it was.
    pub(crate) fn find_valid_frame_from(&mut self, from: u64) -> io::Result<Option<u64>> {
        let back = self.pos;
        let mut candidate = from;
        while candidate + FRAME_HEADER_LEN as u64 <= self.end {
            self.pos = candidate;
            if !self.fill(FRAME_MAGIC.len())? {
                break;
            }
            if self.at(FRAME_MAGIC.len()) == FRAME_MAGIC
                && matches!(self.next_frame()?, Scan::Frame { .. })
            {
                self.pos = back;
                return Ok(Some(candidate));
            }
            candidate += 1;
        }
        self.pos = back;
        Ok(None)
    }
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
}
