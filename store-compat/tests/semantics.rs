//! The facade's own semantics (crate docs, "Semantics"), on every storage stack: metadata,
//! the envelope, glob characters, scopes, expiry precedence, paging, order, names, and
//! sharing a store with the versioned API.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};
use store_compat::envelope::{self, MAGIC};
use store_compat::{
    DeleteOptions, Error, ListOptions, Options, Order, ReadOptions, Record, Scoped, Store,
    StoreAdapter, WriteOptions,
};
use store_core::Storage;

type Adapter = StoreAdapter<Arc<dyn Storage>>;

fn adapter(storage: &Arc<dyn Storage>) -> Adapter {
    StoreAdapter::new(storage.clone())
}

async fn put(s: &dyn Store, key: &str) {
    s.write(Record::new(key, key.to_owned()), WriteOptions::default())
        .await
        .unwrap();
}

async fn read_keys(s: &dyn Store, key: &str, opts: ReadOptions) -> Vec<String> {
    s.read(key, opts)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.value, Bytes::from(r.key.clone()), "value of {}", r.key);
            r.key
        })
        .collect()
}

async fn read_one(s: &dyn Store, key: &str) -> Record {
    let mut records = s.read(key, ReadOptions::default()).await.unwrap();
    assert_eq!(records.len(), 1);
    records.remove(0)
}

// --- metadata ----------------------------------------------------------------------------

fn rich_metadata() -> HashMap<String, Value> {
    HashMap::from([
        ("zero".to_owned(), json!(0)),
        ("int".to_owned(), json!(42)),
        ("negative".to_owned(), json!(-7)),
        ("i64_min".to_owned(), json!(i64::MIN)),
        ("i64_max".to_owned(), json!(i64::MAX)),
        ("u64_max".to_owned(), json!(u64::MAX)),
        ("float".to_owned(), json!(1.5)),
        ("whole_float".to_owned(), json!(2.0)),
        ("tiny_float".to_owned(), json!(1e-300)),
        ("pi".to_owned(), json!(std::f64::consts::PI)),
        ("string".to_owned(), json!("héllo \"wörld\"\n\u{0}")),
        ("empty_string".to_owned(), json!("")),
        ("true".to_owned(), json!(true)),
        ("null".to_owned(), Value::Null),
        (
            "array".to_owned(),
            json!([1, 2.5, "three", null, [4], {"five": 5}]),
        ),
        (
            "nested".to_owned(),
            json!({"a": {"b": {"c": [1, {"d": -1}]}}, "empty": {}, "list": []}),
        ),
        ("".to_owned(), json!("empty key")),
    ])
}

/// Every kind of JSON value round-trips exactly, integers staying integers.
async fn metadata_round_trips(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let mut record = Record::new("meta", "value");
    record.metadata = rich_metadata();
    s.write(record.clone(), WriteOptions::default())
        .await
        .unwrap();

    let read = read_one(&s, "meta").await;
    assert_eq!(read.metadata, record.metadata);
    assert_eq!(&read.value[..], b"value");
    let m = &read.metadata;
    assert!(m["int"].is_i64() && m["int"].as_i64() == Some(42));
    assert!(m["negative"].is_i64());
    assert!(m["zero"].is_u64() || m["zero"].is_i64());
    assert_eq!(m["i64_min"].as_i64(), Some(i64::MIN));
    assert_eq!(m["u64_max"].as_u64(), Some(u64::MAX));
    assert!(m["float"].is_f64() && m["whole_float"].is_f64());
    assert_eq!(m["whole_float"].as_f64(), Some(2.0));
    assert_eq!(m["pi"].as_f64(), Some(std::f64::consts::PI));
    assert!(m["nested"]["a"]["b"]["c"][1]["d"].is_i64());
    assert!(m["null"].is_null());

    // The same through prefix and suffix reads.
    let by_prefix = s.read("me", ReadOptions::default().prefix()).await.unwrap();
    assert_eq!(by_prefix[0].metadata, record.metadata);
    let by_suffix = s.read("ta", ReadOptions::default().suffix()).await.unwrap();
    assert_eq!(by_suffix[0].metadata, record.metadata);
}

