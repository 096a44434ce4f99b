//! go-micro's own store tests, ported to the facade and run on every storage stack.
//!
//! Sources (assertions kept one for one; Go's `t.Error`/`t.Fatal` became `assert!`):
//! - micro/micro `service/store/test/store_test.go` (itself from go-micro v3
//!   `store/test/store_test.go`): `TestStoreReInit`, `TestStoreBasic`, `TestStoreTable`,
//!   `TestStoreDatabase`, `TestStoreDatabaseTable`, which run `expiryTests`,
//!   `suffixPrefixExpiryTests`, `readTests` and `listTests`.
//! - go-micro v2 `store/memory/memory_test.go`: `TestMemoryReInit`, `TestMemoryBasic`,
//!   `TestMemoryPrefix`, `TestMemoryNamespace`, `TestMemoryNamespacePrefix`, which run
//!   `basictest` (including the write-option precedence: TTL wins over Expiry).
//! - go-micro `store/scope_test.go`: `TestScopeIsolatesTables`.
//!
//! Go's `memory.NewStore(store.Table("x"))` is `StoreAdapter::with_options(storage,
//! Options::default().table("x"))` here; `cache.NewStore(memory.NewStore())` and the file
//! store are the cached and file stacks that every test runs on.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use store_compat::{
    DeleteOptions, Error, ListOptions, Options, Order, ReadOptions, Record, Scoped, Store,
    StoreAdapter, WriteOptions,
};
use store_core::Storage;
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn adapter(storage: Arc<dyn Storage>, options: Options) -> StoreAdapter<Arc<dyn Storage>> {
    StoreAdapter::with_options(storage, options).expect("valid options")
}

// ---------------------------------------------------------------------------------------
// Timing: what a literal Go timing proves, and only that
// ---------------------------------------------------------------------------------------
//
// go-micro's tests give records TTLs of 100 ms to 2 s and count them after fixed sleeps. Those
// counts hold only while the machine keeps up: on a loaded machine a write and a read can take
// longer than a 100 ms TTL, and a record Go expects to count has rightly expired. So the
// tests write and read through `Ttls`, which notes the system clock around every write and
// read and derives, for each record a read covers, what the store must answer:
//
// - live: the read returned before the TTL had run since the write *started*. The adapter
//   fixes the deadline from the system clock after the write started (Redis and PostgreSQL
//   compare it with the same host clock), so the record cannot have expired yet;
// - gone: the read started after the TTL had run since the write was *acknowledged*, which is
//   after the deadline was fixed, so the record must have expired (Go's sleeps are at least
//   the TTL and start after the write returned, so this holds whenever Go's premise does);
// - either: neither, because the machine was slow. Nothing is asserted about that record.
//
// Every read checks that its records are exactly the live ones plus some of the undecided
// ones, in order and paged like the store pages. Go's literal count is asserted too whenever
// every record was decided the way Go's sleeps presume (`Ttls::sleep` adds them up): every
// time on a machine that keeps up.

/// How long before its deadline a record still counts as certainly live: the Redis and
/// PostgreSQL backends keep deadlines to the microsecond (truncated); this is ample for that.
const LIVE_MARGIN: Duration = Duration::from_millis(1);

/// The expiry a test gives a record, as the store must apply it.
#[derive(Clone, Copy, Debug)]
enum Expiry {
    Never,
    /// The TTL runs from the write.
    Ttl(Duration),
    /// A fixed deadline.
    At(SystemTime),
}

/// One record the test wrote and has not deleted.
#[derive(Clone, Copy, Debug)]
struct Written {
    expiry: Expiry,
    /// Go's view: how long the record lives (`None`: for ever), and the total of the test's
    /// sleeps when it was written.
    nominal: Option<Duration>,
    slept: Duration,
    /// System clock just before the write was issued.
    started: SystemTime,
    /// System clock just after the write returned.
    acked: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Live,
    Gone,
    Either,
}

