//! The versioned key-value contract and everything the backends share.
//!
//! This crate is the heart of the workspace: the contract, the runtime, glob patterns and
//! the namespace layer. A backend crate (memory, file, Redis, PostgreSQL) provides an engine
//! or a [`Storage`] implementation; layers (namespace here, cache in `store-cache`) wrap any
//! `Storage`; the go-micro facade in `store-compat` sits on top. What tests need (the
//! conformance kit, the linearizability checker, the fault proxy, private servers) is in the
//! crate `store-testkit`; [`conformance_tests!`] here forwards to it.
//!
//! # Layout
//!
//! - [`record`](Record) and [`error`](Error): the data and the failures.
//! - [`Storage`] (in `storage.rs`): the async trait, implemented for `Arc<S>` and
//!   `Box<dyn Storage>` so stacks are built from `Arc<dyn Storage>`.
//! - [`Layer`] (in `layer.rs`): how a wrapper overrides only the calls it changes and
//!   forwards the rest; the namespace and cache layers and every backend's named handle
//!   are layers.
//! - [`Stats`] (in `stats.rs`): what each component of a stack reports to operators.
//! - [`paging`]: the one stream shape every backend's `list_keys` returns.
//! - [`backoff`]: the jittered, capped delay between a network backend's reconnect
//!   attempts.
//! - [`net`]: the runtime every network backend is written on: the mailbox and its
//!   batches, the replaceable [`Link`](net::Link), the [`ServerClock`](net::ServerClock)
//!   that gives every write a deadline its server enforces, the notification
//!   [`Listener`](net::Listener) and the [`ReaperSchedule`](net::ReaperSchedule); its docs
//!   show a backend written on it in one page.
//! - [`watch`]: `wait_for_version_change` for backends that learn of changes by
//!   notification (Redis, PostgreSQL): register, read, re-read on every notification.
//! - [`Pattern`] (in `glob/`): gobwas-style globs for `list_keys`, with the literal prefix
//!   that lets backends scan only the matching key range.
//! - [`runtime`]: the actor runtime that runs every engine: one owner per store, a bounded
//!   mailbox, batching with one sync per batch, waiters, the expiry timer, list paging;
//!   reads, and the single-record writes of engines that never block, in the caller's task.
//! - [`Namespaced`] (in `namespace.rs`): the layer that confines a tenant to its prefix.
//! - `config` (with the feature `serde`): what the backends' configuration sections
//!   share: field readers whose errors name the field, and the runtime's tuning as a section.
//! - [`conformance_tests!`]: the conformance kit's one line, forwarded to `store-testkit`
//!   (which a backend adds as a dev-dependency).
//!
//! # Example
//!
//! ```
//! use store_core::{Error, Record, Storage};
//!
//! async fn claim(store: &dyn Storage, job: &str, worker: &str) -> store_core::Result<bool> {
//!     match store.create(Record::new(format!("jobs/{job}/owner"), worker.to_owned())).await {
//!         Ok(_version) => Ok(true),
//!         Err(Error::AlreadyExists(_)) => Ok(false),
//!         Err(other) => Err(other),
//!     }
//! }
//! ```

#![forbid(unsafe_code)]

pub mod backoff;
#[cfg(feature = "serde")]
pub mod config;
mod conformance;
mod doc_support;
mod error;
mod glob;
mod key;
mod layer;
mod namespace;
pub mod net;
pub mod paging;
mod record;
pub mod runtime;
mod stats;
mod storage;
pub mod watch;

pub use error::{Error, Result};
pub use glob::{Pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING};
pub use key::{validate_key, validate_key_within, MAX_KEY_LEN};
pub use layer::Layer;
pub use namespace::{validate_name, Namespaced, MAX_NAME_LEN};
pub use record::Record;
pub use stats::{ComponentStats, Figure, Stats};
pub use storage::{BoxFuture, KeyStream, Storage};

/// Re-exports used by this crate's macros and documentation; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::doc_support::{doc_store, DocEngine};
}
