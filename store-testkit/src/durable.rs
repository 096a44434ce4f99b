//! Cases for durable backends: what was acknowledged before `close` is there after the
//! backend is reopened on the same data (through the `reopen` factory the test file gives),
//! with the same versions, and no version is handed out twice across reopens.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Error, Record, Storage};

/// Closes `store` and reopens it through `reopen`.
async fn close_and_reopen<S, R, F>(store: S, reopen: &mut R, what: &str) -> S
where
    S: Storage,
    R: FnMut(S) -> F,
    F: Future<Output = S>,
{
    ok(
        &format!("close before {what}"),
        within("close", store.close()).await,
    );
    within(what, reopen(store)).await
}

/// Checks that `store` holds exactly `expected` (value, version, expiry), and that `absent`
/// keys are missing.
async fn assert_holds<S: Storage>(
    store: &S,
    expected: &BTreeMap<String, Record>,
    absent: &[&str],
    what: &str,
) {
    for (key, record) in expected {
        let got = ok(&format!("{what}: get({key:?})"), store.get(key).await);
        assert_record(&format!("{what}: get({key:?})"), &got, key, &record.value);
        assert!(
            got.version == record.version,
            "{what}: {key:?} has version {:?}, it had {:?} before",
            got.version,
            record.version
        );
        assert_expiry(
            &format!("{what}: {key:?}"),
            got.expires_at,
            record.expires_at,
        );
    }
    for key in absent {
        expect_not_found(&format!("{what}: get({key:?})"), store.get(key).await);
    }
    let mut keys: Vec<&str> = expected.keys().map(String::as_str).collect();
    keys.extend(absent);
    let many = ok(&format!("{what}: get_many"), store.get_many(&keys).await);
    for (key, got) in keys.iter().zip(&many) {
        let want = expected.get(*key);
        let same = match (got, want) {
            (None, None) => true,
            (Some(got), Some(want)) => got.value == want.value && got.version == want.version,
            _ => false,
        };
        assert!(
            same,
            "{what}: get_many position {key:?} is {got:?}, expected {want:?}"
        );
    }
    let listed = list(store, "*").await;
    assert_same_keys(
        &format!("{what}: list_keys(\"*\")"),
        &listed,
        &expected.keys().collect::<Vec<_>>(),
    );
}

/// Records of every kind of write (create, put with and without expiry, put_many, cas, binary, empty and 256 KiB values, unicode keys) come back after close and reopen with their values, versions and expiries; deleted and expired ones stay gone; the store then takes writes (twice over).
///
/// ```no_run
/// # async fn open_store() -> store_core::runtime::ActorHandle { unimplemented!() }
/// # async fn reopen(closed: store_core::runtime::ActorHandle) -> store_core::runtime::ActorHandle { unimplemented!() }
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores of
/// // a durable backend and a way to open a closed one again on the same data:
/// store_testkit::run(|| async {
///     store_testkit::reopen_keeps_every_record_with_its_version(open_store().await, reopen).await;
/// });
/// ```
pub async fn reopen_keeps_every_record_with_its_version<S, R, F>(store: S, mut reopen: R)
where
    S: Storage,
    R: FnMut(S) -> F,
    F: Future<Output = S>,
{
    let far = SystemTime::now() + Duration::from_secs(3600);
    let a = ok("put a", store.put(Record::new("a", "alpha")).await);
    ok(
        "put b with an expiry",
        store
            .put(Record::new("b", vec![0u8, 1, 2, 255]).with_expires_at(far))
            .await,
    );
    ok(
        "put of 256 KiB",
        store.put(Record::new("big", noise(256 << 10, 3))).await,
    );
    ok(
        "put_many",
        store
            .put_many(vec![
                Record::new("m/1", "one"),
                Record::new("m/2", "two"),
                Record::new("m/1", "one again"),
            ])
            .await,
    );
    ok("put gone", store.put(Record::new("gone", "x")).await);
    ok("delete gone", store.delete("gone").await);
    let soon = Record::new("soon", "x").with_ttl(Duration::from_millis(100));
    let soon_at = soon.expires_at.expect("with_ttl sets an expiry");
    ok("put soon with a 100ms TTL", store.put(soon).await);
    ok("create c", store.create(Record::new("c", "made")).await);
    ok(
        "cas a",
        store
            .cas_by_version(Record::new("a", "alpha2").with_version(a.version))
            .await,
    );
    ok(
        "put of a unicode key",
        store.put(Record::new("日本/キー", "ü")).await,
    );
    ok(
        "put of an empty value",
        store.put(Record::new("e", "")).await,
    );
    let keys = ["a", "b", "big", "c", "e", "m/1", "m/2", "日本/キー"];
    let mut expected = BTreeMap::new();
    for key in keys {
        let got = ok(&format!("get({key:?}) before close"), store.get(key).await);
        expected.insert(key.to_owned(), got);
    }
    let absent = ["gone", "soon"];

    let store = close_and_reopen(store, &mut reopen, "the first reopen").await;
    sleep_past(soon_at).await;
    assert_holds(&store, &expected, &absent, "after the first reopen").await;

    // The reopened store takes writes that build on what it recovered.
    let live_a = expected["a"].clone();
    let a3 = ok(
        "cas a after reopen, with its recovered version",
        store
            .cas_by_version(Record::new("a", "alpha3").with_version(live_a.version.clone()))
            .await,
    );
    assert_ne!(
        a3.version, live_a.version,
        "cas after reopen kept the version"
    );
    expected.insert("a".to_owned(), a3);
    match store.create(Record::new("c", "again")).await {
        Err(Error::AlreadyExists(live)) => assert_eq!(
            *live, expected["c"],
            "create after reopen: AlreadyExists carries another record"
        ),
        other => {
            panic!("create of a recovered key: expected Err(AlreadyExists(..)), got {other:?}")
        }
    }
    ok("delete m/2 after reopen", store.delete("m/2").await);
    expected.remove("m/2");

    let store = close_and_reopen(store, &mut reopen, "the second reopen").await;
    assert_holds(
        &store,
        &expected,
        &["gone", "soon", "m/2"],
        "after the second reopen",
    )
    .await;
}

