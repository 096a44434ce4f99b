//! Cases for two handles that are linearizable with each other (DESIGN section 3: for
//! shared backends, a call that returned is observed by every call that starts afterwards,
//! in any process): reads through one handle see at once what the other wrote.

use super::scenarios::{histories, listing, signalled, torn, wake, Handles};
use store_core::Storage;

/// Every kind of write through one handle, signalled to a task reading through the other, is read there at once by `get` and `get_many`, while other tasks keep reading through both (150 writes each way).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::writes_through_one_handle_are_read_at_once_through_the_other(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn writes_through_one_handle_are_read_at_once_through_the_other<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    let handles = Handles::two(first, second);
    signalled::run(&handles).await;
    signalled::run(&handles.swapped()).await;
}

/// Waiters on either handle, woken by a write or a delete through the first, read that write (or `NotFound`) through their own handle.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::a_waiter_woken_by_the_other_handle_reads_what_woke_it(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn a_waiter_woken_by_the_other_handle_reads_what_woke_it<A: Storage, B: Storage>(
    first: A,
    second: B,
) {
    let handles = Handles::two(first, second);
    wake::woken_by_writes(&handles).await;
    wake::woken_by_delete(&handles).await;
}

/// `get_many` through either handle never observes part of a `put_many` through the first.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::get_many_through_one_handle_is_never_torn_by_put_many_through_the_other(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn get_many_through_one_handle_is_never_torn_by_put_many_through_the_other<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    torn::run(&Handles::two(first, second)).await;
}

/// `get_many` through either handle sees puts through the first in the order they returned.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::get_many_through_one_handle_sees_puts_through_the_other_in_order(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn get_many_through_one_handle_sees_puts_through_the_other_in_order<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    torn::sequential(&Handles::two(first, second)).await;
}

/// A get through one handle agrees with a listing through the other (and through itself) while the first creates and deletes keys.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::a_get_through_one_handle_agrees_with_a_listing_through_the_other(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn a_get_through_one_handle_agrees_with_a_listing_through_the_other<
    A: Storage,
    B: Storage,
>(
    first: A,
    second: B,
) {
    listing::run(&Handles::two(first, second)).await;
}

/// Random histories from 8 to 32 tasks, alternately on the two handles, with records that expire mid-history, pass the linearizability checker key by key.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores and
/// // a second handle on the first one's data (here a clone of the handle):
/// store_testkit::run(|| async {
///     let first = new_store();
///     let second = first.clone();
///     store_testkit::concurrent_histories_across_handles_are_linearizable(
///         store_testkit::Watched::new(first),
///         store_testkit::Watched::new(second),
///     )
///     .await;
/// });
/// ```
pub async fn concurrent_histories_across_handles_are_linearizable<A: Storage, B: Storage>(
    first: A,
    second: B,
) {
    histories::run(&Handles::two(first, second)).await;
}
