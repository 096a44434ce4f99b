//! Snapshot and restore: every live record of a stack, losslessly, in a versioned,
//! line-oriented file that streams in both directions with constant memory.
//!
//! # Format (version 1)
//!
//! UTF-8 text, one JSON object per line, each ending in `\n`. Every line's last field is
//! `"crc"`: the CRC-32 (IEEE) of the line's JSON object *without* that field, that is of the
//! bytes before `,"crc":` followed by `}`. The first field is `"kind"`.
//!
//! 1. One header line:
//!    `{"kind":"header","format":"storectl-snapshot","version":1,"source":"file \"/data\"","created":"2026-12-01T18:00:00.000Z","crc":...}`
//!    with `source` the stack it was taken from ([`Storage::describe`]), when the
//!    snapshot was limited to one scope, `database` (and `table`), and, when it was taken
//!    with a record limit other than the default, `max_record_bytes` (see "Limits").
//! 2. One line per live record, in ascending order of the storage key:
//!    `{"kind":"record","database":"micro","table":"users","key":"user/1","value":"alice","metadata":{"age":37},"ttl_ms":59000,"crc":...}`
//!    - `database`, `table`, `key`: the facade's scope and key (see
//!      [`store_compat::layout`]). A record whose storage key is not in that layout (written
//!      below the facade) has no `database`/`table`, and `key` is its whole storage key.
//!    - `value` when the facade value is UTF-8, else `value_base64` (standard base64);
//!      `metadata`: the facade metadata (left out when empty), numbers as they are stored.
//!    - `ttl_ms`: the time the record had left when it was read, in milliseconds rounded
//!      up (left out when it never expires). A restore gives the record that much time from
//!      the moment it is written.
//!    - `stored_base64`: only when the facade's own encoding ([`envelope::encode`]) of
//!      `metadata` and `value` would not give back the stored bytes (a value written below
//!      the facade that looks like an envelope in a form the facade does not write): the
//!      stored bytes themselves, which a restore writes verbatim.
//! 3. One end line: `{"kind":"end","records":N,"records_crc":C,"crc":...}`: the number of
//!    record lines and the CRC-32 of all of them (their bytes, newlines included, in order).
//!
//! A reader rejects a file whose header is not version 1 of this format, a line whose
//! checksum or JSON is wrong (naming the line), fields it does not know, keys out of
//! order or repeated, and a file that ends without its end line or goes on after it, or
//! whose end line does not match the records (a truncated or spliced file).
//!
//! # Limits
//!
//! A snapshot holds records of at most a [`RecordLimit`] of stored bytes (value and
//! metadata): [`MAX_RECORD_BYTES`], 16 MiB, unless the operator chooses another, from
//! 64 KiB to 1 GiB (`--max-record-size`). No line is longer than the limit's
//! [`max_line`](RecordLimit::max_line), four times as much (64 MiB, [`MAX_LINE`], for the
//! default), its newline included. `snapshot` refuses a larger record, naming its key and
//! the flag. A snapshot taken with a limit other than the default names it in its header
//! (`"max_record_bytes":N`).
//!
//! A reader is given the largest limit it allows (`restore --max-record-size`, 16 MiB by
//! default), and reads the header line with it. A header that names a larger limit is
//! refused before any record is read, with a message naming both sizes and the flag to
//! pass. The records are then read with the header's limit, or with the reader's when the
//! header names none (a snapshot with the default limit, or one taken before limits were
//! written down). A longer line is refused, naming it, as soon as `max_line` bytes of it
//! are read, and a larger record, naming its key. So reading a snapshot, damaged or not,
//! holds at most one line of `max_line` bytes for the limit the operator allowed, whatever
//! the file says; a restore holds besides the records it is writing: a few batches of
//! 4 MiB, or one or two records when they are larger.
//!
//! Versions are not kept: the restored records get new versions from the target, as every
//! write does. Record lines hold what both APIs read: the versioned API's stored bytes are
//! the envelope of `metadata` and `value` (or `stored_base64`), and the facade reads
//! `metadata` and `value` back from them.
//!
//! # Consistency
//!
//! A snapshot reads the listing in pages and the values in batches while the store stays
//! in use: each record is as it was at some moment during the snapshot (a record written
//! or deleted meanwhile may or may not be in it), as with go-micro's `micro store snapshot`.
//! Stop the writers first for a point-in-time copy.

use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store_compat::envelope;
use store_compat::layout::{scope_prefix, split_storage_key, storage_key};
use store_core::{Pattern, Record, Storage};

use crate::error::{CliError, Result};
use crate::progress::Progress;
use crate::value::{JsonValue, decode_base64, encode_base64};

/// The `format` of the header line.
///
/// ```
/// assert_eq!(store_cli::snapshot::FORMAT, "storectl-snapshot");
/// ```
pub const FORMAT: &str = "storectl-snapshot";

/// The format version this build writes and reads.
///
/// ```
/// assert_eq!(store_cli::snapshot::VERSION, 1);
/// ```
pub const VERSION: u32 = 1;

/// Records read or written per store call.
const BATCH_RECORDS: usize = 256;
/// Bytes of stored values per restore call (a batch closes at whichever limit comes first).
const BATCH_BYTES: usize = 4 << 20;
/// Store calls in flight at once.
const IN_FLIGHT: usize = 4;
/// Bytes of stored values in restore calls in flight at once, past which the oldest call is
/// waited for before the next batch is read: batches of small records still go
/// [`IN_FLIGHT`] at a time, while records near a large [`RecordLimit`] go one or two at a
/// time instead of four batches of them.
const IN_FLIGHT_BYTES: usize = IN_FLIGHT * BATCH_BYTES;
/// The default largest record of a snapshot: its stored bytes (the facade's envelope of
/// value and metadata, as the stack below the facade holds them) are at most 16 MiB, unless
/// the operator chooses another [`RecordLimit`] (`--max-record-size`). `snapshot` refuses a
/// larger record, naming its key, rather than write a line that a reader would have to hold
/// whole in memory however long it is.
///
/// ```
/// use store_cli::snapshot::{MAX_RECORD_BYTES, RecordLimit};
/// assert_eq!(MAX_RECORD_BYTES, 16 << 20);
/// assert_eq!(RecordLimit::DEFAULT.bytes(), MAX_RECORD_BYTES);
/// ```
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The longest line of a snapshot of records of at most [`MAX_RECORD_BYTES`] (the
/// default), its newline included: 64 MiB, [`RecordLimit::max_line`] of the default. A
/// reader refuses a longer line once it has read this much of it (a damaged file without
/// newlines is never read whole), naming the line.
///
/// ```
/// use store_cli::snapshot::{MAX_LINE, RecordLimit};
/// assert_eq!(MAX_LINE, 64 << 20);
/// assert_eq!(MAX_LINE, RecordLimit::DEFAULT.max_line());
/// ```
pub const MAX_LINE: usize = RecordLimit::DEFAULT.max_line();

/// The largest record a snapshot holds, in stored bytes (value and metadata): the
/// operator's choice (`--max-record-size`), from 64 KiB to 1 GiB, [`MAX_RECORD_BYTES`]
/// (16 MiB) by default. It bounds the memory a snapshot line takes to read
/// ([`max_line`](RecordLimit::max_line), four times as much), so reading a damaged file
/// costs no more than the operator allowed.
///
/// A snapshot taken with a limit other than the default names it in its header
/// (`max_record_bytes`), and a reader uses that limit for the file, but only up to the one
/// it was given: a file whose header names more is refused before any record is read.
///
/// ```
/// use store_cli::snapshot::RecordLimit;
/// let limit = RecordLimit::new(20 << 20).unwrap();
/// assert_eq!((limit.bytes(), limit.max_line()), (20 << 20, 80 << 20));
/// assert_eq!(limit.to_string(), "20971520 bytes (20 MiB)");
/// assert!(RecordLimit::new(2 << 30).unwrap_err().contains("to 1 GiB (1073741824 bytes"));
/// assert_eq!(RecordLimit::default(), RecordLimit::DEFAULT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordLimit(usize);

impl RecordLimit {
    /// The default: [`MAX_RECORD_BYTES`], 16 MiB.
    ///
    /// ```
    /// assert_eq!(store_cli::snapshot::RecordLimit::DEFAULT.bytes(), 16 << 20);
    /// ```
    pub const DEFAULT: Self = Self(MAX_RECORD_BYTES);

    /// The smallest limit: 64 KiB, so that a line always has room for the longest key (see
    /// [`max_line`](RecordLimit::max_line)) and the header.
    ///
    /// ```
    /// use store_cli::snapshot::RecordLimit;
    /// assert_eq!(RecordLimit::SMALLEST.bytes(), 64 << 10);
    /// assert!(RecordLimit::new(64 << 10).is_ok() && RecordLimit::new((64 << 10) - 1).is_err());
    /// ```
    pub const SMALLEST: Self = Self(64 << 10);

    /// The largest limit: 1 GiB, the largest value any backend stores (the file backend's
    /// `store_file::MAX_VALUE_LEN`, and PostgreSQL's for a `bytea`; Redis stores at most
    /// 512 MiB). A snapshot line of such a record takes up to 4 GiB to read.
    ///
    /// ```
    /// use store_cli::snapshot::RecordLimit;
    /// assert_eq!(RecordLimit::LARGEST.bytes(), 1 << 30);
    /// assert!(RecordLimit::new(1 << 30).is_ok() && RecordLimit::new((1 << 30) + 1).is_err());
    /// ```
    pub const LARGEST: Self = Self(1 << 30);

    /// A limit of `bytes`, or why not (outside [`SMALLEST`](RecordLimit::SMALLEST) to
    /// [`LARGEST`](RecordLimit::LARGEST)): the message says what is accepted.
    ///
    /// ```
    /// use store_cli::snapshot::RecordLimit;
    /// assert_eq!(RecordLimit::new(1 << 20).unwrap().bytes(), 1 << 20);
    /// let err = RecordLimit::new(0).unwrap_err();
    /// assert!(err.contains("0 bytes: accepted is a size from 64 KiB (65536) to 1 GiB"), "{err}");
    /// ```
    pub fn new(bytes: u64) -> Result<Self, String> {
        let range = Self::SMALLEST.0 as u64..=Self::LARGEST.0 as u64;
        if !range.contains(&bytes) {
            return Err(format!(
                "{bytes} bytes: accepted is a size from 64 KiB ({}) to 1 GiB ({} bytes, the \
                 largest value a backend stores)",
                range.start(),
                range.end()
            ));
        }
        // At most 1 GiB: fits a usize on every platform Rust supports with std.
        Ok(Self(bytes as usize))
    }

    /// The largest record, in stored bytes.
    ///
    /// ```
    /// assert_eq!(store_cli::snapshot::RecordLimit::DEFAULT.bytes(), 16 << 20);
    /// ```
    pub const fn bytes(self) -> usize {
        self.0
    }

    /// The longest line of a snapshot of such records, its newline included: four times the
    /// record limit (64 MiB for the default 16 MiB). This is the one place the rule is
    /// written down.
    ///
    /// A record line holds the value (as base64, 4/3 of its bytes), the metadata as JSON
    /// and, for stored bytes the facade would not write itself, all the stored bytes as
    /// base64 again (4/3 of them): about 8/3 of the record limit. The key takes at most
    /// 6 × 4 KiB (its bytes JSON-escaped), the fixed fields a few hundred bytes: with the
    /// smallest limit, 64 KiB, that is under 200 KiB of a 256 KiB line; the rest is slack.
    /// A value is written as text (`value`) unless that would make its line longer than
    /// this, and then as `value_base64`; a line still too long (metadata whose JSON grows
    /// when written out again, such as `9e15` printed as `9000000000000000.0`) is refused
    /// by `snapshot`, naming its key.
    ///
    /// ```
    /// use store_cli::snapshot::RecordLimit;
    /// for limit in [RecordLimit::SMALLEST, RecordLimit::DEFAULT, RecordLimit::LARGEST] {
    ///     let record = limit.bytes();
    ///     assert!(record / 3 * 8 + 6 * store_core::MAX_KEY_LEN + 4096 < limit.max_line());
    /// }
    /// assert_eq!(RecordLimit::DEFAULT.max_line(), 64 << 20);
    /// ```
    pub const fn max_line(self) -> usize {
        // Saturating: where a usize has 32 bits, a line of 4 GiB is as good as unbounded.
        self.0.saturating_mul(4)
    }
}

impl Default for RecordLimit {
    /// [`RecordLimit::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for RecordLimit {
    /// `N bytes (M MiB)`, in the largest of GiB, MiB and KiB that is whole (the bytes alone
    /// otherwise).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0)?;
        match whole_units(self.0) {
            Some((n, unit)) => write!(f, " ({n} {unit})"),
            None => Ok(()),
        }
    }
}

