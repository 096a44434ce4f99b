//! Helpers shared by the cases: timeouts around calls, result checks that name what failed, listing, expiry and waiter utilities.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::{Progress, EXPIRY_TOLERANCE};
use store_core::{Error, KeyStream, Record, Result, Storage};

/// How long the kit lets concurrent work proceed before checking that a waiter still waits.
pub(super) const SETTLE: Duration = Duration::from_millis(30);

/// Awaits `future`, failing the case, with `what` named, if nothing in the case makes
/// progress for [`STALL_LIMIT`](super::STALL_LIMIT) while it is pending (see [`Progress`]).
pub(super) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    Progress::current().watch(what, future).await
}

/// Awaits a spawned task, re-raising its panic so the original message is reported.
pub(super) async fn join<T, H>(what: &str, handle: H) -> T
where
    H: Future<Output = std::result::Result<T, tokio::task::JoinError>>,
{
    match within(what, handle).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("{what}: the task was cancelled: {error}"),
    }
}

#[track_caller]
pub(super) fn ok<T>(what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: expected Ok, got Err({error:?}): {error}"),
    }
}

#[track_caller]
pub(super) fn expect_not_found<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::NotFound)),
        "{what}: expected Err(NotFound), got {result:?}"
    );
}

#[track_caller]
pub(super) fn expect_conflict<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::Conflict)),
        "{what}: expected Err(Conflict), got {result:?}"
    );
}

#[track_caller]
pub(super) fn expect_closed<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::Closed)),
        "{what}: expected Err(Closed), got {result:?}"
    );
}

#[track_caller]
pub(super) fn expect_invalid_key<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::InvalidKey(_))),
        "{what}: expected Err(InvalidKey(..)), got {result:?}"
    );
}

/// A stream is not `Debug`; this stands in for it in messages.
pub(super) fn stream_outcome(result: Result<KeyStream>) -> Result<&'static str> {
    result.map(|_| "<key stream>")
}

#[track_caller]
pub(super) fn assert_expiry(what: &str, actual: Option<SystemTime>, expected: Option<SystemTime>) {
    match (actual, expected) {
        (None, None) => {}
        (Some(actual), Some(expected)) => {
            let difference = actual
                .duration_since(expected)
                .unwrap_or_else(|e| e.duration());
            assert!(
                difference <= EXPIRY_TOLERANCE,
                "{what}: expiry {actual:?} is {difference:?} away from the {expected:?} written"
            );
        }
        (actual, expected) => {
            panic!("{what}: expected expiry {expected:?}, got {actual:?}")
        }
    }
}

#[track_caller]
pub(super) fn assert_record(what: &str, record: &Record, key: &str, value: &[u8]) {
    assert_eq!(record.key, key, "{what}: wrong key");
    assert!(
        record.value == value,
        "{what}: wrong value: got {} bytes {:?}, expected {} bytes {:?}",
        record.value.len(),
        preview(&record.value),
        value.len(),
        preview(value)
    );
    assert!(!record.version.is_empty(), "{what}: empty version");
}

/// The start of a value, for messages about values that may be megabytes long.
pub(super) fn preview(value: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&value[..value.len().min(32)])
}

/// Collects every key of `list_keys(pattern)`, failing on any error.
pub(super) async fn list<S: Storage + ?Sized>(store: &S, pattern: &str) -> Vec<String> {
    let what = format!("list_keys({pattern:?})");
    let stream = ok(&what, within(&what, store.list_keys(pattern)).await);
    within(&what, drain(&what, stream)).await
}

pub(super) async fn drain(what: &str, mut stream: KeyStream) -> Vec<String> {
    let mut keys = Vec::new();
    while let Some(key) = stream.next().await {
        keys.push(ok(&format!("{what}: stream item"), key));
    }
    keys
}

#[track_caller]
pub(super) fn assert_listing(pattern: &str, actual: &[String], expected: &[&str]) {
    assert_eq!(
        actual, expected,
        "list_keys({pattern:?}) returned the wrong keys (or order)"
    );
}

/// Compares long key lists, reporting the first difference instead of both lists.
#[track_caller]
pub(super) fn assert_same_keys<A: AsRef<str> + Debug, B: AsRef<str> + Debug>(
    what: &str,
    actual: &[A],
    expected: &[B],
) {
    let first_difference = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a.as_ref() != b.as_ref());
    if let Some(i) = first_difference {
        panic!(
            "{what}: key {i} is {:?}, expected {:?} ({} keys listed, {} expected)",
            actual[i],
            expected[i],
            actual.len(),
            expected.len()
        );
    }
    assert!(
        actual.len() == expected.len(),
        "{what}: {} keys listed, {} expected; the first extra or missing one is {:?}",
        actual.len(),
        expected.len(),
        actual
            .get(expected.len())
            .map(|k| format!("{k:?}"))
            .or_else(|| expected.get(actual.len()).map(|k| format!("{k:?}")))
    );
}

pub(super) async fn check_patterns<S: Storage + ?Sized>(store: &S, cases: &[(&str, &[&str])]) {
    for (pattern, expected) in cases {
        let keys = list(store, pattern).await;
        assert_listing(pattern, &keys, expected);
    }
}

/// Sleeps until the local clock is past `at` (plus a little, for backends whose clock is
/// elsewhere), so that a record expiring at `at` must be invisible afterwards.
pub(super) async fn sleep_past(at: SystemTime) {
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Writes `keys` with a 20 ms TTL each and returns once all of them have expired.
pub(super) async fn write_expired<S: Storage + ?Sized>(store: &S, keys: &[&str]) {
    let mut latest = SystemTime::now();
    for key in keys {
        let record = Record::new(*key, "short-lived").with_ttl(Duration::from_millis(20));
        let at = record.expires_at.expect("with_ttl sets an expiry");
        ok(
            &format!("put({key:?}) with a 20ms TTL"),
            store.put(record).await,
        );
        latest = latest.max(at);
    }
    sleep_past(latest).await;
}

pub(super) fn spawn_wait<S: Storage + ?Sized>(
    store: &Arc<S>,
    key: &str,
    version: &str,
) -> JoinHandle<Result<()>> {
    let (store, key, version) = (store.clone(), key.to_owned(), version.to_owned());
    tokio::spawn(async move { store.wait_for_version_change(&key, &version).await })
}

/// Lets concurrent work run for a moment, then fails if `waiter` has already returned
/// although nothing changed its key.
pub(super) async fn assert_still_waiting(what: &str, waiter: &mut JoinHandle<Result<()>>) {
    tokio::time::sleep(SETTLE).await;
    assert_not_returned(what, waiter).await;
}

/// Fails if `waiter` has already returned although nothing changed its key.
pub(super) async fn assert_not_returned(what: &str, waiter: &mut JoinHandle<Result<()>>) {
    if waiter.is_finished() {
        let result = join(what, waiter).await;
        panic!(
            "{what}: wait_for_version_change returned {result:?} although its key did not change"
        );
    }
}

/// A deterministic pseudo-random byte sequence (so no backend can compress or dedupe it).
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[track_caller]
pub(super) fn fresh(seen: &mut HashSet<String>, version: &str, what: &str) {
    assert!(!version.is_empty(), "{what}: empty version");
    assert!(
        seen.insert(version.to_owned()),
        "{what}: version {version:?} was handed out before for this key"
    );
}
