//! Baselines: what a user would write instead of the system under test, or a peer to
//! measure it against.
//!
//! A baseline is any [`Subject`]; [`BaselineKind`] names the ones the runner can build:
//!
//! - [`MutexMap`]: a `std::sync::Mutex` around a map from `String` to a value, a version and
//!   an optional `tokio::sync::Notify`, the code a user writes for a versioned in-process
//!   map. It comes as `MutexMap<HashMap<..>>` for point operations and
//!   `MutexMap<BTreeMap<..>>` for prefix listing (a range scan). The memory target's
//!   baseline.
//! - [`MokaMap`]: a `moka::future::Cache<String, Bytes>` used directly (get clones the
//!   `Bytes`), for the cache target's hits.
//! - `memory` and `file`: the project's own `MemoryStorage` and `FileStorage` (sync always),
//!   through the same [`StorageSubject`](crate::subject::StorageSubject) as targets: the
//!   file target's reads are compared with the memory backend's, and the cache target's
//!   misses and mixed load with the file backend alone.
//! - [`FsyncLog`](crate::durable::FsyncLog) and [`RedbTable`](crate::durable::RedbTable):
//!   durable puts (see `durable.rs`).
//! - [`PlainRedis`](crate::plain_redis::PlainRedis) (`redis-plain`): GET/SET through the
//!   `redis` crate on the redis target's server (see `plain_redis.rs`).
//! - [`RawLocks`](crate::locks::RawLocks) (`raw-records`): the lock workloads' baseline, the
//!   target's own store doing a lock's job with raw record operations (see `locks.rs`).
//!
//! The baselines are written to be fast, not to flatter the target: the lock is held only
//! for the lookup or update, a get clones the `Bytes` (a reference count), an overwrite
//! reuses the key's allocation, and nothing is boxed.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use store_core::{Error, Result};
use tokio::sync::Notify;

use crate::subject::{CasOutcome, Subject};

/// The baselines the runner knows how to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineKind {
    /// `Mutex<HashMap<String, Slot>>`: point operations, waits via `Notify`.
    MutexHashMap,
    /// `Mutex<BTreeMap<String, Slot>>`: prefix listing as a range scan.
    MutexBTreeMap,
    /// `store_memory::MemoryStorage`, through the `Storage` API.
    Memory,
    /// `store_file::FileStorage` with `SyncPolicy::Always`, through the `Storage` API.
    File,
    /// Append + `fdatasync` per record under one lock.
    FsyncLog,
    /// redb, one durable write transaction per put.
    Redb,
    /// `moka::future::Cache<String, Bytes>` used directly.
    Moka,
    /// Plain GET/SET through the `redis` crate on the redis target's server.
    PlainRedis,
    /// Plain single-row statements through tokio-postgres and deadpool-postgres on the
    /// same server (see `postgres.rs`).
    TokioPostgres,
    /// The lock workloads' baseline: the target's own store doing a lock's job with raw
    /// record operations (create, wait_for_version_change, delete; see `locks.rs`).
    RawRecords,
}

impl BaselineKind {
    /// The name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            BaselineKind::MutexHashMap => HashMap::<String, Slot>::NAME,
            BaselineKind::MutexBTreeMap => BTreeMap::<String, Slot>::NAME,
            BaselineKind::Memory => "memory",
            BaselineKind::File => "file",
            BaselineKind::FsyncLog => "fdatasync-log",
            BaselineKind::Redb => "redb",
            BaselineKind::Moka => "moka",
            BaselineKind::PlainRedis => "redis-plain",
            BaselineKind::TokioPostgres => "tokio-postgres",
            BaselineKind::RawRecords => "raw-records",
        }
    }
}

/// One stored value with the version the baseline gave it and, while someone waits on the
/// key, the `Notify` they wait on.
#[derive(Debug)]
pub struct Slot {
    value: Bytes,
    version: u64,
    notify: Option<Arc<Notify>>,
}

/// The map a [`MutexMap`] holds.
pub trait SlotMap: Default + Send + 'static {
    /// The name printed in reports.
    const NAME: &'static str;
    /// The slot under `key`.
    fn slot(&self, key: &str) -> Option<&Slot>;
    /// The slot under `key`, for update.
    fn slot_mut(&mut self, key: &str) -> Option<&mut Slot>;
    /// Inserts a slot under a new key.
    fn insert(&mut self, key: String, slot: Slot);
    /// The keys that start with `prefix`, in whatever order the map keeps.
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String>;
}

