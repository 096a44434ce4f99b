//! The on-disk format: segment headers, frames and records.
//!
//! Everything here is pure encoding and decoding over byte slices; no I/O. The layout is
//! specified in the crate documentation ("On-disk format"); the constants below are the
//! numbers it names. All integers are little-endian.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store_core::{Error, Result};

/// The first eight bytes of every segment file. The `\r\n` catches text-mode mangling.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"STFSEG\r\n";
/// The format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u16 = 2;
/// Length of the segment header.
pub(crate) const HEADER_LEN: usize = 84;
/// Length of a format-1 segment header (only to recognise one and refuse it clearly).
const V1_HEADER_LEN: usize = 44;
/// A segment written by appends.
pub(crate) const KIND_LOG: u16 = 0;
/// A segment written by compaction; it replaces the segments `covers_from..id`.
pub(crate) const KIND_COMPACTED: u16 = 1;

/// The highest version a store may hold. A higher one (a forged or damaged record, header
/// or manifest) is corruption: a counter that starts at 0 needs centuries to get here, and
/// a forged `u64::MAX` would otherwise stop every write (the next version cannot exist).
pub(crate) const MAX_VERSION: u64 = i64::MAX as u64;

/// A store's identity, written into its manifest and into every segment it creates, so that
/// it never takes another store's file for its own.
pub(crate) type StoreId = [u8; 16];

/// The first eight bytes of the manifest.
pub(crate) const MANIFEST_MAGIC: [u8; 8] = *b"STFMAN\r\n";
/// Length of the manifest file.
pub(crate) const MANIFEST_LEN: usize = 52;

/// The manifest: the store's identity, the versions it may have handed out, and its newest
/// segment (see the crate docs, "Detecting lost files").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) store_id: StoreId,
    /// No version above this was ever handed out.
    pub(crate) ceiling: u64,
    /// The newest segment that was created (0: none yet).
    pub(crate) last_segment: u64,
}

impl Manifest {
    pub(crate) fn encode(&self) -> [u8; MANIFEST_LEN] {
        let mut out = [0u8; MANIFEST_LEN];
        out[0..8].copy_from_slice(&MANIFEST_MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // 10..16 reserved, zero
        out[16..32].copy_from_slice(&self.store_id);
        out[32..40].copy_from_slice(&self.ceiling.to_le_bytes());
        out[40..48].copy_from_slice(&self.last_segment.to_le_bytes());
        let crc = crc32fast::hash(&out[0..48]);
        out[48..52].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Self, HeaderProblem> {
        if bytes.len() < MANIFEST_LEN {
            return Err(HeaderProblem::TooShort);
        }
        if bytes[0..8] != MANIFEST_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        if crc32fast::hash(&bytes[0..48]) != u32_at(bytes, 48) {
            return Err(HeaderProblem::BadChecksum);
        }
        let version = u16_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::UnsupportedVersion(version));
        }
        let ceiling = u64_at(bytes, 32);
        if ceiling > MAX_VERSION {
            return Err(HeaderProblem::ImpossibleVersion(ceiling));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&bytes[16..32]);
        Ok(Self {
            store_id,
            ceiling,
            last_segment: u64_at(bytes, 40),
        })
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The segment's number; it is also in the file name.
    pub(crate) id: u64,
    /// [`KIND_LOG`] or [`KIND_COMPACTED`].
    pub(crate) kind: u16,
    /// For a compacted segment: the first segment it replaces (it replaces
    /// `covers_from..=id`). Equal to `id` for a log segment.
    pub(crate) covers_from: u64,
    /// The highest version assigned in the store when the segment was started.
    pub(crate) base_version: u64,
    /// The store that wrote the segment.
    pub(crate) store_id: StoreId,
    /// The segment before this one in the store (0: none, this is the oldest).
    pub(crate) prev: u64,
    /// For a log segment: the length of segment `prev` when it was sealed (0 when `prev`
    /// is 0). For a compacted segment: 0.
    pub(crate) prev_len: u64,
    /// For a compacted segment: its own length. For a log segment: 0 (it grows).
    pub(crate) sealed_len: u64,
}

/// Why a segment header (or the manifest) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    TooShort,
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u16),
    BadKind(u16),
    ImpossibleVersion(u64),
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::TooShort => write!(f, "the header is incomplete"),
            HeaderProblem::BadMagic => write!(f, "the file does not start with the expected magic"),
            HeaderProblem::BadChecksum => write!(f, "the header checksum does not match"),
            HeaderProblem::UnsupportedVersion(1) => write!(
                f,
                "format version 1 is not supported: this build reads version {FORMAT_VERSION}, \
                 which adds a store identity and lost-file detection. Copy the data out with \
                 the build that wrote it (list and get every key) and put it into a new store"
            ),
            HeaderProblem::UnsupportedVersion(v) => write!(
                f,
                "format version {v} is not supported (this build reads version {FORMAT_VERSION})"
            ),
            HeaderProblem::BadKind(k) => write!(f, "unknown segment kind {k}"),
            HeaderProblem::ImpossibleVersion(v) => write!(
                f,
                "the header names version {v}, above the highest possible one ({MAX_VERSION})"
            ),
        }
    }
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&self.kind.to_le_bytes());
        // 12..16 reserved, zero
        out[16..24].copy_from_slice(&self.id.to_le_bytes());
        out[24..32].copy_from_slice(&self.covers_from.to_le_bytes());
        out[32..40].copy_from_slice(&self.base_version.to_le_bytes());
        out[40..56].copy_from_slice(&self.store_id);
        out[56..64].copy_from_slice(&self.prev.to_le_bytes());
        out[64..72].copy_from_slice(&self.prev_len.to_le_bytes());
        out[72..80].copy_from_slice(&self.sealed_len.to_le_bytes());
        let crc = crc32fast::hash(&out[0..80]);
        out[80..84].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Self, HeaderProblem> {
        if bytes.len() < 10 {
            return Err(HeaderProblem::TooShort);
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let version = u16_at(bytes, 8);
        if version == 1
            && bytes.len() >= V1_HEADER_LEN
            && crc32fast::hash(&bytes[0..40]) == u32_at(bytes, 40)
        {
            // A whole, valid header of the first format: say so rather than "bad checksum".
            return Err(HeaderProblem::UnsupportedVersion(1));
        }
        if bytes.len() < HEADER_LEN {
            return Err(HeaderProblem::TooShort);
        }
        if crc32fast::hash(&bytes[0..80]) != u32_at(bytes, 80) {
            return Err(HeaderProblem::BadChecksum);
        }
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::UnsupportedVersion(version));
        }
        let kind = u16_at(bytes, 10);
        if kind != KIND_LOG && kind != KIND_COMPACTED {
            return Err(HeaderProblem::BadKind(kind));
        }
        let base_version = u64_at(bytes, 32);
        if base_version > MAX_VERSION {
            return Err(HeaderProblem::ImpossibleVersion(base_version));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&bytes[40..56]);
        Ok(Self {
            id: u64_at(bytes, 16),
            kind,
            covers_from: u64_at(bytes, 24),
            base_version,
            store_id,
            prev: u64_at(bytes, 56),
            prev_len: u64_at(bytes, 64),
            sealed_len: u64_at(bytes, 72),
        })
    }
}