impl Written {
    /// What a read that started at `start` and returned at `end` must have seen.
    fn fate(&self, start: SystemTime, end: SystemTime) -> Fate {
        let (live_before, gone_from) = match self.expiry {
            Expiry::Never => return Fate::Live,
            Expiry::Ttl(ttl) => (self.started + ttl, self.acked + ttl),
            Expiry::At(at) => (at, at),
        };
        if end + LIVE_MARGIN <= live_before {
            Fate::Live
        } else if start >= gone_from {
            Fate::Gone
        } else {
            Fate::Either
        }
    }

    /// What Go's timing presumes a read sees once the test slept `slept` in all: the record
    /// lives while the sleeps since its write are shorter than its TTL.
    fn nominal(&self, slept: Duration) -> Fate {
        match self.nominal {
            Some(ttl) if slept - self.slept >= ttl => Fate::Gone,
            _ => Fate::Live,
        }
    }
}

/// The records a test wrote, with their expiries and write times (see "Timing" above).
#[derive(Default)]
struct Ttls {
    written: BTreeMap<String, Written>,
    /// The total of the test's sleeps so far.
    slept: Duration,
}

/// What one read or list returned, checked against what the store must have returned.
struct Seen {
    /// The records (reads) or keys (lists) returned.
    records: Vec<Record>,
    keys: Vec<String>,
    /// Whether every record the call covered was certainly live or certainly gone, as Go's
    /// timing presumes it to be.
    as_go_presumes: bool,
    what: String,
}

impl Seen {
    /// Go's count assertion (`if len(results) != n { t.Error(msg) }`), whenever the machine
    /// kept up with Go's timing; otherwise `Ttls::observe` has checked what the timing allowed.
    #[track_caller]
    fn assert_len(&self, go: usize, msg: &str) {
        let n = self.keys.len();
        if self.as_go_presumes {
            assert_eq!(n, go, "{msg}, got {n}: {:?} ({})", self.keys, self.what);
        } else {
            eprintln!(
                "{}: the machine was too slow for Go's timing; {n} records (checked against the \
                 measured times), Go expects {go} when it keeps up",
                self.what
            );
        }
    }
}

impl Ttls {
    /// Go's `s.Write(&store.Record{Key: key, Value: value, Expiry: expiry})`.
    async fn write(&mut self, s: &dyn Store, key: &str, value: &str, expiry: Option<Duration>) {
        let mut record = Record::new(key, value.to_owned());
        record.expiry = expiry;
        let expect = expiry.map_or(Expiry::Never, Expiry::Ttl);
        self.write_with(s, record, WriteOptions::default(), expect)
            .await;
    }

    /// Writes `record` with `opts`; `expect` is the expiry the store must give it.
    async fn write_with(
        &mut self,
        s: &dyn Store,
        record: Record,
        opts: WriteOptions,
        expect: Expiry,
    ) {
        let key = record.key.clone();
        let started = SystemTime::now();
        s.write(record, opts)
            .await
            .unwrap_or_else(|e| panic!("Couldn't write k: {key} ({e})"));
        let acked = SystemTime::now();
        let nominal = match expect {
            Expiry::Never => None,
            Expiry::Ttl(ttl) => Some(ttl),
            Expiry::At(at) => Some(at.duration_since(started).unwrap_or_default()),
        };
        let written = Written {
            expiry: expect,
            nominal,
            slept: self.slept,
            started,
            acked,
        };
        self.written.insert(key, written);
    }

    /// Go's `time.Sleep(d)`.
    async fn sleep(&mut self, d: Duration) {
        sleep(d).await;
        self.slept += d;
    }

    async fn delete(&mut self, s: &dyn Store, key: &str) {
        s.delete(key, DeleteOptions::default())
            .await
            .expect("Delete failed");
        self.written.remove(key);
    }

