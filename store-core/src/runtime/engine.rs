//! The [`Engine`] trait: what a backend implements to be run by the actor runtime.

use std::ops::Bound;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{Responder, Waker};
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
///
/// Marked `#[non_exhaustive]` so that a kind of change can be added without breaking
/// engines; an engine should treat a kind it does not know as a failure of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    ///
    /// ```
    /// let m = store_core::runtime::Mutation::Delete { key: "k".into() };
    /// assert_eq!(m.key(), "k");
    /// ```
    pub fn key(&self) -> &str {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } | Mutation::Expire { key } => key,
        }
    }
}

/// How readers reach a stored value without a round trip to the actor.
///
/// After each durable batch the runtime publishes, for every key it changed, the entry's
/// version, expiry and this handle into a read view that callers consult in their own task
/// (see the runtime's docs on the read path). A handle must stay loadable for as long as
/// a reader may hold it, whatever the engine does next: the memory engine hands out the
/// value itself; the file engine hands out small values themselves and, for large ones, a
/// reference-counted open segment file and an offset, so a compaction that deletes the
/// file does not break a reader that still holds it.
///
/// ```
/// use bytes::Bytes;
/// use store_core::runtime::StoredValue;
/// assert_eq!(Bytes::from_static(b"v").load("k", 1).unwrap(), Bytes::from_static(b"v"));
/// ```
pub trait StoredValue: Clone + Send + Sync + 'static {
    /// The bytes of the value stored under `key` with `version` (an engine that reads them
    /// back from disk checks that it found that record). Runs in the reader's task: it may
    /// do a short blocking read (a positioned read of a file), never a long one.
    fn load(&self, key: &str, version: u64) -> Result<Bytes>;
}

impl StoredValue for Bytes {
    fn load(&self, _key: &str, _version: u64) -> Result<Bytes> {
        Ok(self.clone())
    }
}

/// A value handle that changed without a mutation (for example because compaction moved
/// the record to another file); the runtime republishes it if the key still has `version`.
#[derive(Clone, Debug)]
pub struct Moved<V> {
    /// The key whose record moved.
    pub key: String,
    /// The version of the record that moved.
    pub version: u64,
    /// Where readers find it now.
    pub value: V,
}