/// `bytes` in the largest of GiB, MiB and KiB that holds it whole.
fn whole_units(bytes: usize) -> Option<(usize, &'static str)> {
    [(30, "GiB"), (20, "MiB"), (10, "KiB")]
        .into_iter()
        .find(|(shift, _)| bytes.is_multiple_of(1 << shift))
        .map(|(shift, unit)| (bytes >> shift, unit))
}

/// The `--max-record-size` that takes a record of `bytes`, in whole MiB (what an operator
/// types), or `None` when no limit is that large.
fn size_to_pass(bytes: usize) -> Option<String> {
    let size = (bytes.div_ceil(1 << 20) << 20).max(RecordLimit::SMALLEST.bytes());
    RecordLimit::new(size as u64).ok().map(size_arg)
}

/// `limit` as `--max-record-size` takes it, such as `32MiB`.
fn size_arg(limit: RecordLimit) -> String {
    match whole_units(limit.bytes()) {
        Some((n, unit)) => format!("{n}{unit}"),
        None => limit.bytes().to_string(),
    }
}

/// What a restored record's remaining expiry may differ by when verified (clock reading
/// and rounding; a server-side clock may differ a little from ours).
const VERIFY_SLACK: Duration = Duration::from_secs(1);

/// One line of a snapshot (the `crc` field is added and checked around it).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Line {
    Header(Header),
    Record(RecordLine),
    End(EndLine),
}

/// The header line's fields.
///
/// ```
/// # let mut out = Vec::new();
/// # store_cli::snapshot::SnapshotWriter::new(&mut out, "file \"/data\"", Some("shop"), None).unwrap().finish().unwrap();
/// let reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s.snap").unwrap();
/// let header = reader.header();
/// assert_eq!((header.format.as_str(), header.version), ("storectl-snapshot", 1));
/// assert_eq!(header.database.as_deref(), Some("shop"));
/// assert_eq!(header.max_record_bytes, None, "taken with the default limit");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// The stack the snapshot was taken from (its [`Storage::describe`]).
    pub source: String,
    /// When the snapshot started (RFC 3339, UTC).
    pub created: String,
    /// The database the snapshot was limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The table the snapshot was limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The largest record the snapshot may hold, in stored bytes, when it was taken with a
    /// [`RecordLimit`] other than the default (files with the default, and files written
    /// before the limit was chosen, leave it out: their reader's limit applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_bytes: Option<u64>,
}

/// A record line's fields (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stored_base64: Option<String>,
}

/// The end line's fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    records: u64,
    records_crc: u32,
}

/// The two fields a header of any version has, read before the rest.
#[derive(Deserialize)]
struct Identity {
    kind: Option<String>,
    format: Option<String>,
    version: Option<u64>,
}

/// A record as a snapshot holds it, ready to be written below the facade.
///
/// ```
/// # let mut out = Vec::new();
/// # let mut writer = store_cli::snapshot::SnapshotWriter::new(&mut out, "m", None, None).unwrap();
/// # writer.write_record(store_core::Record::new("lock", "me")).unwrap();
/// # writer.finish().unwrap();
/// let mut reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s.snap").unwrap();
/// let record = reader.next_record().unwrap().unwrap();
/// assert_eq!((record.storage_key.as_str(), &record.stored[..], record.ttl, record.line), ("lock", &b"me"[..], None, 2));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotRecord {
    /// The storage key (`database/table/key`, or the key of a record outside the layout).
    pub storage_key: String,
    /// The stored bytes (the facade's envelope of metadata and value).
    pub stored: Bytes,
    /// The time it had left (`None`: never expires).
    pub ttl: Option<Duration>,
    /// Its line in the snapshot.
    pub line: u64,
}

impl SnapshotRecord {
    /// The record to write now: its expiry is its time left from now. An expiry the clock
    /// cannot represent is an error: `Record::with_ttl` would make it "never expires".
    fn to_record(&self) -> Result<Record, String> {
        let record = Record::new(self.storage_key.clone(), self.stored.clone());
        match self.ttl {
            Some(ttl) => Ok(record.with_expires_at(expiry_from_now(ttl)?)),
            None => Ok(record),
        }
    }
}

/// Now plus `ttl`, or why not.
fn expiry_from_now(ttl: Duration) -> Result<SystemTime, String> {
    SystemTime::now().checked_add(ttl).ok_or_else(|| {
        format!(
            "\"ttl_ms\":{} is later than this system's clock can represent",
            ttl.as_millis()
        )
    })
}

/// Turns a stored record into its line.
fn record_line(record: Record) -> Result<RecordLine, String> {
    let ttl_ms = record.ttl().map(|left| {
        let ms = left.as_nanos().div_ceil(1_000_000);
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    });
    let stored = record.value;
    let (metadata, value) = envelope::decode(stored.clone());
    let canonical = envelope::encode(&metadata, value.clone())
        .map(|again| again == stored)
        .unwrap_or(false);
    let (database, table, key) = match split_storage_key(&record.key) {
        Some((d, t, k)) => (Some(d.to_owned()), Some(t.to_owned()), k.to_owned()),
        None => (None, None, record.key.clone()),
    };
    let JsonValue {
        value,
        value_base64,
    } = JsonValue::from_bytes(&value);
    Ok(RecordLine {
        database,
        table,
        key,
        value,
        value_base64,
        metadata: metadata.into_iter().collect(),
        ttl_ms,
        stored_base64: (!canonical).then(|| encode_base64(&stored)),
    })
}

/// Checks a record line and turns it into what is written back.
fn from_line(line: RecordLine, number: u64) -> Result<SnapshotRecord, String> {
    let storage_key = match (&line.database, &line.table) {
        (Some(database), Some(table)) => {
            storage_key(database, table, &line.key).map_err(|e| e.to_string())?
        }
        (None, None) => {
            store_core::validate_key(&line.key).map_err(|e| e.to_string())?;
            line.key.clone()
        }
        _ => return Err("\"database\" and \"table\" must be given together".into()),
    };
    let value = JsonValue {
        value: line.value,
        value_base64: line.value_base64,
    }
    .to_bytes()?;
    let metadata: std::collections::HashMap<String, Value> = line.metadata.into_iter().collect();
    let stored = match line.stored_base64 {
        Some(encoded) => {
            let stored =
                Bytes::from(decode_base64(&encoded).map_err(|e| format!("stored_base64: {e}"))?);
            let (read_metadata, read_value) = envelope::decode(stored.clone());
            if read_metadata != metadata || read_value != value {
                return Err("\"stored_base64\" does not hold the line's value and metadata".into());
            }
            stored
        }
        None => envelope::encode(&metadata, value).map_err(|e| e.to_string())?,
    };
    let ttl = match line.ttl_ms {
        Some(0) => return Err("\"ttl_ms\" must be at least 1".into()),
        Some(ms) => {
            let ttl = Duration::from_millis(ms);
            // Checked here too, so that a restore refuses the file before writing anything.
            expiry_from_now(ttl)?;
            Some(ttl)
        }
        None => None,
    };
    Ok(SnapshotRecord {
        storage_key,
        stored,
        ttl,
        line: number,
    })
}