    /// `s.Read(key, opts)`; an exact read of a missing key (`ErrNotFound`) returns nothing.
    async fn read(&self, s: &dyn Store, key: &str, opts: ReadOptions) -> Seen {
        let exact = !opts.prefix && !opts.suffix;
        let start = SystemTime::now();
        let records = match s.read(key, opts.clone()).await {
            Ok(records) => {
                assert!(
                    !(exact && records.is_empty()),
                    "an exact read found nothing without NotFound"
                );
                records
            }
            Err(Error::NotFound) if exact => Vec::new(),
            Err(e) => panic!("Couldn't read all {key:?} keys ({e})"),
        };
        let end = SystemTime::now();
        let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
        let matches = |k: &str| {
            if exact {
                k == key
            } else {
                (!opts.prefix || k.starts_with(key)) && (!opts.suffix || k.ends_with(key))
            }
        };
        let (offset, limit) = if exact {
            (0, 0)
        } else {
            (opts.offset, opts.limit)
        };
        let what = format!("read {key:?} {opts:?}");
        let as_go_presumes =
            self.observe(&what, &keys, matches, opts.order, offset, limit, start, end);
        Seen {
            records,
            keys,
            as_go_presumes,
            what,
        }
    }

    /// `s.List(opts)`.
    async fn list(&self, s: &dyn Store, opts: ListOptions) -> Seen {
        let start = SystemTime::now();
        let keys = s
            .list(opts.clone())
            .await
            .unwrap_or_else(|e| panic!("Error listing records {e}"));
        let end = SystemTime::now();
        let matches = |k: &str| k.starts_with(&opts.prefix) && k.ends_with(&opts.suffix);
        let what = format!("list {opts:?}");
        let as_go_presumes = self.observe(
            &what,
            &keys,
            matches,
            opts.order,
            opts.offset,
            opts.limit,
            start,
            end,
        );
        Seen {
            records: Vec::new(),
            keys,
            as_go_presumes,
            what,
        }
    }

    /// Checks the keys a call issued at `start` and returned at `end` gave back: with every
    /// record decided, exactly the page of the live matching records; otherwise only records
    /// that may be live, in order, at most a page of them, and every live one when unpaged.
    /// Returns whether every record was decided as Go's timing presumes.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        what: &str,
        got: &[String],
        matches: impl Fn(&str) -> bool,
        order: Order,
        offset: usize,
        limit: usize,
        start: SystemTime,
        end: SystemTime,
    ) -> bool {
        let mut covered: Vec<(&str, &Written, Fate)> = self
            .written
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, w)| (k.as_str(), w, w.fate(start, end)))
            .collect();
        if order == Order::Descending {
            covered.reverse();
        }
        let report = |k: &str| {
            let w = &self.written[k];
            let since = |t: SystemTime, u: SystemTime| u.duration_since(t).unwrap_or_default();
            format!(
                "{k:?} ({:?}): the write took {:?}, the read started {:?} after it returned \
                 and took {:?}",
                w.expiry,
                since(w.started, w.acked),
                since(w.acked, start),
                since(start, end),
            )
        };
        for k in got {
            assert!(
                matches(k),
                "{what}: returned {k:?}, which it does not cover"
            );
            match covered.iter().find(|(c, _, _)| c == k) {
                None => panic!("{what}: returned {k:?}, which the test never wrote or deleted"),
                Some((_, _, Fate::Gone)) => {
                    panic!("{what}: returned {}; it must have expired", report(k))
                }
                Some(_) => {}
            }
        }
        let maybe: Vec<&str> = covered
            .iter()
            .filter(|(_, _, f)| *f != Fate::Gone)
            .map(|(k, _, _)| *k)
            .collect();
        let decided = covered.iter().all(|(_, _, f)| *f != Fate::Either);
        if decided {
            let page: Vec<&str> = maybe
                .iter()
                .skip(offset)
                .take(if limit == 0 { usize::MAX } else { limit })
                .copied()
                .collect();
            if got != page {
                let missing: Vec<String> = page
                    .iter()
                    .filter(|k| !got.iter().any(|g| g == *k))
                    .map(|k| report(k))
                    .collect();
                panic!("{what}: returned {got:?}, must return {page:?}; missing: {missing:?}");
            }
        } else {
            // The undecided records leave a gap in the page; the rest is still checked.
            assert!(
                limit == 0 || got.len() <= limit,
                "{what}: {got:?} exceeds the limit"
            );
            let mut rest = maybe.iter();
            for k in got {
                assert!(rest.any(|m| m == k), "{what}: {got:?} is out of order");
            }
            if offset == 0 && limit == 0 {
                for (k, _, f) in &covered {
                    assert!(
                        *f != Fate::Live || got.iter().any(|g| g == k),
                        "{what}: missing {}; it must still be live",
                        report(k)
                    );
                }
            }
        }
        decided && covered.iter().all(|(_, w, f)| *f == w.nominal(self.slept))
    }
}

