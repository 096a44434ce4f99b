//! The Lua script (`script.lua`) and the two halves of talking to it: encoding a batch of
//! [`Op`]s as one `EVALSHA` ([`encode`]) and decoding its answers ([`decode`]).
//!
//! One script runs every operation, so a batch of any mix of calls is one script call: it
//! runs atomically on the server (no other client's command interleaves), reads the clock
//! once (`TIME`), allocates versions, maintains the index and the expiry queue, and
//! publishes the keys it changed in one message. Why one script for everything rather than
//! a script per operation: a batch is then one command for the server to parse and one
//! `PUBLISH`, however many calls it carries, which is what lets 64 concurrent writers cost
//! about what 64 plain `SET`s cost.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Buf;
use redis::{Cmd, RedisWrite, Value};
use store_core::{Error, Record, Result};

use crate::command::{bytes, Op, Reply, ServerFigures};
use crate::layout::Layout;

/// The script's source.
pub(crate) const SOURCE: &str = include_str!("script.lua");

/// The script's SHA-1, by which `EVALSHA` names it.
pub(crate) fn sha() -> String {
    redis::Script::new(SOURCE).get_hash().to_owned()
}

/// Largest expiry the script can compare exactly: microseconds are Lua numbers (doubles),
/// exact below 2^53 (the year 2255). Later expiries are stored as this.
const MAX_MICROS: u128 = (1 << 53) - 1;

/// An expiry as the script stores it: microseconds since the Unix epoch, `""` for none.
pub(crate) fn encode_expiry(expires_at: Option<SystemTime>) -> String {
    match expires_at {
        None => String::new(),
        Some(at) => at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros().min(MAX_MICROS))
            .unwrap_or(0)
            .to_string(),
    }
}

fn decode_expiry(text: &[u8]) -> Result<Option<SystemTime>> {
    if text.is_empty() {
        return Ok(None);
    }
    let micros: u64 = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| corrupt(format!("expiry {:?} is not a number", preview(text))))?;
    Ok(UNIX_EPOCH.checked_add(Duration::from_micros(micros)))
}

/// How many results the script produces for `op`.
fn results_of(op: &Op) -> usize {
    match op {
        Op::Get(keys) => keys.len(),
        Op::Stats | Op::Create(_) | Op::Put(_) | Op::PutMany(_) | Op::Cas(_) => 1,
        Op::Delete(_) | Op::ListPage { .. } => 1,
        Op::Close => 0,
    }
}

/// Bytes an operation adds to a script call, roughly (to split huge batches).
pub(crate) fn weight(op: &Op) -> usize {
    let record = |r: &Record| 2 * r.key.len() + r.value.len() + 32;
    match op {
        Op::Get(keys) => keys.iter().map(|k| 2 * k.len() + 8).sum(),
        Op::Create(r) | Op::Put(r) | Op::Cas(r) => record(r) + r.version.len(),
        Op::PutMany(records) => records.iter().map(record).sum(),
        Op::Delete(key) => 2 * key.len() + 8,
        Op::ListPage { min, max, .. } => min.len() + max.len() + 16,
        Op::Stats | Op::Close => 8,
    }
}

/// Writes `root` (a layout's `record_root`) followed by `key` as one argument, without an
/// intermediate buffer: the name of `key`'s record.
pub(crate) fn record_key(cmd: &mut Cmd, root: &[u8], key: &str) {
    use std::io::Write;
    let mut arg = cmd.writer_for_next_arg();
    // Writing to the command's own buffer cannot fail.
    let _ = arg.write_all(root);
    let _ = arg.write_all(key.as_bytes());
}

