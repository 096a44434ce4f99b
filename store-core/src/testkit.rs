//! The public conformance kit: one async test case per semantic rule of the [`Storage`]
//! contract, and [`conformance_tests!`](crate::conformance_tests) to run all of them against
//! any backend or layer.
//!
//! Every case is a `pub async fn case_name<S: Storage>(store: S)` that receives a fresh, empty
//! store, uses only the [`Storage`] trait and panics with a message naming what went wrong.
//! Backends and layers (memory, file, cache, Redis, namespaced stacks) run the kit unchanged;
//! see [`conformance_tests!`](crate::conformance_tests) for how a backend crate wires it in.
//!
//! The macro expands into one `#[test]` function per case, named after the case, so a failure
//! names the rule that broke. Each test runs on its own multi-threaded tokio runtime with two
//! workers (built by [`run`]), so the calling crate does not need tokio's macros.
//!
//! # What the kit assumes (interpretations of the contract)
//!
//! - Expiry times may be rounded by a backend (for example to milliseconds): an expiry read
//!   back is accepted within [`EXPIRY_TOLERANCE`] of the one written.
//! - A write whose `expires_at` is already in the past succeeds and stores a record that is
//!   invisible at once (it is expired), exactly as if it had expired a moment later.
//! - Records are made to expire with short TTLs (tens of milliseconds) and the kit then sleeps
//!   until the local clock has passed `expires_at`; from then on the contract says the record
//!   is invisible, however long the sleep was. Sleeps elsewhere only give a wrong answer a
//!   chance to show (for example "a waiter must still be waiting"); no verdict depends on
//!   their length.
//! - The longest key every stack must accept is [`PORTABLE_KEY_LEN`] (1024) bytes, since a
//!   prefixing layer lowers [`MAX_KEY_LEN`]; a key longer than [`MAX_KEY_LEN`] is rejected
//!   by every stack.
//! - `put_many` validates every key before writing anything, so a batch with one invalid
//!   key stores nothing.
//! - `get_many` with an empty slice and `put_many` with an empty vector behave like any other
//!   call: `Ok` on an open store, [`Error::Closed`] on a closed one. Repeated keys in
//!   `get_many` each get their own position.
//! - After `close`, a `list_keys` stream opened before it either completes or yields
//!   [`Error::Closed`]; it never ends early without an error.
//! - That 100,000 cancelled waits do not grow memory is not observable through the trait;
//!   the kit checks that they leave the store correct and responsive.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::{Error, KeyStream, Record, Result, Storage, MAX_KEY_LEN};

/// How far an expiry read back may be from the one written (backends may round it).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(1);

/// The longest key the kit expects every stack (namespaced ones included) to accept.
pub const PORTABLE_KEY_LEN: usize = 1024;

/// The longest a whole case may run before [`run`] declares it hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a single call (or a wait that must end) may take before the case fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the kit lets concurrent work proceed before checking that a waiter still waits.
const SETTLE: Duration = Duration::from_millis(30);

/// Runs one test case on a fresh multi-threaded tokio runtime with two workers, failing it
/// if it does not finish within [`CASE_TIMEOUT`]. `case` is called inside the runtime, so it
/// may create stores that spawn tasks.
///
/// ```
/// store_core::testkit::run(|| async {
///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
/// });
/// ```
///
/// # Panics
///
/// Panics if the runtime cannot be built, if the case panics, or if it times out.
pub fn run<F, Fut>(case: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("testkit-worker")
        .enable_all()
        .build()
        .expect("testkit: could not build a tokio runtime");
    let outcome = runtime.block_on(async { tokio::time::timeout(CASE_TIMEOUT, case()).await });
    runtime.shutdown_timeout(Duration::from_secs(5));
    assert!(
        outcome.is_ok(),
        "the case did not finish within {CASE_TIMEOUT:?}: a call hangs"
    );
}