impl SlotMap for HashMap<String, Slot> {
    const NAME: &'static str = "mutex-hashmap";
    fn slot(&self, key: &str) -> Option<&Slot> {
        self.get(key)
    }
    fn slot_mut(&mut self, key: &str) -> Option<&mut Slot> {
        self.get_mut(key)
    }
    fn insert(&mut self, key: String, slot: Slot) {
        HashMap::insert(self, key, slot);
    }
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        // A hash map has no order: every key is visited.
        self.keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl SlotMap for BTreeMap<String, Slot> {
    const NAME: &'static str = "mutex-btreemap";
    fn slot(&self, key: &str) -> Option<&Slot> {
        self.get(key)
    }
    fn slot_mut(&mut self, key: &str) -> Option<&mut Slot> {
        self.get_mut(key)
    }
    fn insert(&mut self, key: String, slot: Slot) {
        BTreeMap::insert(self, key, slot);
    }
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// A versioned map behind one `std::sync::Mutex`.
#[derive(Default)]
pub struct MutexMap<M> {
    state: Mutex<State<M>>,
}

#[derive(Default)]
struct State<M> {
    map: M,
    last_version: u64,
}

impl<M: SlotMap> MutexMap<M> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                map: M::default(),
                last_version: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Nothing panics while holding the lock; a poisoned lock still holds a valid map.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores `value` under `key` in a locked state and returns the new version and the
    /// `Notify` of anyone waiting on the key.
    fn store(state: &mut State<M>, key: &str, value: Bytes) -> (u64, Option<Arc<Notify>>) {
        state.last_version += 1;
        let version = state.last_version;
        match state.map.slot_mut(key) {
            Some(slot) => {
                slot.value = value;
                slot.version = version;
                (version, slot.notify.take())
            }
            None => {
                let slot = Slot {
                    value,
                    version,
                    notify: None,
                };
                state.map.insert(key.to_owned(), slot);
                (version, None)
            }
        }
    }
}

impl<M: SlotMap> Subject for MutexMap<M> {
    type Version = u64;
    const NAME: &'static str = M::NAME;

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let mut state = self.lock();
        for (key, value) in entries {
            Self::store(&mut state, &key, value);
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let state = self.lock();
        state
            .map
            .slot(key)
            .map(|slot| slot.value.clone())
            .ok_or(Error::NotFound)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64> {
        let (version, waiters) = Self::store(&mut self.lock(), key, value);
        if let Some(waiters) = waiters {
            waiters.notify_waiters();
        }
        Ok(version)
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, u64)> {
        let state = self.lock();
        state
            .map
            .slot(key)
            .map(|slot| (slot.value.clone(), slot.version))
            .ok_or(Error::NotFound)
    }

    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<CasOutcome> {
        let waiters = {
            let mut state = self.lock();
            match state.map.slot(key) {
                None => return Err(Error::NotFound),
                Some(slot) if slot.version != expected => return Ok(CasOutcome::Conflict),
                Some(_) => Self::store(&mut state, key, value).1,
            }
        };
        if let Some(waiters) = waiters {
            waiters.notify_waiters();
        }
        Ok(CasOutcome::Stored)
    }

    async fn wait_change(&self, key: &str, version: &u64) -> Result<()> {
        loop {
            let notified = {
                let mut state = self.lock();
                let slot = state.map.slot_mut(key).ok_or(Error::NotFound)?;
                if slot.version != *version {
                    return Ok(());
                }
                // Created under the lock, so a put that follows cannot be missed:
                // `notify_waiters` reaches every `Notified` that exists when it is called.
                let notify = slot.notify.get_or_insert_with(Default::default);
                Arc::clone(notify).notified_owned()
            };
            notified.await;
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<usize> {
        let keys = self.lock().map.keys_with_prefix(prefix);
        Ok(keys.len())
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// A moka cache used directly: what a user writes instead of the cache layer.
pub struct MokaMap {
    cache: moka::future::Cache<String, Bytes>,
}

impl MokaMap {
    /// An empty cache holding at most `max_capacity` entries.
    pub fn new(max_capacity: u64) -> Self {
        Self {
            cache: moka::future::Cache::new(max_capacity),
        }
    }
}

impl Subject for MokaMap {
    type Version = ();
    const NAME: &'static str = "moka";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        for (key, value) in entries {
            self.cache.insert(key, value).await;
        }
        self.cache.run_pending_tasks().await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.cache.get(key).await.ok_or(Error::NotFound)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<()> {
        self.cache.insert(key.to_owned(), value).await;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn versions_cas_and_listing() {
        let map = MutexMap::<BTreeMap<String, Slot>>::new();
        let v1 = map.put("a/1", Bytes::from_static(b"x")).await.unwrap();
        map.put("b/1", Bytes::from_static(b"y")).await.unwrap();
        map.put("a/2", Bytes::from_static(b"z")).await.unwrap();
        assert_eq!(map.list_prefix("a/").await.unwrap(), 2);
        let (value, version) = map.get_versioned("a/1").await.unwrap();
        assert_eq!((&value[..], version), (&b"x"[..], v1));
        let next = Bytes::from_static(b"w");
        assert_eq!(
            map.cas("a/1", v1, next.clone()).await.unwrap(),
            CasOutcome::Stored
        );
        assert_eq!(
            map.cas("a/1", v1, next).await.unwrap(),
            CasOutcome::Conflict
        );
        assert!(matches!(map.get("nope").await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn a_put_wakes_the_waiter() {
        let map = Arc::new(MutexMap::<HashMap<String, Slot>>::new());
        let version = map.put("k", Bytes::new()).await.unwrap();
        let waiter = tokio::spawn({
            let map = Arc::clone(&map);
            async move { map.wait_change("k", &version).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        map.put("k", Bytes::new()).await.unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(woke, Ok(Ok(Ok(())))));
    }

    #[tokio::test]
    async fn moka_answers_what_was_loaded() {
        let moka = MokaMap::new(10);
        moka.load(vec![("a".into(), Bytes::from_static(b"1"))])
            .await
            .unwrap();
        assert_eq!(&moka.get("a").await.unwrap()[..], b"1");
        assert!(matches!(moka.get("b").await, Err(Error::NotFound)));
    }
}
