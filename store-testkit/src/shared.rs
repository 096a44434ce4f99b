//! Cases for two handles on the same data (a clone, a second connection on the same
//! prefix or table, a second process's handle): what one handle writes, the other's
//! `create`, `cas_by_version`, waiters and listings see. They hold even where reads through
//! the second handle may lag (a cache in each process), so they need only `second_handle`;
//! the cases that read across handles are in `shared_linearizable.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Error, Record, Storage};

/// `create` through one handle on a key written through the other is `AlreadyExists` carrying the live record, both ways; after a delete through one, a create through the other succeeds.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::create_through_the_other_handle_returns_the_live_record(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn create_through_the_other_handle_returns_the_live_record<A: Storage, B: Storage>(
    first: A,
    second: B,
) {
    let created = ok(
        "create through the first handle",
        first.create(Record::new("shared/c", "one")).await,
    );
    match second.create(Record::new("shared/c", "two")).await {
        Err(Error::AlreadyExists(live)) => {
            assert_record(
                "the live record in AlreadyExists",
                &live,
                "shared/c",
                b"one",
            );
            assert_eq!(
                live.version, created,
                "AlreadyExists through the second handle carries a wrong version"
            );
        }
        other => panic!(
            "create through the second handle on a key the first created: expected \
             Err(AlreadyExists(..)), got {other:?}"
        ),
    }
    let put = ok(
        "put through the second handle",
        second.put(Record::new("shared/p", "put")).await,
    );
    match first.create(Record::new("shared/p", "create")).await {
        Err(Error::AlreadyExists(live)) => {
            assert_record(
                "the live record in AlreadyExists",
                &live,
                "shared/p",
                b"put",
            );
            assert_eq!(
                live.version, put.version,
                "AlreadyExists through the first handle carries a wrong version"
            );
        }
        other => panic!(
            "create through the first handle on a key the second put: expected \
             Err(AlreadyExists(..)), got {other:?}"
        ),
    }
    ok(
        "delete through the first handle",
        first.delete("shared/c").await,
    );
    let again = ok(
        "create through the second handle after a delete through the first",
        second.create(Record::new("shared/c", "three")).await,
    );
    assert_ne!(again, created, "re-create reused the deleted version");
    match first.create(Record::new("shared/c", "four")).await {
        Err(Error::AlreadyExists(live)) => {
            assert_record(
                "the live record in AlreadyExists",
                &live,
                "shared/c",
                b"three",
            );
            assert_eq!(live.version, again, "AlreadyExists carries a wrong version");
        }
        other => panic!(
            "create through the first handle on a key the second re-created: expected \
             Err(AlreadyExists(..)), got {other:?}"
        ),
    }
}

