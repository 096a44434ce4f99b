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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use store_compat::{
    DeleteOptions, Error, ListOptions, Options, ReadOptions, Record, Scoped, Store, StoreAdapter,
    WriteOptions,
};
use store_core::Storage;
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn adapter(storage: Arc<dyn Storage>, options: Options) -> StoreAdapter<Arc<dyn Storage>> {
    StoreAdapter::with_options(storage, options).expect("valid options")
}

async fn write(s: &dyn Store, key: &str, value: &str, expiry: Option<Duration>) {
    let mut record = Record::new(key, value.to_owned());
    record.expiry = expiry;
    s.write(record, WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("Couldn't write k: {key} ({e})"));
}

async fn read_len(s: &dyn Store, key: &str, opts: ReadOptions) -> usize {
    s.read(key, opts)
        .await
        .unwrap_or_else(|e| panic!("Couldn't read all {key:?} keys ({e})"))
        .len()
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
    expiry_tests(s).await;
    suffix_prefix_expiry_tests(s).await;
    read_tests(s).await;
    list_tests(s).await;
}

/// micro/micro `readTests`.
async fn read_tests(s: &dyn Store) {
    // Test Table, Suffix and WriteOptions
    write(s, "foofoobarbar", "something", Some(ms(100))).await;
    write(s, "foofoo", "something", Some(ms(100))).await;
    write(s, "barbar", "something", Some(ms(100))).await;

    let n = read_len(s, "barbar", ReadOptions::default().prefix().suffix()).await;
    assert_eq!(n, 1, "ReadTests: Expected 1 results, got {n}");

    sleep(ms(100)).await;

    let results = s.list(ListOptions::default()).await.expect("List failed");
    assert!(
        results.is_empty(),
        "Expiry options were not effective, results: {results:?}"
    );

    // write the following records
    for i in 0..10 {
        write(s, &format!("a{i}"), "", None).await;
    }

    // read back a few records
    let results = s
        .read("a", ReadOptions::default().limit(5).prefix())
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "Expected 5 results");
    assert!(
        results[0].key.starts_with('a'),
        "Expected a prefix, got {}",
        results[0].key
    );

    // read the rest back
    let results = s
        .read("a", ReadOptions::default().limit(30).offset(5).prefix())
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "Expected 5 results");
}

/// micro/micro `listTests`.
async fn list_tests(s: &dyn Store) {
    for i in 0..10 {
        write(s, &format!("List{i}"), "bar", None).await;
    }

    let list = |opts: ListOptions| async move {
        s.list(opts)
            .await
            .unwrap_or_else(|e| panic!("Error listing records {e}"))
    };

    let recs = list(ListOptions::default().prefix("List")).await;
    assert_eq!(recs.len(), 10, "Expected 10 records");

    let recs = list(ListOptions::default().prefix("List").limit(5)).await;
    assert_eq!(recs.len(), 5, "Expected 5 records");

    let recs = list(ListOptions::default().prefix("List").offset(6)).await;
    assert_eq!(recs.len(), 4, "Expected 4 records, received {recs:?}");

    let recs = list(ListOptions::default().prefix("List").offset(6).limit(2)).await;
    assert_eq!(recs.len(), 2, "Expected 2 records, received {recs:?}");

    for i in 0..10 {
        write(s, &format!("ListOffset{i}"), "bar", None).await;
    }

    let recs = list(ListOptions::default().prefix("ListOffset").offset(6)).await;
    assert_eq!(recs.len(), 4, "Expected 4 records, received {recs:?}");
}