/// A backend's state machine. The runtime ([`spawn`](crate::runtime::spawn),
/// [`spawn_on_thread`](crate::runtime::spawn_on_thread)) owns it on one task or thread and
/// calls it one method at a time, so an engine needs no locks and knows nothing of channels,
/// waiters, expiry or versions' meaning: the runtime decides what to write, the engine stores
/// it, and the runtime publishes what readers may see once the engine has made it durable.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::ops::Bound;
/// use bytes::Bytes;
/// use store_core::runtime::{Engine, Entry, EntryMeta, Mutation};
///
/// /// The smallest useful engine: an ordered map.
/// #[derive(Default)]
/// struct Tiny(BTreeMap<String, Entry>);
///
/// impl Engine for Tiny {
///     type Value = Bytes;
///     type Request = ();
///     fn last_version(&self) -> u64 { 0 }
///     fn get(&mut self, key: &str) -> store_core::Result<Option<Entry>> {
///         Ok(self.0.get(key).cloned())
///     }
///     fn meta(&mut self, key: &str) -> Option<EntryMeta> {
///         self.0.get(key).map(EntryMeta::from)
///     }
///     fn apply(&mut self, batch: &[Mutation], published: &mut Vec<Bytes>) -> store_core::Result<()> {
///         for m in batch {
///             match m {
///                 Mutation::Put { key, entry } => {
///                     published.push(entry.value.clone());
///                     self.0.insert(key.clone(), entry.clone());
///                 }
///                 Mutation::Delete { key } | Mutation::Expire { key } => { self.0.remove(key); }
///                 _ => unreachable!("no other mutations exist yet"),
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
///     fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, Bytes)) -> store_core::Result<()> {
///         for (k, e) in &self.0 { visit(k, EntryMeta::from(e), e.value.clone()); }
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
    /// The handle the read view keeps for each value (see [`StoredValue`]).
    type Value: StoredValue;

    /// Requests specific to this engine that handles send through the mailbox with
    /// [`ActorHandle::request`](crate::runtime::ActorHandle::request) (the file engine's
    /// on-demand compaction, for example). Engines without any use `()`.
    type Request: Send + 'static;

    /// The highest version ever assigned in this store (0 for a new one). The runtime hands
    /// out versions above it, so an engine that survives restarts must remember it even
    /// when the entry that carried it is gone.
    fn last_version(&self) -> u64;

    /// The entry under `key`, expired or not, including changes applied in the current
    /// batch and not yet synced.
    fn get(&mut self, key: &str) -> Result<Option<Entry>>;

    /// The metadata of the entry under `key`, without reading its value.
    fn meta(&mut self, key: &str) -> Option<EntryMeta>;

    /// Applies `batch` in order, atomically: on `Err`, none of it is visible, now or after
    /// a restart. Pushes onto `published` one value handle per [`Mutation::Put`] in
    /// `batch`, in order: what readers will load once the batch is durable and published
    /// (on `Err` the runtime discards whatever was pushed).
    ///
    /// The batch is lent, not given: the runtime keeps the keys for the read view, so an
    /// engine copies a key only where it keeps one (a key it has not stored before).
    /// Cloning an entry's value is a reference count.
    fn apply(&mut self, batch: &[Mutation], published: &mut Vec<Self::Value>) -> Result<()>;

    /// Makes everything applied so far durable. Called once per batch of commands that
    /// wrote anything (group commit); replies are sent, and the batch published to readers,
    /// only after it returns `Ok`. On `Err` the engine must forget the batch's changes
    /// (roll back), since the runtime reports every write of the batch as failed.
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

    /// Visits every entry once, in any order, with the handle readers will use; the
    /// runtime calls it when it starts, to fill the read view and the expiry index.
    fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, Self::Value)) -> Result<()>;

    /// Handles that changed since the last call without a mutation (see [`Moved`]). The
    /// runtime asks after every batch and publishes them with it.
    fn take_moved(&mut self) -> Vec<Moved<Self::Value>> {
        Vec::new()
    }

    /// Handles an engine-specific request. `responder` may be answered at once or kept and
    /// answered later, from any thread (when a background job finishes); the answer is
    /// delivered after the actor's next sync and publication. Dropping it answers
    /// [`Error::Stopped`](crate::Error::Stopped). The default answers
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    fn request(&mut self, request: Self::Request, responder: Responder) {
        let _ = request;
        responder.respond(Err(crate::Error::Unsupported(
            "this engine takes no requests".to_owned(),
        )));
    }

    /// Receives, once before anything else, a [`Waker`] the engine can keep (and hand to its
    /// background threads) to have [`on_deadline`](Engine::on_deadline) called soon, instead
    /// of polling with a deadline. The default drops it.
    fn attach(&mut self, waker: Waker) {
        let _ = waker;
    }

    /// When the engine next wants [`on_deadline`](Engine::on_deadline) called (for example,
    /// an interval fsync or a compaction step). It is an absolute instant: the actor sleeps
    /// until then (unless commands arrive first) and, after each batch, calls `on_deadline`
    /// if the instant has passed. An engine that returns `now + x` on every call would never
    /// come due, so compute it from state (say, the time of the last sync plus the interval).
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Called once the deadline from [`next_deadline`](Engine::next_deadline) has passed, or
    /// after a [`Waker`] asked for it. What it changes is synced and published right after.
    fn on_deadline(&mut self) -> Result<()> {
        Ok(())
    }

    /// Names the engine for [`Storage::describe`](crate::Storage::describe) and logs, for
    /// example `memory` or `file "/var/lib/orders"`.
    fn describe(&self) -> String {
        "engine".to_owned()
    }

    /// Flushes and releases resources. The runtime calls it once, after the last batch, and
    /// drops the engine before it answers `close`.
    fn close(&mut self) -> Result<()> {
        self.sync()
    }
}