/// No version is handed out twice across three close-and-reopen cycles of 50 writes each, not even after the key holding the highest version was deleted before closing.
///
/// ```no_run
/// # async fn open_store() -> store_core::runtime::ActorHandle { unimplemented!() }
/// # async fn reopen(closed: store_core::runtime::ActorHandle) -> store_core::runtime::ActorHandle { unimplemented!() }
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores of
/// // a durable backend and a way to open a closed one again on the same data:
/// store_testkit::run(|| async {
///     store_testkit::reopen_never_reuses_a_version(open_store().await, reopen).await;
/// });
/// ```
pub async fn reopen_never_reuses_a_version<S, R, F>(store: S, mut reopen: R)
where
    S: Storage,
    R: FnMut(S) -> F,
    F: Future<Output = S>,
{
    let mut seen = HashSet::new();
    let mut store = store;
    for cycle in 0..3 {
        let what = |n: usize, op: &str| format!("cycle {cycle}, write {n}: {op}");
        let mut last = String::new();
        for n in 0..50 {
            let version = match n % 4 {
                0 => {
                    ok(
                        &what(n, "put"),
                        store.put(Record::new("k", n.to_string())).await,
                    )
                    .version
                }
                1 => {
                    let next = Record::new("k", n.to_string()).with_version(last.clone());
                    ok(&what(n, "cas"), store.cas_by_version(next).await).version
                }
                2 => {
                    let records = vec![Record::new("k", n.to_string()), Record::new("j", "x")];
                    ok(&what(n, "put_many"), store.put_many(records).await);
                    let j = ok(&what(n, "get j"), store.get("j").await).version;
                    fresh(&mut seen, &j, &what(n, "put_many of j"));
                    ok(&what(n, "get k"), store.get("k").await).version
                }
                _ => {
                    ok(&what(n, "delete"), store.delete("k").await);
                    ok(
                        &what(n, "create"),
                        store.create(Record::new("k", n.to_string())).await,
                    )
                }
            };
            fresh(&mut seen, &version, &what(n, "the write's version"));
            last = version;
        }
        // The key written last holds the highest version; deleting it must not let the
        // reopened store count from a lower one.
        let top = ok("put top", store.put(Record::new("top", "x")).await).version;
        fresh(&mut seen, &top, &format!("cycle {cycle}: put top"));
        ok("delete top", store.delete("top").await);
        store = close_and_reopen(store, &mut reopen, &format!("reopen {cycle}")).await;
        let k = ok("get k after reopen", store.get("k").await);
        assert!(
            k.version == last,
            "cycle {cycle}: k has version {:?} after reopen, {last:?} before",
            k.version
        );
    }
}