/// Of 32 concurrent `cas_by_version` calls with the same expected version, half through each handle, exactly one wins (20 rounds, each expecting the last winner's version).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::concurrent_cas_across_handles_has_exactly_one_winner(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn concurrent_cas_across_handles_has_exactly_one_winner<A: Storage, B: Storage>(
    first: A,
    second: B,
) {
    const CONTENDERS: usize = 32;
    let handles: [Arc<dyn Storage>; 2] = [Arc::new(first), Arc::new(second)];
    let names = ["the first handle", "the second handle"];
    let mut expected = ok(
        "put through the first handle",
        handles[0].put(Record::new("shared/cas", "start")).await,
    )
    .version;
    for round in 0..20 {
        let barrier = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
        let tasks: Vec<_> = (0..CONTENDERS)
            .map(|i| {
                let store = handles[i % 2].clone();
                let (barrier, expected) = (barrier.clone(), expected.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let record = Record::new("shared/cas", format!("round {round} writer {i}"))
                        .with_version(expected);
                    store.cas_by_version(record).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match join("a concurrent cas", task).await {
                Ok(record) => winners.push((i, record)),
                Err(Error::Conflict) => {}
                Err(error) => panic!(
                    "round {round}: cas {i} through {} failed with {error:?}",
                    names[i % 2]
                ),
            }
        }
        assert!(
            winners.len() == 1,
            "round {round}: {} of {CONTENDERS} concurrent cas calls split over two handles \
             succeeded: {winners:?}",
            winners.len()
        );
        let (winner, record) = winners.pop().expect("one winner");
        // The winner's own handle has seen its write, whatever the other one caches.
        let got = ok(
            "get through the winner's handle",
            handles[winner % 2].get("shared/cas").await,
        );
        assert_eq!(
            got, record,
            "round {round}: the winner's handle reads another record than the one cas stored"
        );
        expected = record.version;
    }
}

/// A waiter on one handle is woken by a `put`, `put_many` and `cas_by_version` (with `Ok`) and a `delete` (with `NotFound`) through the other, and not by a write to another key; both ways.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::waiters_on_one_handle_are_woken_by_writes_through_the_other(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn waiters_on_one_handle_are_woken_by_writes_through_the_other<A: Storage, B: Storage>(
    first: A,
    second: B,
) {
    let first: Arc<dyn Storage> = Arc::new(first);
    let second: Arc<dyn Storage> = Arc::new(second);
    let directions = [
        ("the second handle", &second, "the first handle", &first),
        ("the first handle", &first, "the second handle", &second),
    ];
    for (waiting_on, waiter_store, writing_on, writer) in directions {
        for how in ["put", "put_many", "cas", "delete"] {
            let what = format!("a waiter on {waiting_on}, then a {how} through {writing_on}");
            let key = format!("shared/wait/{how}");
            let current = ok(
                &format!("{what}: put"),
                writer.put(Record::new(key.clone(), "v")).await,
            );
            let mut waiter = spawn_wait(waiter_store, &key, &current.version);
            assert_still_waiting(&format!("{what}: before any write"), &mut waiter).await;
            ok(
                &format!("{what}: put of another key"),
                writer.put(Record::new("shared/wait/other", "x")).await,
            );
            assert_still_waiting(
                &format!("{what}: after a write to another key"),
                &mut waiter,
            )
            .await;
            match how {
                "put" => {
                    ok(&what, writer.put(Record::new(key.clone(), "w")).await);
                }
                "put_many" => {
                    let records = vec![Record::new(key.clone(), "w")];
                    ok(&what, writer.put_many(records).await);
                }
                "cas" => {
                    let next = Record::new(key.clone(), "w").with_version(current.version);
                    ok(&what, writer.cas_by_version(next).await);
                }
                _ => ok(&what, writer.delete(&key).await),
            }
            let result = join(&what, waiter).await;
            if how == "delete" {
                expect_not_found(&format!("{what}: the waiter"), result);
            } else {
                assert!(
                    result.is_ok(),
                    "{what}: the waiter got {result:?}, expected Ok"
                );
            }
        }
    }
}

/// A waiter on one handle is woken with `NotFound` when a record written through the other expires (200 ms TTL).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::a_waiter_on_one_handle_is_woken_by_the_expiry_of_a_write_through_the_other(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn a_waiter_on_one_handle_is_woken_by_the_expiry_of_a_write_through_the_other<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    const SLACK: Duration = Duration::from_millis(50);
    let second = Arc::new(second);
    let record = Record::new("shared/expiring", "v").with_ttl(Duration::from_millis(200));
    let at = record.expires_at.expect("with_ttl sets an expiry");
    let version = ok(
        "put with a 200ms TTL through the first handle",
        first.put(record).await,
    )
    .version;
    let mut waiter = spawn_wait(&second, "shared/expiring", &version);
    tokio::time::sleep(SETTLE).await;
    if SystemTime::now() + SLACK < at {
        assert_still_waiting(
            "a waiter on the second handle before the expiry",
            &mut waiter,
        )
        .await;
    }
    let result = join("the waiter on the second handle", waiter).await;
    let woke = SystemTime::now();
    expect_not_found(
        "a waiter on the second handle after the first handle's record expired",
        result,
    );
    assert!(
        woke + SLACK >= at,
        "the waiter got NotFound {:?} before the key expired",
        at.duration_since(woke).unwrap_or_default()
    );
}

/// A listing through one handle shows the other's puts, creates and `put_many`, and leaves out its deletes and expired records; both ways.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::listing_through_one_handle_shows_the_others_writes_and_deletes(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn listing_through_one_handle_shows_the_others_writes_and_deletes<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    let keys = ["l/a", "l/b", "l/c", "l/d"];
    ok(
        "put_many through the first handle",
        first
            .put_many(keys.iter().map(|k| Record::new(*k, "v")).collect())
            .await,
    );
    assert_eq!(
        list(&second, "l/*").await,
        keys,
        "the second handle's listing after the first's put_many"
    );
    ok(
        "delete through the second handle",
        second.delete("l/b").await,
    );
    ok(
        "put through the second handle",
        second.put(Record::new("l/e", "v")).await,
    );
    assert_eq!(
        list(&first, "l/*").await,
        ["l/a", "l/c", "l/d", "l/e"],
        "the first handle's listing after the second's delete and put"
    );
    ok(
        "create through the first handle",
        first.create(Record::new("l/b", "again")).await,
    );
    ok("delete through the first handle", first.delete("l/c").await);
    write_expired(&first, &["l/0", "l/f"]).await;
    assert_eq!(
        list(&second, "l/*").await,
        ["l/a", "l/b", "l/d", "l/e"],
        "the second handle's listing after the first's create, delete and expired writes"
    );
}
