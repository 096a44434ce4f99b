//! The one frame scanner, shared by recovery and compaction, with the one policy for a
//! damaged frame: a torn tail of the newest segment is reported to the caller (recovery
//! cuts it off); any other damage fails with [`Error::Corrupt`] naming the file and offset,
//! or, with [`FileOptions::skip_corrupt_frames`](crate::FileOptions::skip_corrupt_frames),
//! is skipped, logged with `tracing::warn!` and counted.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use store_core::{Error, Result};

use crate::disk::DiskFile;
use crate::format::{
    decode_frame_header, FrameHeader, RecordRef, Records, FRAME_HEADER_LEN, FRAME_MAGIC,
};

/// Why the scanner stopped at a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The frame header or payload runs past the end of the file.
    Incomplete,
    /// The frame header's magic or checksum is wrong.
    BadHeader,
    /// The payload checksum is wrong.
    BadPayload,
    /// The frame passed its checksums but holds a malformed record (never a torn write).
    Malformed(&'static str),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Incomplete => {
                f.write_str("incomplete frame (it runs past the end of the file)")
            }
            Problem::BadHeader => f.write_str("frame header magic or checksum mismatch"),
            Problem::BadPayload => f.write_str("frame payload checksum mismatch"),
            Problem::Malformed(why) => write!(
                f,
                "the frame passed its checksum but holds a malformed record ({why})"
            ),
        }
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
    file: &'f dyn DiskFile,
    end: u64,
    pos: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_pos: u64,
}

impl<'f> FrameScanner<'f> {
    /// A scanner over `file[start..end]`.
    pub(crate) fn new(file: &'f dyn DiskFile, start: u64, end: u64) -> Self {
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
    fn fill(&mut self, need: usize) -> std::io::Result<bool> {
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
        self.file.read_exact_at(&mut self.buf, self.pos)?;
        self.buf_pos = self.pos;
        Ok(true)
    }

    fn at(&self, len: usize) -> &[u8] {
        let start = (self.pos - self.buf_pos) as usize;
        &self.buf[start..start + len]
    }

    fn header(&mut self) -> std::io::Result<Option<FrameHeader>> {
        if !self.fill(FRAME_HEADER_LEN)? {
            return Ok(None);
        }
        Ok(decode_frame_header(self.at(FRAME_HEADER_LEN)))
    }

    /// The frame at the current position; advances past it only when it is valid.
    pub(crate) fn next_frame(&mut self) -> std::io::Result<Scan<'_>> {
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
    pub(crate) fn find_valid_frame_from(&mut self, from: u64) -> std::io::Result<Option<u64>> {
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

/// How a walk over a segment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// At the end of the file, or at `stop`.
    Clean,
    /// At a damaged frame that nothing valid follows, in the newest log segment: a torn
    /// write or garbage after the last complete frame. The caller decides (recovery cuts
    /// the file there, a read-only open ignores the rest).
    TornTail { offset: u64, problem: Problem },
}

/// What a walk is for, and how it treats damage.
pub(crate) struct Walk<'a> {
    pub(crate) path: &'a Path,
    /// Who walks, for messages: "recovery" or "compaction".
    pub(crate) by: &'a str,
    /// The newest log segment: a damaged frame with nothing valid after it is a torn tail.
    pub(crate) tail: bool,
    pub(crate) skip_corrupt: bool,
    pub(crate) cancel: Option<&'a AtomicBool>,
}

/// What [`walk`] calls for every record: its offset in the file, the record, its raw bytes.
pub(crate) type Visit<'v> = dyn FnMut(u64, &RecordRef<'_>, &[u8]) -> Result<()> + 'v;

/// Calls `visit` for every record of every valid frame of `file[start..end]`, in order. A
/// frame is checked whole before any of its records is visited (a batch is all or none).
/// Damage follows the module's policy; each skipped frame adds one to `skipped`.
pub(crate) fn walk(
    file: &dyn DiskFile,
    start: u64,
    end: u64,
    how: &Walk<'_>,
    skipped: &mut u64,
    visit: &mut Visit<'_>,
) -> Result<Ending> {
    let path = how.path;
    let read_error = |e| Error::io(format!("{} reading {}", how.by, path.display()), e);
    let mut scanner = FrameScanner::new(file, start, end);
    loop {
        if how.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Closed);
        }
        let (offset, problem, search_from) = match scanner.next_frame().map_err(read_error)? {
            Scan::End => return Ok(Ending::Clean),
            Scan::Frame {
                offset,
                count,
                payload,
            } => {
                let malformed = Records::new(payload, count).find_map(|r| r.err());
                if let Some(why) = malformed {
                    let next = offset + (FRAME_HEADER_LEN + payload.len()) as u64;
                    (offset, Problem::Malformed(why), next)
                } else {
                    let base = offset + FRAME_HEADER_LEN as u64;
                    for (at, record) in Records::new(payload, count).flatten() {
                        visit(base + at as u64, &record, &payload[at..at + record.len])?;
                    }
                    continue;
                }
            }
            Scan::Bad {
                offset,
                problem,
                search_from,
            } => (offset, problem, search_from),
        };
        let next = scanner
            .find_valid_frame_from(search_from)
            .map_err(read_error)?;
        let torn = !matches!(problem, Problem::Malformed(_));
        if how.tail && torn && next.is_none() {
            return Ok(Ending::TornTail { offset, problem });
        }
        if !how.skip_corrupt {
            let after = match next {
                Some(at) => format!("valid frames follow at offset {at}"),
                None if how.tail => "inside a frame that passed its checksums".to_owned(),
                None => "in a sealed segment".to_owned(),
            };
            let error = Error::Corrupt(format!(
                "{}: {problem} at offset {offset} ({after}, so this is not a torn write; \
                 found by {}). Refusing to go on rather than lose or invent data: restore the \
                 file from a backup, or open with FileOptions::skip_corrupt_frames to drop \
                 the damaged frame",
                path.display(),
                how.by
            ));
            tracing::error!(%error, "damaged segment");
            return Err(error);
        }
        let resume = next.unwrap_or(end);
        tracing::warn!(
            file = %path.display(),
            offset,
            bytes = resume - offset,
            %problem,
            by = how.by,
            "skipped a damaged frame (skip_corrupt_frames is on); the writes it held are lost"
        );
        *skipped += 1;
        scanner.seek(resume);
    }
}
