//! Cases for `wait_for_version_change`: immediate answers, wake-ups by every kind of change, cancellation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Record, Storage};

/// `wait_for_version_change` on a missing, deleted or expired key returns `NotFound` at once.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_on_missing_key_is_not_found_at_once(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_on_missing_key_is_not_found_at_once<S: Storage>(store: S) {
    expect_not_found(
        "wait on a never-written key",
        within(
            "wait on a missing key",
            store.wait_for_version_change("nope", "1"),
        )
        .await,
    );
    let stored = ok("put", store.put(Record::new("deleted", "v")).await);
    ok("delete", store.delete("deleted").await);
    expect_not_found(
        "wait on a deleted key with its last version",
        within(
            "wait on a deleted key",
            store.wait_for_version_change("deleted", &stored.version),
        )
        .await,
    );
    write_expired(&store, &["expired"]).await;
    expect_not_found(
        "wait on an expired key",
        within(
            "wait on an expired key",
            store.wait_for_version_change("expired", ""),
        )
        .await,
    );
}

/// `wait_for_version_change` returns `Ok` at once when the live version differs (empty and old versions included).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_with_differing_version_returns_at_once(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_with_differing_version_returns_at_once<S: Storage>(store: S) {
    let first = ok("put", store.put(Record::new("k", "one")).await);
    ok("put again", store.put(Record::new("k", "two")).await);
    for version in [first.version.as_str(), "", "not-a-version"] {
        let result = within(
            "wait with a differing version",
            store.wait_for_version_change("k", version),
        )
        .await;
        assert!(
            result.is_ok(),
            "wait with differing version {version:?}: expected Ok at once, got {result:?}"
        );
    }
}

/// A waiter is woken with `Ok` by a `put` of its key (same value included), and not by a write to another key.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_is_woken_by_put(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_is_woken_by_put<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("before any write", &mut waiter).await;
    ok(
        "put of another key",
        store.put(Record::new("k2", "x")).await,
    );
    assert_still_waiting("after a put of another key", &mut waiter).await;
    ok(
        "put of the same value",
        store.put(Record::new("k", "v")).await,
    );
    let result = join("the waiter after a put", waiter).await;
    assert!(
        result.is_ok(),
        "a put must wake the waiter with Ok, got {result:?}"
    );
}

/// A waiter is woken with `Ok` by a `put_many` that writes its key.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_is_woken_by_put_many(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_is_woken_by_put_many<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("before any write", &mut waiter).await;
    ok(
        "put_many",
        store
            .put_many(vec![Record::new("a", "1"), Record::new("k", "2")])
            .await,
    );
    let result = join("the waiter after put_many", waiter).await;
    assert!(
        result.is_ok(),
        "put_many must wake the waiter with Ok, got {result:?}"
    );
}

/// A waiter is woken with `Ok` by a successful `cas_by_version`, and not by a conflicting one.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_is_woken_by_cas(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_is_woken_by_cas<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("before any write", &mut waiter).await;
    expect_conflict(
        "cas with a wrong version",
        store
            .cas_by_version(Record::new("k", "x").with_version("wrong"))
            .await,
    );
    assert_still_waiting("after a conflicting cas", &mut waiter).await;
    ok(
        "cas",
        store
            .cas_by_version(Record::new("k", "w").with_version(version))
            .await,
    );
    let result = join("the waiter after cas", waiter).await;
    assert!(
        result.is_ok(),
        "a cas must wake the waiter with Ok, got {result:?}"
    );
}

/// A waiter is woken with `NotFound` when its key is deleted.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_is_woken_by_delete_with_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_is_woken_by_delete_with_not_found<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("before the delete", &mut waiter).await;
    ok("delete", store.delete("k").await);
    expect_not_found(
        "the waiter after a delete",
        join("the waiter after a delete", waiter).await,
    );
}

/// A waiter is woken with `NotFound` when its key expires (200 ms TTL), with nobody reading the key.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::wait_is_woken_by_expiry_with_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn wait_is_woken_by_expiry_with_not_found<S: Storage>(store: S) {
    const SLACK: Duration = Duration::from_millis(50);
    let store = Arc::new(store);
    let record = Record::new("k", "v").with_ttl(Duration::from_millis(200));
    let at = record.expires_at.expect("with_ttl sets an expiry");
    let version = ok("put with a 200ms TTL", store.put(record).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    tokio::time::sleep(SETTLE).await;
    if SystemTime::now() + SLACK < at {
        assert_still_waiting("before the expiry", &mut waiter).await;
    }
    let result = join("the waiter on an expiring key", waiter).await;
    let woke = SystemTime::now();
    expect_not_found("the waiter after expiry", result);
    assert!(
        woke + SLACK >= at,
        "the waiter got NotFound {:?} before the key expired",
        at.duration_since(woke).unwrap_or_default()
    );
}

/// 100 waiters on one key are all woken with `Ok` by a single `put`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::many_waiters_are_all_woken_by_one_put(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn many_waiters_are_all_woken_by_one_put<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiters: Vec<_> = (0..100)
        .map(|_| spawn_wait(&store, "k", &version))
        .collect();
    tokio::time::sleep(SETTLE).await;
    for (i, waiter) in waiters.iter_mut().enumerate() {
        assert_not_returned(&format!("waiter {i} before the put"), waiter).await;
    }
    ok("put", store.put(Record::new("k", "w")).await);
    for (i, waiter) in waiters.into_iter().enumerate() {
        let result = join(&format!("waiter {i} after one put"), waiter).await;
        assert!(
            result.is_ok(),
            "waiter {i}: expected Ok after the put, got {result:?}"
        );
    }
}

/// A wait cancelled by `tokio::time::timeout` leaves the store working, and later waits on the key are woken.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::cancelled_wait_leaves_the_store_working(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn cancelled_wait_leaves_the_store_working<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        store.wait_for_version_change("k", &version),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "a wait on an unchanged key returned {cancelled:?} instead of waiting"
    );
    let stored = ok(
        "put after a cancelled wait",
        store.put(Record::new("k", "w")).await,
    );
    let got = ok("get after a cancelled wait", store.get("k").await);
    assert_eq!(got.version, stored.version, "get after a cancelled wait");
    let mut waiter = spawn_wait(&store, "k", &stored.version);
    assert_still_waiting("a new wait after a cancelled one", &mut waiter).await;
    ok("put", store.put(Record::new("k", "x")).await);
    let result = join("the waiter after a cancelled one", waiter).await;
    assert!(result.is_ok(), "expected Ok after the put, got {result:?}");
}

/// 100,000 cancelled waits on one key do not return early, leave the key unchanged, and a real wait after them is woken.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::many_cancelled_waits_then_a_real_wait_is_woken(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn many_cancelled_waits_then_a_real_wait_is_woken<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    for round in 0..100 {
        let waits = (0..1000).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(1),
                store.wait_for_version_change("k", &version),
            )
        });
        let results = within("1000 cancelled waits", futures::future::join_all(waits)).await;
        for result in results {
            assert!(
                result.is_err(),
                "round {round}: a wait on an unchanged key returned {result:?}"
            );
        }
    }
    let got = ok("get after the cancelled waits", store.get("k").await);
    assert_eq!(got.version, version, "cancelled waits changed the key");
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("the real wait", &mut waiter).await;
    ok("put", store.put(Record::new("k", "w")).await);
    let result = join("the real wait after 100,000 cancelled ones", waiter).await;
    assert!(result.is_ok(), "expected Ok after the put, got {result:?}");
}
