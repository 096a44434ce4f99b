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

use std::future::Future;
use std::time::Duration;

#[cfg(doc)]
use crate::{Error, Storage, MAX_KEY_LEN};

mod conformance_macro;
pub mod linearizability;
mod support;

mod cas;
mod close;
mod create;
mod delete;
mod expiry;
mod get;
mod keys;
mod list;
mod put;
mod values;
mod versions;
mod wait;

#[cfg(test)]
mod self_check;

pub use cas::*;
pub use close::*;
pub use create::*;
pub use delete::*;
pub use expiry::*;
pub use get::*;
pub use keys::*;
pub use list::*;
pub use put::*;
pub use values::*;
pub use versions::*;
pub use wait::*;

/// How far an expiry read back may be from the one written (backends may round it).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(1);

/// The longest key the kit expects every stack (namespaced ones included) to accept.
pub const PORTABLE_KEY_LEN: usize = 1024;

/// The longest a whole case may run before [`run`] declares it hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

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
