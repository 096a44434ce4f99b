//! A cache layer for any `store-core` [`Storage`](store_core::Storage), built on
//! [`moka`]'s async cache, whose answers within one process are always the inner store's.
//!
//! # Layout
//!
//! - `options.rs`: [`CacheOptions`] (capacity, `ttl`, negative caching, stripes).
//! - `layer.rs`: [`CachedStorage`], the `Storage` implementation.
//! - `stripes.rs`: the per-key ordering of fills and writes explained below.
//! - `stats.rs`: [`CacheStats`].
//!
//! # Consistency
//!
//! Within one process, after any interleaving of concurrent operations has completed, a
//! `get` through the cache returns exactly what the inner store returns. Three rules give
//! that:
//!
//! 1. **Writes go below first.** A write calls the inner store, then updates the cache from
//!    the answer: a stored record is installed; an error (`Conflict`, `NotFound`, ...)
//!    invalidates the key, since it may mean the cache missed a write from elsewhere.
//! 2. **Fills cannot undo writes.** Each key hashes to a stripe with a generation counter.
//!    A miss notes the generation before it reads the inner store and fills the cache only
//!    if no writer has finished on that stripe since. Writers bump the generation under the
//!    stripe's lock, and fills check it under the same lock.
//! 3. **Overlapping writers do not install.** Replies from the inner store wake tasks in any
//!    order, so two writers of one key may finish in the opposite order to the one the store
//!    applied. A writer that overlapped another on its stripe invalidates instead of
//!    installing; a writer that ran alone installs, because the store applied it after every
//!    write that finished before it started.
//!
//! A write's inner call and cache update run together on a spawned task, so a caller that
//! drops the future midway cannot separate them.
//!
//! Entries never outlive the record's `expires_at` (moka's per-entry expiry, checked again on
//! every hit). Writes made by other processes are invisible to this cache; `ttl` bounds how
//! long an entry can hide them.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use store_cache::{CacheOptions, CachedStorage};
//! use store_core::{Namespaced, Record, Storage};
//!
//! let memory = store_memory::MemoryStorage::new();
//! let options = CacheOptions { ttl: Some(Duration::from_secs(30)), ..Default::default() };
//! let stack = Namespaced::new(CachedStorage::new(memory, options), "orders").unwrap();
//! stack.put(Record::new("1", "pending")).await.unwrap();
//! assert_eq!(&stack.get("1").await.unwrap().value[..], b"pending");
//! # });
//! ```

mod layer;
mod options;
mod stats;
mod stripes;

pub use layer::CachedStorage;
pub use options::CacheOptions;
pub use stats::CacheStats;