/// Serializes `line` with its checksum and newline into `out`.
fn encode_line(line: &Line, out: &mut Vec<u8>) {
    out.clear();
    serde_json::to_writer(&mut *out, line).expect(
        "a Line holds only strings, integers and JSON values (no map with non-string keys), \
         and writing to a Vec cannot fail",
    );
    let crc = crc32fast::hash(out);
    out.pop(); // the closing brace
    out.extend_from_slice(format!(",\"crc\":{crc}}}\n").as_bytes());
}

/// Checks a line's checksum (the line without its newline) and parses it.
fn decode_line<T: serde::de::DeserializeOwned>(line: &mut Vec<u8>) -> Result<T, String> {
    const FIELD: &[u8] = b",\"crc\":";
    let at = line
        .windows(FIELD.len())
        .rposition(|w| w == FIELD)
        .ok_or("no \"crc\" field at its end (the line is damaged)")?;
    let digits = &line[at + FIELD.len()..];
    let digits = digits
        .strip_suffix(b"}")
        .ok_or("the \"crc\" field is not the last (the line is damaged)")?;
    let expected: u32 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or("the \"crc\" field is not a number (the line is damaged)")?;
    line.truncate(at);
    line.push(b'}');
    let actual = crc32fast::hash(line);
    if actual != expected {
        return Err(format!(
            "checksum mismatch (line says {expected}, content gives {actual}): the line is damaged"
        ));
    }
    serde_json::from_slice(line).map_err(|e| format!("not a valid snapshot line: {e}"))
}

/// Writes a snapshot: the header, then records, then [`finish`](SnapshotWriter::finish)
/// writes the end line.
///
/// ```
/// use store_cli::snapshot::{SnapshotReader, SnapshotWriter};
/// let mut out = Vec::new();
/// let mut writer = SnapshotWriter::new(&mut out, "memory", None, None).unwrap();
/// writer.write_record(store_core::Record::new("micro/micro/k", "v")).unwrap();
/// writer.finish().unwrap();
/// let mut reader = SnapshotReader::new(&out[..], "example").unwrap();
/// let record = reader.next_record().unwrap().unwrap();
/// assert_eq!(record.storage_key, "micro/micro/k");
/// assert!(reader.next_record().unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct SnapshotWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    limit: RecordLimit,
    records: u64,
    records_crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header for a snapshot of `source` (limited to `database`/`table` when
    /// given) of records of at most [`MAX_RECORD_BYTES`], the default limit.
    ///
    /// ```
    /// let writer = store_cli::snapshot::SnapshotWriter::new(Vec::new(), "memory", None, None).unwrap();
    /// assert_eq!(writer.records(), 0);
    /// ```
    pub fn new(
        out: W,
        source: &str,
        database: Option<&str>,
        table: Option<&str>,
    ) -> std::io::Result<Self> {
        Self::with_limit(out, source, database, table, RecordLimit::DEFAULT)
    }

    /// Writes the header for a snapshot of records of at most `limit` (the header names a
    /// limit other than the default, and a reader then needs at least that much).
    ///
    /// ```
    /// use store_cli::snapshot::{RecordLimit, SnapshotReader, SnapshotWriter};
    /// let limit = RecordLimit::new(20 << 20).unwrap();
    /// let mut out = Vec::new();
    /// let mut writer = SnapshotWriter::with_limit(&mut out, "memory", None, None, limit).unwrap();
    /// writer.write_record(store_core::Record::new("k", vec![b'x'; 17 << 20])).unwrap();
    /// writer.finish().unwrap();
    /// // The default limit is not enough to read it; the file's own limit is.
    /// let err = SnapshotReader::new(&out[..], "big.snap").unwrap_err().to_string();
    /// assert!(err.contains("--max-record-size"), "{err}");
    /// let mut reader = SnapshotReader::with_limit(&out[..], "big.snap", RecordLimit::LARGEST).unwrap();
    /// assert_eq!(reader.limit(), limit);
    /// assert_eq!(reader.next_record().unwrap().unwrap().stored.len(), 17 << 20);
    /// ```
    pub fn with_limit(
        out: W,
        source: &str,
        database: Option<&str>,
        table: Option<&str>,
        limit: RecordLimit,
    ) -> std::io::Result<Self> {
        let mut writer = Self {
            out,
            buf: Vec::new(),
            limit,
            records: 0,
            records_crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        let header = Line::Header(Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            source: source.to_owned(),
            created: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            database: database.map(str::to_owned),
            table: table.map(str::to_owned),
            // Left out for the default, so that such a snapshot reads as it always has
            // (also with a storectl that does not know the field).
            max_record_bytes: (limit != RecordLimit::DEFAULT).then_some(limit.bytes() as u64),
        });
        encode_line(&header, &mut writer.buf);
        if writer.buf.len() > limit.max_line() {
            // A reader would refuse it: a source, database or table name of many KiB.
            return Err(std::io::Error::other(format!(
                "the header line would be {} bytes; a snapshot line is at most {} bytes \
                 with records of at most {limit} (its source, database or table name is too \
                 long)",
                writer.buf.len(),
                limit.max_line()
            )));
        }
        writer.out.write_all(&writer.buf)?;
        writer.bytes += writer.buf.len() as u64;
        Ok(writer)
    }

    /// Writes one stored record (as the stack below the facade holds it) and returns the
    /// bytes its line took. Records must come in ascending key order. A record larger than
    /// the writer's [`RecordLimit`] is refused, naming its key and `--max-record-size`.
    ///
    /// ```
    /// let mut writer = store_cli::snapshot::SnapshotWriter::new(Vec::new(), "memory", None, None).unwrap();
    /// assert!(writer.write_record(store_core::Record::new("k", "v")).unwrap() > 0);
    /// ```
    pub fn write_record(&mut self, record: Record) -> std::io::Result<u64> {
        let limit = self.limit;
        let size = record.value.len();
        if size > limit.bytes() {
            let what_to_do = match size_to_pass(size) {
                Some(arg) => format!("pass --max-record-size {arg} (or more) to take it"),
                None => "no --max-record-size is larger than 1 GiB".to_owned(),
            };
            return Err(std::io::Error::other(format!(
                "key {:?} holds {size} bytes (value and metadata as stored); this snapshot \
                 holds records of at most {limit}: {what_to_do}",
                record.key,
            )));
        }
        let max_line = limit.max_line();
        let key = record.key.clone();
        let mut line = Line::Record(record_line(record).map_err(std::io::Error::other)?);
        encode_line(&line, &mut self.buf);
        if self.buf.len() > max_line {
            // Text that JSON escapes heavily (control characters take 6 bytes each) is
            // shorter as base64.
            if let Line::Record(RecordLine {
                value: value @ Some(_),
                value_base64,
                ..
            }) = &mut line
            {
                *value_base64 = value.take().map(|text| encode_base64(text.as_bytes()));
                encode_line(&line, &mut self.buf);
            }
        }
        if self.buf.len() > max_line {
            return Err(std::io::Error::other(format!(
                "key {key:?}: its line would be {} bytes; a snapshot line is at most \
                 {max_line} bytes with records of at most {limit} (its metadata is too large)",
                self.buf.len()
            )));
        }
        self.out.write_all(&self.buf)?;
        self.records_crc.update(&self.buf);
        self.records += 1;
        self.bytes += self.buf.len() as u64;
        Ok(self.buf.len() as u64)
    }

    /// Records written so far.
    ///
    /// ```
    /// let writer = store_cli::snapshot::SnapshotWriter::new(Vec::new(), "m", None, None).unwrap();
    /// assert_eq!(writer.records(), 0);
    /// ```
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes the end line, flushes, and returns the output with the bytes written.
    ///
    /// ```
    /// let writer = store_cli::snapshot::SnapshotWriter::new(Vec::new(), "m", None, None).unwrap();
    /// let (out, bytes) = writer.finish().unwrap();
    /// assert_eq!(out.len() as u64, bytes);
    /// ```
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let end = Line::End(EndLine {
            records: self.records,
            records_crc: self.records_crc.clone().finalize(),
        });
        encode_line(&end, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.out.flush()?;
        Ok((self.out, self.bytes))
    }
}

/// Reads and checks a snapshot, one record at a time (constant memory: at most one line of
/// [`RecordLimit::max_line`] bytes).
///
/// ```
/// # let mut out = Vec::new();
/// # store_cli::snapshot::SnapshotWriter::new(&mut out, "m", None, None).unwrap().finish().unwrap();
/// let mut reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s.snap").unwrap();
/// while let Some(record) = reader.next_record().unwrap() {
///     println!("{}", record.storage_key);
/// }
/// ```
#[derive(Debug)]
pub struct SnapshotReader<R: BufRead> {
    input: R,
    path: PathBuf,
    header: Header,
    /// The limit of this file: its header's, or else the one the reader was given.
    limit: RecordLimit,
    /// Whether `limit` is the header's (for messages).
    limit_from_header: bool,
    buf: Vec<u8>,
    line: u64,
    records: u64,
    records_crc: crc32fast::Hasher,
    last_key: Option<String>,
    ended: bool,
    bytes: u64,
}