/// One `EVALSHA` of the script running `ops` in order; each write carries its deadline
/// from `deadlines` (the latest server time, in microseconds, at which it may be applied;
/// `None` for none), which has one entry per op.
pub(crate) fn encode(
    sha: &str,
    layout: &Layout,
    tag: &str,
    ops: &[Op],
    deadlines: &[Option<i64>],
) -> Cmd {
    let ops = ops.iter();
    let keys: usize = ops
        .clone()
        .map(|op| match op {
            Op::Get(keys) => keys.len(),
            Op::Create(_) | Op::Put(_) | Op::Cas(_) | Op::Delete(_) => 1,
            Op::PutMany(records) => records.len(),
            Op::ListPage { .. } | Op::Stats | Op::Close => 0,
        })
        .sum();
    let writes: usize = ops
        .clone()
        .map(|op| match op {
            Op::Create(_) | Op::Put(_) | Op::Cas(_) => 1,
            Op::PutMany(records) => records.len(),
            Op::Get(_) | Op::Delete(_) | Op::ListPage { .. } | Op::Stats | Op::Close => 0,
        })
        .sum();
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha).arg(3 + keys);
    cmd.arg(&layout.meta[..])
        .arg(&layout.index[..])
        .arg(&layout.expiry[..]);
    for op in ops.clone() {
        match op {
            Op::Get(keys) => keys
                .iter()
                .for_each(|k| record_key(&mut cmd, &layout.record_root, k)),
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => {
                record_key(&mut cmd, &layout.record_root, &r.key)
            }
            Op::Delete(key) => record_key(&mut cmd, &layout.record_root, key),
            Op::PutMany(records) => records
                .iter()
                .for_each(|r| record_key(&mut cmd, &layout.record_root, &r.key)),
            Op::ListPage { .. } | Op::Stats | Op::Close => {}
        }
    }
    cmd.arg(&layout.channel[..])
        .arg(tag)
        .arg(&layout.record_root[..])
        .arg(writes);
    let deadline = |d: &Option<i64>| {
        d.map(|micros| micros.max(0).to_string())
            .unwrap_or_default()
    };
    for (op, d) in ops.zip(deadlines) {
        match op {
            Op::Get(keys) => {
                for _ in keys {
                    cmd.arg("g");
                }
            }
            Op::Create(r) => {
                cmd.arg("c").arg(deadline(d)).arg(&r.key).arg(&r.value[..]);
                cmd.arg(encode_expiry(r.expires_at));
            }
            Op::Put(r) => {
                cmd.arg("p").arg(deadline(d)).arg(&r.key).arg(&r.value[..]);
                cmd.arg(encode_expiry(r.expires_at));
            }
            Op::Cas(r) => {
                cmd.arg("s").arg(deadline(d)).arg(&r.key).arg(&r.value[..]);
                cmd.arg(encode_expiry(r.expires_at)).arg(&r.version);
            }
            Op::PutMany(records) => {
                cmd.arg("m").arg(deadline(d)).arg(records.len());
                for r in records {
                    cmd.arg(&r.key).arg(&r.value[..]);
                    cmd.arg(encode_expiry(r.expires_at));
                }
            }
            Op::Delete(key) => {
                cmd.arg("d").arg(deadline(d)).arg(key);
            }
            Op::ListPage { min, max, count } => {
                cmd.arg("l").arg(&min[..]).arg(&max[..]).arg(*count);
            }
            Op::Stats => {
                cmd.arg("t");
            }
            Op::Close => {}
        }
    }
    cmd
}

/// One `EVALSHA` of the reaper: reclaims at most `limit` expired records.
pub(crate) fn encode_reap(sha: &str, layout: &Layout, tag: &str, limit: usize) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha).arg(3);
    cmd.arg(&layout.meta[..])
        .arg(&layout.index[..])
        .arg(&layout.expiry[..]);
    cmd.arg(&layout.channel[..])
        .arg(tag)
        .arg(&layout.record_root[..])
        .arg(0);
    cmd.arg("r").arg(limit);
    cmd
}

/// Splits a script's answer `{now, results}` into the server's time (microseconds since
/// the Unix epoch) and the results, one per operation.
pub(crate) fn split_answer(value: Value, what: &str) -> Result<(i64, Vec<Value>)> {
    let mut parts = array(value, what)?.into_iter();
    let now = match next(&mut parts, what)? {
        Value::BulkString(text) => std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| corrupt(format!("{what}: the server's time is not a number")))?,
        other => return Err(unexpected(what, &other)),
    };
    let results = array(next(&mut parts, what)?, what)?;
    Ok((now, results))
}

/// What one reaper run did: records reclaimed, and when the next one expires.
pub(crate) fn decode_reap(value: Value) -> Result<(u64, Option<SystemTime>)> {
    let (_, results) = split_answer(value, "reap")?;
    let mut results = results.into_iter();
    let mut reap = array(next(&mut results, "reap")?, "reap")?.into_iter();
    let reclaimed = int(next(&mut reap, "reap")?, "reap")?;
    let next_expiry = match next(&mut reap, "reap")? {
        Value::BulkString(text) if text.is_empty() => None,
        Value::BulkString(text) => {
            // A score, printed by Redis as a double ("1764600000123456" or with an exponent).
            let micros: f64 = std::str::from_utf8(&text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| corrupt("the reaper's next expiry is not a number".into()))?;
            UNIX_EPOCH.checked_add(Duration::from_micros(micros.max(0.0) as u64))
        }
        other => return Err(unexpected("reap", &other)),
    };
    Ok((reclaimed, next_expiry))
}

