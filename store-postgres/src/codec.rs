//! How records are held in the table and how changes are announced.
//!
//! - Keys are `bytea`: PostgreSQL's `text` cannot hold NUL, and `bytea` compares as
//!   unsigned bytes (then length), which is exactly byte order, whatever the database's
//!   collation. A key is read back with `String::from_utf8`; a row that some other program
//!   wrote with invalid UTF-8 is reported as [`Error::Corrupt`], never turned into a panic.
//! - Expiry is `bigint` microseconds since the Unix epoch (`NULL`: never). Integer
//!   arithmetic is exact, so the expiry read back is the one written (to the microsecond),
//!   any `SystemTime` converts without range errors (clamped to about ±292,000 years), and
//!   the comparison with the database's clock is one integer comparison per row.
//! - Versions are `bigint` values from the table's sequence, shown as decimal strings.
//! - A notification payload lists the changed keys, one per line, each escaped so that it
//!   is valid text (`\\` for a backslash, `\0` for NUL, `\n` for a newline). A payload must
//!   stay under 8,000 bytes; a key too long for that is announced with the empty payload,
//!   which means "re-check every waiter" (no key is empty, so it cannot mean a key).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store_core::{Error, Record, Result};

/// PostgreSQL refuses payloads of 8,000 bytes or more.
pub(crate) const MAX_PAYLOAD: usize = 7_999;

/// Microseconds since the Unix epoch, rounded down, clamped to `i64`.
pub(crate) fn micros(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => {
            // Rounded down means away from zero before the epoch.
            let before = before.duration();
            let whole = i64::try_from(before.as_micros()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() % 1_000 != 0);
            (-whole).saturating_sub(partial)
        }
    }
}

/// The time `micros` microseconds after the Unix epoch.
pub(crate) fn time(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH.checked_add(magnitude).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

/// The expiry as stored: `None` stays `None`.
pub(crate) fn expiry_param(expires_at: Option<SystemTime>) -> Option<i64> {
    expires_at.map(micros)
}

/// The expiry as read back after storing `expires_at` (rounded to the microsecond), so a
/// write's answer equals what later reads return.
pub(crate) fn stored_expiry(expires_at: Option<SystemTime>) -> Option<SystemTime> {
    expires_at.map(|at| time(micros(at)))
}

/// A version as callers see it.
pub(crate) fn version_text(version: i64) -> String {
    version.to_string()
}

/// The version a caller expects, as stored; a text that no stored version has (empty,
/// not a number) becomes -1, which the sequence never hands out, so the CAS answers
/// `Conflict` (or `NotFound`) as for any other wrong version.
pub(crate) fn version_param(version: &str) -> i64 {
    match version.parse::<i64>() {
        Ok(v) if v > 0 && version_text(v) == version => v,
        _ => -1,
    }
}

/// A key read from the table.
pub(crate) fn key_from_bytes(bytes: Vec<u8>, table: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.into_bytes();
        let shown: String = bytes.iter().take(32).map(|b| format!("{b:02x}")).collect();
        Error::Corrupt(format!(
            "table {table}: a key is not UTF-8 (bytes {shown}{}); was the row written by \
             another program?",
            if bytes.len() > 32 { "…" } else { "" }
        ))
    })
}

/// A record from its columns.
pub(crate) fn record(key: String, value: Vec<u8>, version: i64, expires_at: Option<i64>) -> Record {
    Record {
        key,
        value: value.into(),
        version: version_text(version),
        expires_at: expires_at.map(time),
    }
}

fn escape_into(key: &str, out: &mut String) {
    for c in key.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// The payloads announcing `keys` (each at most [`MAX_PAYLOAD`] bytes). A key whose escaped
/// form does not fit alone is announced by the empty payload: "re-check every waiter".
pub(crate) fn payloads<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut everyone = false;
    let mut escaped = String::new();
    for key in keys {
        escaped.clear();
        escape_into(key, &mut escaped);
        if escaped.len() > MAX_PAYLOAD {
            everyone = true;
            continue;
        }
        if !current.is_empty() && current.len() + 1 + escaped.len() > MAX_PAYLOAD {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&escaped);
    }
    if !current.is_empty() {
        out.push(current);
    }
    if everyone {
        out.push(String::new());
    }
    out
}