/// Expands into one `#[test]` function per conformance case, each running that case (through
/// [`testkit::run`](crate::testkit::run)) on a fresh store from `factory`.
///
/// `factory` is any expression callable as `(factory)().await` that yields a [`Storage`]:
/// a closure such as `|| async { MemoryStorage::new() }`, or the path of an `async fn`. It is
/// called once per test, inside that test's tokio runtime. Put each invocation in its own
/// module, since the generated functions are named after the cases.
///
/// ```
/// /// The backend under test (here: a tiny engine run by the store-core actor runtime).
/// async fn new_store() -> store_core::runtime::ActorHandle {
///     store_core::runtime::spawn(store_core::__private::DocEngine::default(), Default::default())
/// }
///
/// // In tests/conformance.rs: one #[test] per case, e.g. `plain::put_many_later_duplicates_win`.
/// mod plain {
///     store_core::conformance_tests!(super::new_store);
/// }
/// mod namespaced {
///     store_core::conformance_tests!(|| async {
///         store_core::Namespaced::new(super::new_store().await, "tenant").unwrap()
///     });
/// }
///
/// # fn main() {
/// // A single case can also be run by hand:
/// store_core::testkit::run(|| async {
///     store_core::testkit::cas_matching_version_stores_with_a_new_version(new_store().await).await;
/// });
/// # }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run(|| async {
                    let store = ($factory)().await;
                    $crate::testkit::$case(store).await;
                });
            }
        )*
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@cases $factory;
            create_stores_a_new_record,
            create_on_live_key_is_already_exists,
            create_ignores_the_given_version,
            create_after_delete_succeeds,
            get_missing_key_is_not_found,
            get_many_is_positional,
            put_stores_and_returns_the_record,
            put_replaces_value_and_expiry,
            put_many_stores_every_record,
            put_many_later_duplicates_win,
            put_many_with_an_invalid_key_stores_nothing,
            cas_on_missing_key_is_not_found,
            cas_with_wrong_version_is_conflict,
            cas_matching_version_stores_with_a_new_version,
            delete_removes_the_record,
            versions_change_on_every_write,
            versions_are_never_reused_for_a_key,
            expired_record_is_invisible_to_get,
            expired_record_is_invisible_to_get_many,
            cas_on_expired_record_is_not_found,
            delete_on_expired_record_is_not_found,
            create_over_expired_record_succeeds,
            write_with_past_expiry_is_invisible,
            list_keys_leaves_out_expired_and_deleted_keys,
            concurrent_cas_exactly_one_wins,
            concurrent_cas_counter_is_exact,
            wait_on_missing_key_is_not_found_at_once,
            wait_with_differing_version_returns_at_once,
            wait_is_woken_by_put,
            wait_is_woken_by_put_many,
            wait_is_woken_by_cas,
            wait_is_woken_by_delete_with_not_found,
            wait_is_woken_by_expiry_with_not_found,
            many_waiters_are_all_woken_by_one_put,
            cancelled_wait_leaves_the_store_working,
            many_cancelled_waits_then_a_real_wait_is_woken,
            list_glob_star_matches_any_run_including_slashes,
            list_glob_question_mark_matches_one_character,
            list_glob_class_matches_listed_characters,
            list_glob_range_matches_inclusive_ranges,
            list_glob_negated_class_excludes_characters,
            list_glob_alternatives_match_any_branch,
            list_glob_escapes_match_literally,
            list_exact_pattern_matches_one_key,
            list_keys_in_ascending_byte_order,
            list_keys_streams_thousands_of_keys_in_order,
            list_keys_with_bad_pattern_is_invalid_pattern,
            empty_key_is_invalid_on_every_operation,
            too_long_key_is_invalid_on_every_operation,
            key_of_1024_bytes_works_everywhere,
            unicode_keys_round_trip,
            unusual_keys_round_trip,
            binary_values_round_trip,
            empty_value_round_trips,
            large_value_round_trips,
            close_makes_every_call_closed,
            close_makes_empty_batches_closed,
            close_releases_a_blocked_waiter,
            close_releases_concurrent_callers,
            list_stream_opened_before_close_completes_or_fails,
        );
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Awaits `future`, failing the case if it takes longer than [`CALL_TIMEOUT`].
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: did not finish within {CALL_TIMEOUT:?} (it hangs)"),
    }
}

/// Awaits a spawned task, re-raising its panic so the original message is reported.
async fn join<T, H>(what: &str, handle: H) -> T
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
fn ok<T>(what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: expected Ok, got Err({error:?}): {error}"),
    }
}

#[track_caller]
fn expect_not_found<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::NotFound)),
        "{what}: expected Err(NotFound), got {result:?}"
    );
}

#[track_caller]
fn expect_conflict<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::Conflict)),
        "{what}: expected Err(Conflict), got {result:?}"
    );
}

#[track_caller]
fn expect_closed<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::Closed)),
        "{what}: expected Err(Closed), got {result:?}"
    );
}

#[track_caller]
fn expect_invalid_key<T: Debug>(what: &str, result: Result<T>) {
    assert!(
        matches!(result, Err(Error::InvalidKey(_))),
        "{what}: expected Err(InvalidKey(..)), got {result:?}"
    );
}

/// A stream is not `Debug`; this stands in for it in messages.
fn stream_outcome(result: Result<KeyStream>) -> Result<&'static str> {
    result.map(|_| "<key stream>")
}

