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
//! # A put on its own
//!
//! A put of one key applied in its caller's task (see `owner.rs`) is published without
//! moving the epoch: the two atomic increments on a line that every writer and reader
//! shares were a measurable part of a put under contention, and a single key needs no
//! sequence lock. A `get` of that key is ordered with it by the shard lock, and single-key
//! operations compose (linearizability is local to each key). Only `get_many` reads
//! several keys at once, so it reads them twice: if the epoch did not move and every key
//! shows the same version (or the same absence) both times, no publication touched any of
//! them in between. A removal or a batch of several changes would have moved the epoch,
//! and a put on its own would have left a version never seen before (versions are never
//! reused). So at the moment between the two reads every key held what the first read
//! returned: one state of the store, which is `get_many`'s linearization point.
//!
//! Such a put is also published after its writer let go of the actor's state, so that the
//! next writer does not wait for it: the writer takes the key's shard for writing *before*
//! it lets go ([`View::begin_put`]) and updates the slot after ([`LonePut::publish`]).
//! Every later write needs the actor's state first, so a later write of the same key (a
//! put, or a removal in a batch) takes the shard after this one has published, and the
//! view never goes back to an older state of the key. A read that falls back to the actor
//! may see the put before it is in the view; a read that starts after that one returned
//! waits on the shard's lock, which the writer took before the actor could answer, and so
//! sees the put too. The kit case "concurrent writes of one key leave the last visible"
//! fails when the shard is taken after the state is let go of.
//!
//! # Expiry, judged where a write decides
//!
//! A write decides with the clock it read when it was applied (a CAS finds the record
//! live, a create finds it expired), and becomes visible only when its batch is published,
//! after the engine's sync: for the file engine, an fsync later. A reader that judged the
//! old record by its own, later clock could call it expired while a CAS that found it live
//! is still on its way to the view, and then the CAS succeeds: no order of the two calls
//! explains both answers. So a writer announces itself ([`View::begin_deciding`]) *before*
//! it reads its clock and withdraws only after it has published ([`View::end_deciding`]);
//! a reader that finds a record expired by its own clock while a writer is deciding does
//! not answer from the view but asks the actor, which answers after that writer.
//!
//! Why that suffices: a reader calls a record expired at its time `t >= expires_at`, read
//! after it read the slot, and then loads the counter, all inside one epoch check. A writer
//! that found the record live read its clock before `expires_at`, so before `t`, and it
//! announced itself before that; it withdraws only after publishing, and a publication
//! moves the epoch. So the reader either sees it announced, or sees the epoch move (and
//! reads again), or read the slot after the publication. A reader that finds a record
//! *live* needs nothing: its clock, read after the slot, says the record was live when the
//! slot was read, which is a moment between any two publications. Only reads of records
//! that carry an expiry, and that have expired, pay for the extra load.
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

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};
use std::time::SystemTime;

use hashbrown::hash_table::Entry as TableEntry;
use hashbrown::{DefaultHashBuilder, HashTable};

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
///
/// `reply` names the pending reply (by its index in the batch's replies) that gets the key
/// back once it is published: a put's caller receives its own key in the stored record,
/// so the key is never copied on its way through the actor.
pub(crate) enum Change<V> {
    Put {
        key: String,
        slot: Slot<V>,
        reply: Option<usize>,
    },
    Remove {
        key: String,
        reply: Option<usize>,
    },
    Moved(Moved<V>),
}

impl<V> Change<V> {
    /// A put of `slot` under `key`.
    pub(crate) fn put(key: String, slot: Slot<V>) -> Self {
        Change::Put {
            key,
            slot,
            reply: None,
        }
    }

    /// A removal of `key`.
    pub(crate) fn remove(key: String) -> Self {
        Change::Remove { key, reply: None }
    }

    /// Hands the key back to the pending reply `index` after publication.
    pub(crate) fn return_key_to(&mut self, index: usize) {
        if let Change::Put { reply, .. } | Change::Remove { reply, .. } = self {
            *reply = Some(index);
        }
    }
}

/// A shard, aligned so that neighbouring shards' locks do not share a cache line. Its table
/// is keyed by the key's hash, computed once per call (foldhash, seeded at random per view)
/// for both the shard and the slot.
#[repr(align(128))]
struct Shard<V> {
    map: RwLock<HashTable<(Box<str>, Slot<V>)>>,
}

type Table<V> = HashTable<(Box<str>, Slot<V>)>;

