//! `conformance_tests!`, forwarded to the conformance kit in the crate `store-testkit`.

/// Generates the conformance kit's tests for a backend or layer: one `#[test]` per rule of
/// the [`Storage`](crate::Storage) contract. Forwards, unchanged, to
/// `store_testkit::conformance_tests!`, whose documentation lists what it generates and
/// the options after the factory (`second_handle`, `linearizable_across_handles`,
/// `reopen`).
///
/// The kit lives in the crate `store-testkit`, which depends on this one (so this crate
/// cannot depend on it). A backend that calls this macro adds it as a dev-dependency, next
/// to store-core; nothing else changes:
///
/// ```toml
/// [dev-dependencies]
/// store-testkit = "0.1"
/// ```
///
/// Then, in `tests/conformance.rs`, one line runs every case on a factory of fresh, empty
/// stores:
///
/// ```
/// /// The backend under test (here: a tiny engine run by the store-core actor runtime).
/// async fn new_store() -> store_core::runtime::ActorHandle {
///     store_core::runtime::spawn(store_core::__private::DocEngine::default(), Default::default())
/// }
///
/// mod conformance {
///     store_core::conformance_tests!(super::new_store);
/// }
///
/// // With a second handle on the same data (here: a clone of the actor handle).
/// mod shared {
///     use store_core::runtime::ActorHandle;
///     store_core::conformance_tests!(
///         super::new_store,
///         second_handle = |first: &ActorHandle| async { first.clone() },
///     );
/// }
/// # fn main() {}
/// ```
///
/// Without `store-testkit` among the dependencies, the expansion names a crate that is not
/// there, and the error says so (``failed to resolve: use of unresolved module or unlinked
/// crate `store_testkit` ``).
#[macro_export]
macro_rules! conformance_tests {
    ($($input:tt)*) => {
        ::store_testkit::conformance_tests! { $($input)* }
    };
}
