//! The read view: the committed state that callers read in their own task.
//!
//! The actor applies a batch to its engine, makes it durable, then *publishes* the batch's
//! effects here before it answers anyone; `get` and `get_many` on a handle read this view
//! directly instead of queueing behind the writes in the mailbox.
//!
//! # Why this is linearizable
//!
//! A batch is published under a sequence lock: the epoch goes odd, the changed keys are
//! updated shard by shard, the epoch goes even. A reader notes the epoch, reads, and notes
//! it again; if the two differ (or the first was odd) it read during a publication and
//! retries, and after a few tries it asks the actor instead, which is always right. So a
//! reader sees a whole number of batches: a `put_many` is never half visible, to one
//! `get_many` or to two `get`s in a row. Every write's reply is sent after its batch is
//! published, so a read that starts after a write returned sees it; a read never sees a
//! write before it is durable, since publication follows the engine's sync (a batch whose
//! sync fails is never published). Waiters are woken after the publication too, so a woken
//! waiter's next read sees what woke it.
//!
//! The shards' locks give the ordering the epoch checks rely on: a reader that saw a value
//! of publication *n* took the shard lock after the actor released it, which is after the
//! epoch went odd for *n*, so the reader's second epoch read cannot return the even value
//! from before *n*.
//!
//! # Why not something else
//!
//! - An immutable snapshot swapped atomically (`ArcSwap` of a persistent map) gives
//!   readers a consistent view for free but costs a path copy per write and keeps old
//!   versions alive for slow readers; here memory is one slot per live key.
//! - A left-right pair doubles memory and makes the writer wait for readers to leave.
//! - Per-key locking alone would let a reader see half of a `put_many`.
//!
//! Expired slots are left for the actor's expiry timer to remove; readers skip them by time.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use super::engine::{Entry, Moved, StoredValue};
use crate::record::is_expired;
use crate::Result;

/// Shards of the view; a power of two, enough that 64 busy readers rarely share a lock.
const SHARDS: usize = 64;

/// How often a reader retries a read that overlapped a publication before asking the actor.
const ATTEMPTS: usize = 8;

/// What the view holds for a key.
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    pub(crate) version: u64,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) value: V,
}

/// One effect of a batch, to publish once the batch is durable.
pub(crate) enum Change<V> {
    Put { key: String, slot: Slot<V> },
    Remove { key: String },
    Moved(Moved<V>),
}

/// A shard, aligned so that neighbouring shards' locks do not share a cache line.
#[repr(align(128))]
struct Shard<V> {
    map: RwLock<HashMap<Box<str>, Slot<V>>>,
}

pub(crate) struct View<V> {
    /// Odd while a publication is in progress.
    epoch: AtomicU64,
    shards: Box<[Shard<V>]>,
    hasher: RandomState,
}

impl<V: StoredValue> View<V> {
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: RwLock::new(HashMap::new()),
                })
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Shard<V> {
        let hash = self.hasher.hash_one(key) as usize;
        // The high bits: the map inside the shard uses the low ones.
        &self.shards[(hash >> 32) % SHARDS]
    }

    /// Publishes a batch's effects as one step for readers.
    pub(crate) fn publish(&self, changes: impl IntoIterator<Item = Change<V>>) {
        let mut changes = changes.into_iter().peekable();
        if changes.peek().is_none() {
            return;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for change in changes {
            match change {
                Change::Put { key, slot } => {
                    let mut map = self.write(&key);
                    match map.get_mut(key.as_str()) {
                        Some(existing) => *existing = slot,
                        None => {
                            map.insert(key.into_boxed_str(), slot);
                        }
                    }
                }
                Change::Remove { key } => {
                    self.write(&key).remove(key.as_str());
                }
                Change::Moved(moved) => {
                    let mut map = self.write(&moved.key);
                    if let Some(slot) = map.get_mut(moved.key.as_str()) {
                        if slot.version == moved.version {
                            slot.value = moved.value;
                        }
                    }
                }
            }
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Empties the view (at shutdown, so that values and the files they refer to are let go).
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let mut map = shard.map.write().unwrap_or_else(PoisonError::into_inner);
            *map = HashMap::new();
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn write(&self, key: &str) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Slot<V>>> {
        self.shard(key)
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot under `key` now (no consistency across keys: call inside [`View::consistent`]).
    fn slot(&self, key: &str) -> Option<Slot<V>> {
        let map = self
            .shard(key)
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(key).cloned()
    }

    /// Runs `read` until it ran entirely between two publications; `None` when publications
    /// kept overlapping it (the caller then asks the actor).
    fn consistent<R>(&self, mut read: impl FnMut() -> R) -> Option<R> {
        for _ in 0..ATTEMPTS {
            let before = self.epoch.load(Ordering::SeqCst);
            if before.is_multiple_of(2) {
                let result = read();
                if self.epoch.load(Ordering::SeqCst) == before {
                    return Some(result);
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

/// The read path as the (non-generic) handle sees it.
pub(crate) trait ReadPath: Send + Sync + 'static {
    /// The live entry under `key`: `None` when the view was busy (ask the actor),
    /// `Some(Ok(None))` when the key is missing or expired.
    fn get(&self, key: &str) -> Option<Result<Option<Entry>>>;
    /// The live entries under `keys`, from one consistent state; `None` when busy.
    fn get_many(&self, keys: &[&str]) -> Option<Result<Vec<Option<Entry>>>>;
}

impl<V: StoredValue> ReadPath for View<V> {
    fn get(&self, key: &str) -> Option<Result<Option<Entry>>> {
        let slot = self.consistent(|| self.slot(key))?;
        Some(load(key, slot))
    }

    fn get_many(&self, keys: &[&str]) -> Option<Result<Vec<Option<Entry>>>> {
        let slots =
            self.consistent(|| keys.iter().map(|key| self.slot(key)).collect::<Vec<_>>())?;
        Some(
            keys.iter()
                .zip(slots)
                .map(|(key, slot)| load(key, slot))
                .collect(),
        )
    }
}

/// Loads a slot's value if the slot is live. Runs after the consistent read: the handle
/// keeps the value loadable whatever has been published since.
fn load<V: StoredValue>(key: &str, slot: Option<Slot<V>>) -> Result<Option<Entry>> {
    let Some(slot) = slot else {
        return Ok(None);
    };
    // Only records with an expiry pay for a clock read.
    if slot.expires_at.is_some() && is_expired(slot.expires_at, SystemTime::now()) {
        return Ok(None);
    }
    Ok(Some(Entry {
        value: slot.value.load(key, slot.version)?,
        version: slot.version,
        expires_at: slot.expires_at,
    }))
}
