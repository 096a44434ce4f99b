//! Cases for expiry: an expired record is invisible to every operation.

use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Record, Storage};

/// A record whose expiry has passed is invisible to `get`, while a record with a future expiry is visible.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::expired_record_is_invisible_to_get(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn expired_record_is_invisible_to_get<S: Storage>(store: S) {
    let at = SystemTime::now() + Duration::from_secs(3600);
    ok(
        "put with a future expiry",
        store
            .put(Record::new("later", "v").with_expires_at(at))
            .await,
    );
    write_expired(&store, &["gone"]).await;
    expect_not_found("get of an expired record", store.get("gone").await);
    let later = ok(
        "get of a record expiring in an hour",
        store.get("later").await,
    );
    assert_record("the record with a future expiry", &later, "later", b"v");
}

/// An expired record is `None` in `get_many`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::expired_record_is_invisible_to_get_many(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn expired_record_is_invisible_to_get_many<S: Storage>(store: S) {
    ok("put", store.put(Record::new("live", "v")).await);
    write_expired(&store, &["gone"]).await;
    let got = ok("get_many", store.get_many(&["gone", "live", "gone"]).await);
    assert!(
        got.len() == 3 && got[0].is_none() && got[1].is_some() && got[2].is_none(),
        "get_many([gone, live, gone]) with gone expired: expected [None, Some, None], got {got:?}"
    );
}

/// `cas_by_version` on an expired record is `NotFound`, even with its last version.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::cas_on_expired_record_is_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn cas_on_expired_record_is_not_found<S: Storage>(store: S) {
    let record = Record::new("k", "v").with_ttl(Duration::from_millis(20));
    let at = record.expires_at.expect("with_ttl sets an expiry");
    let stored = ok("put with a 20ms TTL", store.put(record).await);
    sleep_past(at).await;
    expect_not_found(
        "cas on an expired record with its version",
        store
            .cas_by_version(Record::new("k", "v2").with_version(stored.version))
            .await,
    );
    expect_not_found(
        "cas on an expired record with a wrong version",
        store
            .cas_by_version(Record::new("k", "v2").with_version("nope"))
            .await,
    );
    expect_not_found("get after cas on an expired record", store.get("k").await);
}

/// `delete` of an expired record is `NotFound`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::delete_on_expired_record_is_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn delete_on_expired_record_is_not_found<S: Storage>(store: S) {
    write_expired(&store, &["k"]).await;
    expect_not_found("delete of an expired record", store.delete("k").await);
}

/// `create` over an expired record succeeds with a new version and stores the new record.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::create_over_expired_record_succeeds(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn create_over_expired_record_succeeds<S: Storage>(store: S) {
    let record = Record::new("lease", "old").with_ttl(Duration::from_millis(20));
    let at = record.expires_at.expect("with_ttl sets an expiry");
    let old = ok("create with a 20ms TTL", store.create(record).await);
    sleep_past(at).await;
    let new = match store.create(Record::new("lease", "new")).await {
        Ok(version) => version,
        Err(error) => panic!("create over an expired record: expected Ok, got Err({error:?})"),
    };
    assert_ne!(new, old, "create over an expired record reused its version");
    let got = ok("get after create over expired", store.get("lease").await);
    assert_record("get after create over expired", &got, "lease", b"new");
    assert_eq!(got.version, new);
    assert_expiry("get after create over expired", got.expires_at, None);
}

/// Writes (put, put_many, create, cas) whose expiry is already in the past succeed and leave the key invisible.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::write_with_past_expiry_is_invisible(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn write_with_past_expiry_is_invisible<S: Storage>(store: S) {
    let past = SystemTime::now() - Duration::from_secs(60);
    ok(
        "put with a past expiry",
        store
            .put(Record::new("p1", "v").with_expires_at(past))
            .await,
    );
    expect_not_found("get after put with a past expiry", store.get("p1").await);
    ok(
        "put_many with a past expiry",
        store
            .put_many(vec![
                Record::new("p2", "v").with_expires_at(past),
                Record::new("p3", "v"),
            ])
            .await,
    );
    expect_not_found(
        "get after put_many with a past expiry",
        store.get("p2").await,
    );
    ok("get of p3", store.get("p3").await);
    ok(
        "create with a past expiry",
        store
            .create(Record::new("p4", "v").with_expires_at(past))
            .await,
    );
    expect_not_found("get after create with a past expiry", store.get("p4").await);
    ok(
        "create over a record written already expired",
        store.create(Record::new("p4", "again")).await,
    );
    let live = ok("put", store.put(Record::new("p5", "v")).await);
    ok(
        "cas with a past expiry",
        store
            .cas_by_version(
                Record::new("p5", "v2")
                    .with_version(live.version)
                    .with_expires_at(past),
            )
            .await,
    );
    expect_not_found("get after cas with a past expiry", store.get("p5").await);
    assert_eq!(list(&store, "p*").await, ["p3", "p4"], "list_keys");
}

/// `list_keys` leaves out expired and deleted keys, for wildcard and exact patterns alike.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_keys_leaves_out_expired_and_deleted_keys(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_keys_leaves_out_expired_and_deleted_keys<S: Storage>(store: S) {
    ok(
        "put_many",
        store
            .put_many(
                ["l/a", "l/b", "l/c", "l/d"]
                    .iter()
                    .map(|k| Record::new(*k, "v"))
                    .collect(),
            )
            .await,
    );
    ok("delete l/b", store.delete("l/b").await);
    write_expired(&store, &["l/e", "l/0"]).await;
    check_patterns(
        &store,
        &[
            ("l/*", &["l/a", "l/c", "l/d"]),
            ("*", &["l/a", "l/c", "l/d"]),
            ("l/?", &["l/a", "l/c", "l/d"]),
            ("l/b", &[]),
            ("l/e", &[]),
        ],
    )
    .await;
}
