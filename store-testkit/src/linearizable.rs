//! Cases for the **Linearizable** rule of the contract, on one handle: what a woken waiter,
//! another task, a `get_many` and a get after a listing observe while writes go on. Every
//! backend and every stack of layers runs them.

use super::scenarios::{histories, listing, signalled, torn, wake, Handles};
use store_core::Storage;

/// Waiters woken by a `put`, `put_many` or `cas_by_version` read that write on their next `get` (60 rounds, 4 waiters each, the key read before waiting).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::a_woken_waiter_reads_the_write_that_woke_it(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn a_woken_waiter_reads_the_write_that_woke_it<S: Storage>(store: S) {
    wake::woken_by_writes(&Handles::one(store)).await;
}

/// Waiters woken by a `delete` read `NotFound` on their next `get` (60 rounds, 4 waiters each, the key read before waiting).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::a_waiter_woken_by_a_delete_reads_not_found(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn a_waiter_woken_by_a_delete_reads_not_found<S: Storage>(store: S) {
    wake::woken_by_delete(&Handles::one(store)).await;
}

/// A write that completed in one task and was signalled to another is read there, by `get` and `get_many`, while other tasks keep reading the key (150 writes of every kind).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::a_write_signalled_to_another_task_is_read_there(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn a_write_signalled_to_another_task_is_read_there<S: Storage>(store: S) {
    signalled::run(&Handles::one(store)).await;
}

/// `get_many` never observes part of a `put_many` and never goes back in time (300 `put_many` of two keys against 4 readers x 500 reads).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::get_many_is_never_torn_by_put_many(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn get_many_is_never_torn_by_put_many<S: Storage>(store: S) {
    torn::run(&Handles::one(store)).await;
}

/// `get_many` never observes a `put` without the `put` that returned before it began (1,000 rounds of a put to each of two keys in turn, 4 readers reading both until the writer is done).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::get_many_sees_puts_in_the_order_they_returned(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn get_many_sees_puts_in_the_order_they_returned<S: Storage>(store: S) {
    torn::sequential(&Handles::one(store)).await;
}

/// A key a listing showed is then found by `get`, and a key a listing no longer shows is then `NotFound`, while keys are created and deleted (10 rounds of 8 keys).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::a_get_after_a_listing_agrees_with_it(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn a_get_after_a_listing_agrees_with_it<S: Storage>(store: S) {
    listing::run(&Handles::one(store)).await;
}

/// Random histories of every call (dropped writes included) from 8, 16, 24 and 32 tasks over 2 keys, with records that expire mid-history (TTLs of 1 to 10 ms, and leases renewed as they lapse while another read runs), pass the linearizability checker, key by key.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::concurrent_histories_are_linearizable(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn concurrent_histories_are_linearizable<S: Storage>(store: S) {
    histories::run(&Handles::one(store)).await;
}