/// The payload announcing one key.
pub(crate) fn payload(key: &str) -> String {
    payloads([key]).pop().unwrap_or_default()
}

/// What a notification's payload asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Announced {
    /// These keys changed.
    Keys(Vec<String>),
    /// Re-check every waiter.
    Everything,
}

/// Reads a payload. Anything that is not a payload of ours (someone ran `NOTIFY` on the
/// channel by hand) is read as well as it can be; a waiter trusts only its own re-read.
pub(crate) fn announced(payload: &str) -> Announced {
    if payload.is_empty() {
        return Announced::Everything;
    }
    let keys = payload
        .split('\n')
        .map(|escaped| {
            let mut key = String::with_capacity(escaped.len());
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    key.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => key.push('\0'),
                    Some('n') => key.push('\n'),
                    Some(other) => key.push(other),
                    None => key.push('\\'),
                }
            }
            key
        })
        .collect();
    Announced::Keys(keys)
}

/// The range of stored keys that start with `prefix`: `[prefix, end)`. UTF-8 never
/// contains the byte 0xFF, so `[0xFF]` is above every key, and the end of a non-empty
/// prefix is the prefix with its last byte raised by one (the last byte of UTF-8 text is
/// at most 0xF4, so it never overflows).
pub(crate) fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = prefix.as_bytes().to_vec();
    let mut end = start.clone();
    match end.last_mut() {
        Some(last) => *last += 1,
        None => end.push(0xFF),
    }
    (start, end)
}

/// The smallest key after `key` in byte order: `key` followed by NUL.
pub(crate) fn successor(key: &str) -> Vec<u8> {
    let mut next = key.as_bytes().to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_round_trips_to_the_microsecond_and_never_overflows() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            time(micros(at)),
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000)
        );
        let before = UNIX_EPOCH - Duration::new(5, 500);
        assert_eq!(micros(before), -5_000_001);
        assert!(time(micros(before)) <= before);
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert_eq!(micros(far), i64::MAX);
        let _ = time(i64::MAX);
        let _ = time(i64::MIN);
    }

    #[test]
    fn versions_parse_only_when_canonical() {
        assert_eq!(version_param("42"), 42);
        assert_eq!(version_param(""), -1);
        assert_eq!(version_param("042"), -1);
        assert_eq!(version_param("-3"), -1);
        assert_eq!(version_param("x"), -1);
    }

    #[test]
    fn payloads_round_trip_every_key() {
        let keys = [
            "plain",
            "with\nnewline",
            "nul\0byte",
            "back\\slash\\0",
            "ü/🦀",
        ];
        let payloads = payloads(keys);
        assert_eq!(payloads.len(), 1);
        assert_eq!(
            announced(&payloads[0]),
            Announced::Keys(keys.iter().map(|k| k.to_string()).collect())
        );
    }

    #[test]
    fn payloads_are_split_below_the_limit_and_huge_keys_wake_everyone() {
        let keys: Vec<String> = (0..2000).map(|i| format!("key/{i:08}")).collect();
        let split = payloads(keys.iter().map(String::as_str));
        assert!(split.len() > 1);
        assert!(split.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let back: Vec<String> = split
            .iter()
            .flat_map(|p| match announced(p) {
                Announced::Keys(keys) => keys,
                Announced::Everything => panic!("no key was too long"),
            })
            .collect();
        assert_eq!(back, keys);
        let huge = "\\".repeat(4096);
        assert_eq!(payloads([huge.as_str()]), vec![String::new()]);
        assert_eq!(announced(""), Announced::Everything);
    }

    #[test]
    fn prefix_ranges_cover_exactly_the_prefix() {
        assert_eq!(prefix_range(""), (vec![], vec![0xFF]));
        assert_eq!(prefix_range("ab"), (b"ab".to_vec(), b"ac".to_vec()));
        let (start, end) = prefix_range("é");
        assert!(start.as_slice() < "éz".as_bytes() && "éz".as_bytes() < end.as_slice());
        assert!("f".as_bytes() >= end.as_slice() || "f".as_bytes() < start.as_slice());
        assert_eq!(successor("a"), b"a\0".to_vec());
    }

    #[test]
    fn foreign_keys_that_are_not_utf8_are_corrupt() {
        assert!(matches!(
            key_from_bytes(vec![0xff, 0xfe], "\"t\""),
            Err(Error::Corrupt(_))
        ));
    }
}
