//! Cases for `close`: every later call is `Closed`, nobody hangs across it.

use std::sync::Arc;

use futures::StreamExt;

use super::support::*;
use store_core::{Error, Record, Storage};

/// After `close`, every operation (close included) returns `Closed`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::close_makes_every_call_closed(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn close_makes_every_call_closed<S: Storage>(store: S) {
    let live = ok("put", store.put(Record::new("k", "v")).await);
    ok("close", within("close", store.close()).await);
    let c = |op: &str| format!("{op} after close");
    expect_closed(
        &c("create"),
        within(&c("create"), store.create(Record::new("n", "v"))).await,
    );
    expect_closed(&c("get"), within(&c("get"), store.get("k")).await);
    expect_closed(
        &c("get_many"),
        within(&c("get_many"), store.get_many(&["k"])).await,
    );
    expect_closed(
        &c("put"),
        within(&c("put"), store.put(Record::new("k", "v"))).await,
    );
    expect_closed(
        &c("put_many"),
        within(&c("put_many"), store.put_many(vec![Record::new("k", "v")])).await,
    );
    expect_closed(
        &c("cas"),
        within(
            &c("cas"),
            store.cas_by_version(Record::new("k", "v").with_version(live.version.clone())),
        )
        .await,
    );
    expect_closed(&c("delete"), within(&c("delete"), store.delete("k")).await);
    expect_closed(
        &c("wait"),
        within(
            &c("wait"),
            store.wait_for_version_change("k", &live.version),
        )
        .await,
    );
    expect_closed(
        &c("list_keys"),
        stream_outcome(within(&c("list_keys"), store.list_keys("*")).await),
    );
    expect_closed(&c("close"), within(&c("close"), store.close()).await);
}

/// After `close`, `get_many` of no keys and `put_many` of no records return `Closed` too.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::close_makes_empty_batches_closed(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn close_makes_empty_batches_closed<S: Storage>(store: S) {
    ok("close", within("close", store.close()).await);
    expect_closed(
        "put_many(vec![]) after close",
        within("put_many", store.put_many(Vec::new())).await,
    );
    expect_closed(
        "get_many(&[]) after close",
        within("get_many", store.get_many(&[])).await,
    );
}

/// A waiter blocked before `close` is released (with `Closed` or `NotFound`) instead of hanging.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::close_releases_a_blocked_waiter(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn close_releases_a_blocked_waiter<S: Storage>(store: S) {
    let store = Arc::new(store);
    let version = ok("put", store.put(Record::new("k", "v")).await).version;
    let mut waiter = spawn_wait(&store, "k", &version);
    assert_still_waiting("before close", &mut waiter).await;
    ok("close", within("close", store.close()).await);
    let result = join("the waiter blocked across close", waiter).await;
    assert!(
        matches!(result, Err(Error::Closed | Error::NotFound)),
        "the waiter blocked across close: expected Err(Closed) or Err(NotFound), got {result:?}"
    );
}

/// Callers writing in a loop while the store closes all stop with `Closed`, none hangs.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::close_releases_concurrent_callers(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn close_releases_concurrent_callers<S: Storage>(store: S) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("busy/{t}");
                let mut writes = 0u64;
                loop {
                    let result = if writes.is_multiple_of(2) {
                        store
                            .put(Record::new(key.clone(), writes.to_string()))
                            .await
                            .map(drop)
                    } else {
                        store.get(&key).await.map(drop)
                    };
                    match result {
                        Ok(()) => writes += 1,
                        Err(error) => return (writes, error),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(SETTLE).await;
    ok("close", within("close", store.close()).await);
    for (t, task) in tasks.into_iter().enumerate() {
        let (writes, error) = join(&format!("writer {t} across close"), task).await;
        assert!(
            matches!(error, Error::Closed),
            "writer {t} stopped after {writes} calls with {error:?}, expected Closed"
        );
    }
}

/// A `list_keys` stream opened before `close` either completes or yields `Closed`; it never ends early silently.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_stream_opened_before_close_completes_or_fails(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_stream_opened_before_close_completes_or_fails<S: Storage>(store: S) {
    const COUNT: usize = 2000;
    let keys: Vec<String> = (0..COUNT).map(|i| format!("k/{i:04}")).collect();
    let records = keys.iter().map(|k| Record::new(k.clone(), "v")).collect();
    ok("put_many", store.put_many(records).await);
    let mut stream = ok("list_keys", store.list_keys("k/*").await);
    let mut seen = Vec::new();
    for _ in 0..10 {
        match within("the stream before close", stream.next()).await {
            Some(key) => seen.push(ok("a stream item before close", key)),
            None => panic!("the stream ended after {} of {COUNT} keys", seen.len()),
        }
    }
    ok("close", within("close", store.close()).await);
    let mut failed = None;
    while let Some(item) = within("the stream after close", stream.next()).await {
        match item {
            Ok(key) => seen.push(key),
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    match failed {
        None => assert_same_keys(
            "a stream that ended without an error across close",
            &seen,
            &keys,
        ),
        Some(error) => assert!(
            matches!(error, Error::Closed),
            "the stream failed after close with {error:?}, expected Closed"
        ),
    }
    assert_same_keys(
        "the keys streamed around close (a prefix of all keys)",
        &seen,
        &keys[..seen.len().min(COUNT)],
    );
}