impl<R: BufRead> SnapshotReader<R> {
    /// Reads and checks the header, allowing records of at most [`MAX_RECORD_BYTES`] (the
    /// default limit; see [`with_limit`](SnapshotReader::with_limit)). `path` names the
    /// file in messages.
    ///
    /// ```
    /// let err = store_cli::snapshot::SnapshotReader::new(&b"hello\n"[..], "x.snap").unwrap_err();
    /// assert!(err.to_string().contains("x.snap: line 1"));
    /// ```
    pub fn new(input: R, path: impl Into<PathBuf>) -> Result<Self> {
        Self::with_limit(input, path, RecordLimit::DEFAULT)
    }

    /// Reads and checks the header, allowing records of at most `allowed`: no line longer
    /// than [`allowed.max_line()`](RecordLimit::max_line) is read, the header line
    /// included. A file whose header names a larger limit is refused here, before any
    /// record is read, with a message that names both sizes and `--max-record-size`; a file
    /// whose header names a smaller one is read with that one. A file whose header names
    /// none (taken with the default limit, or before limits were written down) is read
    /// with `allowed`.
    ///
    /// ```
    /// use store_cli::snapshot::{RecordLimit, SnapshotReader, SnapshotWriter};
    /// let mut out = Vec::new();
    /// SnapshotWriter::with_limit(&mut out, "m", None, None, RecordLimit::new(32 << 20).unwrap())
    ///     .unwrap()
    ///     .finish()
    ///     .unwrap();
    /// let allowed = RecordLimit::new(20 << 20).unwrap();
    /// let err = SnapshotReader::with_limit(&out[..], "s.snap", allowed).unwrap_err().to_string();
    /// assert!(err.contains("line 1: the header says records of up to 33554432 bytes (32 MiB)"), "{err}");
    /// assert!(err.contains("allows 20971520 bytes (20 MiB)") && err.contains("--max-record-size 32MiB"), "{err}");
    /// ```
    pub fn with_limit(input: R, path: impl Into<PathBuf>, allowed: RecordLimit) -> Result<Self> {
        let mut reader = Self {
            input,
            path: path.into(),
            header: Header {
                format: String::new(),
                version: 0,
                source: String::new(),
                created: String::new(),
                database: None,
                table: None,
                max_record_bytes: None,
            },
            limit: allowed,
            limit_from_header: false,
            buf: Vec::new(),
            line: 0,
            records: 0,
            records_crc: crc32fast::Hasher::new(),
            last_key: None,
            ended: false,
            bytes: 0,
        };
        // The header line is read with the operator's limit: whatever it claims, it costs
        // no more than that.
        if !reader.read_line()? {
            return Err(
                reader.error_at(1, "the file is empty; a snapshot starts with a header line")
            );
        }
        let mut copy = reader.buf.clone();
        let identity: Identity = decode_line(&mut copy).map_err(|m| reader.error(m))?;
        if identity.kind.as_deref() != Some("header") || identity.format.as_deref() != Some(FORMAT)
        {
            return Err(reader.error(format!(
                "not a storectl snapshot (the first line must be a header with format {FORMAT:?})"
            )));
        }
        if identity.version != Some(u64::from(VERSION)) {
            return Err(reader.error(format!(
                "format version {} is not supported; this storectl reads version {VERSION}",
                identity
                    .version
                    .map_or("(none)".to_owned(), |v| v.to_string())
            )));
        }
        match decode_line::<Line>(&mut reader.buf).map_err(|m| reader.error(m))? {
            Line::Header(header) => reader.header = header,
            _ => return Err(reader.error("the first line must be the header")),
        }
        if let Some(claimed) = reader.header.max_record_bytes {
            let limit = RecordLimit::new(claimed)
                .map_err(|m| reader.error(format!("\"max_record_bytes\": {m}")))?;
            if limit > allowed {
                return Err(reader.error(format!(
                    "the header says records of up to {limit}, and this restore allows \
                     {allowed}: pass --max-record-size {} to read it (a line may then take \
                     {} bytes of memory)",
                    size_arg(limit),
                    limit.max_line()
                )));
            }
            reader.limit = limit;
            reader.limit_from_header = true;
        }
        Ok(reader)
    }

    /// The header.
    ///
    /// ```
    /// # let mut out = Vec::new();
    /// # store_cli::snapshot::SnapshotWriter::new(&mut out, "memory", None, None).unwrap().finish().unwrap();
    /// let reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s").unwrap();
    /// assert_eq!(reader.header().source, "memory");
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The largest record this file may hold: its header's limit, or else the one the
    /// reader was given. A longer line or a larger record is refused, naming its line.
    ///
    /// ```
    /// # let mut out = Vec::new();
    /// # store_cli::snapshot::SnapshotWriter::new(&mut out, "memory", None, None).unwrap().finish().unwrap();
    /// use store_cli::snapshot::{RecordLimit, SnapshotReader};
    /// let reader = SnapshotReader::new(&out[..], "s").unwrap();
    /// assert_eq!(reader.limit(), RecordLimit::DEFAULT);
    /// ```
    pub fn limit(&self) -> RecordLimit {
        self.limit
    }

    /// Bytes read so far.
    ///
    /// ```
    /// # let mut out = Vec::new();
    /// # store_cli::snapshot::SnapshotWriter::new(&mut out, "memory", None, None).unwrap().finish().unwrap();
    /// let reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s").unwrap();
    /// assert!(reader.bytes() > 0);
    /// ```
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next record, `None` after the end line (once the end line has been checked and
    /// nothing follows it). Any problem is [`CliError::Snapshot`] naming the line.
    ///
    /// ```
    /// # let mut out = Vec::new();
    /// # store_cli::snapshot::SnapshotWriter::new(&mut out, "memory", None, None).unwrap().finish().unwrap();
    /// let mut reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s").unwrap();
    /// assert!(reader.next_record().unwrap().is_none());
    /// ```
    pub fn next_record(&mut self) -> Result<Option<SnapshotRecord>> {
        if self.ended {
            return Ok(None);
        }
        if !self.read_line()? {
            return Err(self.error_at(
                self.line + 1,
                format!(
                    "the file ends after line {} without an end line: it is truncated",
                    self.line
                ),
            ));
        }
        let mut records_crc = self.records_crc.clone();
        records_crc.update(&self.buf);
        records_crc.update(b"\n");
        match decode_line::<Line>(&mut self.buf).map_err(|m| self.error(m))? {
            Line::Record(line) => {
                let record = from_line(line, self.line).map_err(|m| self.error(m))?;
                if record.stored.len() > self.limit.bytes() {
                    return Err(self.error(format!(
                        "key {:?} holds {} bytes, more than the {} {}",
                        record.storage_key,
                        record.stored.len(),
                        self.limit,
                        self.larger_limit(record.stored.len())
                    )));
                }
                if let Some(last) = &self.last_key
                    && record.storage_key.as_str() <= last.as_str()
                {
                    return Err(self.error(format!(
                        "key {:?} is not after the previous line's {last:?}: records must be \
                         in ascending key order, each once",
                        record.storage_key
                    )));
                }
                self.records_crc = records_crc;
                self.records += 1;
                self.last_key = Some(record.storage_key.clone());
                Ok(Some(record))
            }
            Line::End(end) => {
                let crc = self.records_crc.clone().finalize();
                if end.records != self.records || end.records_crc != crc {
                    return Err(self.error(format!(
                        "the end line says {} records (checksum {}), the file holds {} \
                         (checksum {crc}): records are missing, extra or altered",
                        end.records, end.records_crc, self.records
                    )));
                }
                if self.read_line()? {
                    return Err(self.error("data after the end line"));
                }
                self.ended = true;
                Ok(None)
            }
            Line::Header(_) => Err(self.error("a second header line")),
        }
    }

    /// Reads every remaining record, checking each; returns how many there were.
    ///
    /// ```
    /// # let mut out = Vec::new();
    /// # store_cli::snapshot::SnapshotWriter::new(&mut out, "memory", None, None).unwrap().finish().unwrap();
    /// let mut reader = store_cli::snapshot::SnapshotReader::new(&out[..], "s").unwrap();
    /// assert_eq!(reader.check_rest(&|_, _| {}).unwrap(), 0);
    /// ```
    pub fn check_rest(&mut self, progress: &dyn Fn(u64, u64)) -> Result<u64> {
        let mut count = 0;
        let mut bytes = self.bytes;
        while self.next_record()?.is_some() {
            count += 1;
            progress(1, self.bytes - bytes);
            bytes = self.bytes;
        }
        Ok(count)
    }

    /// Reads the next line into `buf` without its newline; `false` at the end of the input.
    /// A line longer than the limit's [`max_line`](RecordLimit::max_line) is refused once
    /// that many bytes of it are read: the rest is never read, and `buf` never holds more.
    fn read_line(&mut self) -> Result<bool> {
        let max_line = self.limit.max_line();
        self.buf.clear();
        let mut read = 0;
        loop {
            // The buffer grows as a Vec does, doubling, but never past `max_line` (a Vec
            // left to grow itself would take 128 MiB for a line of 80 MiB): it is given the
            // room first, and no more is read than fits.
            let step = self.buf.capacity().max(64 << 10).min(max_line - read);
            self.buf.reserve_exact(step);
            let n = (&mut self.input)
                .take(step as u64)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| CliError::Io {
                    context: "reading the snapshot",
                    path: self.path.clone(),
                    source,
                })?;
            read += n;
            if n == 0 || self.buf.last() == Some(&b'\n') || read == max_line {
                break;
            }
        }
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.bytes += read as u64;
        if self.buf.pop() != Some(b'\n') {
            let message = if read == max_line {
                format!(
                    "longer than {max_line} bytes, the longest line a snapshot has with records \
                     of at most {}: the file is damaged, or not a snapshot{}",
                    self.limit,
                    if self.limit_from_header || self.limit == RecordLimit::LARGEST {
                        ""
                    } else {
                        ", or holds larger records (pass --max-record-size with a larger \
                         size, at most 1 GiB, to read those)"
                    }
                )
            } else {
                "incomplete (no newline at its end): the file is truncated".to_owned()
            };
            return Err(self.error(message));
        }
        Ok(true)
    }