// ---------------------------------------------------------------------------------------
// micro/micro service/store/test/store_test.go
// ---------------------------------------------------------------------------------------

/// Ported from micro/micro `TestStoreReInit`.
async fn store_reinit(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default().table("aaa"));
    s.init(Options::default().table("bbb")).await.unwrap();
    assert_eq!(
        s.options().table,
        "bbb",
        "Init didn't reinitialise the store"
    );
}

/// Ported from micro/micro `TestStoreBasic`.
async fn store_basic(storage: Arc<dyn Storage>) {
    run_store_test(&adapter(storage, Options::default())).await;
}

/// Ported from micro/micro `TestStoreTable`.
async fn store_table(storage: Arc<dyn Storage>) {
    run_store_test(&adapter(storage, Options::default().table("testTable"))).await;
}

/// Ported from micro/micro `TestStoreDatabase`.
async fn store_database(storage: Arc<dyn Storage>) {
    run_store_test(&adapter(storage, Options::default().database("testdb"))).await;
}

/// Ported from micro/micro `TestStoreDatabaseTable`.
async fn store_database_table(storage: Arc<dyn Storage>) {
    let options = Options::default().database("testdb").table("testTable");
    run_store_test(&adapter(storage, options)).await;
}

/// micro/micro `runStoreTest`.
async fn run_store_test(s: &dyn Store) {
    let mut t = Ttls::default();
    expiry_tests(s, &mut t).await;
    suffix_prefix_expiry_tests(s, &mut t).await;
    read_tests(s, &mut t).await;
    list_tests(s, &mut t).await;
}

/// micro/micro `readTests`.
async fn read_tests(s: &dyn Store, t: &mut Ttls) {
    // Test Table, Suffix and WriteOptions
    t.write(s, "foofoobarbar", "something", Some(ms(100))).await;
    t.write(s, "foofoo", "something", Some(ms(100))).await;
    t.write(s, "barbar", "something", Some(ms(100))).await;

    let results = t
        .read(s, "barbar", ReadOptions::default().prefix().suffix())
        .await;
    results.assert_len(1, "ReadTests: Expected 1 results");

    t.sleep(ms(100)).await;

    // Go: `if len(results) != 0 { t.Fatal("Expiry options were not effective, results:", …) }`
    let results = t.list(s, ListOptions::default()).await;
    results.assert_len(0, "Expiry options were not effective");

    // write the following records
    for i in 0..10 {
        t.write(s, &format!("a{i}"), "", None).await;
    }

    // read back a few records
    let results = t
        .read(s, "a", ReadOptions::default().limit(5).prefix())
        .await;
    results.assert_len(5, "Expected 5 results");
    assert!(
        results.keys[0].starts_with('a'),
        "Expected a prefix, got {}",
        results.keys[0]
    );

    // read the rest back
    let results = t
        .read(s, "a", ReadOptions::default().limit(30).offset(5).prefix())
        .await;
    results.assert_len(5, "Expected 5 results");
}