/// Metadata belongs to the write: overwriting without metadata clears it, and builders
/// produce what the fields say.
async fn metadata_follows_the_latest_write(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let record = Record::new("k", "v1")
        .with_metadata("n", json!(1))
        .with_metadata("n", json!(2))
        .with_metadata("s", "text");
    assert_eq!(record.metadata.len(), 2);
    s.write(record, WriteOptions::default()).await.unwrap();
    let read = read_one(&s, "k").await;
    assert_eq!(read.metadata["n"], json!(2));
    assert_eq!(read.metadata["s"], json!("text"));

    s.write(Record::new("k", "v2"), WriteOptions::default())
        .await
        .unwrap();
    let read = read_one(&s, "k").await;
    assert!(read.metadata.is_empty());
    assert_eq!(&read.value[..], b"v2");

    // Empty values with metadata, and large values.
    let big = vec![0xC1u8; 100_000];
    s.write(
        Record::new("big", big.clone()).with_metadata("len", json!(big.len())),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let read = read_one(&s, "big").await;
    assert_eq!(&read.value[..], &big[..]);
    assert_eq!(read.metadata["len"], json!(100_000));
    s.write(
        Record::new("empty", Bytes::new()).with_metadata("x", Value::Null),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let read = read_one(&s, "empty").await;
    assert!(read.value.is_empty());
    assert_eq!(read.metadata["x"], Value::Null);
}

// --- sharing a store with the versioned API ----------------------------------------------

/// Records written through the versioned API under `database/table/key` read back through
/// the facade verbatim with empty metadata; facade records without metadata are raw bytes
/// for the versioned API.
async fn versioned_api_records_are_readable(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let value = Bytes::from_static(b"{\"json\": 1}");
    storage
        .put(store_core::Record::new("micro/micro/raw", value.clone()))
        .await
        .unwrap();
    storage
        .put(
            store_core::Record::new("micro/micro/raw-ttl", "x").with_ttl(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    storage
        .put(store_core::Record::new("other/table/raw", "elsewhere"))
        .await
        .unwrap();

    let read = read_one(&s, "raw").await;
    assert_eq!(read.key, "raw");
    assert_eq!(read.value, value);
    assert!(read.metadata.is_empty());
    assert_eq!(read.expiry, None);
    let ttl = read_one(&s, "raw-ttl").await.expiry.unwrap();
    assert!(ttl <= Duration::from_secs(3600) && ttl > Duration::from_secs(3500));

    assert_eq!(
        s.list(ListOptions::default()).await.unwrap(),
        ["raw", "raw-ttl"]
    );
    let other = s
        .read(
            "raw",
            ReadOptions::default().database("other").table("table"),
        )
        .await
        .unwrap();
    assert_eq!(&other[0].value[..], b"elsewhere");

    // And the other way round.
    s.write(Record::new("plain", "bytes"), WriteOptions::default())
        .await
        .unwrap();
    let stored = storage.get("micro/micro/plain").await.unwrap();
    assert_eq!(&stored.value[..], b"bytes");
    s.write(
        Record::new("with-meta", "bytes").with_metadata("k", 1),
        WriteOptions::default().table("t"),
    )
    .await
    .unwrap();
    let stored = storage.get("micro/t/with-meta").await.unwrap();
    assert!(envelope::is_envelope(&stored.value));
    let (metadata, value) = envelope::decode(stored.value);
    assert_eq!(metadata["k"], json!(1));
    assert_eq!(&value[..], b"bytes");
}

/// Ordinary values are never mistaken for envelopes unless they forge magic, version and
/// checksum together; facade writes round-trip even when they look like envelopes.
async fn envelope_is_not_misdetected(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let genuine = envelope::wrap(&HashMap::from([("k".to_owned(), json!(1))]), b"v").unwrap();
    let mut wrong_crc = genuine.to_vec();
    *wrong_crc.last_mut().unwrap() ^= 0xFF;
    let mut wrong_version = genuine.to_vec();
    wrong_version[4] = 2;
    let mut wrong_magic = genuine.to_vec();
    wrong_magic[0] = b'X';
    let mut just_header = MAGIC.to_vec();
    just_header.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut bad_length = genuine.to_vec();
    bad_length[8] = bad_length[8].wrapping_add(100);
    let raw_values: Vec<(&str, Vec<u8>)> = vec![
        ("magic-wrong-crc", wrong_crc),
        ("magic-wrong-version", wrong_version),
        ("wrong-magic", wrong_magic),
        ("magic-only", MAGIC.to_vec()),
        ("header-only", just_header),
        ("bad-length", bad_length),
        ("empty", Vec::new()),
        ("json", b"{\"metadata\": {\"k\": 1}}".to_vec()),
        ("binary", (0..=255u8).collect()),
    ];

    // Written through the versioned API: read back verbatim with empty metadata.
    for (key, value) in &raw_values {
        storage
            .put(store_core::Record::new(
                format!("micro/micro/{key}"),
                value.clone(),
            ))
            .await
            .unwrap();
        let read = read_one(&s, key).await;
        assert_eq!(&read.value[..], &value[..], "{key}");
        assert!(read.metadata.is_empty(), "{key}");
    }

    // Written through the facade without metadata: read back verbatim too, the genuine
    // envelope included (the facade wraps a value that would be mistaken for one).
    let mut facade_values = raw_values.clone();
    facade_values.push(("genuine", genuine.to_vec()));
    for (key, value) in &facade_values {
        let key = format!("facade-{key}");
        s.write(
            Record::new(key.clone(), value.clone()),
            WriteOptions::default(),
        )
        .await
        .unwrap();
        let read = read_one(&s, &key).await;
        assert_eq!(&read.value[..], &value[..], "{key}");
        assert!(read.metadata.is_empty(), "{key}");
    }

    // The documented limit: a value written through the versioned API that forges all
    // three (magic, version, checksum) is taken for an envelope.
    storage
        .put(store_core::Record::new("micro/micro/forged", genuine))
        .await
        .unwrap();
    let read = read_one(&s, "forged").await;
    assert_eq!(&read.value[..], b"v");
    assert_eq!(read.metadata["k"], json!(1));
}

// --- glob characters -----------------------------------------------------------------------

const GLOB_KEYS: &[&str] = &[
    "a", "a*", "a*b", "a*z", "ab", "a?b", "axb", "a?", "[x]", "[x]y", "x", "y[x]", "{a,b}",
    "{a,b}c", "a", "b", "c{a,b}", "\\", "\\n", "n\\", "a-b", "!x", "a,b",
];

/// Prefixes and suffixes are literal text: glob characters match only themselves.
async fn glob_characters_are_literal(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    for key in GLOB_KEYS {
        put(&s, key).await;
    }
    let prefix = |p: &str| ListOptions::default().prefix(p);
    let suffix = |p: &str| ListOptions::default().suffix(p);
    let cases: Vec<(ListOptions, Vec<&str>)> = vec![
        (prefix("a*"), vec!["a*", "a*b", "a*z"]),
        (prefix("a?"), vec!["a?", "a?b"]),
        (prefix("a?b"), vec!["a?b"]),
        (prefix("[x]"), vec!["[x]", "[x]y"]),
        (prefix("[!x]"), vec![]),
        (prefix("{a,b}"), vec!["{a,b}", "{a,b}c"]),
        (prefix("\\"), vec!["\\", "\\n"]),
        (prefix("a-"), vec!["a-b"]),
        (prefix("!"), vec!["!x"]),
        (prefix("a,"), vec!["a,b"]),
        (suffix("*b"), vec!["a*b"]),
        (suffix("?b"), vec!["a?b"]),
        (suffix("[x]"), vec!["[x]", "y[x]"]),
        (suffix("{a,b}"), vec!["c{a,b}", "{a,b}"]),
        (suffix("\\"), vec!["\\", "n\\"]),
        (suffix("*"), vec!["a*"]),
        (prefix("[x]").suffix("[x]"), vec!["[x]"]),
        (
            prefix("a").suffix("b"),
            vec!["a*b", "a,b", "a-b", "a?b", "ab", "axb"],
        ),
    ];
    for (options, expected) in cases {
        let listed = s.list(options.clone()).await.unwrap();
        assert_eq!(listed, expected, "{options:?}");
    }

    // The same through reads with a prefix or suffix flag.
    let read_cases: Vec<(&str, ReadOptions, Vec<&str>)> = vec![
        (
            "a*",
            ReadOptions::default().prefix(),
            vec!["a*", "a*b", "a*z"],
        ),
        ("a?b", ReadOptions::default().prefix(), vec!["a?b"]),
        ("[x]", ReadOptions::default().suffix(), vec!["[x]", "y[x]"]),
        (
            "{a,b}",
            ReadOptions::default().prefix(),
            vec!["{a,b}", "{a,b}c"],
        ),
        ("\\", ReadOptions::default().prefix().suffix(), vec!["\\"]),
        ("*", ReadOptions::default().prefix(), vec![]),
        ("?", ReadOptions::default().suffix(), vec!["a?"]),
    ];
    for (key, options, expected) in read_cases {
        assert_eq!(
            read_keys(&s, key, options.clone()).await,
            expected,
            "{key:?} {options:?}"
        );
    }

    // Exact reads of glob keys are exact.
    assert_eq!(&read_one(&s, "a*").await.value[..], b"a*");
    assert!(matches!(
        s.read("a?x", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));
}

/// With both flags, the key must start and end with the text, and may be shorter than the
/// two together (go-micro's `HasPrefix && HasSuffix`).
async fn prefix_and_suffix_together(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    for key in ["foo", "foofoo", "foobarfoo", "foobar", "barfoo", "fo", "oo"] {
        put(&s, key).await;
    }
    let both = ReadOptions::default().prefix().suffix();
    assert_eq!(
        read_keys(&s, "foo", both.clone()).await,
        ["foo", "foobarfoo", "foofoo"]
    );
    assert_eq!(
        s.list(ListOptions::default().prefix("fo").suffix("oo"))
            .await
            .unwrap(),
        ["foo", "foobarfoo", "foofoo"]
    );
    // An empty key with a prefix flag reads the whole table.
    assert_eq!(
        s.read("", ReadOptions::default().prefix())
            .await
            .unwrap()
            .len(),
        7
    );
}

// --- scopes --------------------------------------------------------------------------------

/// Databases and tables are isolated from each other and from keys that look like scopes.
async fn scopes_are_isolated(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let scopes = [
        ("micro", "micro"),
        ("db1", "t"),
        ("db2", "t"),
        ("db1", "t2"),
        ("db1", "t-2"),
        ("micro", "micro.x"),
    ];
    for (db, table) in scopes {
        s.write(
            Record::new("shared", format!("{db}/{table}")),
            WriteOptions::default().database(db).table(table),
        )
        .await
        .unwrap();
        s.write(
            Record::new(format!("only-{db}-{table}"), "x"),
            WriteOptions::default().database(db).table(table),
        )
        .await
        .unwrap();
    }
    // A key that spells another scope stays in its own.
    put(&s, "db1/t/shared").await;

    for (db, table) in scopes {
        let read = s
            .read("shared", ReadOptions::default().database(db).table(table))
            .await
            .unwrap();
        assert_eq!(read[0].value, Bytes::from(format!("{db}/{table}")));
        let mut expected = vec![format!("only-{db}-{table}"), "shared".to_owned()];
        if (db, table) == ("micro", "micro") {
            expected.insert(0, "db1/t/shared".to_owned());
        }
        let listed = s
            .list(ListOptions::default().database(db).table(table))
            .await
            .unwrap();
        assert_eq!(listed, expected, "{db}/{table}");
        let read_all = s
            .read(
                "",
                ReadOptions::default().prefix().database(db).table(table),
            )
            .await
            .unwrap();
        assert_eq!(read_all.len(), expected.len(), "{db}/{table}");
    }

    // Deleting in one scope leaves the others.
    s.delete(
        "shared",
        DeleteOptions::default().database("db1").table("t"),
    )
    .await
    .unwrap();
    for (db, table) in scopes {
        let read = s
            .read("shared", ReadOptions::default().database(db).table(table))
            .await;
        assert_eq!(read.is_ok(), (db, table) != ("db1", "t"), "{db}/{table}");
    }

    // `init` moves the defaults; per-call options still override them.
    s.init(Options::default().database("db2").table("t"))
        .await
        .unwrap();
    assert_eq!(&read_one(&s, "shared").await.value[..], b"db2/t");
    let read = s
        .read(
            "shared",
            ReadOptions::default().database("micro").table("micro"),
        )
        .await
        .unwrap();
    assert_eq!(&read[0].value[..], b"micro/micro");
    // Only the table given: the database is the default's.
    let read = s
        .read("shared", ReadOptions::default().table("t2"))
        .await
        .unwrap_err();
    assert!(matches!(read, Error::NotFound));

    // Scoped handles and separate adapters over one storage see the same scopes.
    let scoped = Scoped::new(adapter(&storage), "db1", "t2").unwrap();
    assert_eq!(&read_one(&scoped, "shared").await.value[..], b"db1/t2");
    assert_eq!(scoped.options().table, "t2");
    let other =
        StoreAdapter::with_options(storage.clone(), Options::default().database("db1")).unwrap();
    assert!(matches!(
        other
            .read("shared", ReadOptions::default().table("t"))
            .await,
        Err(Error::NotFound)
    ));
}

/// Bad database and table names are `InvalidName` errors naming them; bad keys `InvalidKey`.
async fn bad_names_and_keys(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let check = |result: Result<(), Error>, what: &str, name: &str| {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::InvalidName(_)), "{error}");
        let message = error.to_string();
        assert!(message.contains(what), "{message}");
        assert!(message.contains(name), "{message}");
    };
    for bad in ["a/b", "a b", "*", "é", &"x".repeat(256)] {
        check(
            s.init(Options::default().database(bad)).await,
            "database",
            &bad[..bad.len().min(20)],
        );
        check(s.init(Options::default().table(bad)).await, "table", "");
        check(
            s.read("k", ReadOptions::default().database(bad))
                .await
                .map(drop),
            "database",
            "",
        );
        check(
            s.write(Record::new("k", "v"), WriteOptions::default().table(bad))
                .await,
            "table",
            "",
        );
        check(
            s.delete("k", DeleteOptions::default().table(bad)).await,
            "table",
            "",
        );
        check(
            s.list(ListOptions::default().database(bad)).await.map(drop),
            "database",
            "",
        );
        assert!(matches!(
            StoreAdapter::with_options(storage.clone(), Options::default().table(bad)),
            Err(Error::InvalidName(_))
        ));
        assert!(matches!(
            Scoped::new(adapter(&storage), bad, "t"),
            Err(Error::InvalidName(_))
        ));
    }
    check(s.init(Options::default().table("")).await, "table", "\"\"");
    assert_eq!(
        s.options(),
        Options::default(),
        "failed inits change nothing"
    );

    // Keys: empty or too long is InvalidKey; empty with a prefix flag is the whole table.
    for result in [
        s.write(Record::new("", "v"), WriteOptions::default()).await,
        s.read("", ReadOptions::default()).await.map(drop),
        s.delete("", DeleteOptions::default()).await,
        s.write(
            Record::new("k".repeat(store_core::MAX_KEY_LEN), "v"),
            WriteOptions::default(),
        )
        .await,
    ] {
        assert!(matches!(result, Err(Error::InvalidKey(_))), "{result:?}");
    }
    // The longest key that fits under the scope is accepted.
    let longest = "k".repeat(store_core::MAX_KEY_LEN - "micro/micro/".len());
    s.write(Record::new(longest.clone(), "v"), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(read_one(&s, &longest).await.key, longest);
}

// --- expiry --------------------------------------------------------------------------------

/// TTL option over expiry option over the record's expiry; reads return the time left.
async fn expiry_precedence(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    let hour = Duration::from_secs(3600);
    let now = SystemTime::now();
    let left = |record: Record| record.expiry.expect("an expiry");

    let record = Record::new("all-three", "v").with_expiry(hour * 3);
    let options = WriteOptions::default().expiry(now + hour * 2).ttl(hour);
    s.write(record, options).await.unwrap();
    let t = left(read_one(&s, "all-three").await);
    assert!(t <= hour && t > hour - Duration::from_secs(60), "{t:?}");

    let record = Record::new("expiry-and-record", "v").with_expiry(hour * 3);
    s.write(record, WriteOptions::default().expiry(now + hour * 2))
        .await
        .unwrap();
    let t = left(read_one(&s, "expiry-and-record").await);
    assert!(
        t <= hour * 2 && t > hour * 2 - Duration::from_secs(60),
        "{t:?}"
    );

    let record = Record::new("record-only", "v").with_expiry(hour * 3);
    s.write(record, WriteOptions::default()).await.unwrap();
    let t = left(read_one(&s, "record-only").await);
    assert!(
        t <= hour * 3 && t > hour * 3 - Duration::from_secs(60),
        "{t:?}"
    );

    // A zero TTL or record expiry means "not set", like Go's zero values.
    let record = Record::new("zero-ttl", "v").with_expiry(hour);
    s.write(record, WriteOptions::default().ttl(Duration::ZERO))
        .await
        .unwrap();
    assert!(left(read_one(&s, "zero-ttl").await) <= hour);
    let record = Record::new("zero-record", "v").with_expiry(Duration::ZERO);
    s.write(record, WriteOptions::default()).await.unwrap();
    assert_eq!(read_one(&s, "zero-record").await.expiry, None);

    // The TTL wins even when it is shorter, and it really expires the record.
    let options = WriteOptions::default()
        .expiry(now + hour)
        .ttl(Duration::from_millis(100));
    s.write(Record::new("short", "v").with_expiry(hour), options)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(
        s.read("short", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));

    // Overwriting without expiry removes the expiry.
    s.write(Record::new("record-only", "v2"), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(read_one(&s, "record-only").await.expiry, None);
}

/// An expiry that is not in the future makes the write remove the key.
async fn expiry_in_the_past(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    put(&s, "k").await;
    s.write(
        Record::new("k", "new"),
        WriteOptions::default().expiry(SystemTime::now() - Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(matches!(
        s.read("k", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));
    assert!(s.list(ListOptions::default()).await.unwrap().is_empty());
    s.write(
        Record::new("never", "v"),
        WriteOptions::default().expiry(UNIX_EPOCH),
    )
    .await
    .unwrap();
    assert!(matches!(
        s.read("never", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));
    // A huge TTL never expires rather than overflowing.
    s.write(
        Record::new("forever", "v"),
        WriteOptions::default().ttl(Duration::MAX),
    )
    .await
    .unwrap();
    assert_eq!(read_one(&s, "forever").await.expiry, None);
}

// --- paging and order ----------------------------------------------------------------------

/// Sorted, then offset (at or past the end: empty), then limit (0: all).
async fn limit_and_offset_edges(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    // Written out of order; "b" keys interleave to check filtering comes before paging.
    for key in ["k3", "b1", "k0", "k4", "b2", "k1", "k2"] {
        put(&s, key).await;
    }
    let list = |offset: usize, limit: usize| {
        let s = &s;
        async move {
            s.list(
                ListOptions::default()
                    .prefix("k")
                    .offset(offset)
                    .limit(limit),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(list(0, 0).await, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(list(0, 5).await, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(list(0, 99).await, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(list(0, 1).await, ["k0"]);
    assert_eq!(list(1, 2).await, ["k1", "k2"]);
    assert_eq!(list(3, 0).await, ["k3", "k4"]);
    assert_eq!(list(3, 2).await, ["k3", "k4"]);
    assert_eq!(list(4, 5).await, ["k4"]);
    assert!(list(5, 0).await.is_empty());
    assert!(list(5, 1).await.is_empty());
    assert!(list(6, 0).await.is_empty());
    assert!(list(usize::MAX, usize::MAX).await.is_empty());
    assert_eq!(list(0, usize::MAX).await.len(), 5);

    let read = |offset: usize, limit: usize| {
        let s = &s;
        async move {
            read_keys(
                s,
                "k",
                ReadOptions::default().prefix().offset(offset).limit(limit),
            )
            .await
        }
    };
    assert_eq!(read(0, 0).await, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(read(2, 2).await, ["k2", "k3"]);
    assert!(read(5, 0).await.is_empty());
    assert!(read(7, 3).await.is_empty());

    // Without a prefix everything in the table is listed, in order.
    assert_eq!(
        s.list(ListOptions::default()).await.unwrap(),
        ["b1", "b2", "k0", "k1", "k2", "k3", "k4"]
    );
    // No match is an empty list, not an error.
    assert!(s
        .list(ListOptions::default().prefix("zzz"))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .read("zzz", ReadOptions::default().suffix())
        .await
        .unwrap()
        .is_empty());
    // Limit and offset do not apply to exact reads.
    assert_eq!(
        read_keys(&s, "k1", ReadOptions::default().offset(3).limit(1)).await,
        ["k1"]
    );
}

/// Descending order reverses the matching keys before offset and limit.
async fn descending_order(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    for i in 0..10 {
        put(&s, &format!("d{i}")).await;
    }
    put(&s, "e0").await;
    let desc = ListOptions::default().prefix("d").order(Order::Descending);
    assert_eq!(
        s.list(desc.clone()).await.unwrap(),
        ["d9", "d8", "d7", "d6", "d5", "d4", "d3", "d2", "d1", "d0"]
    );
    assert_eq!(
        s.list(desc.clone().offset(2).limit(3)).await.unwrap(),
        ["d7", "d6", "d5"]
    );
    assert!(s.list(desc.clone().offset(10)).await.unwrap().is_empty());
    assert_eq!(
        s.list(ListOptions::default().order(Order::Descending).limit(2))
            .await
            .unwrap(),
        ["e0", "d9"]
    );
    let read = ReadOptions::default()
        .prefix()
        .order(Order::Descending)
        .offset(8);
    assert_eq!(read_keys(&s, "d", read).await, ["d1", "d0"]);
    let read = ReadOptions::default()
        .suffix()
        .order(Order::Descending)
        .limit(2);
    assert_eq!(read_keys(&s, "0", read).await, ["e0", "d0"]);
    // Ascending is the default and the explicit value.
    assert_eq!(
        s.list(
            ListOptions::default()
                .prefix("d")
                .order(Order::Ascending)
                .limit(2)
        )
        .await
        .unwrap(),
        ["d0", "d1"]
    );
}

// --- lifecycle -----------------------------------------------------------------------------

/// Delete of a missing key is Ok; delete removes the record.
async fn delete_missing_is_ok(storage: Arc<dyn Storage>) {
    let s = adapter(&storage);
    s.delete("missing", DeleteOptions::default()).await.unwrap();
    s.delete(
        "missing",
        DeleteOptions::default().database("db").table("t"),
    )
    .await
    .unwrap();
    put(&s, "present").await;
    s.delete("present", DeleteOptions::default()).await.unwrap();
    s.delete("present", DeleteOptions::default()).await.unwrap();
    assert!(matches!(
        s.read("present", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));
}

/// The facade is usable as `Arc<dyn Store>`; connect, name, disconnect.
async fn lifecycle(storage: Arc<dyn Storage>) {
    let store: Arc<dyn Store> = Arc::new(adapter(&storage).with_name("test-store"));
    assert_eq!(store.name(), "test-store");
    store.connect().await.unwrap();
    put(&*store, "k").await;
    assert_eq!(store.options(), Options::default());

    store.disconnect().await.unwrap();
    store.disconnect().await.unwrap(); // twice is fine
    assert!(matches!(store.connect().await, Err(Error::Closed)));
    assert!(matches!(
        store.read("k", ReadOptions::default()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        store.list(ListOptions::default()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        store.delete("k", DeleteOptions::default()).await,
        Err(Error::Closed)
    ));
    // The whole stack is closed.
    assert!(matches!(
        storage.get("micro/micro/k").await,
        Err(Error::Closed)
    ));
}

/// go-micro's `NewRecord`/`Decode` helpers.
async fn json_helpers(storage: Arc<dyn Storage>) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct User {
        name: String,
        age: u32,
    }
    let s = adapter(&storage);
    let user = User {
        name: "alice".into(),
        age: 37,
    };
    let record = Record::from_json("user", &user)
        .unwrap()
        .with_metadata("v", 1);
    s.write(record, WriteOptions::default()).await.unwrap();
    let read: User = read_one(&s, "user").await.decode().unwrap();
    assert_eq!(read, user);
}

stack_tests!(
    metadata_round_trips,
    metadata_follows_the_latest_write,
    versioned_api_records_are_readable,
    envelope_is_not_misdetected,
    glob_characters_are_literal,
    prefix_and_suffix_together,
    scopes_are_isolated,
    bad_names_and_keys,
    expiry_precedence,
    expiry_in_the_past,
    limit_and_offset_edges,
    descending_order,
    delete_missing_is_ok,
    lifecycle,
    json_helpers,
);
