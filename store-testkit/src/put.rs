//! Cases for `put` and `put_many`: what they store and return, duplicates, invalid keys, and
//! concurrent writes of one key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::support::*;
use store_core::{Error, Record, Storage, MAX_KEY_LEN};

/// `put` on a missing key stores it and returns the stored record, which `get` then reports.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::put_stores_and_returns_the_record(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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

/// `put` and `cas_by_version` answer with the record exactly as stored: a later `get` returns
/// the same expiry to the last bit, even when the backend keeps expiries coarser than the
/// nanoseconds the caller gave (a backend rounds the answer as it rounds what it stores).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::writes_answer_with_the_record_as_stored(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn writes_answer_with_the_record_as_stored<S: Storage>(store: S) {
    // An hour ahead, with nanoseconds no backend keeps (123,456,789 ns past the second).
    let base = SystemTime::now() + Duration::from_secs(3600);
    let since = base
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(since.as_secs())
        + Duration::from_nanos(123_456_789);
    let put = ok(
        "put with a nanosecond expiry",
        store
            .put(Record::new("precise", "p").with_expires_at(at))
            .await,
    );
    let got = ok("get after put", store.get("precise").await);
    assert_eq!(
        (&put.version, put.expires_at),
        (&got.version, got.expires_at),
        "put answered an expiry that get does not return"
    );
    let later = at + Duration::from_nanos(1_001);
    let cas = ok(
        "cas with a nanosecond expiry",
        store
            .cas_by_version(
                Record::new("precise", "c")
                    .with_expires_at(later)
                    .with_version(put.version.clone()),
            )
            .await,
    );
    let got = ok("get after cas", store.get("precise").await);
    assert_eq!(
        (&cas.version, cas.expires_at, &cas.value),
        (&got.version, got.expires_at, &got.value),
        "cas answered a record that get does not return"
    );
    let created = ok(
        "create with a nanosecond expiry",
        store
            .create(Record::new("precise/created", "n").with_expires_at(at))
            .await,
    );
    let got = ok("get after create", store.get("precise/created").await);
    assert_eq!(created, got.version, "create answered another version");
    // And what get returns is what a listing's reader and get_many see too.
    let many = ok("get_many", store.get_many(&["precise"]).await);
    let one = many
        .into_iter()
        .next()
        .flatten()
        .expect("get_many found it");
    assert_eq!(
        one.expires_at, cas.expires_at,
        "get_many disagrees with cas"
    );
}

/// `put` replaces the value and the expiry: a new expiry replaces the old one and `None` removes it.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::put_replaces_value_and_expiry(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::put_many_stores_every_record(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::put_many_later_duplicates_win(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::put_many_with_an_invalid_key_stores_nothing(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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

/// Once concurrent puts and deletes of one key have all returned, `get` shows the last of them: a `cas_by_version` with the version it reports succeeds, and a key it reports missing can be created.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::concurrent_writes_of_one_key_leave_the_last_visible(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn concurrent_writes_of_one_key_leave_the_last_visible<S: Storage>(store: S) {
    // Only the end of a round can show a stale state, so many short rounds.
    const ROUNDS: usize = 200;
    const TASKS: usize = 8;
    const WRITES: usize = 5;
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let key = format!("race/{round}");
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    for i in 0..WRITES {
                        // One task also deletes now and then, so removals race with puts.
                        if task == 0 && i % 2 == 1 {
                            match store.delete(&key).await {
                                Ok(()) | Err(Error::NotFound) => {}
                                Err(error) => panic!("delete {key}: {error:?}"),
                            }
                        } else {
                            let value = format!("t{task}-{i}");
                            ok("put", store.put(Record::new(key.as_str(), value)).await);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            join("a writing task", task).await;
        }
        // Nothing writes any more: what `get` shows must be what the store holds, so a
        // stale answer (an older put, or a key deleted before the last put) fails here.
        match store.get(&key).await {
            Ok(last) => {
                let written = std::str::from_utf8(&last.value)
                    .is_ok_and(|v| v.starts_with('t') && v.contains('-'));
                assert!(written, "{key} holds {:?}, which no put wrote", last.value);
                let next = Record::new(key.as_str(), "after").with_version(last.version.clone());
                ok(
                    &format!(
                        "cas_by_version of {key} with the version get reported ({}) after every \
                         write returned: get showed an older state than the store holds",
                        last.version
                    ),
                    store.cas_by_version(next).await,
                );
            }
            Err(Error::NotFound) => {
                ok(
                    &format!(
                        "create of {key}, which get reported missing after every write returned"
                    ),
                    store.create(Record::new(key.as_str(), "after")).await,
                );
            }
            Err(error) => panic!("get {key} after the writes: {error:?}"),
        }
    }
}
