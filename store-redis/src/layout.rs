//! Where a store keeps its data in Redis: the key names of one prefix, the change channel,
//! and the change message that the script publishes.
//!
//! Every Redis key of the store with prefix `orders` starts with `{orders}:`:
//!
//! | key                 | type       | holds                                                 |
//! |---------------------|------------|-------------------------------------------------------|
//! | `{orders}:r:<key>`  | string     | one record: `<x> <n> <v>`: expiry (µs, or empty), version, value |
//! | `{orders}:idx`      | sorted set | every stored key, score 0: byte order by `ZRANGEBYLEX`|
//! | `{orders}:exp`      | sorted set | keys with an expiry, scored by it: the reaper's queue |
//! | `{orders}:meta`     | hash       | `e` version epoch, `h` run_id of the server that made it, `n` version counter, `late` writes refused as late |
//!
//! Prefixes are names (`[A-Za-z0-9._-]+`), so `}` never occurs in one and no store's keys
//! start with another store's root: `{a}:` is not a prefix of `{a.b}:`, and user keys come
//! after the root, so no key or pattern can name another store's data. The braces are a
//! Redis Cluster hash tag: all keys of a store hash to one slot, which a script that touches
//! several of them needs there.
//!
//! Changes are published on `{orders}:changes@<db>`: Redis pub/sub ignores the database
//! number, so the channel names it, and stores with one prefix in two databases do not wake
//! each other's waiters for nothing.

/// The names of one store's Redis keys and channel.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// `{prefix}:r:`, followed by a key: that key's record.
    pub record_root: Vec<u8>,
    pub index: Vec<u8>,
    pub expiry: Vec<u8>,
    pub meta: Vec<u8>,
    pub channel: Vec<u8>,
}

impl Layout {
    /// The layout of the store `prefix` (already validated as a name) in database `db`.
    pub fn new(prefix: &str, db: i64) -> Self {
        let root = format!("{{{prefix}}}:");
        Self {
            record_root: format!("{root}r:").into_bytes(),
            index: format!("{root}idx").into_bytes(),
            expiry: format!("{root}exp").into_bytes(),
            meta: format!("{root}meta").into_bytes(),
            channel: format!("{root}changes@{db}").into_bytes(),
        }
    }
}

/// Decodes a change message (`<len>:<key>` repeated) into the keys it names, calling
/// `each` for every key. Returns `false` if the message is malformed (the caller then
/// re-checks every waiter rather than trust part of it).
pub(crate) fn decode_changes(mut message: &[u8], mut each: impl FnMut(&str)) -> bool {
    while !message.is_empty() {
        let Some(colon) = message.iter().position(|b| *b == b':') else {
            return false;
        };
        let Some(len) = std::str::from_utf8(&message[..colon])
            .ok()
            .and_then(|digits| digits.parse::<usize>().ok())
        else {
            return false;
        };
        let rest = &message[colon + 1..];
        if rest.len() < len {
            return false;
        }
        match std::str::from_utf8(&rest[..len]) {
            Ok(key) => each(key),
            Err(_) => return false,
        }
        message = &rest[len..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_different_prefixes_never_nest() {
        let a = Layout::new("a", 0);
        let ab = Layout::new("a.b", 0);
        assert!(!ab.record_root.starts_with(&a.record_root[..3]));
        assert_eq!(a.record_root, b"{a}:r:");
        assert_eq!(a.channel, b"{a}:changes@0");
        assert_eq!(Layout::new("a", 3).channel, b"{a}:changes@3");
    }

    #[test]
    fn change_messages_decode_any_key() {
        let keys = ["a", "with:colon", "nul\0byte", "é", "12:34"];
        let message: Vec<u8> = keys
            .iter()
            .flat_map(|k| format!("{}:{k}", k.len()).into_bytes())
            .collect();
        let mut seen = Vec::new();
        assert!(decode_changes(&message, |k| seen.push(k.to_owned())));
        assert_eq!(seen, keys);
    }

    #[test]
    fn malformed_change_messages_are_reported() {
        for bad in [&b"3:ab"[..], b"x:a", b"1", b"2:\xff\xfe"] {
            assert!(!decode_changes(bad, |_| {}), "{bad:?}");
        }
        assert!(decode_changes(b"", |_| panic!("no keys")));
    }
}