    /// What to do about a record of `needed` bytes, more than the limit: the header's
    /// limit is part of the file, the operator's can be raised.
    fn larger_limit(&self, needed: usize) -> String {
        if self.limit_from_header {
            return "its header allows: the file is damaged".to_owned();
        }
        match size_to_pass(needed) {
            Some(arg) => {
                format!("this restore allows: pass --max-record-size {arg} (or more) to read it")
            }
            None => "this restore allows, and no snapshot holds records of more than 1 GiB: \
                 the file is damaged"
                .to_owned(),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> CliError {
        self.error_at(self.line, message)
    }

    fn error_at(&self, line: u64, message: impl std::fmt::Display) -> CliError {
        CliError::Snapshot {
            path: self.path.clone(),
            message: format!("line {line}: {message}"),
        }
    }
}

/// What a snapshot or restore did.
///
/// ```
/// let summary = store_cli::snapshot::Summary { records: 2, ..Default::default() };
/// assert!(serde_json::to_string(&summary).unwrap().starts_with("{\"records\":2,"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Records written (snapshot) or restored (restore).
    pub records: u64,
    /// Bytes of the snapshot written or read.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// Records checked by `--verify` (restore).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<u64>,
    /// The process's peak resident memory so far, in bytes, where the system tells
    /// (`VmHWM` of `/proc/self/status` on Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// This process's peak resident memory in bytes (`VmHWM` on Linux; `None` elsewhere).
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert!(store_cli::snapshot::peak_memory().unwrap() > 0);
/// ```
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Writes a snapshot of every live record of `storage` (only those of `database`, or of
/// its `table`, when given) to `out`, records of at most `limit` (a larger one stops the
/// snapshot with an error naming its key). A write error is [`CliError::Io`] with the path
/// `(output)`; the caller knows the file.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_cli::snapshot::RecordLimit;
/// use store_core::{Record, Storage};
/// let memory: Arc<dyn Storage> = Arc::new(store_memory::MemoryStorage::new());
/// memory.put(Record::new("micro/micro/k", "v")).await.unwrap();
/// let progress = store_cli::progress::Progress::new("snapshot", None);
/// let (out, summary) =
///     store_cli::snapshot::snapshot(memory, None, None, RecordLimit::DEFAULT, Vec::new(), &progress)
///         .await
///         .unwrap();
/// assert_eq!(summary.records, 1);
/// assert!(String::from_utf8(out).unwrap().contains("\"key\":\"k\""));
/// # });
/// ```
pub async fn snapshot<W: Write>(
    storage: Arc<dyn Storage>,
    database: Option<&str>,
    table: Option<&str>,
    limit: RecordLimit,
    out: W,
    progress: &Progress,
) -> Result<(W, Summary)> {
    let started = Instant::now();
    let prefix = match database {
        Some(database) => {
            scope_prefix(database, table).map_err(|e| CliError::store("snapshot", e))?
        }
        None => String::new(),
    };
    let pattern = format!("{}*", Pattern::escape(&prefix));
    let io_error = |source| CliError::Io {
        context: "writing the snapshot to",
        path: PathBuf::from("(output)"),
        source,
    };
    let mut writer = SnapshotWriter::with_limit(out, &storage.describe(), database, table, limit)
        .map_err(io_error)?;
    let keys = storage
        .list_keys(&pattern)
        .await
        .map_err(|e| CliError::store(format!("snapshot: listing {pattern:?}"), e))?;
    let fetch = storage.clone();
    let mut batches = keys
        .try_chunks(BATCH_RECORDS)
        .map_err(|e| e.1)
        .map_ok(move |keys| {
            let storage = fetch.clone();
            async move {
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                storage.get_many(&refs).await
            }
        })
        .try_buffered(IN_FLIGHT);
    while let Some(batch) = batches
        .try_next()
        .await
        .map_err(|e| CliError::store("snapshot: reading records", e))?
    {
        for record in batch.into_iter().flatten() {
            let bytes = writer.write_record(record).map_err(io_error)?;
            progress.advance(1, bytes);
        }
    }
    let records = writer.records();
    let (out, bytes) = writer.finish().map_err(io_error)?;
    Ok((
        out,
        Summary {
            records,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            verified: None,
            peak_memory_bytes: peak_memory(),
        },
    ))
}

/// Where a restore reads from.
///
/// ```
/// use store_cli::snapshot::Source;
/// assert_eq!(Source::from_arg("b.snap".as_ref()), Source::File("b.snap".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A snapshot file (read twice: checked whole, then restored).
    File(PathBuf),
    /// Standard input (copied to a staging file while it is checked, unless partial).
    Stdin,
}

impl Source {
    /// `-` is stdin, anything else a file.
    ///
    /// ```
    /// use store_cli::snapshot::Source;
    /// assert_eq!(Source::from_arg("-".as_ref()), Source::Stdin);
    /// ```
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(arg.to_owned())
        }
    }
}

/// How to restore.
///
/// ```
/// let options = store_cli::snapshot::RestoreOptions { verify: true, ..Default::default() };
/// assert!(!options.partial);
/// assert_eq!(options.max_record_bytes, store_cli::snapshot::RecordLimit::DEFAULT);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore as the file is read and stop at the first bad line, keeping what was
    /// restored before it (default: check the whole snapshot first, restore nothing if it
    /// is bad).
    pub partial: bool,
    /// Read every record back afterwards and compare it with the snapshot.
    pub verify: bool,
    /// Where stdin is staged (default: the system's temporary directory).
    pub staging_dir: Option<PathBuf>,
    /// The largest record allowed (default [`MAX_RECORD_BYTES`]): a snapshot whose header
    /// names more is refused before anything is read, and no line longer than its
    /// [`max_line`](RecordLimit::max_line) is read.
    pub max_record_bytes: RecordLimit,
}

/// Copies what is read into a writer as well (stdin into its staging file).
struct Tee<R, W> {
    input: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn open_file(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::with_capacity(256 << 10, f))
        .map_err(|source| CliError::Io {
            context: "opening the snapshot",
            path: path.to_owned(),
            source,
        })
}

/// Restores a snapshot into `storage` (below the facade: every record at its storage key,
/// with its stored bytes and its time left). Records of the snapshot replace records with
/// the same keys; other records are left alone.
///
/// Without `partial`, nothing is written unless the whole snapshot checks out: a file is
/// read twice (checked, then restored); stdin is copied to a staging file while it is
/// checked, then restored from there. A store error during the restore itself stops it
/// with the records before it restored (restoring again is safe: it writes the same
/// records).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_cli::snapshot::{restore, RestoreOptions, Source, SnapshotWriter};
/// use store_core::{Record, Storage};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("s.snap");
/// let mut writer = SnapshotWriter::new(std::fs::File::create(&path).unwrap(), "m", None, None).unwrap();
/// writer.write_record(Record::new("micro/micro/k", "v")).unwrap();
/// writer.finish().unwrap();
/// let memory: Arc<dyn Storage> = Arc::new(store_memory::MemoryStorage::new());
/// let progress = store_cli::progress::Progress::new("restore", None);
/// let options = RestoreOptions { verify: true, ..Default::default() };
/// let summary = restore(memory.clone(), &Source::File(path), &options, &progress).await.unwrap();
/// assert_eq!((summary.records, summary.verified), (1, Some(1)));
/// assert_eq!(&memory.get("micro/micro/k").await.unwrap().value[..], b"v");
/// # });
/// ```
pub async fn restore(
    storage: Arc<dyn Storage>,
    source: &Source,
    options: &RestoreOptions,
    progress: &Progress,
) -> Result<Summary> {
    let started = Instant::now();
    let limit = options.max_record_bytes;
    let tick = |records, bytes| progress.advance(records, bytes);
    // The file the records are restored from, once checked (a staged copy of stdin).
    let mut staged = None;
    let restore_from: Option<PathBuf> = match (source, options.partial) {
        (Source::File(path), false) => {
            progress.phase("check");
            SnapshotReader::with_limit(open_file(path)?, path, limit)?.check_rest(&tick)?;
            Some(path.clone())
        }
        (Source::File(path), true) => Some(path.clone()),
        (Source::Stdin, false) => {
            let dir = options
                .staging_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir);
            let file = tempfile::NamedTempFile::new_in(&dir).map_err(|source| CliError::Io {
                context: "creating a staging file in",
                path: dir.clone(),
                source,
            })?;
            progress.phase("check");
            {
                let copy = std::io::BufWriter::new(file.as_file());
                let mut tee = std::io::BufReader::new(Tee {
                    input: std::io::stdin().lock(),
                    copy,
                });
                SnapshotReader::with_limit(&mut tee, "-", limit)?.check_rest(&tick)?;
                tee.into_inner()
                    .copy
                    .flush()
                    .map_err(|source| CliError::Io {
                        context: "writing the staging file",
                        path: file.path().to_owned(),
                        source,
                    })?;
            }
            let path = file.path().to_owned();
            staged = Some(file);
            Some(path)
        }
        (Source::Stdin, true) => {
            if options.verify {
                return Err(CliError::Usage(
                    "restore - --partial cannot --verify: stdin is read once; restore from a \
                     file, or without --partial (stdin is then staged and can be verified)"
                        .into(),
                ));
            }
            None
        }
    };
    progress.phase("restore");
    let name = |path: &Option<PathBuf>| match (source, path) {
        (Source::File(p), _) => p.clone(),
        _ => PathBuf::from("-"),
    };
    let (records, bytes) = match &restore_from {
        Some(path) => {
            let reader = SnapshotReader::with_limit(open_file(path)?, name(&restore_from), limit)?;
            write_all(&storage, reader, progress).await?
        }
        None => {
            let stdin = std::io::BufReader::new(std::io::stdin().lock());
            let reader = SnapshotReader::with_limit(stdin, "-", limit)?;
            write_all(&storage, reader, progress).await?
        }
    };
    let verified = match (&restore_from, options.verify) {
        (Some(path), true) => {
            progress.phase("verify");
            let reader = SnapshotReader::with_limit(open_file(path)?, name(&restore_from), limit)?;
            Some(verify(&storage, reader, started, progress).await?)
        }
        _ => None,
    };
    drop(staged);
    Ok(Summary {
        records,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        verified,
        peak_memory_bytes: peak_memory(),
    })
}

