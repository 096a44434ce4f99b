//! A cache layer for any `store-core` [`Storage`](store_core::Storage), built on
//! [`moka`]'s async cache, whose answers within one process are always the inner store's.
//!
//! # Layout
//!
//! - `options.rs`: [`CacheOptions`] (capacity, `ttl`, negative caching, stripes).
//! - `config.rs`: [`CacheConfig`], the `[cache]` section of a store configuration.
//! - `layer.rs`: [`CachedStorage`], the `Storage` implementation.
//! - `stripes.rs`: the per-key ordering of fills and writes explained below.
//! - The cache itself is moka's synchronous `Cache` (no `.await` on a hit, and no lock held
//!   across an `.await`).
//! - `stats.rs`: [`CacheStats`].
//!
//! # Consistency: linearizable within the process
//!
//! Through a `CachedStorage`, every operation behaves as if it ran at one instant between
//! its call and its return, in an order that every task of the process agrees on (DESIGN
//! section 3): no `get` returns a value older than one that a completed write, a woken waiter
//! or a listing has already exposed, and `get_many` never shows part of a `put_many`. The
//! rules that give this are in `stripes.rs`; in short:
//!
//! 1. **A write empties before it writes.** It takes its keys out of the cache and holds
//!    fills off them *before* it calls the inner store, so while the inner store may already
//!    show the new value (to a woken waiter, a listing, a reader that missed), the cache
//!    cannot show the old one.
//! 2. **Fills cannot undo writes.** A miss installs what it read only if no write of the
//!    key's stripe started, finished or was in flight since it looked.
//! 3. **Only a write that ran alone installs its answer**; overlapping writes leave the key
//!    out, and the next read fetches the truth.
//! 4. **`get_many` checks its snapshot**: its hits are used only if no write of any of its
//!    keys started between the first lookup and the inner store's answer for the misses;
//!    otherwise the inner store answers for all of them.
//!
//! A write's inner call and its cache update run together on a task of their own, so a
//! caller that drops the future cannot separate them; [`CachedStorage::settled`] waits for
//! such writes. A guard finishes every write, so a panic in the inner store leaves neither a
//! stale entry nor a stripe that refuses fills for good.
//!
//! **What it costs.** While a key is being written (and, since keys share stripes, while a
//! key of the same stripe is), its reads miss and go to the inner store, and what they read
//! is not installed ([`CacheStats::refused_fills`] counts those); a `put_many` installs
//! nothing; a `get_many` that overlaps a write of one of its keys reads them all below. The
//! figures are in the README's benchmark section (`store-bench --target cache`).
//!
//! Entries never outlive the record's `expires_at` (moka's per-entry expiry, checked again on
//! every hit). Writes made by other processes are invisible to this cache; `ttl` bounds how
//! long an entry can hide them. Across processes the stack is as consistent as that bound.
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

#![forbid(unsafe_code)]

mod config;
mod layer;
mod options;
mod stats;
mod stripes;

pub use config::CacheConfig;
pub use layer::CachedStorage;
pub use options::CacheOptions;
pub use stats::CacheStats;