#[track_caller]
fn assert_expiry(what: &str, actual: Option<SystemTime>, expected: Option<SystemTime>) {
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
fn assert_record(what: &str, record: &Record, key: &str, value: &[u8]) {
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
fn preview(value: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&value[..value.len().min(32)])
}

/// Collects every key of `list_keys(pattern)`, failing on any error.
async fn list<S: Storage + ?Sized>(store: &S, pattern: &str) -> Vec<String> {
    let what = format!("list_keys({pattern:?})");
    let stream = ok(&what, within(&what, store.list_keys(pattern)).await);
    within(&what, drain(&what, stream)).await
}

async fn drain(what: &str, mut stream: KeyStream) -> Vec<String> {
    let mut keys = Vec::new();
    while let Some(key) = stream.next().await {
        keys.push(ok(&format!("{what}: stream item"), key));
    }
    keys
}

#[track_caller]
fn assert_listing(pattern: &str, actual: &[String], expected: &[&str]) {
    assert_eq!(
        actual, expected,
        "list_keys({pattern:?}) returned the wrong keys (or order)"
    );
}

/// Compares long key lists, reporting the first difference instead of both lists.
#[track_caller]
fn assert_same_keys<A: AsRef<str> + Debug, B: AsRef<str> + Debug>(
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

async fn check_patterns<S: Storage + ?Sized>(store: &S, cases: &[(&str, &[&str])]) {
    for (pattern, expected) in cases {
        let keys = list(store, pattern).await;
        assert_listing(pattern, &keys, expected);
    }
}

/// Sleeps until the local clock is past `at` (plus a little, for backends whose clock is
/// elsewhere), so that a record expiring at `at` must be invisible afterwards.
async fn sleep_past(at: SystemTime) {
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Writes `keys` with a 20 ms TTL each and returns once all of them have expired.
async fn write_expired<S: Storage + ?Sized>(store: &S, keys: &[&str]) {
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

fn spawn_wait<S: Storage>(store: &Arc<S>, key: &str, version: &str) -> JoinHandle<Result<()>> {
    let (store, key, version) = (store.clone(), key.to_owned(), version.to_owned());
    tokio::spawn(async move { store.wait_for_version_change(&key, &version).await })
}

/// Lets concurrent work run for a moment, then fails if `waiter` has already returned
/// although nothing changed its key.
async fn assert_still_waiting(what: &str, waiter: &mut JoinHandle<Result<()>>) {
    tokio::time::sleep(SETTLE).await;
    assert_not_returned(what, waiter).await;
}

/// Fails if `waiter` has already returned although nothing changed its key.
async fn assert_not_returned(what: &str, waiter: &mut JoinHandle<Result<()>>) {
    if waiter.is_finished() {
        let result = join(what, waiter).await;
        panic!(
            "{what}: wait_for_version_change returned {result:?} although its key did not change"
        );
    }
}

/// A deterministic pseudo-random byte sequence (so no backend can compress or dedupe it).
fn noise(len: usize, seed: u64) -> Vec<u8> {
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
fn fresh(seen: &mut HashSet<String>, version: &str, what: &str) {
    assert!(!version.is_empty(), "{what}: empty version");
    assert!(
        seen.insert(version.to_owned()),
        "{what}: version {version:?} was handed out before for this key"
    );
}

// ---------------------------------------------------------------------------------------
// create, get, get_many, put, put_many, cas, delete
// ---------------------------------------------------------------------------------------

/// `create` on a new key stores the record (with or without expiry) and returns a non-empty version that `get` reports.
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

/// `get` of a key that was never written, was deleted, or only shares a prefix is `NotFound`.
pub async fn get_missing_key_is_not_found<S: Storage>(store: S) {
    expect_not_found("get of a never-written key", store.get("never").await);
    ok("put", store.put(Record::new("abc", "v")).await);
    expect_not_found("get of a prefix of a key", store.get("ab").await);
    expect_not_found("get of an extension of a key", store.get("abcd").await);
    ok("delete", store.delete("abc").await);
    expect_not_found("get after delete", store.get("abc").await);
}

/// `get_many` answers position by position: `Some` for live keys (repeats included), `None` for missing or expired ones.
pub async fn get_many_is_positional<S: Storage>(store: S) {
    let a = ok("put a", store.put(Record::new("a", "1")).await);
    let b = ok("put b", store.put(Record::new("b", "2")).await);
    write_expired(&store, &["expired"]).await;
    let got = ok(
        "get_many",
        store.get_many(&["a", "missing", "expired", "b", "a"]).await,
    );
    assert_eq!(
        got.len(),
        5,
        "get_many returned {} results for 5 keys",
        got.len()
    );
    let expect = [Some(&a), None, None, Some(&b), Some(&a)];
    for (i, (got, expected)) in got.iter().zip(expect).enumerate() {
        match (got, expected) {
            (None, None) => {}
            (Some(got), Some(expected)) => {
                assert_eq!(got, expected, "get_many position {i}: wrong record")
            }
            (got, expected) => {
                panic!("get_many position {i}: expected {expected:?}, got {got:?}")
            }
        }
    }
    let none = ok("get_many of no keys", store.get_many(&[]).await);
    assert!(none.is_empty(), "get_many(&[]) returned {none:?}");
}

/// `put` on a missing key stores it and returns the stored record, which `get` then reports.
pub async fn put_stores_and_returns_the_record<S: Storage>(store: S) {
    let at = SystemTime::now() + Duration::from_secs(600);
    let stored = ok(
        "put",
        store
            .put(Record::new("cfg/mode", "fast").with_expires_at(at))
            .await,
    );
    assert_record("the record put returned", &stored, "cfg/mode", b"fast");
    assert_expiry("the record put returned", stored.expires_at, Some(at));
    let got = ok("get after put", store.get("cfg/mode").await);
    assert_record("get after put", &got, "cfg/mode", b"fast");
    assert_eq!(
        got.version, stored.version,
        "get's version differs from put's"
    );
    assert_expiry("get after put", got.expires_at, Some(at));
}

/// `put` replaces the value and the expiry: a new expiry replaces the old one and `None` removes it.
pub async fn put_replaces_value_and_expiry<S: Storage>(store: S) {
    let hour = SystemTime::now() + Duration::from_secs(3600);
    let two_hours = hour + Duration::from_secs(3600);
    let one = ok(
        "put one",
        store
            .put(Record::new("k", "one").with_expires_at(hour))
            .await,
    );
    let two = ok(
        "put two",
        store
            .put(Record::new("k", "two").with_expires_at(two_hours))
            .await,
    );
    assert_ne!(one.version, two.version, "put did not change the version");
    let got = ok("get after the second put", store.get("k").await);
    assert_record("get after the second put", &got, "k", b"two");
    assert_expiry("get after the second put", got.expires_at, Some(two_hours));
    let three = ok("put three", store.put(Record::new("k", "three")).await);
    assert_expiry("put without expiry returned", three.expires_at, None);
    let got = ok("get after put without expiry", store.get("k").await);
    assert_record("get after put without expiry", &got, "k", b"three");
    assert_expiry("put with None must remove the expiry", got.expires_at, None);

    // The old expiry must not fire once it has been removed.
    let short = Record::new("short", "v1").with_ttl(Duration::from_millis(40));
    let old_expiry = short.expires_at.expect("with_ttl sets an expiry");
    ok("put with a 40ms TTL", store.put(short).await);
    ok(
        "put without expiry",
        store.put(Record::new("short", "v2")).await,
    );
    sleep_past(old_expiry).await;
    let got = ok(
        "get after the removed expiry's time has passed",
        store.get("short").await,
    );
    assert_record("the record whose expiry was removed", &got, "short", b"v2");
}

/// `put_many` stores every record (visible to get, get_many and list_keys, each with a version) and replaces existing ones.
pub async fn put_many_stores_every_record<S: Storage>(store: S) {
    let old = ok("put", store.put(Record::new("batch/07", "old")).await);
    let at = SystemTime::now() + Duration::from_secs(3600);
    let records: Vec<Record> = (0..50)
        .map(|i| {
            let record = Record::new(format!("batch/{i:02}"), format!("v{i}"));
            if i == 3 {
                record.with_expires_at(at)
            } else {
                record
            }
        })
        .collect();
    ok("put_many of 50 records", store.put_many(records).await);
    let keys: Vec<String> = (0..50).map(|i| format!("batch/{i:02}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = ok("get_many after put_many", store.get_many(&refs).await);
    assert_eq!(
        got.len(),
        50,
        "get_many returned the wrong number of results"
    );
    for (i, record) in got.iter().enumerate() {
        let record = record
            .as_ref()
            .unwrap_or_else(|| panic!("batch/{i:02} written by put_many is missing"));
        assert_record(
            &format!("batch/{i:02} after put_many"),
            record,
            &keys[i],
            format!("v{i}").as_bytes(),
        );
        let expected = (i == 3).then_some(at);
        assert_expiry(&format!("batch/{i:02}"), record.expires_at, expected);
    }
    assert_ne!(
        got[7].as_ref().map(|r| r.version.clone()),
        Some(old.version),
        "put_many over an existing key kept its version"
    );
    let listed = list(&store, "batch/*").await;
    assert_eq!(listed, keys, "list_keys after put_many");
    ok("put_many of no records", store.put_many(Vec::new()).await);
}

/// `put_many`: when a key repeats in one call, the later record (value and expiry) wins.
pub async fn put_many_later_duplicates_win<S: Storage>(store: S) {
    let at = SystemTime::now() + Duration::from_secs(3600);
    ok(
        "put_many with duplicates",
        store
            .put_many(vec![
                Record::new("a", "a1"),
                Record::new("b", "b1").with_expires_at(at),
                Record::new("a", "a2"),
                Record::new("c", "c1"),
                Record::new("a", "a3").with_expires_at(at),
                Record::new("b", "b2"),
            ])
            .await,
    );
    let got = ok("get_many", store.get_many(&["a", "b", "c"]).await);
    let expected: [(&str, &[u8], Option<SystemTime>); 3] = [
        ("a", b"a3", Some(at)),
        ("b", b"b2", None),
        ("c", b"c1", None),
    ];
    for (record, (key, value, expiry)) in got.iter().zip(expected) {
        let record = record
            .as_ref()
            .unwrap_or_else(|| panic!("{key} written by put_many is missing"));
        assert_record(&format!("{key} after put_many"), record, key, value);
        assert_expiry(&format!("{key} after put_many"), record.expires_at, expiry);
    }
    assert_eq!(
        list(&store, "*").await,
        ["a", "b", "c"],
        "list_keys after put_many"
    );
}

/// `put_many` with one invalid key among valid ones is `InvalidKey` and stores none of them.
pub async fn put_many_with_an_invalid_key_stores_nothing<S: Storage>(store: S) {
    expect_invalid_key(
        "put_many with an empty key",
        store
            .put_many(vec![
                Record::new("ok/1", "v"),
                Record::new("", "v"),
                Record::new("ok/2", "v"),
            ])
            .await,
    );
    expect_invalid_key(
        "put_many with a too long key",
        store
            .put_many(vec![
                Record::new("ok/3", "v"),
                Record::new("k".repeat(MAX_KEY_LEN + 1), "v"),
            ])
            .await,
    );
    let got = ok("get_many", store.get_many(&["ok/1", "ok/2", "ok/3"]).await);
    assert!(
        got.iter().all(Option::is_none),
        "a rejected put_many stored some records: {got:?}"
    );
    assert!(
        list(&store, "*").await.is_empty(),
        "a rejected put_many left keys behind"
    );
}

/// `cas_by_version` on a missing or deleted key is `NotFound` (whatever the version) and creates nothing.
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

/// `delete` removes a live record (and only it); deleting a missing or already deleted key is `NotFound`.
pub async fn delete_removes_the_record<S: Storage>(store: S) {
    ok("put k", store.put(Record::new("k", "v")).await);
    ok("put keep", store.put(Record::new("keep", "v")).await);
    ok("delete", store.delete("k").await);
    expect_not_found("get after delete", store.get("k").await);
    expect_not_found("delete again", store.delete("k").await);
    expect_not_found("delete of a never-written key", store.delete("never").await);
    let keep = ok("get of another key after delete", store.get("keep").await);
    assert_record("the key next to the deleted one", &keep, "keep", b"v");
    assert_eq!(list(&store, "*").await, ["keep"], "list_keys after delete");
}

// ---------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------

/// Every successful create, put (same value included), put_many entry and cas assigns a new non-empty version.
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

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

/// A record whose expiry has passed is invisible to `get`, while a record with a future expiry is visible.
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
pub async fn delete_on_expired_record_is_not_found<S: Storage>(store: S) {
    write_expired(&store, &["k"]).await;
    expect_not_found("delete of an expired record", store.delete("k").await);
}

/// `create` over an expired record succeeds with a new version and stores the new record.
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

// ---------------------------------------------------------------------------------------
// Contention
// ---------------------------------------------------------------------------------------

/// Of 32 concurrent `cas_by_version` calls expecting the same version exactly one succeeds and the rest conflict (20 rounds).
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

// ---------------------------------------------------------------------------------------
// wait_for_version_change
// ---------------------------------------------------------------------------------------

/// `wait_for_version_change` on a missing, deleted or expired key returns `NotFound` at once.
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

// ---------------------------------------------------------------------------------------
// list_keys
// ---------------------------------------------------------------------------------------

/// The keys every glob case lists from, in ascending byte order.
const GLOB_KEYS: &[&str] = &[
    "a", "a/b", "a/b/c", "ab", "abc", "abd", "ac", "b", "b1", "b2", "bx", "c", "d", "x*y", "x?y",
    "x[y", "x\\y", "xzy", "{a,b}", "é", "日",
];

async fn write_glob_keys<S: Storage + ?Sized>(store: &S) {
    debug_assert!(
        GLOB_KEYS.windows(2).all(|w| w[0] < w[1]),
        "kit bug: unsorted"
    );
    // Written in reverse, so that the order listed cannot come from insertion order.
    let records = GLOB_KEYS
        .iter()
        .rev()
        .map(|k| Record::new(*k, "v"))
        .collect();
    ok(
        "put_many of the glob fixture",
        store.put_many(records).await,
    );
}

/// Glob `*` matches any run of characters, empty and `/` included.
pub async fn list_glob_star_matches_any_run_including_slashes<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("*", GLOB_KEYS),
            ("**", GLOB_KEYS),
            ("a*", &["a", "a/b", "a/b/c", "ab", "abc", "abd", "ac"]),
            ("a*c", &["a/b/c", "abc", "ac"]),
            ("*c", &["a/b/c", "abc", "ac", "c"]),
            ("*/*", &["a/b", "a/b/c"]),
            ("x*", &["x*y", "x?y", "x[y", "x\\y", "xzy"]),
            (
                "*b*",
                &[
                    "a/b", "a/b/c", "ab", "abc", "abd", "b", "b1", "b2", "bx", "{a,b}",
                ],
            ),
        ],
    )
    .await;
}

/// Glob `?` matches exactly one character (`/` and multi-byte characters included).
pub async fn list_glob_question_mark_matches_one_character<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("?", &["a", "b", "c", "d", "é", "日"]),
            ("a?", &["ab", "ac"]),
            ("??", &["ab", "ac", "b1", "b2", "bx"]),
            ("a?b", &["a/b"]),
            ("x?y", &["x*y", "x?y", "x[y", "x\\y", "xzy"]),
            (
                "???",
                &["a/b", "abc", "abd", "x*y", "x?y", "x[y", "x\\y", "xzy"],
            ),
        ],
    )
    .await;
}

/// Glob `[abc]` matches one of the listed characters (multi-byte ones included).
pub async fn list_glob_class_matches_listed_characters<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("ab[cd]", &["abc", "abd"]),
            ("[abc]", &["a", "b", "c"]),
            ("[cd]*", &["c", "d"]),
            ("[é日]", &["é", "日"]),
            ("[q]", &[]),
        ],
    )
    .await;
}