/// The first four bytes of every frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = *b"STFR";
/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 20;
/// Length of a record header (everything before the key).
pub(crate) const RECORD_HEADER_LEN: usize = 36;
/// Record kind: store the value under the key.
pub(crate) const KIND_PUT: u8 = 1;
/// Record kind: remove the key (a tombstone).
pub(crate) const KIND_DELETE: u8 = 2;
/// Record flag: the record carries an expiry time.
pub(crate) const FLAG_EXPIRES: u8 = 1;

/// The largest value the file backend stores, in bytes (1 GiB). Larger values are refused
/// with [`Error::InvalidValue`](store_core::Error::InvalidValue) and change nothing.
///
/// ```
/// assert_eq!(store_file::MAX_VALUE_LEN, 1 << 30);
/// ```
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// The largest frame payload (all records written by one atomic batch).
pub(crate) const MAX_FRAME_PAYLOAD: usize = u32::MAX as usize;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: u32,
    pub(crate) count: u32,
    pub(crate) crc: u32,
}

/// Writes a frame header for `payload` (which holds `count` records) into `out`.
pub(crate) fn encode_frame_header(out: &mut [u8], payload: &[u8], count: u32) {
    debug_assert!(payload.len() <= MAX_FRAME_PAYLOAD);
    out[0..4].copy_from_slice(&FRAME_MAGIC);
    out[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out[8..12].copy_from_slice(&count.to_le_bytes());
    out[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&out[0..16]);
    out[16..20].copy_from_slice(&hcrc.to_le_bytes());
}

/// Decodes a frame header; `None` when the magic or the header checksum is wrong.
pub(crate) fn decode_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    if bytes.len() < FRAME_HEADER_LEN || bytes[0..4] != FRAME_MAGIC {
        return None;
    }
    if crc32fast::hash(&bytes[0..16]) != u32_at(bytes, 16) {
        return None;
    }
    Some(FrameHeader {
        len: u32_at(bytes, 4),
        count: u32_at(bytes, 8),
        crc: u32_at(bytes, 12),
    })
}