pub(crate) struct View<V> {
    /// Odd while a publication is in progress.
    epoch: AtomicU64,
    /// Set (inside a publication) when the store closes: readers then answer `Closed`
    /// rather than miss a key the emptied view no longer holds.
    closed: AtomicBool,
    /// Writers between reading their clock and publishing (see "Expiry, judged where a
    /// write decides" in the module docs).
    deciding: AtomicU64,
    shards: Box<[Shard<V>]>,
    hasher: DefaultHashBuilder,
}

impl<V: StoredValue> View<V> {
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            deciding: AtomicU64::new(0),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: RwLock::new(HashTable::new()),
                })
                .collect(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The key's hash and its shard (picked by the high bits; the table uses the low ones).
    fn locate(&self, key: &str) -> (u64, &Shard<V>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[shard_of(hash)])
    }

    fn rehash(&self) -> impl Fn(&(Box<str>, Slot<V>)) -> u64 + '_ {
        move |(key, _)| self.hasher.hash_one(&**key)
    }

    /// Publishes a batch's effects as one step for readers, then hands the keys that
    /// changes asked for back to `returned` (with the reply index the change named).
    pub(crate) fn publish(
        &self,
        changes: impl IntoIterator<Item = Change<V>>,
        mut returned: impl FnMut(usize, String),
    ) {
        let mut changes = changes.into_iter().peekable();
        if changes.peek().is_none() {
            return;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for change in changes {
            match change {
                Change::Put { key, slot, reply } => {
                    let kept = self.upsert(key, slot, reply.is_some());
                    if let (Some(index), Some(key)) = (reply, kept) {
                        returned(index, key);
                    }
                }
                Change::Remove { key, reply } => {
                    let (hash, mut table) = self.write(&key);
                    if let Ok(found) = table.find_entry(hash, |(k, _)| **k == *key) {
                        found.remove();
                    }
                    drop(table);
                    if let Some(index) = reply {
                        returned(index, key);
                    }
                }
                Change::Moved(moved) => {
                    let (hash, mut table) = self.write(&moved.key);
                    if let Some((_, slot)) = table.find_mut(hash, |(k, _)| **k == *moved.key) {
                        if slot.version == moved.version {
                            slot.value = moved.value;
                        }
                    }
                }
            }
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// A writer is about to read its clock and decide on records' expiry; readers that
    /// find a record expired ask the actor until [`View::end_deciding`]. Call it before
    /// the clock is read.
    pub(crate) fn begin_deciding(&self) {
        self.deciding.fetch_add(1, Ordering::SeqCst);
    }

    /// The writer announced by [`View::begin_deciding`] has published (or given up).
    pub(crate) fn end_deciding(&self) {
        self.deciding.fetch_sub(1, Ordering::SeqCst);
    }

    /// A slot just read, judged by the clock now: `Live`, `Missing` (absent or expired),
    /// or `Unsure` when it has expired while a writer is deciding (ask the actor).
    fn judge(&self, slot: Option<Slot<V>>) -> Judged<V> {
        let Some(slot) = slot else {
            return Judged::Missing;
        };
        // Only records with an expiry pay for a clock read.
        if slot.expires_at.is_none() || !is_expired(slot.expires_at, SystemTime::now()) {
            return Judged::Live(slot);
        }
        if self.deciding.load(Ordering::SeqCst) == 0 {
            Judged::Missing
        } else {
            Judged::Unsure
        }
    }

    /// Begins the publication of a put of one key on its own: takes the key's shard for
    /// writing, so that the writer can let go of the actor's slot before the view is
    /// updated (see "A put on its own" in the module docs). The epoch is left alone: the
    /// slot gets a version no read has seen, which is what `get_many` checks for.
    pub(crate) fn begin_put(&self, key: &str) -> LonePut<'_, V> {
        let (hash, table) = self.write(key);
        LonePut {
            view: self,
            table,
            hash,
        }
    }

    /// Sets `key`'s slot, inside a publication. With `give_back` the key is returned (the
    /// view copies it only if it is new); otherwise the view keeps it if it needs it.
    fn upsert(&self, key: String, slot: Slot<V>, give_back: bool) -> Option<String> {
        let (hash, mut table) = self.write(&key);
        let (key, replaced) = self.upsert_in(&mut table, hash, key, slot, give_back);
        // The old value is let go of outside the shard's lock (it may be the last reference).
        drop(table);
        drop(replaced);
        key
    }

    /// [`View::upsert`] in a table already locked; returns the key (as `upsert` does) and
    /// the slot replaced, for the caller to drop once the lock is released.
    fn upsert_in(
        &self,
        table: &mut Table<V>,
        hash: u64,
        key: String,
        slot: Slot<V>,
        give_back: bool,
    ) -> (Option<String>, Option<Slot<V>>) {
        match table.entry(hash, |(k, _)| **k == *key, self.rehash()) {
            TableEntry::Occupied(mut existing) => {
                let replaced = std::mem::replace(&mut existing.get_mut().1, slot);
                (give_back.then_some(key), Some(replaced))
            }
            TableEntry::Vacant(vacant) if give_back => {
                vacant.insert((key.as_str().into(), slot));
                (Some(key), None)
            }
            TableEntry::Vacant(vacant) => {
                vacant.insert((key.into_boxed_str(), slot));
                (None, None)
            }
        }
    }

    /// Fills an empty view at start, one lock per shard.
    pub(crate) fn fill(&self, entries: Vec<(String, Slot<V>)>) {
        let mut by_shard: Vec<Vec<(u64, String, Slot<V>)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for (key, slot) in entries {
            let hash = self.hasher.hash_one(key.as_str());
            by_shard[shard_of(hash)].push((hash, key, slot));
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for (shard, entries) in self.shards.iter().zip(by_shard) {
            let mut table = shard.map.write().unwrap_or_else(PoisonError::into_inner);
            table.reserve(entries.len(), self.rehash());
            for (hash, key, slot) in entries {
                match table.entry(hash, |(k, _)| **k == *key, self.rehash()) {
                    TableEntry::Occupied(mut existing) => existing.get_mut().1 = slot,
                    TableEntry::Vacant(vacant) => {
                        vacant.insert((key.into_boxed_str(), slot));
                    }
                }
            }
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Empties the view (at shutdown, so that values and the files they refer to are let go).
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.closed.store(true, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let mut table = shard.map.write().unwrap_or_else(PoisonError::into_inner);
            *table = HashTable::new();
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn write(&self, key: &str) -> (u64, RwLockWriteGuard<'_, Table<V>>) {
        let (hash, shard) = self.locate(key);
        let table = shard.map.write().unwrap_or_else(PoisonError::into_inner);
        (hash, table)
    }

    /// The slot under `key` now (no consistency across keys: call inside [`View::consistent`]).
    fn slot(&self, hash: u64, shard: &Shard<V>, key: &str) -> Option<Slot<V>> {
        let table = shard.map.read().unwrap_or_else(PoisonError::into_inner);
        table
            .find(hash, |(k, _)| **k == *key)
            .map(|(_, slot)| slot.clone())
    }

    /// The version under `key` now, `None` when it has no slot (see [`View::slot`]).
    fn version(&self, hash: u64, shard: &Shard<V>, key: &str) -> Option<u64> {
        let table = shard.map.read().unwrap_or_else(PoisonError::into_inner);
        table
            .find(hash, |(k, _)| **k == *key)
            .map(|(_, slot)| slot.version)
    }

    /// Runs `read` until it ran entirely between two epoch changes and answered; `None`
    /// when publications kept overlapping it (the caller then asks the actor).
    fn consistent<R>(&self, mut read: impl FnMut() -> Option<R>) -> Option<R> {
        for _ in 0..ATTEMPTS {
            let before = self.epoch.load(Ordering::SeqCst);
            if before.is_multiple_of(2) {
                let result = read();
                if self.epoch.load(Ordering::SeqCst) == before && result.is_some() {
                    return result;
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

/// What a reader makes of a slot (see [`View::judge`]).
enum Judged<V> {
    Live(Slot<V>),
    Missing,
    Unsure,
}

impl<V> Judged<V> {
    /// The live slot, `Ok(None)` when missing, `Err(())` when the actor must decide.
    fn live(self) -> std::result::Result<Option<Slot<V>>, ()> {
        match self {
            Judged::Live(slot) => Ok(Some(slot)),
            Judged::Missing => Ok(None),
            Judged::Unsure => Err(()),
        }
    }
}

/// The shard of a hash: its high bits (the table in the shard uses the low ones).
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// A put of one key whose shard is held for writing, published by [`LonePut::publish`].
///
/// A writer in its caller's task takes this before it lets go of the actor's slot and
/// publishes after, so the view's update is not part of the time every other writer waits
/// for. Order is kept: the next write of the same key needs the slot first and then this
/// shard, so it is published after this one; a read of the key waits on the shard's lock,
/// so a read that starts after the put returned sees it.
pub(crate) struct LonePut<'a, V> {
    view: &'a View<V>,
    table: RwLockWriteGuard<'a, Table<V>>,
    hash: u64,
}

impl<V: StoredValue> LonePut<'_, V> {
    /// Sets the slot of `key` (the key [`View::begin_put`] was given), lets go of the
    /// shard, and hands the key back.
    pub(crate) fn publish(self, key: String, slot: Slot<V>) -> String {
        let LonePut {
            view,
            mut table,
            hash,
        } = self;
        let (key, replaced) = view.upsert_in(&mut table, hash, key, slot, true);
        drop(table);
        drop(replaced);
        key.unwrap_or_default()
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
        let (hash, shard) = self.locate(key);
        // Judged inside the epoch check: see "Expiry, judged where a write decides".
        let slot = self
            .consistent(|| Some(self.judge(self.slot(hash, shard, key)).live()))?
            .ok()?;
        if self.closed.load(Ordering::SeqCst) {
            return Some(Err(crate::Error::Closed));
        }
        Some(load(key, slot))
    }

    fn get_many(&self, keys: &[&str]) -> Option<Result<Vec<Option<Entry>>>> {
        let located: Vec<_> = keys.iter().map(|key| self.locate(key)).collect();
        let slots = self
            .consistent(|| {
                let slots = keys
                    .iter()
                    .zip(&located)
                    .map(|(key, (hash, shard))| self.slot(*hash, shard, key))
                    .collect::<Vec<_>>();
                // The second collect: a put published on its own does not move the epoch, so
                // the versions must not have moved either (see the module docs).
                let unchanged =
                    keys.iter()
                        .zip(&located)
                        .zip(&slots)
                        .all(|((key, (hash, shard)), slot)| {
                            self.version(*hash, shard, key) == slot.as_ref().map(|s| s.version)
                        });
                if !unchanged {
                    return None;
                }
                // Judged inside the epoch check: see "Expiry, judged where a write decides".
                Some(
                    slots
                        .into_iter()
                        .map(|slot| self.judge(slot).live())
                        .collect::<std::result::Result<Vec<_>, ()>>(),
                )
            })?
            .ok()?;
        if self.closed.load(Ordering::SeqCst) {
            return Some(Err(crate::Error::Closed));
        }
        Some(
            keys.iter()
                .zip(slots)
                .map(|(key, slot)| load(key, slot))
                .collect(),
        )
    }
}

/// Loads the value of a slot judged live. Runs after the consistent read: the handle
/// keeps the value loadable whatever has been published since.
fn load<V: StoredValue>(key: &str, slot: Option<Slot<V>>) -> Result<Option<Entry>> {
    let Some(slot) = slot else {
        return Ok(None);
    };
    Ok(Some(Entry {
        value: slot.value.load(key, slot.version)?,
        version: slot.version,
        expires_at: slot.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn put(key: &str, version: u64) -> Change<Bytes> {
        Change::put(
            key.to_owned(),
            Slot {
                version,
                expires_at: None,
                value: Bytes::from_static(b"v"),
            },
        )
    }

    fn ignore(_: usize, _: String) {}

    #[test]
    fn a_closed_view_answers_closed_not_missing() {
        let view = View::<Bytes>::new();
        view.publish([put("k", 1)], ignore);
        assert_eq!(view.get("k").unwrap().unwrap().unwrap().version, 1);
        view.clear();
        // The key existed until the store closed: "missing" would be a lie.
        assert!(matches!(view.get("k"), Some(Err(crate::Error::Closed))));
        assert!(matches!(
            view.get_many(&["k"]),
            Some(Err(crate::Error::Closed))
        ));
    }

    #[test]
    fn fill_then_publish_agree() {
        let view = View::<Bytes>::new();
        let entries = (0..1000)
            .map(|i| {
                let Change::Put { key, slot, .. } = put(&format!("k{i}"), i) else {
                    unreachable!()
                };
                (key, slot)
            })
            .collect();
        view.fill(entries);
        view.publish([put("k7", 5000), Change::remove("k8".into())], ignore);
        assert_eq!(view.get("k7").unwrap().unwrap().unwrap().version, 5000);
        assert!(view.get("k8").unwrap().unwrap().is_none());
        assert_eq!(view.get("k999").unwrap().unwrap().unwrap().version, 999);
    }

    #[test]
    fn keys_asked_for_come_back_after_publication() {
        let view = View::<Bytes>::new();
        let mut fresh = put("new", 1);
        fresh.return_key_to(0);
        let mut removed = Change::remove("gone".into());
        removed.return_key_to(2);
        let mut returned = Vec::new();
        view.publish([fresh, put("quiet", 2), removed], |i, key| {
            returned.push((i, key))
        });
        assert_eq!(returned, [(0, "new".to_owned()), (2, "gone".to_owned())]);
        let mut again = put("new", 3);
        again.return_key_to(5);
        view.publish([again], |i, key| returned.push((i, key)));
        assert_eq!(returned[2], (5, "new".to_owned()));
        assert_eq!(view.get("new").unwrap().unwrap().unwrap().version, 3);
        assert_eq!(view.get("quiet").unwrap().unwrap().unwrap().version, 2);
    }
}