/// Glob `[a-z]` matches one character in the inclusive range.
pub async fn list_glob_range_matches_inclusive_ranges<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("b[0-9]", &["b1", "b2"]),
            ("b[1-1]", &["b1"]),
            ("[a-c]", &["a", "b", "c"]),
            ("[a-c]?", &["ab", "ac", "b1", "b2", "bx"]),
            ("[0-9]*", &[]),
        ],
    )
    .await;
}

/// Glob `[!abc]` matches one character that is not listed (ranges included).
pub async fn list_glob_negated_class_excludes_characters<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("[!abx]", &["c", "d", "é", "日"]),
            ("b[!0-9]", &["bx"]),
            ("a[!b]*", &["a/b", "a/b/c", "ac"]),
            (
                "[!a-c]*",
                &["d", "x*y", "x?y", "x[y", "x\\y", "xzy", "{a,b}", "é", "日"],
            ),
        ],
    )
    .await;
}

/// Glob `{a,b}` matches any of its branches, which may hold globs and nested groups.
pub async fn list_glob_alternatives_match_any_branch<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("{a,b}", &["a", "b"]),
            ("{ab,b1}", &["ab", "b1"]),
            ("{a,b}?", &["ab", "ac", "b1", "b2", "bx"]),
            ("{a*c,d}", &["a/b/c", "abc", "ac", "d"]),
            ("{a{b,c},d}", &["ab", "ac", "d"]),
            ("{q,r}", &[]),
        ],
    )
    .await;
}