/// micro/micro `listTests`.
async fn list_tests(s: &dyn Store, t: &mut Ttls) {
    for i in 0..10 {
        t.write(s, &format!("List{i}"), "bar", None).await;
    }

    let recs = t.list(s, ListOptions::default().prefix("List")).await;
    recs.assert_len(10, "Expected 10 records");

    let recs = t
        .list(s, ListOptions::default().prefix("List").limit(5))
        .await;
    recs.assert_len(5, "Expected 5 records");

    let recs = t
        .list(s, ListOptions::default().prefix("List").offset(6))
        .await;
    recs.assert_len(4, "Expected 4 records");

    let options = ListOptions::default().prefix("List").offset(6).limit(2);
    let recs = t.list(s, options).await;
    recs.assert_len(2, "Expected 2 records");

    for i in 0..10 {
        t.write(s, &format!("ListOffset{i}"), "bar", None).await;
    }

    let recs = t
        .list(s, ListOptions::default().prefix("ListOffset").offset(6))
        .await;
    recs.assert_len(4, "Expected 4 records");
}

/// micro/micro `expiryTests`.
async fn expiry_tests(s: &dyn Store, t: &mut Ttls) {
    // Read and Write an expiring Record
    t.write(s, "Hello", "World", Some(ms(150))).await;

    let r = t.read(s, "Hello", ReadOptions::default()).await;
    r.assert_len(1, "Read returned multiple records");
    if let Some(r) = r.records.first() {
        assert_eq!(r.key, "Hello");
        assert_eq!(&r.value[..], b"World");
    }

    // wait for expiry
    t.sleep(ms(200)).await;

    // Go: `if _, err := s.Read("Hello"); err != store.ErrNotFound` (no records here).
    let r = t.read(s, "Hello", ReadOptions::default()).await;
    r.assert_len(0, "Expected ErrNotFound");

    // exercise the records expiry
    t.write(s, "aaa", "bbb", Some(Duration::from_secs(1))).await;
    t.write(s, "aaaa", "bbb", Some(Duration::from_secs(1)))
        .await;
    t.write(s, "aaaaa", "bbb", Some(Duration::from_secs(1)))
        .await;
    let results = t.read(s, "a", ReadOptions::default().prefix()).await;
    results.assert_len(3, "Results should have returned 3 records");
    t.sleep(Duration::from_secs(1)).await;
    let results = t.read(s, "a", ReadOptions::default().prefix()).await;
    results.assert_len(0, "Results should have returned 0 records");
}

/// micro/micro `suffixPrefixExpiryTests`.
async fn suffix_prefix_expiry_tests(s: &dyn Store, t: &mut Ttls) {
    // Write 3 records with various expiry and get with Prefix
    t.write(s, "foo", "foofoo", None).await;
    let foobar = Some(Duration::from_secs(1));
    t.write(s, "foobar", "foobarfoobar", foobar).await;

    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(2, "Expected 2 items");

    // wait for the expiry
    t.sleep(Duration::from_secs(1)).await;

    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(1, "Expected 1 item");

    t.delete(s, "foo").await;

    // Go: `if results, err := s.Read("foo"); err != store.ErrNotFound` (and 0 results).
    let results = t.read(s, "foo", ReadOptions::default()).await;
    results.assert_len(0, "Expected ErrNotFound");

    // Write 3 records with various expiry and get with Suffix
    t.write(s, "foo", "foofoo", None).await;
    let barfoo = Some(Duration::from_secs(1));
    t.write(s, "barfoo", "barfoobarfoo", barfoo).await;
    let bazbarfoo = Some(Duration::from_secs(2));
    t.write(s, "bazbarfoo", "bazbarfoobazbarfoo", bazbarfoo)
        .await;

    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(3, "Expected 3 items");
    t.sleep(Duration::from_secs(1)).await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(2, "Expected 2 items");
    t.sleep(Duration::from_secs(1)).await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(1, "Expected 1 item");
    t.delete(s, "foo").await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(0, "Expected 0 items");
}