/// A record decoded from a frame payload or a point read, borrowing its key and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordRef<'a> {
    pub(crate) kind: u8,
    pub(crate) version: u64,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) key: &'a str,
    pub(crate) value: &'a [u8],
    /// Bytes from the start of the record header to the end of its value.
    pub(crate) len: usize,
    /// Offset of the value inside the record.
    pub(crate) value_offset: usize,
}

/// Splits a time into signed seconds and nanoseconds relative to the Unix epoch.
pub(crate) fn encode_time(at: SystemTime) -> (i64, u32) {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

/// The inverse of [`encode_time`]; `None` for values no `SystemTime` can hold.
pub(crate) fn decode_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Appends one record to `out` and returns its length. Fails (leaving `out` as it was)
/// when the value is larger than [`MAX_VALUE_LEN`].
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    kind: u8,
    version: u64,
    expires_at: Option<SystemTime>,
    key: &str,
    value: &[u8],
) -> Result<usize> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidValue(format!(
            "for key {key:?}: {} bytes; the file backend stores values of at most {MAX_VALUE_LEN} bytes",
            value.len()
        )));
    }
    let key_len = u32::try_from(key.len()).map_err(|_| {
        Error::InvalidValue(format!("key of {} bytes is too long to store", key.len()))
    })?;
    let start = out.len();
    let len = RECORD_HEADER_LEN + key.len() + value.len();
    out.reserve(len);
    out.extend_from_slice(&[0u8; 4]); // crc, filled below
    out.push(kind);
    let (flags, secs, nanos) = match expires_at {
        Some(at) => {
            let (s, n) = encode_time(at);
            (FLAG_EXPIRES, s, n)
        }
        None => (0, 0, 0),
    };
    out.push(flags);
    out.extend_from_slice(&[0u8; 2]);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&nanos.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, len);
    Ok(len)
}

/// Whether the record at the start of `bytes` (exactly one record) has a matching checksum.
pub(crate) fn record_checksum_ok(bytes: &[u8]) -> bool {
    bytes.len() >= RECORD_HEADER_LEN && crc32fast::hash(&bytes[4..]) == u32_at(bytes, 0)
}

/// Decodes the record at the start of `bytes`, checking its structure but not its
/// checksum (frames are checked as a whole; point reads call [`record_checksum_ok`]).
pub(crate) fn decode_record(bytes: &[u8]) -> std::result::Result<RecordRef<'_>, &'static str> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Err("record header runs past the end of its frame");
    }
    let kind = bytes[4];
    if kind != KIND_PUT && kind != KIND_DELETE {
        return Err("unknown record kind");
    }
    let flags = bytes[5];
    if flags & !FLAG_EXPIRES != 0 {
        return Err("unknown record flags");
    }
    let key_len = u32_at(bytes, 8) as usize;
    let value_len = u32_at(bytes, 12) as usize;
    let version = u64_at(bytes, 16);
    let secs = u64_at(bytes, 24) as i64;
    let nanos = u32_at(bytes, 32);
    let len = RECORD_HEADER_LEN
        .checked_add(key_len)
        .and_then(|n| n.checked_add(value_len))
        .ok_or("record lengths overflow")?;
    if len > bytes.len() {
        return Err("record runs past the end of its frame");
    }
    if key_len == 0 {
        return Err("record has an empty key");
    }
    if version > MAX_VERSION {
        return Err(
            "record version is above the highest possible one (a forged or damaged record)",
        );
    }
    let expires_at = if flags & FLAG_EXPIRES != 0 {
        Some(decode_time(secs, nanos).ok_or("record expiry is out of range")?)
    } else {
        None
    };
    let key_bytes = &bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + key_len];
    let key = std::str::from_utf8(key_bytes).map_err(|_| "record key is not UTF-8")?;
    let value_offset = RECORD_HEADER_LEN + key_len;
    Ok(RecordRef {
        kind,
        version,
        expires_at,
        key,
        value: &bytes[value_offset..len],
        len,
        value_offset,
    })
}