/// Takes the answers of `op` from `results` (the script's answers to a batch, in order).
/// A write that reached the server after its deadline answers with `late()`.
pub(crate) fn decode(
    op: &Op,
    results: &mut impl Iterator<Item = Value>,
    late: impl FnOnce() -> Error,
) -> Result<Reply> {
    let name = op.name();
    // Every operation but a get has one result; a write's is -1 when it came too late.
    match op {
        Op::Get(keys) => {
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                records.push(decode_record(key, next(results, name)?)?);
            }
            Ok(Reply::Records(records))
        }
        Op::Create(_) | Op::Put(_) | Op::Cas(_) | Op::PutMany(_) | Op::Delete(_) => {
            match next(results, name)? {
                Value::Int(-1) => Err(late()),
                value => decode_write(op, value),
            }
        }
        Op::ListPage { .. } => {
            let mut page = array(next(results, name)?, name)?.into_iter();
            let cursor = string(next(&mut page, name)?, name)?;
            let keys = page
                .map(|key| string(key, name))
                .collect::<Result<Vec<_>>>()?;
            Ok(Reply::Page {
                keys,
                next: (!cursor.is_empty()).then_some(cursor),
            })
        }
        Op::Stats => {
            let mut figures = array(next(results, name)?, name)?.into_iter();
            let keys = int(next(&mut figures, name)?, name)?;
            let expiring = int(next(&mut figures, name)?, name)?;
            let epoch = string(next(&mut figures, name)?, name)?;
            let last_version = string(next(&mut figures, name)?, name)?
                .parse()
                .unwrap_or(0);
            let late_writes = string(next(&mut figures, name)?, name)?
                .parse()
                .unwrap_or(0);
            Ok(Reply::Stats(ServerFigures {
                keys,
                expiring,
                epoch,
                last_version,
                late_writes,
            }))
        }
        Op::Close => Ok(Reply::Done),
    }
}

/// The answer of a write that was applied in time.
fn decode_write(op: &Op, value: Value) -> Result<Reply> {
    let name = op.name();
    match op {
        Op::Create(record) => {
            let mut answer = array(value, name)?.into_iter();
            match int(next(&mut answer, name)?, name)? {
                1 => Ok(Reply::Created(Ok(string(next(&mut answer, name)?, name)?))),
                _ => {
                    let live = decode_record(&record.key, next(&mut answer, name)?)?
                        .ok_or_else(|| corrupt("create: conflict without a record".into()))?;
                    Ok(Reply::Created(Err(Box::new(live))))
                }
            }
        }
        Op::Put(_) => Ok(Reply::Version(string(value, name)?)),
        Op::Cas(_) => {
            let mut answer = array(value, name)?.into_iter();
            match int(next(&mut answer, name)?, name)? {
                1 => Ok(Reply::Version(string(next(&mut answer, name)?, name)?)),
                0 => Ok(Reply::CasMissing),
                _ => Ok(Reply::CasConflict),
            }
        }
        Op::PutMany(_) => {
            int(value, name)?;
            Ok(Reply::Done)
        }
        Op::Delete(_) => Ok(Reply::Deleted(int(value, name)? == 1)),
        Op::Get(_) | Op::ListPage { .. } | Op::Stats | Op::Close => Err(unexpected(name, &value)),
    }
}

/// The expiry a record has once stored: the script keeps microseconds, so a write answers
/// with what a later read returns, not with the nanoseconds it was given.
pub(crate) fn stored_expiry(expires_at: Option<SystemTime>) -> Option<SystemTime> {
    let text = encode_expiry(expires_at);
    decode_expiry(text.as_bytes()).unwrap_or(expires_at)
}

/// A record string (`<x> <n> <v>`, see `script.lua`) as the record under `key`; `None` for
/// the script's `0` (missing or expired) or a missing key (`Nil`).
///
/// The value is the string's tail, kept in the buffer the reply arrived in (no copy).
pub(crate) fn decode_record(key: &str, value: Value) -> Result<Option<Record>> {
    let text = match value {
        Value::Int(0) | Value::Nil => return Ok(None),
        Value::BulkString(text) => text,
        other => return Err(unexpected("get", &other)),
    };
    let Some((expiry, version, start)) = split_record(&text) else {
        return Err(corrupt(format!(
            "the record of key {key:?} is not in store-redis's format (it starts {:?})",
            preview(&text)
        )));
    };
    let expires_at = decode_expiry(expiry)?;
    let version = std::str::from_utf8(version)
        .map_err(|e| corrupt(format!("the version of key {key:?} is not UTF-8 ({e})")))?
        .to_owned();
    let mut value = bytes(text);
    value.advance(start);
    Ok(Some(Record {
        key: key.to_owned(),
        value,
        version,
        expires_at,
    }))
}