// ---------------------------------------------------------------------------------------
// go-micro v2 store/memory/memory_test.go
// ---------------------------------------------------------------------------------------

/// Ported from go-micro v2 `TestMemoryReInit`, adapted: Go re-initialised with an empty
/// table and expected `Options().Table` to be empty. Names are validated here (DESIGN.md
/// section 6), so an empty table is `InvalidName` and leaves the options as they were;
/// re-initialising with a real table is micro/micro's `TestStoreReInit` above.
async fn memory_reinit(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default().table("aaa"));
    let err = s.init(Options::default().table("")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
    assert_eq!(s.options().table, "aaa");
}

/// Ported from go-micro v2 `TestMemoryBasic`.
async fn memory_basic(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default());
    s.init(Options::default()).await.unwrap();
    basictest(&s).await;
}

/// Ported from go-micro v2 `TestMemoryPrefix`.
async fn memory_prefix(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default());
    s.init(Options::default().table("some-prefix"))
        .await
        .unwrap();
    basictest(&s).await;
}

/// Ported from go-micro v2 `TestMemoryNamespace`.
async fn memory_namespace(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default());
    s.init(Options::default().database("some-namespace"))
        .await
        .unwrap();
    basictest(&s).await;
}

/// Ported from go-micro v2 `TestMemoryNamespacePrefix`.
async fn memory_namespace_prefix(storage: Arc<dyn Storage>) {
    let s = adapter(storage, Options::default());
    s.init(
        Options::default()
            .table("some-prefix")
            .database("some-namespace"),
    )
    .await
    .unwrap();
    basictest(&s).await;
}