/// Iterates over the records of a verified frame payload.
pub(crate) struct Records<'a> {
    payload: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Records<'a> {
    pub(crate) fn new(payload: &'a [u8], count: u32) -> Self {
        Self {
            payload,
            pos: 0,
            left: count,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    /// The record's offset inside the payload, and the record.
    type Item = std::result::Result<(usize, RecordRef<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return if self.pos == self.payload.len() {
                None
            } else {
                self.pos = self.payload.len();
                Some(Err("frame has bytes after its last record"))
            };
        }
        self.left -= 1;
        match decode_record(&self.payload[self.pos..]) {
            Ok(record) => {
                let at = self.pos;
                self.pos += record.len;
                Some(Ok((at, record)))
            }
            Err(e) => {
                self.left = 0;
                self.pos = self.payload.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = SegmentHeader {
            id: 7,
            kind: KIND_COMPACTED,
            covers_from: 3,
            base_version: 99,
            store_id: [7; 16],
            prev: 0,
            prev_len: 0,
            sealed_len: 1234,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&bytes[..10]),
            Err(HeaderProblem::TooShort)
        );
        let mut bad = bytes;
        bad[20] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadChecksum));
        let mut bad = bytes;
        bad[0] = b'x';
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::BadMagic));
        let mut forged = h;
        forged.base_version = u64::MAX;
        assert_eq!(
            SegmentHeader::decode(&forged.encode()),
            Err(HeaderProblem::ImpossibleVersion(u64::MAX))
        );
    }

    #[test]
    fn a_format_1_header_is_named_as_such() {
        let mut v1 = [0u8; V1_HEADER_LEN];
        v1[0..8].copy_from_slice(&SEGMENT_MAGIC);
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&v1[0..40]);
        v1[40..44].copy_from_slice(&crc.to_le_bytes());
        let problem = SegmentHeader::decode(&v1).unwrap_err();
        assert_eq!(problem, HeaderProblem::UnsupportedVersion(1));
        assert!(problem.to_string().contains("format version 1"));
    }

    #[test]
    fn manifest_round_trip_and_checks() {
        let m = Manifest {
            store_id: [3; 16],
            ceiling: 1 << 20,
            last_segment: 9,
        };
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Ok(m));
        let mut bad = bytes;
        bad[33] ^= 1;
        assert_eq!(Manifest::decode(&bad), Err(HeaderProblem::BadChecksum));
        let forged = Manifest {
            ceiling: u64::MAX,
            ..m
        };
        assert!(Manifest::decode(&forged.encode()).is_err());
    }

    #[test]
    fn a_record_with_an_impossible_version_is_malformed() {
        let mut out = Vec::new();
        encode_record(&mut out, KIND_PUT, u64::MAX, None, "k", b"v").unwrap();
        assert!(decode_record(&out).is_err());
        out.clear();
        encode_record(&mut out, KIND_PUT, MAX_VERSION, None, "k", b"v").unwrap();
        assert!(decode_record(&out).is_ok());
    }

    #[test]
    fn record_round_trip() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        let mut out = vec![9u8; 3];
        let len = encode_record(&mut out, KIND_PUT, 42, Some(at), "kéy", b"value").unwrap();
        assert_eq!(len, out.len() - 3);
        assert!(record_checksum_ok(&out[3..]));
        let r = decode_record(&out[3..]).unwrap();
        assert_eq!(r.kind, KIND_PUT);
        assert_eq!(r.version, 42);
        assert_eq!(r.expires_at, Some(at));
        assert_eq!(r.key, "kéy");
        assert_eq!(r.value, b"value");
        assert_eq!(&out[3 + r.value_offset..], b"value");
        out[10] ^= 0x40;
        assert!(!record_checksum_ok(&out[3..]));
    }

    #[test]
    fn times_before_and_after_the_epoch_round_trip() {
        for at in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(5, 1),
            UNIX_EPOCH - Duration::new(5, 0),
            UNIX_EPOCH - Duration::new(5, 1),
            UNIX_EPOCH - Duration::new(0, 999_999_999),
            SystemTime::now(),
        ] {
            let (s, n) = encode_time(at);
            assert_eq!(decode_time(s, n), Some(at), "{at:?}");
        }
        assert_eq!(decode_time(0, 1_000_000_000), None);
    }

    #[test]
    fn frame_header_round_trip() {
        let payload = b"abc";
        let mut h = [0u8; FRAME_HEADER_LEN];
        encode_frame_header(&mut h, payload, 1);
        let d = decode_frame_header(&h).unwrap();
        assert_eq!((d.len, d.count, d.crc), (3, 1, crc32fast::hash(payload)));
        h[5] ^= 1;
        assert_eq!(decode_frame_header(&h), None);
    }

    #[test]
    fn records_iterator_rejects_trailing_bytes() {
        let mut payload = Vec::new();
        encode_record(&mut payload, KIND_DELETE, 1, None, "a", b"").unwrap();
        assert_eq!(Records::new(&payload, 1).filter(|r| r.is_ok()).count(), 1);
        payload.push(0);
        let results: Vec<_> = Records::new(&payload, 1).collect();
        assert!(results[1].is_err());
    }
}