/// Glob `\` makes the next character literal (`\*`, `\?`, `\[`, `\\`, `\{`, inside groups too).
pub async fn list_glob_escapes_match_literally<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("x\\*y", &["x*y"]),
            ("x\\?y", &["x?y"]),
            ("x\\[y", &["x[y"]),
            ("x\\\\y", &["x\\y"]),
            ("\\{a,b\\}", &["{a,b}"]),
            ("\\a", &["a"]),
            ("x{z,\\*}y", &["x*y", "xzy"]),
        ],
    )
    .await;
}

/// A pattern without special characters lists exactly that key when it is live, else nothing.
pub async fn list_exact_pattern_matches_one_key<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("abc", &["abc"]),
            ("ab", &["ab"]),
            ("a/b", &["a/b"]),
            ("é", &["é"]),
            ("abz", &[]),
            ("a/", &[]),
        ],
    )
    .await;
}

/// `list_keys` returns keys in ascending byte (not UTF-16, not locale) order, non-ASCII keys included.
pub async fn list_keys_in_ascending_byte_order<S: Storage>(store: S) {
    const SORTED: &[&str] = &[
        " ", "0", "B", "Z", "a", "a/z", "a0", "a\u{7f}", "z", "~", "é", "ā", "日本", "\u{ff61}",
        "😀",
    ];
    debug_assert!(SORTED.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
    for key in [
        "😀", "a", "~", "Z", "日本", " ", "a0", "é", "\u{ff61}", "B", "a/z", "ā", "z", "0",
        "a\u{7f}",
    ] {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(key, "v")).await,
        );
    }
    check_patterns(
        &store,
        &[
            ("*", SORTED),
            ("a*", &["a", "a/z", "a0", "a\u{7f}"]),
            ("?*", SORTED),
        ],
    )
    .await;
}