/// go-micro v2 `basictest`.
async fn basictest(s: &dyn Store) {
    let mut t = Ttls::default();
    // Read and Write an expiring Record
    t.write(s, "Hello", "World", Some(ms(100))).await;
    let r = t.read(s, "Hello", ReadOptions::default()).await;
    r.assert_len(1, "Read returned multiple records");
    if let Some(r) = r.records.first() {
        assert_eq!(r.key, "Hello");
        assert_eq!(&r.value[..], b"World");
    }
    t.sleep(ms(200)).await;
    // Go: `if _, err := s.Read("Hello"); err != store.ErrNotFound { t.Error("Expiry didn't happen") }`
    let r = t.read(s, "Hello", ReadOptions::default()).await;
    r.assert_len(0, "Expiry didn't happen");

    // Write 3 records with various expiry and get with prefix
    t.write(s, "foo", "foofoo", None).await;
    t.write(s, "foobar", "foobarfoobar", Some(ms(100))).await;
    t.write(s, "foobarbaz", "foobarbazfoobarbaz", Some(ms(200)))
        .await;
    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(3, "Expected 3 items");
    t.sleep(ms(100)).await;
    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(2, "Expected 2 items");
    t.sleep(ms(100)).await;
    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(1, "Expected 1 item");
    t.delete(s, "foo").await;
    let results = t.read(s, "foo", ReadOptions::default().prefix()).await;
    results.assert_len(0, "Expected 0 items");

    // Write 3 records with various expiry and get with Suffix
    t.write(s, "foo", "foofoo", None).await;
    t.write(s, "barfoo", "barfoobarfoo", Some(ms(100))).await;
    t.write(s, "bazbarfoo", "bazbarfoobazbarfoo", Some(ms(200)))
        .await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(3, "Expected 3 items");
    t.sleep(ms(100)).await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(2, "Expected 2 items");
    t.sleep(ms(100)).await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(1, "Expected 1 item");
    t.delete(s, "foo").await;
    let results = t.read(s, "foo", ReadOptions::default().suffix()).await;
    results.assert_len(0, "Expected 0 items");

    // Test Prefix, Suffix and WriteOptions
    t.write_with(
        s,
        Record::new("foofoobarbar", "something"),
        WriteOptions::default().ttl(ms(100)),
        Expiry::Ttl(ms(100)),
    )
    .await;
    let at = SystemTime::now() + ms(100);
    t.write_with(
        s,
        Record::new("foofoo", "something"),
        WriteOptions::default().expiry(at),
        Expiry::At(at),
    )
    .await;
    t.write_with(
        s,
        Record::new("barbar", "something"),
        // TTL has higher precedence than expiry
        WriteOptions::default()
            .expiry(SystemTime::now() + Duration::from_secs(3600))
            .ttl(ms(100)),
        Expiry::Ttl(ms(100)),
    )
    .await;
    let results = t
        .read(s, "foo", ReadOptions::default().prefix().suffix())
        .await;
    results.assert_len(1, "Expected 1 results");
    t.sleep(ms(100)).await;
    let results = t.list(s, ListOptions::default()).await;
    results.assert_len(0, "Expiry options were not effective");

    t.write(s, "a", "a", None).await;
    t.write(s, "aa", "aa", None).await;
    t.write(s, "aaa", "aaa", None).await;
    let results = t.read(s, "b", ReadOptions::default().prefix()).await;
    results.assert_len(0, "Expected 0 results");

    // Go: `s.Close() // reset the store` (go-micro v2's memory Close flushed the data and
    // left the store usable). Here disconnect closes the storage for good, so the reset
    // deletes every key instead.
    for key in s.list(ListOptions::default()).await.unwrap() {
        t.delete(s, &key).await;
    }
    for i in 0..10 {
        t.write(s, &format!("a{i}"), "", None).await;
    }
    let results = t
        .read(s, "a", ReadOptions::default().limit(5).prefix())
        .await;
    results.assert_len(5, "Expected 5 results");
    assert_eq!(results.keys[0], "a0");
    assert_eq!(results.keys[4], "a4");
    let results = t
        .read(s, "a", ReadOptions::default().limit(30).offset(5).prefix())
        .await;
    results.assert_len(5, "Expected 5 results");
}

// ---------------------------------------------------------------------------------------
// go-micro store/scope_test.go
// ---------------------------------------------------------------------------------------

/// Ported from go-micro `TestScopeIsolatesTables`.
async fn scope_isolates_tables(storage: Arc<dyn Storage>) {
    let base: Arc<dyn Store> = Arc::new(StoreAdapter::new(storage));

    let a = Scoped::new(base.clone(), "agent", "one").unwrap();
    let b = Scoped::new(base.clone(), "agent", "two").unwrap();

    a.write(Record::new("history", "A"), WriteOptions::default())
        .await
        .expect("write a");
    b.write(Record::new("history", "B"), WriteOptions::default())
        .await
        .expect("write b");

    // Same key, different scopes — the values must not collide.
    let recs = a.read("history", ReadOptions::default()).await.unwrap();
    assert!(
        recs.len() == 1 && &recs[0].value[..] == b"A",
        "scope a read = {recs:?}"
    );
    let recs = b.read("history", ReadOptions::default()).await.unwrap();
    assert!(
        recs.len() == 1 && &recs[0].value[..] == b"B",
        "scope b read = {recs:?}"
    );

    // List is confined to the scope.
    let keys = a.list(ListOptions::default()).await.unwrap();
    assert_eq!(keys.len(), 1, "scope a list = {keys:?}, want 1 key");
}

stack_tests_at_once!(
    store_reinit,
    store_basic,
    store_table,
    store_database,
    store_database_table,
    memory_reinit,
    memory_basic,
    memory_prefix,
    memory_namespace,
    memory_namespace_prefix,
    scope_isolates_tables,
);
