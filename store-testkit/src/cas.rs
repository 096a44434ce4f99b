//! Cases for `cas_by_version`: missing keys, wrong and matching versions, and contention (exactly one winner, an exact counter).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::support::*;
use store_core::{Error, Record, Storage};

/// `cas_by_version` on a missing or deleted key is `NotFound` (whatever the version) and creates nothing.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::cas_on_missing_key_is_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn cas_on_missing_key_is_not_found<S: Storage>(store: S) {
    expect_not_found(
        "cas on a missing key",
        store
            .cas_by_version(Record::new("k", "v").with_version("1"))
            .await,
    );
    expect_not_found(
        "cas with an empty version on a missing key",
        store.cas_by_version(Record::new("k", "v")).await,
    );
    expect_not_found("get after cas on a missing key", store.get("k").await);
    let stored = ok("put", store.put(Record::new("k", "v")).await);
    ok("delete", store.delete("k").await);
    expect_not_found(
        "cas on a deleted key with its last version",
        store
            .cas_by_version(Record::new("k", "v2").with_version(stored.version))
            .await,
    );
    expect_not_found("get after cas on a deleted key", store.get("k").await);
}

/// `cas_by_version` with a version other than the live one (empty and old ones included) is `Conflict` and changes nothing.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::cas_with_wrong_version_is_conflict(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn cas_with_wrong_version_is_conflict<S: Storage>(store: S) {
    let first = ok("put", store.put(Record::new("k", "one")).await);
    let live = ok("put again", store.put(Record::new("k", "two")).await);
    for wrong in [
        String::new(),
        first.version.clone(),
        format!("{}0", live.version),
        format!("0{}", live.version),
        format!("{} ", live.version),
        "not-a-version".to_owned(),
    ] {
        expect_conflict(
            &format!("cas with version {wrong:?} (live is {:?})", live.version),
            store
                .cas_by_version(Record::new("k", "three").with_version(wrong.clone()))
                .await,
        );
    }
    let got = ok("get after the conflicts", store.get("k").await);
    assert_record("get after the conflicts", &got, "k", b"two");
    assert_eq!(
        got.version, live.version,
        "a conflicting cas changed the version"
    );
}

/// `cas_by_version` with the live version stores value and expiry under a new version; the old version then conflicts.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::cas_matching_version_stores_with_a_new_version(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn cas_matching_version_stores_with_a_new_version<S: Storage>(store: S) {
    let hour = SystemTime::now() + Duration::from_secs(3600);
    let first = ok(
        "put",
        store
            .put(Record::new("k", "one").with_expires_at(hour))
            .await,
    );
    let second = ok(
        "cas with the live version",
        store
            .cas_by_version(Record::new("k", "two").with_version(first.version.clone()))
            .await,
    );
    assert_record("the record cas returned", &second, "k", b"two");
    assert_ne!(second.version, first.version, "cas kept the old version");
    assert_expiry("cas without expiry must remove it", second.expires_at, None);
    let got = ok("get after cas", store.get("k").await);
    assert_eq!(got, second, "get after cas differs from what cas returned");
    expect_conflict(
        "cas with the replaced version",
        store
            .cas_by_version(Record::new("k", "stale").with_version(first.version))
            .await,
    );
    let third = ok(
        "cas setting an expiry",
        store
            .cas_by_version(
                Record::new("k", "three")
                    .with_version(second.version.clone())
                    .with_expires_at(hour),
            )
            .await,
    );
    assert_ne!(third.version, second.version, "cas kept the old version");
    let got = ok("get after the second cas", store.get("k").await);
    assert_record("get after the second cas", &got, "k", b"three");
    assert_eq!(got.version, third.version);
    assert_expiry("get after cas with expiry", got.expires_at, Some(hour));
}

/// Of 32 concurrent `cas_by_version` calls expecting the same version exactly one succeeds and the rest conflict (20 rounds).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::concurrent_cas_exactly_one_wins(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn concurrent_cas_exactly_one_wins<S: Storage>(store: S) {
    const CONTENDERS: usize = 32;
    let store = Arc::new(store);
    for round in 0..20 {
        let expected = ok("put", store.put(Record::new("k", "start")).await).version;
        let barrier = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
        let tasks: Vec<_> = (0..CONTENDERS)
            .map(|i| {
                let (store, barrier, expected) = (store.clone(), barrier.clone(), expected.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let record = Record::new("k", format!("writer {i}")).with_version(expected);
                    (i, store.cas_by_version(record).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for task in tasks {
            match join("a concurrent cas", task).await {
                (i, Ok(record)) => winners.push((i, record)),
                (_, Err(Error::Conflict)) => conflicts += 1,
                (i, Err(error)) => panic!("round {round}: cas {i} failed with {error:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} of {CONTENDERS} concurrent cas calls succeeded: {winners:?}",
            winners.len()
        );
        assert_eq!(conflicts, CONTENDERS - 1, "round {round}: conflicts");
        let (winner, record) = &winners[0];
        let got = ok("get after the race", store.get("k").await);
        assert_record(
            "get after the race",
            &got,
            "k",
            format!("writer {winner}").as_bytes(),
        );
        assert_eq!(
            got.version, record.version,
            "round {round}: winner's version"
        );
    }
}

/// A counter incremented with get + `cas_by_version` retries by 16 tasks x 50 times ends at exactly 800.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::concurrent_cas_counter_is_exact(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn concurrent_cas_counter_is_exact<S: Storage>(store: S) {
    const TASKS: usize = 16;
    const INCREMENTS: usize = 50;
    let store = Arc::new(store);
    ok(
        "create counter",
        store.create(Record::new("counter", "0")).await,
    );
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut versions = Vec::with_capacity(INCREMENTS);
                for _ in 0..INCREMENTS {
                    loop {
                        let current = ok("get counter", store.get("counter").await);
                        let n: u64 = std::str::from_utf8(&current.value)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_else(|| panic!("counter holds {:?}", current.value));
                        let next = Record::new("counter", (n + 1).to_string())
                            .with_version(current.version);
                        match store.cas_by_version(next).await {
                            Ok(stored) => {
                                versions.push(stored.version);
                                break;
                            }
                            Err(Error::Conflict) => continue,
                            Err(error) => panic!("incrementing the counter: {error:?}"),
                        }
                    }
                }
                versions
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        for version in join("an incrementing task", task).await {
            fresh(&mut seen, &version, "a successful increment");
        }
    }
    let got = ok("get counter", store.get("counter").await);
    let total = (TASKS * INCREMENTS).to_string();
    assert_eq!(
        got.value,
        Bytes::from(total.clone()),
        "the counter lost or duplicated increments: expected {total}"
    );
}