/// 5,000 keys come back complete, sorted and paged, while other calls (and a second stream) interleave with the stream.
pub async fn list_keys_streams_thousands_of_keys_in_order<S: Storage>(store: S) {
    const COUNT: usize = 5000;
    let keys: Vec<String> = (0..COUNT).map(|i| format!("many/{i:05}")).collect();
    // Written in reverse chunks, so that the order listed cannot come from insertion order.
    for chunk in keys.chunks(500).rev() {
        let records = chunk.iter().map(|k| Record::new(k.clone(), "v")).collect();
        ok("put_many of 500 keys", store.put_many(records).await);
    }
    let neighbours = ["man", "many", "many0", "manz", "other/1"];
    for key in neighbours {
        ok("put of a neighbour", store.put(Record::new(key, "v")).await);
    }

    let listed = list(&store, "many/*").await;
    assert_same_keys("list_keys(\"many/*\")", &listed, &keys);

    let mut all: Vec<String> = keys
        .iter()
        .cloned()
        .chain(neighbours.map(String::from))
        .collect();
    all.sort();
    assert_same_keys("list_keys(\"*\")", &list(&store, "*").await, &all);

    let ending_in_7: Vec<&String> = keys.iter().filter(|k| k.ends_with('7')).collect();
    assert_same_keys(
        "list_keys(\"many/*7\")",
        &list(&store, "many/*7").await,
        &ending_in_7,
    );
    assert_same_keys(
        "list_keys(\"many/00*\")",
        &list(&store, "many/00*").await,
        &keys[..1000],
    );
    assert_same_keys(
        "list_keys(\"many/0499?\")",
        &list(&store, "many/0499?").await,
        &keys[4990..],
    );

    // Consume two streams in turns, with reads and writes to other keys in between.
    let mut first = ok("list_keys", store.list_keys("many/*").await);
    let mut second = ok("list_keys", store.list_keys("many/*").await);
    let mut got_first = Vec::new();
    let mut got_second = Vec::new();
    loop {
        let a = within("the first stream", first.next()).await;
        let b = within("the second stream", second.next()).await;
        if got_first.len() == 300 {
            ok(
                "put during listing",
                store.put(Record::new("other/2", "v")).await,
            );
            ok("get during listing", store.get("many/00000").await);
        }
        match (a, b) {
            (None, None) => break,
            (a, b) => {
                got_first.extend(a.map(|k| ok("first stream item", k)));
                got_second.extend(b.map(|k| ok("second stream item", k)));
            }
        }
    }
    assert!(
        got_first == keys,
        "the first interleaved stream is incomplete or unsorted"
    );
    assert!(
        got_second == keys,
        "the second interleaved stream is incomplete or unsorted"
    );
}

