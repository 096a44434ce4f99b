//! Testing support for store-core backends and layers, as `tower-test` is to tower: the
//! conformance kit every [`Storage`] runs, the linearizability checker, a TCP proxy that
//! injects network faults, a harness for tests that run in several processes, and private
//! servers (Redis, PostgreSQL) of a test's own on random ports.
//!
//! Nothing here is typed by a backend crate: this crate depends on store-core alone, so a
//! backend's tests can use it without linking the backend twice. What is typed by a backend
//! (a test store under a fresh prefix or table that is removed afterwards, the test server's
//! URL) lives in that backend's `testing` module (feature `testkit`), built on this crate.
//!
//! # What it holds
//!
//! - **The conformance kit**: one async case per rule of the [`Storage`] contract, each a
//!   `pub async fn` at the root of this crate (`store_testkit::<case>`), and
//!   [`conformance_tests!`](crate::conformance_tests), which expands into one `#[test]` per
//!   case for a backend's store factory. [`run`] runs one case on its own runtime;
//!   [`Progress`], [`Watched`] and [`STALL_LIMIT`] tell a hang from slowness.
//! - **[`linearizability`]**: a checker for recorded histories of calls (Wing and Gong's
//!   search, key by key), and a [`Recorder`](linearizability::Recorder) that records a
//!   history from calls on any store.
//! - **[`fault_proxy`]**: [`FaultProxy`](fault_proxy::FaultProxy), a TCP proxy between a
//!   network backend and its server that cuts, refuses or stalls connections on command.
//! - **[`process`]**: test binaries that re-execute themselves as child processes on the
//!   same store, with a heartbeat, so that a silent child fails the test and a slow one
//!   does not.
//! - **[`servers`]**: [`free_port`], [`ChildServer`] (a server process killed on drop), and
//!   private servers: [`PrivateRedis`](servers::redis::PrivateRedis) (alone or a replica),
//!   a [`RedisCluster`](servers::redis::RedisCluster), a
//!   [`PrivateSentinel`](servers::redis::PrivateSentinel),
//!   [`PrivatePostgres`](servers::postgres::PrivatePostgres) (and a streaming standby of it,
//!   which can be promoted), [`PrivateNats`](servers::nats::PrivateNats) with JetStream and
//!   a 3-node [`NatsCluster`](servers::nats::NatsCluster), and
//!   [`PrivateMariadb`](servers::mariadb::PrivateMariadb) (optionally with the binary log).
//!   [`fresh_name`] names test data so that concurrent test runs sharing one server never
//!   meet.
//!
//! # Layout
//!
//! One module of cases per operation (`create`, `get`, `put`, `cas`, `delete`, `versions`,
//! `expiry`, `wait`, `list`, `keys`, `values`, `close`), then the **Linearizable** rule on one
//! handle (`linearizable`), the two-handle cases (`shared`, and `shared_linearizable` for
//! handles that read each other's writes at once) and the durable ones (`durable`). Every
//! case is re-exported at the root. The concurrent scenarios behind the linearizability
//! cases live in `scenarios`, the helpers in `support`, the hang detector in `progress`,
//! and `self_check` makes sure that the macro runs every case. Then the public modules:
//! [`linearizability`], [`fault_proxy`], [`process`] and [`servers`].
//!
//! # A backend wires the kit in with one line
//!
//! Add this crate as a dev-dependency (`store-testkit = { workspace = true }` in this
//! workspace) and, in `tests/conformance.rs`, name a factory of fresh, empty stores:
//!
//! ```
//! # async fn new_store() -> store_core::runtime::ActorHandle {
//! #     store_core::runtime::spawn(store_core::__private::DocEngine::default(), Default::default())
//! # }
//! mod conformance {
//!     store_testkit::conformance_tests!(super::new_store);
//! }
//! # fn main() {}
//! ```
//!
//! Options declare what else the backend can do (a second handle on the same data, a
//! durable reopen); see [`conformance_tests!`](crate::conformance_tests). A third-party
//! backend may keep writing `store_core::conformance_tests!(..)`: store-core forwards it
//! here, and needs this crate as a dev-dependency all the same.
//!
//! # Private servers
//!
//! Tests of a network backend run against the machine's test server (each under a fresh
//! prefix or table), or against a server of their own when they kill, restart or cut it.
//! A private server listens on a free port of 127.0.0.1, keeps its data in a temporary
//! directory (or nowhere), never touches the machine's shared servers, and is killed when
//! dropped. The calls block while the server starts: call them from a test thread or from
//! `spawn_blocking`.
//!
//! ```no_run
//! use store_testkit::servers::redis::PrivateRedis;
//!
//! let mut redis = PrivateRedis::start();
//! let url = redis.url(); // connect a store here
//! redis.kill();          // every key is lost
//! redis.restart();       // same port, empty
//! # let _ = url;
//! ```
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

#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

#[cfg(doc)]
use store_core::{Error, Storage, MAX_KEY_LEN};

mod conformance_macro;
pub mod fault_proxy;
pub mod linearizability;
mod names;
pub mod process;
mod progress;
mod scenarios;
pub mod servers;
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

pub use names::fresh_name;
pub use progress::{Entered, Progress, Watched, STALL_LIMIT};
pub use servers::{free_port, ChildServer};

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
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let written = SystemTime::now() + Duration::from_secs(60);
/// let read_back = written + Duration::from_millis(400); // rounded by the backend
/// let off = read_back.duration_since(written).unwrap();
/// assert!(off <= store_testkit::EXPIRY_TOLERANCE);
/// ```
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(1);

/// The longest key the kit expects every stack (namespaced ones included) to accept.
///
/// ```
/// // Below store-core's limit, which a prefixing layer lowers by its prefix.
/// assert!(store_testkit::PORTABLE_KEY_LEN < store_core::MAX_KEY_LEN);
/// ```
pub const PORTABLE_KEY_LEN: usize = 1024;

/// Runs one test case on a fresh multi-threaded tokio runtime with two workers, failing it
/// if nothing in it makes progress for [`STALL_LIMIT`] (see [`Progress`]: a case may be as
/// slow as the machine makes it, as long as its calls keep finishing). `case` is called
/// inside the runtime, so it may create stores that spawn tasks.
///
/// ```
/// store_testkit::run(|| async {
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
