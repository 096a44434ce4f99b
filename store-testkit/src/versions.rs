//! Cases for versions: new on every write, never reused for a key.

use std::collections::HashSet;

use super::support::*;
use store_core::{Record, Storage};

/// Every successful create, put (same value included), put_many entry and cas assigns a new non-empty version.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::versions_change_on_every_write(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn versions_change_on_every_write<S: Storage>(store: S) {
    let mut seen = HashSet::new();
    let created = ok("create", store.create(Record::new("k", "same")).await);
    fresh(&mut seen, &created, "create");
    let put = ok(
        "put of the same value",
        store.put(Record::new("k", "same")).await,
    );
    fresh(&mut seen, &put.version, "put of the same value");
    ok(
        "put_many of the same value",
        store.put_many(vec![Record::new("k", "same")]).await,
    );
    let batch = ok("get after put_many", store.get("k").await).version;
    fresh(&mut seen, &batch, "put_many of the same value");
    let cas = ok(
        "cas to the same value",
        store
            .cas_by_version(Record::new("k", "same").with_version(batch))
            .await,
    );
    fresh(&mut seen, &cas.version, "cas to the same value");
    let got = ok("get after cas", store.get("k").await);
    assert_eq!(
        got.version, cas.version,
        "get does not report cas's version"
    );
}

/// A key's versions are never reused: 200 rounds of create, put, put_many, cas and delete give all-distinct versions.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::versions_are_never_reused_for_a_key(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn versions_are_never_reused_for_a_key<S: Storage>(store: S) {
    let mut seen = HashSet::new();
    for round in 0..200 {
        let created = ok(
            &format!("round {round}: create"),
            store.create(Record::new("k", "v")).await,
        );
        fresh(&mut seen, &created, &format!("round {round}: create"));
        let put = ok(
            &format!("round {round}: put"),
            store.put(Record::new("k", "v")).await,
        );
        fresh(&mut seen, &put.version, &format!("round {round}: put"));
        ok(
            &format!("round {round}: put_many"),
            store.put_many(vec![Record::new("k", "v")]).await,
        );
        let batch = ok(&format!("round {round}: get"), store.get("k").await).version;
        fresh(&mut seen, &batch, &format!("round {round}: put_many"));
        let cas = ok(
            &format!("round {round}: cas"),
            store
                .cas_by_version(Record::new("k", "v").with_version(batch))
                .await,
        );
        fresh(&mut seen, &cas.version, &format!("round {round}: cas"));
        ok(&format!("round {round}: delete"), store.delete("k").await);
    }
    assert_eq!(seen.len(), 800, "expected 800 distinct versions");
}