/// A pattern that does not compile is `InvalidPattern` whose message contains the pattern.
pub async fn list_keys_with_bad_pattern_is_invalid_pattern<S: Storage>(store: S) {
    ok("put", store.put(Record::new("a", "v")).await);
    for pattern in ["a[bc", "{a,b", "x{y", "[]", "[z-a]", "abc\\"] {
        match store.list_keys(pattern).await {
            Err(error @ Error::InvalidPattern(_)) => {
                let message = error.to_string();
                assert!(
                    message.contains(pattern),
                    "the InvalidPattern message {message:?} does not contain the pattern {pattern:?}"
                );
            }
            other => panic!(
                "list_keys({pattern:?}): expected Err(InvalidPattern(..)), got {:?}",
                stream_outcome(other)
            ),
        }
    }
    assert_eq!(
        list(&store, "*").await,
        ["a"],
        "list_keys after bad patterns"
    );
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

async fn expect_key_rejected_everywhere<S: Storage + ?Sized>(store: &S, key: &str, name: &str) {
    expect_invalid_key(
        &format!("create with {name}"),
        store.create(Record::new(key, "v")).await,
    );
    expect_invalid_key(&format!("get of {name}"), store.get(key).await);
    expect_invalid_key(
        &format!("get_many with {name}"),
        store.get_many(&["fine", key]).await,
    );
    expect_invalid_key(
        &format!("put with {name}"),
        store.put(Record::new(key, "v")).await,
    );
    expect_invalid_key(
        &format!("put_many with {name}"),
        store.put_many(vec![Record::new(key, "v")]).await,
    );
    expect_invalid_key(
        &format!("cas with {name}"),
        store
            .cas_by_version(Record::new(key, "v").with_version("1"))
            .await,
    );
    expect_invalid_key(&format!("delete of {name}"), store.delete(key).await);
    expect_invalid_key(
        &format!("wait on {name}"),
        within(
            "wait on an invalid key",
            store.wait_for_version_change(key, "1"),
        )
        .await,
    );
}

/// The empty key is `InvalidKey` on every keyed operation, and the store keeps working.
pub async fn empty_key_is_invalid_on_every_operation<S: Storage>(store: S) {
    expect_key_rejected_everywhere(&store, "", "the empty key").await;
    ok(
        "put after invalid keys",
        store.put(Record::new("fine", "v")).await,
    );
    assert_eq!(
        list(&store, "*").await,
        ["fine"],
        "list_keys after invalid keys"
    );
}

/// A key longer than `MAX_KEY_LEN` bytes (ASCII or multi-byte) is `InvalidKey` on every keyed operation.
pub async fn too_long_key_is_invalid_on_every_operation<S: Storage>(store: S) {
    let ascii = "k".repeat(MAX_KEY_LEN + 1);
    expect_key_rejected_everywhere(&store, &ascii, "a key of MAX_KEY_LEN + 1 bytes").await;
    // Fewer characters than MAX_KEY_LEN, more bytes: the limit is in bytes.
    let wide = "é".repeat(MAX_KEY_LEN / 2 + 1);
    expect_key_rejected_everywhere(
        &store,
        &wide,
        "a key of MAX_KEY_LEN + 2 bytes in 2-byte characters",
    )
    .await;
    assert!(
        list(&store, "*").await.is_empty(),
        "rejected keys were stored"
    );
}

/// Keys of 1,024 bytes (ASCII and multi-byte) work with every operation.
pub async fn key_of_1024_bytes_works_everywhere<S: Storage>(store: S) {
    let ascii = format!("k/{}", "x".repeat(PORTABLE_KEY_LEN - 2));
    let wide = "é".repeat(PORTABLE_KEY_LEN / 2);
    for key in [ascii.as_str(), wide.as_str()] {
        assert_eq!(key.len(), PORTABLE_KEY_LEN, "kit bug: key length");
        let what = |op: &str| format!("{op} of a {PORTABLE_KEY_LEN}-byte key");
        let version = ok(&what("create"), store.create(Record::new(key, "1")).await);
        let got = ok(&what("get"), store.get(key).await);
        assert_record(&what("get"), &got, key, b"1");
        assert_eq!(got.version, version);
        let stored = ok(&what("put"), store.put(Record::new(key, "2")).await);
        assert_eq!(stored.key, key, "{}", what("put"));
        ok(
            &what("put_many"),
            store.put_many(vec![Record::new(key, "3")]).await,
        );
        let got = ok(&what("get_many"), store.get_many(&[key]).await);
        let current = got[0]
            .clone()
            .unwrap_or_else(|| panic!("{}: None", what("get_many")));
        assert_record(&what("get_many"), &current, key, b"3");
        let wait = within(
            &what("wait"),
            store.wait_for_version_change(key, &stored.version),
        )
        .await;
        assert!(
            wait.is_ok(),
            "{}: expected Ok at once, got {wait:?}",
            what("wait")
        );
        ok(
            &what("cas"),
            store
                .cas_by_version(Record::new(key, "4").with_version(current.version))
                .await,
        );
        assert_eq!(list(&store, key).await, [key], "{}", what("list_keys"));
        ok(&what("delete"), store.delete(key).await);
        expect_not_found(&what("get after delete"), store.get(key).await);
    }
}

/// Unicode keys round-trip byte for byte: no normalisation, no case folding, listed as written.
pub async fn unicode_keys_round_trip<S: Storage>(store: S) {
    let keys = [
        "ключ",
        "日本語/キー",
        "emoji/😀🎉",
        "é",
        "e\u{301}",
        "ß",
        "SS",
        "ǅ",
        "\u{10ffff}",
    ];
    for key in keys {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(key, key.as_bytes().to_vec())).await,
        );
    }
    for key in keys {
        let got = ok(&format!("get({key:?})"), store.get(key).await);
        assert_record(&format!("get({key:?})"), &got, key, key.as_bytes());
    }
    let mut sorted = keys.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(
        list(&store, "*").await,
        sorted,
        "list_keys(\"*\") over unicode keys"
    );
    check_patterns(
        &store,
        &[
            ("emoji/??", &["emoji/😀🎉"]),
            ("emoji/?", &[]),
            ("e?", &["e\u{301}"]),
        ],
    )
    .await;
}