/// Reads the next batch of records (by count and bytes); empty at the end. A bad line
/// ends the batch early and comes back with the records read before it.
fn next_batch<R: BufRead>(
    reader: &mut SnapshotReader<R>,
) -> (Vec<SnapshotRecord>, Option<CliError>) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
        match reader.next_record() {
            Ok(Some(record)) => {
                bytes += record.stored.len() + record.storage_key.len();
                batch.push(record);
            }
            Ok(None) => break,
            Err(error) => return (batch, Some(error)),
        }
    }
    (batch, None)
}

/// Writes every record of `reader` with `put_many`, a few batches in flight.
async fn write_all<R: BufRead>(
    storage: &Arc<dyn Storage>,
    mut reader: SnapshotReader<R>,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut in_flight_bytes = 0;
    let mut restored = 0;
    let mut read_bytes = reader.bytes();
    loop {
        let (batch, mut bad_line) = next_batch(&mut reader);
        // A record whose expiry the clock cannot represent (checked when its line was read,
        // but the clock has moved since) ends the batch as a bad line does.
        let mut records = Vec::with_capacity(batch.len());
        for record in &batch {
            match record.to_record() {
                Ok(ready) => records.push(ready),
                Err(message) => {
                    bad_line = Some(reader.error_at(record.line, message));
                    break;
                }
            }
        }
        let batch = &batch[..records.len()];
        if let Some(error) = bad_line {
            // Only with --partial (otherwise the file was checked first): what came before
            // the bad line is restored, then the bad line is reported.
            if !batch.is_empty() {
                let target = storage.clone();
                let lines = (batch[0].line, batch[batch.len() - 1].line);
                let handle = tokio::spawn(async move { target.put_many(records).await });
                in_flight.push_back((lines, batch.len() as u64, 0, handle));
            }
            while let Some(next) = in_flight.pop_front() {
                restored += land(Some(next), restored).await?;
            }
            return Err(error);
        }
        if batch.is_empty() {
            break;
        }
        let lines = (batch[0].line, batch[batch.len() - 1].line);
        let count = batch.len() as u64;
        let bytes = batch.iter().map(|r| r.stored.len()).sum();
        let target = storage.clone();
        let handle = tokio::spawn(async move { target.put_many(records).await });
        in_flight.push_back((lines, count, bytes, handle));
        in_flight_bytes += bytes;
        progress.advance(count, reader.bytes() - read_bytes);
        read_bytes = reader.bytes();
        while in_flight.len() >= IN_FLIGHT || in_flight_bytes > IN_FLIGHT_BYTES {
            let Some(next) = in_flight.pop_front() else {
                break;
            };
            in_flight_bytes -= next.2;
            restored += land(Some(next), restored).await?;
        }
    }
    while let Some(next) = in_flight.pop_front() {
        restored += land(Some(next), restored).await?;
    }
    Ok((restored, reader.bytes()))
}

/// A restore call in flight: its first and last lines, records, stored bytes, and task.
type InFlight = (
    (u64, u64),
    u64,
    usize,
    tokio::task::JoinHandle<store_core::Result<()>>,
);

/// Waits for one batch; its record count, or the error naming its lines.
async fn land(next: Option<InFlight>, restored: u64) -> Result<u64> {
    let Some(((first, last), count, _, handle)) = next else {
        return Ok(0);
    };
    let outcome = handle
        .await
        .unwrap_or_else(|e| Err(store_core::Error::Backend(format!("restore task: {e}"))));
    outcome.map(|()| count).map_err(|e| {
        CliError::store(
            format!(
                "restore: writing the records of lines {first} to {last} ({restored} records \
                 before them were restored; restoring again is safe)"
            ),
            e,
        )
    })
}

/// Reads every record of the snapshot back from `storage` and compares it: stored bytes
/// (so metadata and value through the facade too) and time left.
async fn verify<R: BufRead>(
    storage: &Arc<dyn Storage>,
    mut reader: SnapshotReader<R>,
    restore_started: Instant,
    progress: &Progress,
) -> Result<u64> {
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut problem_count = 0u64;
    let mut read_bytes = reader.bytes();
    loop {
        let (batch, bad_line) = next_batch(&mut reader);
        if let Some(error) = bad_line {
            return Err(error);
        }
        if batch.is_empty() {
            break;
        }
        let keys: Vec<&str> = batch.iter().map(|r| r.storage_key.as_str()).collect();
        let found = storage
            .get_many(&keys)
            .await
            .map_err(|e| CliError::store("verify: reading records back", e))?;
        let elapsed = restore_started.elapsed();
        for (expected, found) in batch.iter().zip(found) {
            if let Some(problem) = compare(expected, found.as_ref(), elapsed) {
                problem_count += 1;
                if problems.len() < 10 {
                    problems.push(format!("line {}: {problem}", expected.line));
                }
            }
        }
        checked += batch.len() as u64;
        progress.advance(batch.len() as u64, reader.bytes() - read_bytes);
        read_bytes = reader.bytes();
    }
    if problem_count > 0 {
        return Err(CliError::Verify(format!(
            "{problem_count} of {checked} records do not read back as the snapshot holds them; \
             first: {}",
            problems.join("; ")
        )));
    }
    Ok(checked)
}

