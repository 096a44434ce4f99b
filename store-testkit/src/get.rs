//! Cases for `get` and `get_many` on a single store.

use super::support::*;
use store_core::{Record, Storage};

/// `get` of a key that was never written, was deleted, or only shares a prefix is `NotFound`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::get_missing_key_is_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn get_missing_key_is_not_found<S: Storage>(store: S) {
    expect_not_found("get of a never-written key", store.get("never").await);
    ok("put", store.put(Record::new("abc", "v")).await);
    expect_not_found("get of a prefix of a key", store.get("ab").await);
    expect_not_found("get of an extension of a key", store.get("abcd").await);
    ok("delete", store.delete("abc").await);
    expect_not_found("get after delete", store.get("abc").await);
}

/// `get_many` answers position by position: `Some` for live keys (repeats included), `None` for missing or expired ones.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::get_many_is_positional(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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