/// micro/micro `expiryTests`.
async fn expiry_tests(s: &dyn Store) {
    // Read and Write an expiring Record
    write(s, "Hello", "World", Some(ms(150))).await;

    let r = s.read("Hello", ReadOptions::default()).await.unwrap();
    assert_eq!(r.len(), 1, "Read returned multiple records");
    assert_eq!(r[0].key, "Hello");
    assert_eq!(&r[0].value[..], b"World");

    // wait for expiry
    sleep(ms(200)).await;

    assert!(matches!(
        s.read("Hello", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));

    // exercise the records expiry
    write(s, "aaa", "bbb", Some(Duration::from_secs(1))).await;
    write(s, "aaaa", "bbb", Some(Duration::from_secs(1))).await;
    write(s, "aaaaa", "bbb", Some(Duration::from_secs(1))).await;
    let n = read_len(s, "a", ReadOptions::default().prefix()).await;
    assert_eq!(n, 3, "Results should have returned 3 records, returned {n}");
    sleep(Duration::from_secs(1)).await;
    let n = read_len(s, "a", ReadOptions::default().prefix()).await;
    assert_eq!(n, 0, "Results should have returned 0 records");
}

/// micro/micro `suffixPrefixExpiryTests`.
async fn suffix_prefix_expiry_tests(s: &dyn Store) {
    // Write 3 records with various expiry and get with Prefix
    write(s, "foo", "foofoo", None).await;
    write(s, "foobar", "foobarfoobar", Some(Duration::from_secs(1))).await;

    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 2, "Expected 2 items, got {n}");

    // wait for the expiry
    sleep(Duration::from_secs(1)).await;

    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 1, "Expected 1 item, got {n}");

    s.delete("foo", DeleteOptions::default())
        .await
        .expect("Delete failed");

    // Go: `if results, err := s.Read("foo"); err != store.ErrNotFound` (and 0 results).
    assert!(matches!(
        s.read("foo", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));

    // Write 3 records with various expiry and get with Suffix
    write(s, "foo", "foofoo", None).await;
    write(s, "barfoo", "barfoobarfoo", Some(Duration::from_secs(1))).await;
    write(
        s,
        "bazbarfoo",
        "bazbarfoobazbarfoo",
        Some(Duration::from_secs(2)),
    )
    .await;

    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 3, "Expected 3 items, got {n}");
    sleep(Duration::from_secs(1)).await;
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 2, "Expected 2 items, got {n}");
    sleep(Duration::from_secs(1)).await;
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 1, "Expected 1 item, got {n}");
    s.delete("foo", DeleteOptions::default())
        .await
        .expect("Delete failed");
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 0, "Expected 0 items, got {n}");
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
    // Read and Write an expiring Record
    write(s, "Hello", "World", Some(ms(100))).await;
    let r = s.read("Hello", ReadOptions::default()).await.unwrap();
    assert_eq!(r.len(), 1, "Read returned multiple records");
    assert_eq!(r[0].key, "Hello");
    assert_eq!(&r[0].value[..], b"World");
    sleep(ms(200)).await;
    assert!(matches!(
        s.read("Hello", ReadOptions::default()).await,
        Err(Error::NotFound)
    ));

    // Write 3 records with various expiry and get with prefix
    write(s, "foo", "foofoo", None).await;
    write(s, "foobar", "foobarfoobar", Some(ms(100))).await;
    write(s, "foobarbaz", "foobarbazfoobarbaz", Some(ms(200))).await;
    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 3, "Expected 3 items, got {n}");
    sleep(ms(100)).await;
    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 2, "Expected 2 items, got {n}");
    sleep(ms(100)).await;
    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 1, "Expected 1 item, got {n}");
    s.delete("foo", DeleteOptions::default())
        .await
        .expect("Delete failed");
    let n = read_len(s, "foo", ReadOptions::default().prefix()).await;
    assert_eq!(n, 0, "Expected 0 items, got {n}");

    // Write 3 records with various expiry and get with Suffix
    write(s, "foo", "foofoo", None).await;
    write(s, "barfoo", "barfoobarfoo", Some(ms(100))).await;
    write(s, "bazbarfoo", "bazbarfoobazbarfoo", Some(ms(200))).await;
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 3, "Expected 3 items, got {n}");
    sleep(ms(100)).await;
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 2, "Expected 2 items, got {n}");
    sleep(ms(100)).await;
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 1, "Expected 1 item, got {n}");
    s.delete("foo", DeleteOptions::default())
        .await
        .expect("Delete failed");
    let n = read_len(s, "foo", ReadOptions::default().suffix()).await;
    assert_eq!(n, 0, "Expected 0 items, got {n}");

    // Test Prefix, Suffix and WriteOptions
    s.write(
        Record::new("foofoobarbar", "something"),
        WriteOptions::default().ttl(ms(100)),
    )
    .await
    .unwrap();
    s.write(
        Record::new("foofoo", "something"),
        WriteOptions::default().expiry(SystemTime::now() + ms(100)),
    )
    .await
    .unwrap();
    s.write(
        Record::new("barbar", "something"),
        // TTL has higher precedence than expiry
        WriteOptions::default()
            .expiry(SystemTime::now() + Duration::from_secs(3600))
            .ttl(ms(100)),
    )
    .await
    .unwrap();
    let results = s
        .read("foo", ReadOptions::default().prefix().suffix())
        .await
        .unwrap();
    assert_eq!(results.len(), 1, "Expected 1 results, got {results:?}");
    sleep(ms(100)).await;
    let results = s.list(ListOptions::default()).await.expect("List failed");
    assert!(results.is_empty(), "Expiry options were not effective");

    write(s, "a", "a", None).await;
    write(s, "aa", "aa", None).await;
    write(s, "aaa", "aaa", None).await;
    let n = read_len(s, "b", ReadOptions::default().prefix()).await;
    assert_eq!(n, 0, "Expected 0 results, got {n}");

    // Go: `s.Close() // reset the store` (go-micro v2's memory Close flushed the data and
    // left the store usable). Here disconnect closes the storage for good, so the reset
    // deletes every key instead.
    for key in s.list(ListOptions::default()).await.unwrap() {
        s.delete(&key, DeleteOptions::default()).await.unwrap();
    }
    for i in 0..10 {
        write(s, &format!("a{i}"), "", None).await;
    }
    let results = s
        .read("a", ReadOptions::default().limit(5).prefix())
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "Expected 5 results");
    assert_eq!(results[0].key, "a0");
    assert_eq!(results[4].key, "a4");
    let results = s
        .read("a", ReadOptions::default().limit(30).offset(5).prefix())
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "Expected 5 results");
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

stack_tests!(
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
