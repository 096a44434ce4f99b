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
//!    with `source` the stack it was taken from ([`Storage::describe`]) and, when the
//!    snapshot was limited to one scope, `database` (and `table`).
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
//! A snapshot holds records of at most [`MAX_RECORD_BYTES`] (16 MiB of stored bytes: value
//! and metadata), and no line is longer than [`MAX_LINE`] (64 MiB, its newline included),
//! which is derived from it. `snapshot` refuses a larger record, naming its key; a reader
//! refuses a longer line, naming it, as soon as it has read `MAX_LINE` bytes of it. So
//! reading a snapshot, damaged or not, holds at most one line of `MAX_LINE` bytes.
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
/// The largest record a snapshot holds: its stored bytes (the facade's envelope of value
/// and metadata, as the stack below the facade holds them) are at most 16 MiB. `snapshot`
/// refuses a larger record, naming its key, rather than write a line that a reader would
/// have to hold whole in memory however long it is.
///
/// ```
/// assert_eq!(store_cli::snapshot::MAX_RECORD_BYTES, 16 << 20);
/// ```
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The longest line of a snapshot, its newline included: 64 MiB. A reader refuses a
/// longer line once it has read this much of it (a damaged file without newlines is never
/// read whole), naming the line.
///
/// Derived from [`MAX_RECORD_BYTES`]: a record line holds the value (as base64, 4/3 of its
/// bytes), the metadata as JSON and, for stored bytes the facade would not write itself,
/// all the stored bytes as base64 again (4/3 of them): about 8/3 × 16 MiB < 43 MiB. The
/// key takes at most 6 × 4 KiB (its bytes JSON-escaped), the fixed fields a few hundred
/// bytes; the rest is slack. A value is written as text (`value`) unless that would make
/// its line longer than this, and then as `value_base64`; a line still too long (metadata
/// whose JSON grows when written out again, such as `9e15` printed as
/// `9000000000000000.0`) is refused by `snapshot`, naming its key.
///
/// ```
/// use store_cli::snapshot::{MAX_LINE, MAX_RECORD_BYTES};
/// assert_eq!(MAX_LINE, 64 << 20);
/// assert!(MAX_RECORD_BYTES / 3 * 8 + 6 * store_core::MAX_KEY_LEN + 4096 < MAX_LINE);
/// ```
pub const MAX_LINE: usize = 64 << 20;
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
    records: u64,
    records_crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header for a snapshot of `source` (limited to `database`/`table` when
    /// given).
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
        let mut writer = Self {
            out,
            buf: Vec::new(),
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
        });
        encode_line(&header, &mut writer.buf);
        writer.out.write_all(&writer.buf)?;
        writer.bytes += writer.buf.len() as u64;
        Ok(writer)
    }

    /// Writes one stored record (as the stack below the facade holds it) and returns the
    /// bytes its line took. Records must come in ascending key order.
    ///
    /// ```
    /// let mut writer = store_cli::snapshot::SnapshotWriter::new(Vec::new(), "memory", None, None).unwrap();
    /// assert!(writer.write_record(store_core::Record::new("k", "v")).unwrap() > 0);
    /// ```
    pub fn write_record(&mut self, record: Record) -> std::io::Result<u64> {
        if record.value.len() > MAX_RECORD_BYTES {
            return Err(std::io::Error::other(format!(
                "key {:?} holds {} bytes (value and metadata as stored); a snapshot holds \
                 records of at most {MAX_RECORD_BYTES} bytes (16 MiB)",
                record.key,
                record.value.len()
            )));
        }
        let key = record.key.clone();
        let mut line = Line::Record(record_line(record).map_err(std::io::Error::other)?);
        encode_line(&line, &mut self.buf);
        if self.buf.len() > MAX_LINE {
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
        if self.buf.len() > MAX_LINE {
            return Err(std::io::Error::other(format!(
                "key {key:?}: its line would be {} bytes; a snapshot line is at most \
                 {MAX_LINE} bytes (its metadata is too large)",
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

/// Reads and checks a snapshot, one record at a time (constant memory).
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
    buf: Vec<u8>,
    line: u64,
    records: u64,
    records_crc: crc32fast::Hasher,
    last_key: Option<String>,
    ended: bool,
    bytes: u64,
}

impl<R: BufRead> SnapshotReader<R> {
    /// Reads and checks the header. `path` names the file in messages.
    ///
    /// ```
    /// let err = store_cli::snapshot::SnapshotReader::new(&b"hello\n"[..], "x.snap").unwrap_err();
    /// assert!(err.to_string().contains("x.snap: line 1"));
    /// ```
    pub fn new(input: R, path: impl Into<PathBuf>) -> Result<Self> {
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
            },
            buf: Vec::new(),
            line: 0,
            records: 0,
            records_crc: crc32fast::Hasher::new(),
            last_key: None,
            ended: false,
            bytes: 0,
        };
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
    /// A line longer than [`MAX_LINE`] is refused once `MAX_LINE` bytes of it are read: the
    /// rest is never read, and `buf` never holds more.
    fn read_line(&mut self) -> Result<bool> {
        self.buf.clear();
        let read = (&mut self.input)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| CliError::Io {
                context: "reading the snapshot",
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.bytes += read as u64;
        if self.buf.pop() != Some(b'\n') {
            let message = if read == MAX_LINE {
                format!(
                    "longer than {MAX_LINE} bytes, the longest line a snapshot has (a record \
                     of at most {MAX_RECORD_BYTES} bytes): the file is damaged, or not a \
                     snapshot"
                )
            } else {
                "incomplete (no newline at its end): the file is truncated".to_owned()
            };
            return Err(self.error(message));
        }
        Ok(true)
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
/// its `table`, when given) to `out`. A write error is [`CliError::Io`] with the path
/// `(output)`; the caller knows the file.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_core::{Record, Storage};
/// let memory: Arc<dyn Storage> = Arc::new(store_memory::MemoryStorage::new());
/// memory.put(Record::new("micro/micro/k", "v")).await.unwrap();
/// let progress = store_cli::progress::Progress::new("snapshot", None);
/// let (out, summary) = store_cli::snapshot::snapshot(memory, None, None, Vec::new(), &progress).await.unwrap();
/// assert_eq!(summary.records, 1);
/// assert!(String::from_utf8(out).unwrap().contains("\"key\":\"k\""));
/// # });
/// ```
pub async fn snapshot<W: Write>(
    storage: Arc<dyn Storage>,
    database: Option<&str>,
    table: Option<&str>,
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
    let mut writer =
        SnapshotWriter::new(out, &storage.describe(), database, table).map_err(io_error)?;
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
    let tick = |records, bytes| progress.advance(records, bytes);
    // The file the records are restored from, once checked (a staged copy of stdin).
    let mut staged = None;
    let restore_from: Option<PathBuf> = match (source, options.partial) {
        (Source::File(path), false) => {
            progress.phase("check");
            SnapshotReader::new(open_file(path)?, path)?.check_rest(&tick)?;
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
                SnapshotReader::new(&mut tee, "-")?.check_rest(&tick)?;
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
            let reader = SnapshotReader::new(open_file(path)?, name(&restore_from))?;
            write_all(&storage, reader, progress).await?
        }
        None => {
            let stdin = std::io::BufReader::new(std::io::stdin().lock());
            let reader = SnapshotReader::new(stdin, "-")?;
            write_all(&storage, reader, progress).await?
        }
    };
    let verified = match (&restore_from, options.verify) {
        (Some(path), true) => {
            progress.phase("verify");
            let reader = SnapshotReader::new(open_file(path)?, name(&restore_from))?;
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
    let mut in_flight = VecDeque::new();
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
                in_flight.push_back((lines, batch.len() as u64, handle));
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
        let target = storage.clone();
        let handle = tokio::spawn(async move { target.put_many(records).await });
        in_flight.push_back((lines, count, handle));
        progress.advance(count, reader.bytes() - read_bytes);
        read_bytes = reader.bytes();
        if in_flight.len() >= IN_FLIGHT {
            restored += land(in_flight.pop_front(), restored).await?;
        }
    }
    while let Some(next) = in_flight.pop_front() {
        restored += land(Some(next), restored).await?;
    }
    Ok((restored, reader.bytes()))
}

type InFlight = (
    (u64, u64),
    u64,
    tokio::task::JoinHandle<store_core::Result<()>>,
);

/// Waits for one batch; its record count, or the error naming its lines.
async fn land(next: Option<InFlight>, restored: u64) -> Result<u64> {
    let Some(((first, last), count, handle)) = next else {
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
        let bytes = sample();
        let end = bytes.iter().position(|b| *b == b'\n').unwrap();
        bytes[..=end].to_vec()
    }

    #[test]
    fn an_overlong_line_is_refused_without_reading_it_whole() {
        // BufReader reads 8 KiB at a time: at most that much past the limit is read.
        let slack = 8 << 10;
        let header = header_line();
        let garbage = 4 * MAX_LINE as u64;
        let (input, served) = Damaged::new(&header, garbage, b"\n");
        let mut reader = SnapshotReader::new(std::io::BufReader::new(input), "t.snap").unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(
            err.contains(&format!("t.snap: line 2: longer than {MAX_LINE} bytes")),
            "{err}"
        );
        let read = served.get() - header.len() as u64;
        assert!(
            read <= MAX_LINE as u64 + slack,
            "read {read} bytes of a {garbage}-byte line"
        );
        assert!(
            reader.buf.capacity() <= MAX_LINE,
            "held {} bytes",
            reader.buf.capacity()
        );

        // The first line too.
        let (input, served) = Damaged::new(b"", garbage, b"\n");
        let err = SnapshotReader::new(std::io::BufReader::new(input), "t.snap")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.snap: line 1: longer than"), "{err}");
        assert!(served.get() <= MAX_LINE as u64 + slack);
    }

    #[test]
    fn a_line_of_max_line_bytes_is_read_one_more_is_not() {
        // A checksum that is not a number: found at once at the end of the line.
        const TAIL: &[u8] = b",\"crc\":x}\n";
        let header = header_line();
        let exact = (MAX_LINE - TAIL.len()) as u64;
        let (input, _) = Damaged::new(&header, exact, TAIL);
        let mut reader = SnapshotReader::new(std::io::BufReader::new(input), "t.snap").unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(
            err.contains("line 2: the \"crc\" field is not a number"),
            "{err}"
        );
        let (input, _) = Damaged::new(&header, exact + 1, TAIL);
        let mut reader = SnapshotReader::new(std::io::BufReader::new(input), "t.snap").unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(err.contains("line 2: longer than"), "{err}");
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
