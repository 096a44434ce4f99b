//! Cases for `delete`.

use super::support::*;
use store_core::{Record, Storage};

/// `delete` removes a live record (and only it); deleting a missing or already deleted key is `NotFound`.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::delete_removes_the_record(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
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