/// What is wrong with a restored record, if anything. `elapsed`: time since the restore
/// began (a record's time left may have shrunk by that much, or run out).
fn compare(expected: &SnapshotRecord, found: Option<&Record>, elapsed: Duration) -> Option<String> {
    let key = &expected.storage_key;
    let Some(found) = found else {
        return match expected.ttl {
            Some(ttl) if ttl <= elapsed + VERIFY_SLACK => None, // expired since
            _ => Some(format!("key {key:?} is missing")),
        };
    };
    if found.value != expected.stored {
        return Some(format!("key {key:?} holds other bytes"));
    }
    match (expected.ttl, found.ttl()) {
        (None, None) => None,
        (Some(_), None) => Some(format!("key {key:?} lost its expiry")),
        (None, Some(_)) => Some(format!("key {key:?} got an expiry")),
        (Some(want), Some(left)) => {
            let low = want.saturating_sub(elapsed + VERIFY_SLACK);
            let high = want + VERIFY_SLACK;
            (left < low || left > high).then(|| {
                format!(
                    "key {key:?} has {} left, expected about {}",
                    humantime::format_duration(round_ms(left)),
                    humantime::format_duration(want)
                )
            })
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = SnapshotWriter::new(&mut out, "memory", None, None).unwrap();
        for i in 0..3 {
            writer
                .write_record(Record::new(format!("micro/micro/k{i}"), "v"))
                .unwrap();
        }
        writer.finish().unwrap();
        out
    }

    fn read_all(bytes: &[u8]) -> Result<u64> {
        let mut reader = SnapshotReader::new(bytes, "t.snap")?;
        reader.check_rest(&|_, _| {})
    }

    #[test]
    fn lines_are_json_with_the_crc_last() {
        let text = String::from_utf8(sample()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[0].starts_with(
                "{\"kind\":\"header\",\"format\":\"storectl-snapshot\",\"version\":1,"
            )
        );
        assert!(lines[1].starts_with("{\"kind\":\"record\",\"database\":\"micro\",\"table\":\"micro\",\"key\":\"k0\",\"value\":\"v\",\"crc\":"));
        assert!(lines[4].starts_with("{\"kind\":\"end\",\"records\":3,"));
        for line in lines {
            let value: Value = serde_json::from_str(line).unwrap();
            assert!(value["crc"].is_u64());
        }
        assert_eq!(read_all(&sample()).unwrap(), 3);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for end in 0..bytes.len() {
            let err = read_all(&bytes[..end]).unwrap_err().to_string();
            assert!(err.contains("t.snap: line "), "{end}: {err}");
        }
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(read_all(&bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn removed_repeated_or_swapped_lines_are_errors() {
        let text = String::from_utf8(sample()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: Vec<&str>| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
        let removed = join(vec![lines[0], lines[1], lines[3], lines[4]]);
        assert!(
            read_all(removed.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 4: the end line says 3 records")
        );
        let repeated = join(vec![
            lines[0], lines[1], lines[1], lines[2], lines[3], lines[4],
        ]);
        assert!(
            read_all(repeated.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 3: key")
        );
        let swapped = join(vec![lines[0], lines[2], lines[1], lines[3], lines[4]]);
        assert!(read_all(swapped.as_bytes()).is_err());
        let after = join(vec![
            lines[0], lines[1], lines[2], lines[3], lines[4], lines[1],
        ]);
        assert!(
            read_all(after.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 6: data after the end line")
        );
    }

    #[test]
    fn unknown_fields_are_refused_even_with_a_good_checksum() {
        let text = String::from_utf8(sample()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let json = r#"{"kind":"record","database":"micro","table":"micro","key":"k0","value":"v","extra":1}"#;
        let crc = crc32fast::hash(json.as_bytes());
        let forged = format!("{},\"crc\":{crc}}}", &json[..json.len() - 1]);
        let file = format!("{}\n{forged}\n{}\n", lines[0], lines[4]);
        let err = read_all(file.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains("line 2: not a valid snapshot line") && err.contains("extra"),
            "{err}"
        );
    }

    #[test]
    fn other_versions_are_refused_by_name() {
        let mut line = Vec::new();
        encode_line(
            &Line::Header(Header {
                format: FORMAT.into(),
                version: 2,
                source: "x".into(),
                created: "now".into(),
                database: None,
                table: None,
                max_record_bytes: None,
            }),
            &mut line,
        );
        let err = read_all(&line).unwrap_err().to_string();
        assert!(err.contains("format version 2 is not supported"), "{err}");
    }

    #[test]
    fn stored_bytes_round_trip_whatever_they_are() {
        let forged = envelope::wrap(&Default::default(), b"inner").unwrap();
        let mut spaced = forged.to_vec();
        // An envelope with empty metadata: the facade would store "inner" raw, so the line
        // must carry the stored bytes.
        spaced.truncate(spaced.len());
        let metadata = std::collections::HashMap::from([("n".to_owned(), serde_json::json!(1.5))]);
        let cases: Vec<Bytes> = vec![
            Bytes::from_static(b"plain"),
            Bytes::from_static(&[0xff, 0x00, 0xc1]),
            forged,
            envelope::encode(&metadata, Bytes::from_static(&[0x80])).unwrap(),
            envelope::encode(
                &Default::default(),
                envelope::wrap(&metadata, b"x").unwrap(),
            )
            .unwrap(),
        ];
        for stored in cases {
            let record =
                Record::new("micro/micro/k", stored.clone()).with_ttl(Duration::from_secs(60));
            let line = record_line(record).unwrap();
            let back = from_line(line, 2).unwrap();
            assert_eq!(back.stored, stored);
            let ttl = back.ttl.unwrap();
            assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(59));
        }
    }

    /// A snapshot's header line, then `garbage` bytes of `x` and a `tail` (a damaged
    /// file), made up as they are read, never held: `served` counts the bytes read.
    #[derive(Debug)]
    struct Damaged {
        header: Vec<u8>,
        garbage: u64,
        tail: &'static [u8],
        served: Rc<Cell<u64>>,
    }

    impl Damaged {
        fn new(header: &[u8], garbage: u64, tail: &'static [u8]) -> (Self, Rc<Cell<u64>>) {
            let served = Rc::new(Cell::new(0));
            let input = Damaged {
                header: header.to_vec(),
                garbage,
                tail,
                served: served.clone(),
            };
            (input, served)
        }
    }

    impl Read for Damaged {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let at = self.served.get();
            let header = self.header.len() as u64;
            let garbage_end = header + self.garbage;
            let n = if at < header {
                let rest = &self.header[at as usize..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            } else if at < garbage_end {
                let n = (garbage_end - at).min(buf.len() as u64) as usize;
                buf[..n].fill(b'x');
                n
            } else {
                let rest = &self.tail[(at - garbage_end) as usize..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            };
            self.served.set(at + n as u64);
            Ok(n)
        }
    }

    fn header_line() -> Vec<u8> {
        first_line(&sample())
    }

    fn first_line(bytes: &[u8]) -> Vec<u8> {
        let end = bytes.iter().position(|b| *b == b'\n').unwrap();
        bytes[..=end].to_vec()
    }

    fn limit(bytes: usize) -> RecordLimit {
        RecordLimit::new(bytes as u64).unwrap()
    }

    /// The header line of a snapshot taken with `limit`.
    fn header_with(limit: RecordLimit) -> Vec<u8> {
        let mut out = Vec::new();
        SnapshotWriter::with_limit(&mut out, "memory", None, None, limit)
            .unwrap()
            .finish()
            .unwrap();
        first_line(&out)
    }

    /// A forged header line (with a good checksum) that says `max_record_bytes`.
    fn header_saying(max_record_bytes: &str) -> Vec<u8> {
        let json = format!(
            "{{\"kind\":\"header\",\"format\":\"storectl-snapshot\",\"version\":1,\
             \"source\":\"x\",\"created\":\"now\",\"max_record_bytes\":{max_record_bytes}}}"
        );
        let crc = crc32fast::hash(json.as_bytes());
        format!("{},\"crc\":{crc}}}\n", &json[..json.len() - 1]).into_bytes()
    }

    /// The ways a file gets its limit: (its header, the limit the reader allows, the limit
    /// it is read with). A header naming a limit bounds the file even when the reader would
    /// allow more.
    fn limit_cases() -> Vec<(Vec<u8>, RecordLimit, RecordLimit)> {
        let raised = limit(20 << 20);
        vec![
            (header_line(), RecordLimit::DEFAULT, RecordLimit::DEFAULT),
            (header_line(), raised, raised),
            (header_with(raised), RecordLimit::LARGEST, raised),
        ]
    }

    #[test]
    fn an_overlong_line_is_refused_without_reading_it_whole() {
        // BufReader reads 8 KiB at a time: at most that much past the limit is read.
        let slack = 8 << 10;
        for (header, allowed, read_with) in limit_cases() {
            let max_line = read_with.max_line();
            let garbage = 4 * max_line as u64;
            let (input, served) = Damaged::new(&header, garbage, b"\n");
            let mut reader =
                SnapshotReader::with_limit(std::io::BufReader::new(input), "t.snap", allowed)
                    .unwrap();
            assert_eq!(reader.limit(), read_with);
            let err = reader.next_record().unwrap_err().to_string();
            assert!(
                err.contains(&format!("t.snap: line 2: longer than {max_line} bytes")),
                "{err}"
            );
            let read = served.get() - header.len() as u64;
            assert!(
                read <= max_line as u64 + slack,
                "read {read} bytes of a {garbage}-byte line"
            );
            assert!(
                reader.buf.capacity() <= max_line,
                "held {} bytes of a {max_line}-byte limit",
                reader.buf.capacity()
            );
        }
        // The first line too, with the limit the reader allows (a header cannot raise it).
        for allowed in [RecordLimit::DEFAULT, limit(20 << 20)] {
            let max_line = allowed.max_line();
            let (input, served) = Damaged::new(b"", 4 * max_line as u64, b"\n");
            let err = SnapshotReader::with_limit(std::io::BufReader::new(input), "t.snap", allowed)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("t.snap: line 1: longer than {max_line} bytes")),
                "{err}"
            );
            assert!(served.get() <= max_line as u64 + slack);
        }
        // Where the limit is the reader's, the message says how to read larger records.
        let (input, _) = Damaged::new(&header_line(), 4 * MAX_LINE as u64, b"\n");
        let err = SnapshotReader::new(std::io::BufReader::new(input), "t.snap")
            .unwrap()
            .next_record()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pass --max-record-size"), "{err}");
    }

    #[test]
    fn a_line_of_max_line_bytes_is_read_one_more_is_not() {
        // A checksum that is not a number: found at once at the end of the line.
        const TAIL: &[u8] = b",\"crc\":x}\n";
        for (header, allowed, read_with) in limit_cases() {
            let exact = (read_with.max_line() - TAIL.len()) as u64;
            let (input, _) = Damaged::new(&header, exact, TAIL);
            let mut reader =
                SnapshotReader::with_limit(std::io::BufReader::new(input), "t.snap", allowed)
                    .unwrap();
            let err = reader.next_record().unwrap_err().to_string();
            assert!(
                err.contains("line 2: the \"crc\" field is not a number"),
                "{err}"
            );
            let (input, _) = Damaged::new(&header, exact + 1, TAIL);
            let mut reader =
                SnapshotReader::with_limit(std::io::BufReader::new(input), "t.snap", allowed)
                    .unwrap();
            let err = reader.next_record().unwrap_err().to_string();
            assert!(err.contains("line 2: longer than"), "{err}");
        }
    }

    #[test]
    fn a_header_naming_more_than_allowed_is_refused_before_any_record() {
        // Records of up to 1 GiB, and then a line without end: only the header is read.
        for header in [
            header_with(RecordLimit::LARGEST),
            header_saying("1073741824"),
        ] {
            let (input, served) = Damaged::new(&header, 4 << 30, b"\n");
            let allowed = limit(20 << 20);
            let err = SnapshotReader::with_limit(std::io::BufReader::new(input), "t.snap", allowed)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(
                    "t.snap: line 1: the header says records of up to 1073741824 bytes (1 GiB), \
                     and this restore allows 20971520 bytes (20 MiB): pass --max-record-size \
                     1GiB to read it"
                ),
                "{err}"
            );
            assert!(
                served.get() <= header.len() as u64 + (8 << 10),
                "read past the header"
            );
        }
        // A header that names no limit a snapshot can have is refused whatever is allowed.
        for claim in ["0", "65535", "1073741825", "18446744073709551615"] {
            let err = SnapshotReader::with_limit(
                &header_saying(claim)[..],
                "t.snap",
                RecordLimit::LARGEST,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("line 1: \"max_record_bytes\": ") && err.contains("accepted is"),
                "{claim}: {err}"
            );
        }
        for claim in ["-1", "1e9", "\"16MiB\"", "null"] {
            let header = header_saying(claim);
            let result = SnapshotReader::new(&header[..], "t.snap");
            if claim == "null" {
                // As if left out.
                assert_eq!(result.unwrap().limit(), RecordLimit::DEFAULT);
            } else {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains("line 1: not a valid snapshot line"),
                    "{claim}: {err}"
                );
            }
        }
    }

    #[test]
    fn the_header_names_the_limit_only_when_it_is_not_the_default() {
        let default = String::from_utf8(header_line()).unwrap();
        assert!(!default.contains("max_record_bytes"), "{default}");
        let raised = String::from_utf8(header_with(limit(20 << 20))).unwrap();
        assert!(
            raised.contains(",\"max_record_bytes\":20971520,\"crc\":"),
            "{raised}"
        );
        // A smaller limit than the reader allows is the file's: it is read with that one.
        let small = limit(1 << 20);
        let file = header_with(small);
        let reader = SnapshotReader::with_limit(&file[..], "t.snap", RecordLimit::LARGEST).unwrap();
        assert_eq!(reader.limit(), small);
    }

    #[test]
    fn a_record_over_the_files_limit_is_refused_by_the_reader() {
        // Written with 20 MiB, then read with less: the record is named, and so is the
        // flag that reads it.
        let raised = limit(20 << 20);
        let mut out = Vec::new();
        let mut writer =
            SnapshotWriter::with_limit(&mut out, "memory", None, None, raised).unwrap();
        writer
            .write_record(Record::new("micro/micro/big", vec![b'b'; 17 << 20]))
            .unwrap();
        writer.finish().unwrap();
        // A file whose header names no limit (as an old one): the reader's applies.
        let text = String::from_utf8(out).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[0] = String::from_utf8(header_line())
            .unwrap()
            .trim_end()
            .to_owned();
        let old = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let mut reader = SnapshotReader::new(old.as_bytes(), "t.snap").unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(
            err.contains(
                "line 2: key \"micro/micro/big\" holds 17825792 bytes, more than the 16777216 \
                 bytes (16 MiB) this restore allows: pass --max-record-size 17MiB"
            ),
            "{err}"
        );
        let mut reader = SnapshotReader::with_limit(old.as_bytes(), "t.snap", raised).unwrap();
        assert_eq!(
            reader.next_record().unwrap().unwrap().stored.len(),
            17 << 20
        );
        assert!(reader.next_record().unwrap().is_none());
        // A file whose header names less than the record: damaged, whatever is allowed.
        lines[0] = String::from_utf8(header_with(limit(16 << 20 | 1 << 16)))
            .unwrap()
            .trim_end()
            .to_owned();
        let forged = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let mut reader =
            SnapshotReader::with_limit(forged.as_bytes(), "t.snap", RecordLimit::LARGEST).unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(
            err.contains("its header allows: the file is damaged"),
            "{err}"
        );
    }

    #[test]
    fn the_longest_line_of_the_smallest_limit_fits() {
        // The longest key, every byte escaped sixfold, and stored bytes the facade would not
        // write itself (an envelope with no metadata) around bytes that are not UTF-8: the
        // value and all the stored bytes go in as base64.
        let small = RecordLimit::SMALLEST;
        let key = "\u{1}".repeat(store_core::MAX_KEY_LEN);
        let empty = envelope::wrap(&Default::default(), b"").unwrap().len();
        let inner = vec![0x80; small.bytes() - empty];
        let stored = envelope::wrap(&Default::default(), &inner).unwrap();
        assert_eq!(stored.len(), small.bytes());
        let record = Record::new(key, stored.clone()).with_ttl(Duration::from_secs(60));
        let mut writer =
            SnapshotWriter::with_limit(Vec::new(), "memory", None, None, small).unwrap();
        let bytes = writer.write_record(record).unwrap();
        assert!(bytes <= small.max_line() as u64, "{bytes}");
        let (out, _) = writer.finish().unwrap();
        let mut reader = SnapshotReader::with_limit(&out[..], "t.snap", small).unwrap();
        assert_eq!(reader.next_record().unwrap().unwrap().stored, stored);
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn a_record_over_the_default_is_taken_with_a_larger_limit() {
        let big = Record::new("micro/micro/big", vec![b'b'; 17 << 20]);
        let mut writer = SnapshotWriter::new(Vec::new(), "memory", None, None).unwrap();
        let err = writer.write_record(big.clone()).unwrap_err().to_string();
        assert!(
            err.contains("key \"micro/micro/big\" holds 17825792 bytes")
                && err.contains("at most 16777216 bytes (16 MiB): pass --max-record-size 17MiB (or more) to take it"),
            "{err}"
        );
        let mut writer =
            SnapshotWriter::with_limit(Vec::new(), "memory", None, None, limit(20 << 20)).unwrap();
        writer.write_record(big).unwrap();
        let (out, _) = writer.finish().unwrap();
        let mut reader = SnapshotReader::with_limit(&out[..], "t.snap", limit(20 << 20)).unwrap();
        assert_eq!(
            reader.next_record().unwrap().unwrap().stored.len(),
            17 << 20
        );
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn the_largest_limit_takes_the_largest_value_of_every_backend() {
        assert_eq!(RecordLimit::LARGEST.bytes(), store_file::MAX_VALUE_LEN);
        assert!(RecordLimit::LARGEST.bytes() >= store_redis::MAX_VALUE_LEN);
    }

    /// Counts the stored bytes of the `put_many` calls under way, and the most at once.
    struct InFlightBytes {
        inner: store_memory::MemoryStorage,
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl store_core::Layer for InFlightBytes {
        type Inner = store_memory::MemoryStorage;
        fn inner(&self) -> &store_memory::MemoryStorage {
            &self.inner
        }
        async fn put_many(&self, records: Vec<Record>) -> store_core::Result<()> {
            use std::sync::atomic::Ordering::SeqCst;
            let bytes: usize = records.iter().map(|r| r.value.len()).sum();
            let now = self.now.fetch_add(bytes, SeqCst) + bytes;
            self.most.fetch_max(now, SeqCst);
            // On a runtime of one thread, every call spawned before the restore waits has
            // entered before any of them returns: the most counted is what the restore let
            // be in flight at once.
            tokio::task::yield_now().await;
            let outcome = Storage::put_many(&self.inner, records).await;
            self.now.fetch_sub(bytes, SeqCst);
            outcome
        }
    }

    #[tokio::test]
    async fn large_records_are_restored_a_few_bytes_in_flight_at_a_time() {
        // Records of 9 MiB go one per batch: four batches in flight would be 36 MiB.
        const RECORD: usize = 9 << 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut writer =
            SnapshotWriter::new(std::fs::File::create(&path).unwrap(), "memory", None, None)
                .unwrap();
        for i in 0..6 {
            let value = vec![b'a' + i as u8; RECORD];
            writer
                .write_record(Record::new(format!("micro/micro/k{i}"), value))
                .unwrap();
        }
        writer.finish().unwrap();
        let layer = Arc::new(InFlightBytes {
            inner: store_memory::MemoryStorage::new(),
            now: Default::default(),
            most: Default::default(),
        });
        let progress = Progress::new("restore", None);
        let options = RestoreOptions::default();
        let source = Source::File(path);
        let summary = restore(layer.clone(), &source, &options, &progress)
            .await
            .unwrap();
        assert_eq!(summary.records, 6);
        let most = layer.most.load(std::sync::atomic::Ordering::SeqCst);
        // What the bound lets through: the bytes in flight before the last batch, and that
        // batch (its batch bytes, and the record that closed it).
        assert!(
            most <= IN_FLIGHT_BYTES + BATCH_BYTES + RECORD,
            "{most} bytes in flight at once"
        );
        assert!(most >= RECORD, "the count works: {most}");
    }

    #[test]
    fn limits_read_as_the_flag_takes_them() {
        assert_eq!(RecordLimit::DEFAULT.to_string(), "16777216 bytes (16 MiB)");
        assert_eq!(size_arg(RecordLimit::DEFAULT), "16MiB");
        assert_eq!(size_arg(RecordLimit::LARGEST), "1GiB");
        assert_eq!(size_arg(limit(65 << 10)), "65KiB");
        assert_eq!(size_arg(limit((64 << 10) + 1)), "65537");
        assert_eq!(limit((64 << 10) + 1).to_string(), "65537 bytes");
    }

    #[test]
    fn the_largest_record_fits_a_line_and_a_larger_one_is_refused() {
        // Text that JSON escapes to six times its size goes in as base64.
        let value = "\u{1}".repeat(MAX_RECORD_BYTES);
        let mut out = Vec::new();
        let mut writer = SnapshotWriter::new(&mut out, "memory", None, None).unwrap();
        let bytes = writer
            .write_record(Record::new("micro/micro/big", value.clone()))
            .unwrap();
        assert!(bytes <= MAX_LINE as u64, "{bytes}");
        let too_big = Record::new("micro/micro/bigger", "v".repeat(MAX_RECORD_BYTES + 1));
        let err = writer.write_record(too_big).unwrap_err().to_string();
        assert!(
            err.contains("key \"micro/micro/bigger\" holds 16777217 bytes")
                && err.contains("at most 16777216 bytes"),
            "{err}"
        );
        writer.finish().unwrap();
        let mut reader = SnapshotReader::new(&out[..], "t.snap").unwrap();
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.stored, value.as_bytes());
        assert!(
            reader.next_record().unwrap().is_none(),
            "nothing of the refused record"
        );
    }
}
