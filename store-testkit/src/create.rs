//! Cases for `create`: new keys, live keys (`AlreadyExists` with the live record), given versions, re-create after delete.

use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Error, Record, Storage};

/// `create` on a new key stores the record (with or without expiry) and returns a non-empty version that `get` reports.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::create_stores_a_new_record(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn create_stores_a_new_record<S: Storage>(store: S) {
    let version = ok(
        "create(\"user/1\")",
        store.create(Record::new("user/1", "alice")).await,
    );
    assert!(!version.is_empty(), "create returned an empty version");
    let got = ok("get(\"user/1\") after create", store.get("user/1").await);
    assert_record("get after create", &got, "user/1", b"alice");
    assert_eq!(got.version, version, "get's version differs from create's");
    assert_expiry("get after create without expiry", got.expires_at, None);

    let at = SystemTime::now() + Duration::from_secs(3600);
    let version = ok(
        "create(\"user/2\") with expiry",
        store
            .create(Record::new("user/2", "bob").with_expires_at(at))
            .await,
    );
    let got = ok("get(\"user/2\")", store.get("user/2").await);
    assert_record("get after create with expiry", &got, "user/2", b"bob");
    assert_eq!(got.version, version, "get's version differs from create's");
    assert_expiry("get after create with expiry", got.expires_at, Some(at));
}

/// `create` on a live key fails with `AlreadyExists` carrying the live record, and changes nothing.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::create_on_live_key_is_already_exists(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn create_on_live_key_is_already_exists<S: Storage>(store: S) {
    let version = ok("create", store.create(Record::new("lock", "first")).await);
    let at = SystemTime::now() + Duration::from_secs(60);
    match store
        .create(Record::new("lock", "second").with_expires_at(at))
        .await
    {
        Err(Error::AlreadyExists(live)) => {
            assert_record("the record in AlreadyExists", &live, "lock", b"first");
            assert_eq!(
                live.version, version,
                "AlreadyExists carries a wrong version"
            );
            assert_expiry("the record in AlreadyExists", live.expires_at, None);
        }
        other => panic!("create on a live key: expected Err(AlreadyExists(..)), got {other:?}"),
    }
    let got = ok("get after the refused create", store.get("lock").await);
    assert_record("get after the refused create", &got, "lock", b"first");
    assert_eq!(got.version, version, "a refused create changed the version");
    assert_expiry("get after the refused create", got.expires_at, None);

    // A key written by put is just as live.
    let put = ok("put", store.put(Record::new("by-put", "p")).await);
    match store.create(Record::new("by-put", "c")).await {
        Err(Error::AlreadyExists(live)) => {
            assert_record("AlreadyExists over a put", &live, "by-put", b"p");
            assert_eq!(
                live.version, put.version,
                "AlreadyExists carries a wrong version"
            );
        }
        other => panic!("create over a put key: expected Err(AlreadyExists(..)), got {other:?}"),
    }
}

/// `create`, `put` and `put_many` ignore the version in the record they are given.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::create_ignores_the_given_version(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn create_ignores_the_given_version<S: Storage>(store: S) {
    const GIVEN: &str = "caller-supplied-version";
    let version = ok(
        "create with a version set",
        store
            .create(Record::new("a", "1").with_version(GIVEN))
            .await,
    );
    assert_ne!(version, GIVEN, "create stored the caller's version");
    assert_eq!(ok("get", store.get("a").await).version, version);

    let stored = ok(
        "put with a version set",
        store.put(Record::new("b", "1").with_version(GIVEN)).await,
    );
    assert_ne!(stored.version, GIVEN, "put stored the caller's version");
    assert!(!stored.version.is_empty(), "put returned an empty version");

    ok(
        "put_many with a version set",
        store
            .put_many(vec![Record::new("c", "1").with_version(GIVEN)])
            .await,
    );
    let got = ok("get after put_many", store.get("c").await);
    assert_ne!(got.version, GIVEN, "put_many stored the caller's version");
    assert!(!got.version.is_empty(), "put_many stored an empty version");
}

/// `create` after `delete` succeeds with a version different from the deleted one.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::create_after_delete_succeeds(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn create_after_delete_succeeds<S: Storage>(store: S) {
    let first = ok("create", store.create(Record::new("k", "one")).await);
    ok("delete", store.delete("k").await);
    let second = ok(
        "create after delete",
        store.create(Record::new("k", "two")).await,
    );
    assert_ne!(
        first, second,
        "re-create reused the deleted record's version"
    );
    let got = ok("get after re-create", store.get("k").await);
    assert_record("get after re-create", &got, "k", b"two");
    assert_eq!(got.version, second);
}