/// The expiry and version of a record string, and where its value starts; `None` if the
/// string is not a record (the same rule as the script's `header`).
fn split_record(text: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let first = text.iter().position(|b| *b == b' ')?;
    let length = text[first + 1..].iter().position(|b| *b == b' ')?;
    let (expiry, version) = (&text[..first], &text[first + 1..first + 1 + length]);
    if version.is_empty() || !expiry.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((expiry, version, first + 2 + length))
}

/// The number of answers a batch of `ops` expects (to check the script's reply).
pub(crate) fn expected_results<'a>(ops: impl Iterator<Item = &'a Op>) -> usize {
    ops.map(results_of).sum()
}

fn next(values: &mut impl Iterator<Item = Value>, what: &str) -> Result<Value> {
    values
        .next()
        .ok_or_else(|| corrupt(format!("{what}: the script's answer is too short")))
}

pub(crate) fn array(value: Value, what: &str) -> Result<Vec<Value>> {
    match value {
        Value::Array(values) => Ok(values),
        other => Err(unexpected(what, &other)),
    }
}

fn int(value: Value, what: &str) -> Result<u64> {
    match value {
        Value::Int(n) if n >= 0 => Ok(n as u64),
        other => Err(unexpected(what, &other)),
    }
}

fn string(value: Value, what: &str) -> Result<String> {
    match value {
        Value::BulkString(text) => String::from_utf8(text)
            .map_err(|e| corrupt(format!("{what}: a key or version is not UTF-8 ({e})"))),
        Value::SimpleString(text) => Ok(text),
        other => Err(unexpected(what, &other)),
    }
}

fn unexpected(what: &str, value: &Value) -> Error {
    corrupt(format!(
        "{what}: unexpected answer from the script: {value:?}"
    ))
}

fn corrupt(message: String) -> Error {
    Error::Corrupt(format!(
        "store-redis: {message} (were the store's Redis keys changed by something else?)"
    ))
}

fn preview(text: &[u8]) -> String {
    String::from_utf8_lossy(&text[..text.len().min(32)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_round_trip_to_the_microsecond() {
        let at = UNIX_EPOCH + Duration::from_micros(1_764_600_000_123_456);
        let text = encode_expiry(Some(at));
        assert_eq!(text, "1764600000123456");
        assert_eq!(decode_expiry(text.as_bytes()).unwrap(), Some(at));
        assert_eq!(encode_expiry(None), "");
        assert_eq!(decode_expiry(b"").unwrap(), None);
        assert_eq!(
            encode_expiry(Some(UNIX_EPOCH - Duration::from_secs(1))),
            "0"
        );
        let far = UNIX_EPOCH + Duration::from_secs(1 << 40);
        assert_eq!(encode_expiry(Some(far)), MAX_MICROS.to_string());
        assert!(decode_expiry(b"soon").is_err());
    }

    #[test]
    fn record_strings_decode_and_foreign_strings_are_reported_with_their_key() {
        let text = |s: &[u8]| Value::BulkString(s.to_vec());
        let record = decode_record("k", text(b" e-1.7 a value with spaces"))
            .unwrap()
            .unwrap();
        assert_eq!(record.key, "k");
        assert_eq!(record.version, "e-1.7");
        assert_eq!(&record.value[..], b"a value with spaces");
        assert_eq!(record.expires_at, None);
        let expiring = decode_record("k", text(b"1764600000123456 e-1.8 "))
            .unwrap()
            .unwrap();
        assert!(expiring.value.is_empty());
        assert_eq!(
            expiring.expires_at,
            Some(UNIX_EPOCH + Duration::from_micros(1_764_600_000_123_456))
        );
        assert_eq!(decode_record("k", Value::Nil).unwrap(), None);
        assert_eq!(decode_record("k", Value::Int(0)).unwrap(), None);
        for foreign in [&b"plain value"[..], b"", b"12 ", b"  v", b"soon e-1.1 v"] {
            let error = decode_record("the/key", text(foreign)).unwrap_err();
            assert!(matches!(error, Error::Corrupt(_)), "{foreign:?}: {error}");
            assert!(error.to_string().contains("\"the/key\""), "{error}");
        }
    }

    #[test]
    fn the_script_has_a_stable_name() {
        assert_eq!(sha().len(), 40);
        assert!(SOURCE.starts_with("#!lua"));
    }
}
