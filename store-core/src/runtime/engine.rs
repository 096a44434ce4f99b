//! The [`Engine`] trait: what a backend implements to be run by the actor runtime.

use std::ops::Bound;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::Result;

/// A stored entry as an engine holds it: value, numeric version and expiry.
///
/// The engine stores expired entries until the runtime removes them; it never filters by
/// time itself (the runtime owns that rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Bytes,
    /// The version the runtime assigned when it wrote the entry.
    pub version: u64,
    /// When the entry expires, if ever.
    pub expires_at: Option<SystemTime>,
}

/// The part of an [`Entry`] that an engine can answer without reading the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMeta {
    /// The version the runtime assigned when it wrote the entry.
    pub version: u64,
    /// When the entry expires, if ever.
    pub expires_at: Option<SystemTime>,
}

impl From<&Entry> for EntryMeta {
    fn from(entry: &Entry) -> Self {
        Self {
            version: entry.version,
            expires_at: entry.expires_at,
        }
    }
}

/// One change the runtime asks an engine to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Store (insert or replace) an entry.
    Put {
        /// The key.
        key: String,
        /// The value and its metadata.
        entry: Entry,
    },
    /// Remove an entry because a caller deleted it.
    Delete {
        /// The key.
        key: String,
    },
    /// Remove an entry because it expired (engines may treat this like `Delete`).
    Expire {
        /// The key.
        key: String,
    },
}

impl Mutation {
    /// The key the mutation changes.
    pub fn key(&self) -> &str {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } | Mutation::Expire { key } => key,
        }
    }
}

/// A backend's state machine. The runtime ([`spawn`](crate::runtime::spawn),
/// [`spawn_on_thread`](crate::runtime::spawn_on_thread)) owns it on one task or thread and
/// calls it one method at a time, so an engine needs no locks and knows nothing of channels,
/// waiters, expiry or versions' meaning: the runtime decides what to write, the engine stores
/// it.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::ops::Bound;
/// use store_core::runtime::{Engine, Entry, EntryMeta, Mutation};
///
/// /// The smallest useful engine: an ordered map.
/// #[derive(Default)]
/// struct Tiny(BTreeMap<String, Entry>);
///
/// impl Engine for Tiny {
///     fn last_version(&self) -> u64 { 0 }
///     fn get(&mut self, key: &str) -> store_core::Result<Option<Entry>> {
///         Ok(self.0.get(key).cloned())
///     }
///     fn meta(&mut self, key: &str) -> Option<EntryMeta> {
///         self.0.get(key).map(EntryMeta::from)
///     }
///     fn apply(&mut self, batch: Vec<Mutation>) -> store_core::Result<()> {
///         for m in batch {
///             match m {
///                 Mutation::Put { key, entry } => { self.0.insert(key, entry); }
///                 Mutation::Delete { key } | Mutation::Expire { key } => { self.0.remove(&key); }
///             }
///         }
///         Ok(())
///     }
///     fn scan(&mut self, from: Bound<&str>, prefix: &str,
///             visit: &mut dyn FnMut(&str, &EntryMeta) -> bool) -> store_core::Result<()> {
///         for (k, e) in self.0.range::<str, _>((from, Bound::Unbounded)) {
///             if !k.starts_with(prefix) || !visit(k, &EntryMeta::from(e)) { break; }
///         }
///         Ok(())
///     }
/// }
/// # let rt = tokio::runtime::Runtime::new().unwrap();
/// # rt.block_on(async {
/// use store_core::{Record, Storage};
/// let store = store_core::runtime::spawn(Tiny::default(), Default::default());
/// store.put(Record::new("a", "1")).await.unwrap();
/// assert_eq!(&store.get("a").await.unwrap().value[..], b"1");
/// # });
/// ```
pub trait Engine: Send + 'static {
    /// The highest version ever assigned in this store (0 for a new one). The runtime hands
    /// out versions above it, so an engine that survives restarts must remember it even
    /// when the entry that carried it is gone.
    fn last_version(&self) -> u64;

    /// The entry under `key`, expired or not.
    fn get(&mut self, key: &str) -> Result<Option<Entry>>;

    /// The metadata of the entry under `key`, without reading its value.
    fn meta(&mut self, key: &str) -> Option<EntryMeta>;

    /// Applies `batch` in order, atomically: on `Err`, none of it is visible, now or after
    /// a restart.
    fn apply(&mut self, batch: Vec<Mutation>) -> Result<()>;

    /// Makes everything applied so far durable. Called once per batch of commands that
    /// wrote anything (group commit); replies are sent only after it returns.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    /// Visits entries in ascending key order, starting at `from`, while their keys start
    /// with `prefix`, until `visit` returns `false`.
    fn scan(
        &mut self,
        from: Bound<&str>,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &EntryMeta) -> bool,
    ) -> Result<()>;

    /// When the engine next wants [`on_deadline`](Engine::on_deadline) called (for example,
    /// an interval fsync or a compaction step). It is an absolute instant: the actor sleeps
    /// until then (unless commands arrive first) and, after each batch, calls `on_deadline`
    /// if the instant has passed. An engine that returns `now + x` on every call would never
    /// come due, so compute it from state (say, the time of the last sync plus the interval).
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Called once the deadline from [`next_deadline`](Engine::next_deadline) has passed, and
    /// whenever a handle calls [`ActorHandle::wake_engine`](crate::runtime::ActorHandle::wake_engine)
    /// (for work requested from outside, such as an on-demand compaction). Anything it
    /// applies is made durable with the batch it ran in.
    fn on_deadline(&mut self) -> Result<()> {
        Ok(())
    }

    /// Flushes and releases resources. The runtime calls it once, after the last batch, and
    /// drops the engine before it answers `close`.
    fn close(&mut self) -> Result<()> {
        self.sync()
    }
}
