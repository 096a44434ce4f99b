//! An in-memory backend for the `store-core` contract.
//!
//! [`MemoryStorage`] is a handle to an actor (see `store_core::runtime`) that owns a
//! [`MemoryEngine`]: an ordered map from key to entry. The ordered map gives `list_keys` its
//! ascending order and turns a pattern's literal prefix into a range scan, so listing 100
//! keys under a prefix costs the same among ten thousand keys or a million.
//!
//! Everything else (versions, expiry, waiters, batching, paging, shutdown) is the shared
//! runtime's work; this crate is only the state machine, and [`MemoryConfig`], the
//! `[memory]` section of a store configuration (the runtime's tuning). Nothing survives the process; use
//! `store-file` for that.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use store_core::{Record, Storage};
//! use store_memory::MemoryStorage;
//!
//! let store = MemoryStorage::new();
//! let version = store.create(Record::new("greeting", "hello")).await?;
//! let record = store.get("greeting").await?;
//! assert_eq!(record.version, version);
//! # Ok::<(), store_core::Error>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]

mod config;
mod engine;

use store_core::runtime::{self, ActorHandle, RuntimeOptions};
use store_core::Layer;

pub use config::MemoryConfig;
pub use engine::MemoryEngine;

/// An in-memory [`Storage`](store_core::Storage): cheap to clone, `Send + Sync`, every clone talks to one actor.
///
/// It works anywhere: created inside a tokio runtime, its actor is a task of that runtime
/// (and lives as long as it); created outside any runtime, the actor gets a thread of its
/// own. `get` and `get_many` never reach the actor: they read the store's published state
/// in the caller's task. The store closes when [`Storage::close`](store_core::Storage::close)
/// is called or when the last clone is dropped.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Error, Record, Storage};
/// let store = store_memory::MemoryStorage::new();
/// let stored = store.put(Record::new("k", "v1")).await.unwrap();
/// let next = Record::new("k", "v2").with_version(stored.version.clone());
/// store.cas_by_version(next.clone()).await.unwrap();
/// assert!(matches!(store.cas_by_version(next).await, Err(Error::Conflict)));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStorage {
    handle: ActorHandle,
}

impl MemoryStorage {
    /// Starts an empty store with the default runtime options.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_memory::MemoryStorage::new();
    /// # let _ = store;
    /// # });
    /// ```
    pub fn new() -> Self {
        Self::with_options(RuntimeOptions::default())
    }

    /// Starts an empty store with the given runtime options (mailbox size, batch size, paging).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::runtime::RuntimeOptions;
    /// let store = store_memory::MemoryStorage::with_options(RuntimeOptions::default().page_size(64));
    /// # let _ = store;
    /// # });
    /// ```
    pub fn with_options(options: RuntimeOptions) -> Self {
        Self {
            handle: runtime::spawn(MemoryEngine::default(), options),
        }
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

/// Every call goes to the actor's handle.
impl Layer for MemoryStorage {
    type Inner = ActorHandle;

    fn inner(&self) -> &ActorHandle {
        &self.handle
    }
}