/// Keys with spaces, control characters, NUL, glob metacharacters, dots and odd slashes round-trip and list.
pub async fn unusual_keys_round_trip<S: Storage>(store: S) {
    let keys = [
        " ",
        "with space",
        "tab\there",
        "new\nline",
        "nul\0byte",
        "a*b",
        "a?b",
        "[x]",
        "{a,b}",
        "back\\slash",
        "/leading",
        "trailing/",
        "double//slash",
        "..",
        "../up",
        "%2F",
        "Key",
        "key",
        "\u{7f}",
        "\u{feff}bom",
    ];
    for (i, key) in keys.iter().enumerate() {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(*key, i.to_string())).await,
        );
    }
    for (i, key) in keys.iter().enumerate() {
        let got = ok(&format!("get({key:?})"), store.get(key).await);
        assert_record(
            &format!("get({key:?})"),
            &got,
            key,
            i.to_string().as_bytes(),
        );
    }
    let mut sorted = keys.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(
        list(&store, "*").await,
        sorted,
        "list_keys(\"*\") over unusual keys"
    );
    for key in keys {
        let mut escaped = String::new();
        for c in key.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | ',') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        assert_eq!(
            list(&store, &escaped).await,
            [key],
            "list_keys({escaped:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// Values holding every byte value (and invalid UTF-8) round-trip through create, get, get_many, put and cas.
pub async fn binary_values_round_trip<S: Storage>(store: S) {
    let all: Vec<u8> = (0..=255u8).collect();
    let reversed: Vec<u8> = all.iter().rev().copied().collect();
    let version = ok(
        "create",
        store.create(Record::new("bin", all.clone())).await,
    );
    let got = ok("get", store.get("bin").await);
    assert_record("get of all 256 byte values", &got, "bin", &all);
    assert_eq!(got.version, version);
    let many = ok("get_many", store.get_many(&["bin"]).await);
    let first = many[0]
        .as_ref()
        .expect("get_many: the binary record is missing");
    assert_record("get_many of all 256 byte values", first, "bin", &all);
    let stored = ok("put", store.put(Record::new("bin", reversed.clone())).await);
    assert_record("the record put returned", &stored, "bin", &reversed);
    let zeros = vec![0u8; 64];
    let cas = ok(
        "cas",
        store
            .cas_by_version(Record::new("bin", zeros.clone()).with_version(stored.version))
            .await,
    );
    assert_record("the record cas returned", &cas, "bin", &zeros);
    let got = ok("get after cas", store.get("bin").await);
    assert_record("get of 64 zero bytes", &got, "bin", &zeros);
    let invalid_utf8 = vec![0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x82];
    ok(
        "put_many",
        store
            .put_many(vec![Record::new("bad-utf8", invalid_utf8.clone())])
            .await,
    );
    let got = ok("get", store.get("bad-utf8").await);
    assert_record("get of invalid UTF-8", &got, "bad-utf8", &invalid_utf8);
}

/// An empty value is stored and read back as empty (not as a missing key) by every operation.
pub async fn empty_value_round_trips<S: Storage>(store: S) {
    ok(
        "create with an empty value",
        store.create(Record::new("e1", "")).await,
    );
    let got = ok("get of an empty value", store.get("e1").await);
    assert_record("get of an empty value", &got, "e1", b"");
    let stored = ok("put with a value", store.put(Record::new("e2", "x")).await);
    let cas = ok(
        "cas to an empty value",
        store
            .cas_by_version(Record::new("e2", Bytes::new()).with_version(stored.version))
            .await,
    );
    assert_record("cas to an empty value", &cas, "e2", b"");
    ok(
        "put_many with an empty value",
        store.put_many(vec![Record::new("e3", "")]).await,
    );
    let got = ok("get_many", store.get_many(&["e1", "e2", "e3"]).await);
    for (i, record) in got.iter().enumerate() {
        let record = record
            .as_ref()
            .unwrap_or_else(|| panic!("get_many: empty value {i} is None"));
        assert!(record.value.is_empty(), "get_many: value {i} is not empty");
    }
    assert_eq!(
        list(&store, "e*").await,
        ["e1", "e2", "e3"],
        "list_keys of empty values"
    );
}

/// A 4 MiB value round-trips through put, get, get_many and cas.
pub async fn large_value_round_trips<S: Storage>(store: S) {
    const SIZE: usize = 4 << 20;
    let big = noise(SIZE, 7);
    let stored = ok(
        "put of 4 MiB",
        store.put(Record::new("big", big.clone())).await,
    );
    assert_record("the record put returned", &stored, "big", &big);
    let got = ok("get of 4 MiB", store.get("big").await);
    assert_record("get of 4 MiB", &got, "big", &big);
    let other = noise(SIZE, 11);
    ok(
        "cas of 4 MiB",
        store
            .cas_by_version(Record::new("big", other.clone()).with_version(stored.version))
            .await,
    );
    let many = ok("get_many", store.get_many(&["big"]).await);
    let first = many[0]
        .as_ref()
        .expect("get_many: the large record is missing");
    assert_record("get_many of 4 MiB after cas", first, "big", &other);
}

// ---------------------------------------------------------------------------------------
// close
// ---------------------------------------------------------------------------------------

/// After `close`, every operation (close included) returns `Closed`.
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

#[cfg(test)]
mod tests {
    /// Every `pub async fn` case appears in `conformance_tests!`, so none is silently skipped.
    #[test]
    fn every_case_is_in_the_macro() {
        let source = include_str!("testkit.rs");
        let list_start = source
            .find("conformance_tests!(@cases $factory;")
            .expect("the macro's list of cases");
        let list_end = list_start + source[list_start..].find(");").expect("end of the list");
        let listed = &source[list_start..list_end];
        let mut cases = 0;
        for chunk in source.split("\npub async fn ").skip(1) {
            let name = chunk.split('<').next().expect("a name");
            cases += 1;
            assert!(
                listed.contains(&format!(" {name},")),
                "case {name} is missing from conformance_tests!"
            );
        }
        assert!(cases >= 50, "found only {cases} cases");
        assert_eq!(
            listed.matches(",\n").count(),
            cases,
            "the macro lists a different number of cases than the module defines"
        );
    }
}
