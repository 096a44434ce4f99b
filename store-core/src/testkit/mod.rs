//! The public conformance kit: one async test case per semantic rule of the [`Storage`]
//! contract, and [`conformance_tests!`](crate::conformance_tests) to run all of them against
//! any backend or layer.
//!
//! Every case is a `pub async fn case_name<S: Storage>(store: S)` that receives a fresh, empty
//! store, uses only the [`Storage`] trait and panics with a message naming what went wrong.
//! Cases that need a capability take more: two handles on the same data
//! (`(first: A, second: B)`), or a way to reopen a durable store (`(store: S, reopen: R)`).
//! Backends and layers (memory, file, cache, Redis, namespaced stacks) run the kit unchanged;
//! see [`conformance_tests!`](crate::conformance_tests) for how a backend crate wires it in
//! and declares its capabilities.
//!
//! The macro expands into one `#[test]` function per case, named after the case, so a failure
//! names the rule that broke. Each test runs on its own multi-threaded tokio runtime with two
//! workers (built by [`run`]), so the calling crate does not need tokio's macros.
//!
//! # Layout
//!
//! One module of cases per operation (`create`, `get`, `put`, `cas`, `delete`, `versions`,
//! `expiry`, `wait`, `list`, `keys`, `values`, `close`), then the **Linearizable** rule on one
//! handle (`linearizable`), the two-handle cases (`shared`, and `shared_linearizable` for
//! handles that read each other's writes at once) and the durable ones (`durable`). Every
//! case is re-exported here, so `store_core::testkit::<case>` names it. The concurrent
//! scenarios behind the linearizability cases live in `scenarios`, the helpers in `support`,
//! and [`linearizability`] is a checker for recorded histories that backends may use in
//! their own tests too.
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
//! - Linearizability is checked by scenarios that give each rule of DESIGN section 3 a
//!   chance to break (a waiter reads right after waking, a task reads what another has just
//!   written, readers hammer `get_many` while `put_many` runs, gets follow listings), each
//!   for a fixed number of rounds, not for a wall-clock time; and by random histories of
//!   every call, dropped calls included, checked key by key with [`linearizability`]. A pass
//!   proves no more than that these interleavings were linearizable; a failure always names
//!   a real violation.
//! - A call whose caller dropped the future may take effect after it was dropped; the
//!   checker allows any instant after its invocation, or none (DESIGN section 3).

use std::future::Future;
use std::time::Duration;

#[cfg(doc)]
use crate::{Error, Storage, MAX_KEY_LEN};

mod conformance_macro;
pub mod linearizability;
mod progress;
mod scenarios;
mod support;

mod cas;
mod close;
mod create;
mod delete;
mod durable;
mod expiry;
mod get;
mod keys;
mod linearizable;
mod list;
mod put;
mod shared;
mod shared_linearizable;
mod values;
mod versions;
mod wait;

#[cfg(test)]
mod self_check;

pub use progress::{Entered, Progress, Watched, STALL_LIMIT};

pub use cas::*;
pub use close::*;
pub use create::*;
pub use delete::*;
pub use durable::*;
pub use expiry::*;
pub use get::*;
pub use keys::*;
pub use linearizable::*;
pub use list::*;
pub use put::*;
pub use shared::*;
pub use shared_linearizable::*;
pub use values::*;
pub use versions::*;
pub use wait::*;

/// How far an expiry read back may be from the one written (backends may round it).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(1);

/// The longest key the kit expects every stack (namespaced ones included) to accept.
pub const PORTABLE_KEY_LEN: usize = 1024;

/// Runs one test case on a fresh multi-threaded tokio runtime with two workers, failing it
/// if nothing in it makes progress for [`STALL_LIMIT`] (see [`Progress`]: a case may be as
/// slow as the machine makes it, as long as its calls keep finishing). `case` is called
/// inside the runtime, so it may create stores that spawn tasks.
///
/// ```
/// store_core::testkit::run(|| async {
///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
/// });
/// ```
///
/// # Panics
///
/// Panics if the runtime cannot be built, if the case panics, or if it hangs.
pub fn run<F, Fut>(case: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    run_with(Progress::new(STALL_LIMIT), case);
}

/// [`run`] with the case's progress given (the kit's own tests use short limits).
fn run_with<F, Fut>(progress: Progress, case: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = progress.runtime();
    {
        let _entered = progress.enter();
        runtime.block_on(progress.watch("the case", case()));
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
}
