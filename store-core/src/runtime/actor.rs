//! The actor: owns an engine, applies commands in batches, syncs once, publishes, replies.
//!
//! [`Actor`] is the state and the rules. Who feeds it is not its business: the task (or
//! thread) that runs it batch by batch, and the writers that apply a write in their own
//! task as a batch of one, both hold it in a slot and are in `owner.rs`. Direction: the
//! owner uses the actor, the actor never uses the owner (see the runtime's module docs).
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::command::{Command, Op, Outbox, Page, Reply, ReplyTx, Responder, Waker};
use super::engine::{Engine, Entry, EntryMeta, Mutation};
use super::expiry::ExpiryIndex;
use super::view::{Change, Slot, View};
use super::waiters::Waiters;
use super::RuntimeOptions;
use crate::record::is_expired;
use crate::{Error, Pattern, Record, Result};

/// What a write applied in its caller's task leaves to that caller.
pub(crate) enum Written<V> {
    /// Published (or refused by the rules): the answer.
    Answered(Result<Reply>),
    /// A plain put (see [`Actor::is_plain`]), applied and synced but not yet published.
    /// The caller takes the key's shard of the view ([`View::begin_put`]) while it still
    /// holds the actor's slot, lets go of the slot, then publishes: see `owner.rs`.
    Put { key: String, slot: Slot<V> },
}

/// A reply computed during a batch, sent once the batch is durable and published.
struct Pending {
    /// `None` for a write applied in its caller's task, which takes its answer directly.
    reply: Option<ReplyTx>,
    result: Result<Reply>,
    /// Whether this reply answers a write (for tracing what a failed sync took down).
    wrote: bool,
}

pub(crate) struct Actor<E: Engine> {
    engine: E,
    options: RuntimeOptions,
    last_version: u64,
    waiters: Waiters,
    expiry: ExpiryIndex,
    pending: Vec<Pending>,
    /// What this batch changed, published to readers once it is durable.
    changes: Vec<Change<E::Value>>,
    /// Buffers lent to the engine by each write and kept for the next one, so that a put
    /// allocates neither its one-mutation batch nor the engine's list of value handles.
    mutations: Vec<Mutation>,
    values: Vec<E::Value>,
    view: Arc<View<E::Value>>,
    /// Answers to engine requests and maintenance wake-ups from outside a batch.
    outbox: Arc<Outbox>,
    /// Something was applied since the last sync.
    dirty: bool,
    /// When its task last planned to wake up (expiry or engine deadline): a write applied in
    /// its caller's task that brings the next deadline forward must wake the actor.
    armed: Option<Instant>,
}

impl<E: Engine> Actor<E> {
    pub(crate) fn new(
        mut engine: E,
        options: RuntimeOptions,
        view: Arc<View<E::Value>>,
    ) -> Result<Self> {
        let outbox = Arc::new(Outbox::default());
        engine.attach(Waker::new(outbox.clone()));
        // Fill the read view and the expiry index from what the engine holds (after a
        // restart, the file engine's recovered records).
        let mut expiry = ExpiryIndex::default();
        let mut entries = Vec::new();
        engine.entries(&mut |key, meta, value| {
            if let Some(at) = meta.expires_at {
                expiry.insert(key, at);
            }
            entries.push((
                key.to_owned(),
                Slot {
                    version: meta.version,
                    expires_at: meta.expires_at,
                    value,
                },
            ));
        })?;
        view.fill(entries);
        Ok(Self {
            outbox,
            last_version: engine.last_version(),
            engine,
            options,
            waiters: Waiters::default(),
            expiry,
            pending: Vec::new(),
            changes: Vec::new(),
            mutations: Vec::new(),
            values: Vec::new(),
            view,
            dirty: false,
            armed: None,
        })
    }

    /// Where engine requests are answered and the actor is woken from outside a batch.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Most commands its task applies per batch.
    pub(crate) fn max_batch(&self) -> usize {
        self.options.max_batch
    }

    /// The next time the actor must wake up, noted so that writes applied elsewhere can
    /// tell whether they moved it forward.
    pub(crate) fn arm(&mut self) -> Option<Instant> {
        self.armed = self.next_deadline();
        self.armed
    }

    fn next_deadline(&self) -> Option<Instant> {
        let expiry = self.expiry.next().and_then(|at| {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            // A time too far away to represent is never.
            Instant::now().checked_add(wait)
        });
        match (expiry, self.engine.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies one batch; returns the reply channel of a `close` if one was in it.
    pub(crate) fn run_batch(&mut self, batch: &mut Vec<Command>) -> Option<ReplyTx> {
        let span = tracing::debug_span!("batch", commands = batch.len());
        let _entered = span.enter();
        // Announced before any clock is read, withdrawn once everything is published: the
        // view's readers then never judge a record expired that this batch found live
        // (the view's module docs, "Expiry, judged where a write decides").
        self.view.begin_deciding();
        let close = self.apply_batch(batch);
        self.view.end_deciding();
        close
    }

    /// Applies the batch's commands in order, up to the first one that must wait for the
    /// next batch (see "Same key, same batch" in the runtime's docs); that one and those
    /// after it are left in `batch`.
    fn apply_batch(&mut self, batch: &mut Vec<Command>) -> Option<ReplyTx> {
        self.expire_due(SystemTime::now());
        // Keys this batch wrote a record with an expiry to.
        let mut expiring: Vec<String> = Vec::new();
        let mut closing = false;
        let mut taken = 0;
        for command in batch.iter() {
            // After a `close`, everything is taken (and answered `Closed`).
            if !closing && expiring.iter().any(|key| command.op.touches(key)) {
                break;
            }
            expiring.extend(command.op.expiring_writes().map(str::to_owned));
            closing |= matches!(command.op, Op::Close);
            taken += 1;
        }
        let mut close = None;
        for Command { op, reply } in batch.drain(..taken) {
            if close.is_some() {
                let _ = reply.send(Err(Error::Closed));
                continue;
            }
            match op {
                Op::Close => close = Some(reply),
                Op::Wait { key, version } => self.wait(key, version, reply),
                Op::Request(request) => match request.downcast::<E::Request>() {
                    Ok(request) => self
                        .engine
                        .request(*request, Responder::new(reply, self.outbox.clone())),
                    Err(_) => {
                        let _ = reply.send(Err(Error::Unsupported(
                            "a request of a type this engine does not take".to_owned(),
                        )));
                    }
                },
                op => self.apply(op, Some(reply), SystemTime::now()),
            }
        }
        self.finish_batch();
        let asked = self.outbox.take_maintenance();
        if asked
            || self
                .engine
                .next_deadline()
                .is_some_and(|d| d <= Instant::now())
        {
            if let Err(error) = self.engine.on_deadline() {
                tracing::error!(%error, "engine maintenance failed");
            }
            // Whatever maintenance wrote or moved is synced and published on its own.
            self.dirty = true;
            let _ = self.finish_batch();
        }
        close
    }

    /// Applies one command and queues its answer for the end of the batch (`reply`: `None`
    /// for a write applied in its caller's task; [`Actor::finish_batch`] returns that one).
    fn apply(&mut self, op: Op, reply: Option<ReplyTx>, now: SystemTime) {
        let name = op.name();
        // The key is copied for the trace only when someone listens at TRACE.
        let key = tracing::enabled!(tracing::Level::TRACE)
            .then(|| op.key().unwrap_or_default().to_owned());
        let (result, wrote) = self.execute(op, now);
        match &result {
            Ok(_) => tracing::trace!(operation = name, key, wrote, "applied"),
            Err(error) => log_failure(name, key.as_deref(), error),
        }
        let returns_key = matches!(result, Ok(Reply::Stored { .. }));
        self.pending.push(Pending {
            reply,
            result,
            wrote,
        });
        if returns_key {
            // The write's one change is the last one: its key comes back to this reply
            // once it is published.
            let index = self.pending.len() - 1;
            if let Some(change) = self.changes.last_mut() {
                change.return_key_to(index);
            }
        }
    }

    /// Applies one write in its caller's task, as a batch of its own: synced (a no-op for
    /// the engines this is used for), published, and its waiters answered, before the
    /// caller gets the answer. The caller holds the [`Owned`] slot, so nothing else runs
    /// on the engine meanwhile.
    pub(crate) fn write_inline(&mut self, op: Op) -> Written<E::Value> {
        let answer = match op {
            Op::Put(record) if self.is_plain(&record) => self.put_plain(record),
            op => {
                // As for a batch (see `run_batch`). A plain put reads no clock and is
                // only taken when no record has an expiry, so it needs none of this.
                self.view.begin_deciding();
                self.apply(op, None, SystemTime::now());
                let answer = self.finish_batch();
                self.view.end_deciding();
                Written::Answered(answer.unwrap_or_else(|| {
                    Err(Error::Backend(
                        "store-core: a write applied in its caller's task lost its answer"
                            .to_owned(),
                    ))
                }))
            }
        };
        // The actor sleeps until the deadline it computed last; a record that expires
        // sooner (or an engine deadline that moved forward) must wake it to recompute.
        if !self.expiry.is_empty() || self.engine.next_deadline().is_some() {
            let next = self.next_deadline();
            if next.is_some_and(|next| self.armed.is_none_or(|armed| next < armed)) {
                self.armed = next;
                self.outbox.wake.notify_one();
            }
        }
        answer
    }

    /// Whether a put needs none of the bookkeeping of [`Actor::write`]: it has no expiry,
    /// the store holds none, and nobody waits on any key.
    fn is_plain(&self, record: &Record) -> bool {
        record.expires_at.is_none() && self.expiry.is_empty() && self.waiters.len() == 0
    }

    /// A plain put (see [`Actor::is_plain`]) in its caller's task: what `execute`, `write`
    /// and `finish_batch` do for it, without the batch's lists. Callgrind counted 1,506
    /// instructions for a put held under the lock through those, which both cores then
    /// wait for. The publication is left to the caller ([`Written::Put`]), for the same
    /// reason.
    fn put_plain(&mut self, record: Record) -> Written<E::Value> {
        let version = match self.next_version() {
            Ok(version) => version,
            Err(error) => return Written::Answered(Err(error)),
        };
        let Record { key, value, .. } = record;
        let entry = Entry {
            value,
            version,
            expires_at: None,
        };
        let mutation = Mutation::Put { key, entry };
        let mut values = std::mem::take(&mut self.values);
        let mut done = self
            .engine
            .apply(std::slice::from_ref(&mutation), &mut values);
        let moved = self.engine.take_moved();
        if done.is_ok() {
            done = self.engine.sync();
            if let Err(error) = &done {
                // Nothing is published: the engine may roll the write back.
                tracing::error!(%error, writes = 1, "sync failed; the write is reported as failed");
            }
        }
        let published = match (done, mutation, values.pop()) {
            (Ok(()), mutation, Some(value)) => {
                let (Mutation::Put { key, .. }
                | Mutation::Delete { key }
                | Mutation::Expire { key }) = mutation;
                if !moved.is_empty() {
                    self.view
                        .publish(moved.into_iter().map(Change::Moved), |_, _| {});
                }
                let slot = Slot {
                    version,
                    expires_at: None,
                    value,
                };
                Written::Put { key, slot }
            }
            (Ok(()), mutation, None) => {
                // As in `write`: readers must not see a stale value, so the key leaves
                // the view and its reads reach the actor.
                tracing::error!(
                    key = mutation.key(),
                    "the engine returned no value handle for a put"
                );
                self.view
                    .publish([Change::remove(mutation.key().to_owned())], |_, _| {});
                Written::Answered(Err(Error::Backend(
                    "the engine returned no value handle for a put".to_owned(),
                )))
            }
            (Err(error), _, _) => Written::Answered(Err(error)),
        };
        values.clear();
        self.values = values;
        published
    }

    /// Syncs if anything was written, publishes the batch, then sends every reply; returns
    /// the answer of the write applied in its caller's task, if the batch holds one.
    fn finish_batch(&mut self) -> Option<Result<Reply>> {
        self.changes
            .extend(self.engine.take_moved().into_iter().map(Change::Moved));
        if self.dirty {
            self.dirty = false;
            if let Err(error) = self.engine.sync() {
                // Every reply of the batch fails, reads and wake-ups included: they may have
                // seen writes that the engine now rolls back. Nothing is published.
                let writes = self.pending.iter().filter(|p| p.wrote).count();
                tracing::error!(%error, writes, "sync failed; the whole batch is reported as failed");
                for pending in &mut self.pending {
                    if pending.result.is_ok() {
                        pending.result = Err(error.clone());
                    }
                }
                self.changes.clear();
            }
        }
        let pending = &mut self.pending;
        self.view.publish(self.changes.drain(..), |index, key| {
            if let Some(Pending {
                result: Ok(Reply::Stored { key: slot, .. }),
                ..
            }) = pending.get_mut(index)
            {
                *slot = key;
            }
        });
        let mut own = None;
        for Pending { reply, result, .. } in self.pending.drain(..) {
            match reply {
                Some(reply) => {
                    let _ = reply.send(result);
                }
                None => own = Some(result),
            }
        }
        // Answers to engine requests go out after the publication, so their askers see in
        // the read view what the request did.
        if self.outbox.has_answers() {
            for (reply, result) in self.outbox.take_answers() {
                let _ = reply.send(result.map(|()| Reply::Unit));
            }
        }
        own
    }

    pub(crate) fn shutdown(mut self, close: Option<ReplyTx>) {
        let _ = self.finish_batch();
        let result = self.engine.close();
        match &result {
            Ok(()) => tracing::debug!("storage closed"),
            Err(error) => tracing::error!(%error, "closing the engine failed"),
        }
        for waiter in self.waiters.take_all() {
            let _ = waiter.send(Err(Error::Closed));
        }
        // Let go of the values (and the files they refer to) that readers could still reach.
        self.view.clear();
        // Drop the engine (its files, locks, threads) before answering, so that whoever
        // awaited `close` can reopen the same resources at once.
        drop(self);
        if let Some(reply) = close {
            let _ = reply.send(result.map(|()| Reply::Unit));
        }
    }

    fn execute(&mut self, op: Op, now: SystemTime) -> (Result<Reply>, bool) {
        match op {
            Op::Get(key) => match self.live_entry(&key, now) {
                Ok(Some(entry)) => (Ok(Reply::Entry(key, entry)), false),
                Ok(None) => (Err(Error::NotFound), false),
                Err(error) => (Err(error), false),
            },
            Op::GetMany(keys) => {
                let entries = keys
                    .iter()
                    .map(|key| self.live_entry(key, now))
                    .collect::<Result<Vec<_>>>();
                (entries.map(|e| Reply::Entries(keys, e)), false)
            }
            Op::Create(record) => {
                if self.live_meta(&record.key, now).is_some() {
                    return match self.live_entry(&record.key, now) {
                        Ok(Some(live)) => {
                            let live = to_record(record.key, live);
                            (Err(Error::AlreadyExists(Box::new(live))), false)
                        }
                        Ok(None) => (Err(Error::NotFound), false),
                        Err(error) => (Err(error), false),
                    };
                }
                (self.put_one(record, now).map(Reply::stored), true)
            }
            Op::Put(record) => (self.put_one(record, now).map(Reply::stored), true),
            Op::PutMany(records) => (self.put_many(records, now).map(|()| Reply::Unit), true),
            Op::Cas(record) => {
                let Some(meta) = self.live_meta(&record.key, now) else {
                    return (Err(Error::NotFound), false);
                };
                if !version_is(meta.version, &record.version) {
                    return (Err(Error::Conflict), false);
                }
                (self.put_one(record, now).map(Reply::stored), true)
            }
            Op::Delete(key) => {
                if self.live_meta(&key, now).is_none() {
                    return (Err(Error::NotFound), false);
                }
                let mut batch = self.mutation_buffer();
                batch.push(Mutation::Delete { key });
                let result = self.write(batch, now);
                (result.map(|()| Reply::Unit), true)
            }
            Op::ListPage { pattern, after } => (self.list_page(&pattern, after, now), false),
            // `run_batch` takes these before they get here; were one to arrive anyway, its
            // caller gets an error rather than the actor (and every caller) a panic.
            op @ (Op::Wait { .. } | Op::Request(_) | Op::Close) => (
                Err(Error::Backend(format!(
                    "store-core: {} reached the actor's execute step, which it never should",
                    op.name()
                ))),
                false,
            ),
        }
    }

    fn live_meta(&mut self, key: &str, now: SystemTime) -> Option<EntryMeta> {
        self.engine
            .meta(key)
            .filter(|meta| !is_expired(meta.expires_at, now))
    }

    fn live_entry(&mut self, key: &str, now: SystemTime) -> Result<Option<Entry>> {
        Ok(self
            .engine
            .get(key)?
            .filter(|entry| !is_expired(entry.expires_at, now)))
    }

    fn next_version(&mut self) -> Result<u64> {
        // A store whose counter reached the top cannot hand out a new version without
        // reusing one; that only happens with a forged or corrupt counter.
        self.last_version = self.last_version.checked_add(1).ok_or_else(|| {
            Error::Corrupt(
                "the version counter is at its maximum (u64::MAX); the store's data names an \
                 impossible version"
                    .to_owned(),
            )
        })?;
        Ok(self.last_version)
    }

    fn put_one(&mut self, record: Record, now: SystemTime) -> Result<u64> {
        let version = self.next_version()?;
        let entry = Entry {
            value: record.value,
            version,
            expires_at: record.expires_at,
        };
        let mut batch = self.mutation_buffer();
        batch.push(Mutation::Put {
            key: record.key,
            entry,
        });
        self.write(batch, now)?;
        Ok(version)
    }

    /// An empty batch to fill for [`Actor::write`], which hands it back when done.
    fn mutation_buffer(&mut self) -> Vec<Mutation> {
        std::mem::take(&mut self.mutations)
    }

    /// Keeps emptied buffers for the next write, unless a large `put_many` grew them.
    fn recycle(&mut self, mut batch: Vec<Mutation>, mut values: Vec<E::Value>) {
        const KEEP: usize = 64;
        batch.clear();
        values.clear();
        if batch.capacity() <= KEEP {
            self.mutations = batch;
        }
        if values.capacity() <= KEEP {
            self.values = values;
        }
    }

    fn put_many(&mut self, records: Vec<Record>, now: SystemTime) -> Result<()> {
        // Later duplicates win: keep only the last record for each key, in order.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            last.insert(record.key.as_str(), i);
        }
        let keep: Vec<bool> = (0..records.len())
            .map(|i| last.get(records[i].key.as_str()) == Some(&i))
            .collect();
        drop(last);
        let mut batch = Vec::with_capacity(keep.iter().filter(|k| **k).count());
        for (record, keep) in records.into_iter().zip(keep) {
            if keep {
                let version = self.next_version()?;
                batch.push(Mutation::Put {
                    key: record.key,
                    entry: Entry {
                        value: record.value,
                        version,
                        expires_at: record.expires_at,
                    },
                });
            }
        }
        self.write(batch, now)
    }

    /// Applies mutations (each key at most once), notes what to publish, and keeps the
    /// expiry index and waiters in step with them.
    ///
    /// The engine borrows the batch; its keys then move into the changes to publish, so a
    /// write copies no key (the engine copies one only when it stores a new key).
    fn write(&mut self, mut batch: Vec<Mutation>, now: SystemTime) -> Result<()> {
        let expiring =
            |m: &Mutation| matches!(m, Mutation::Put { entry, .. } if entry.expires_at.is_some());
        let track = !self.expiry.is_empty() || self.waiters.len() > 0 || batch.iter().any(expiring);
        let before: Vec<Option<EntryMeta>> = if track {
            batch.iter().map(|m| self.engine.meta(m.key())).collect()
        } else {
            Vec::new()
        };
        let mut values = std::mem::take(&mut self.values);
        if let Err(error) = self.engine.apply(&batch, &mut values) {
            self.recycle(batch, values);
            return Err(error);
        }
        self.dirty = true;
        let mut handles = values.drain(..);
        for (i, mutation) in batch.drain(..).enumerate() {
            // What the mutation leaves behind: for a put its version and expiry.
            let (key, meta) = match mutation {
                Mutation::Put { key, entry } => (key, Some(EntryMeta::from(&entry))),
                Mutation::Delete { key } | Mutation::Expire { key } => (key, None),
            };
            if track {
                let old = before[i];
                self.track(&key, old, meta, now);
            }
            let change = match meta {
                Some(meta) => match handles.next() {
                    Some(value) => Change::put(
                        key,
                        Slot {
                            version: meta.version,
                            expires_at: meta.expires_at,
                            value,
                        },
                    ),
                    // An engine that returned too few handles: readers must not see a stale
                    // value, so the key goes from the view and its reads reach the actor.
                    None => {
                        tracing::error!(key, "the engine returned no value handle for a put");
                        Change::remove(key)
                    }
                },
                None => Change::remove(key),
            };
            self.changes.push(change);
        }
        drop(handles);
        self.recycle(batch, values);
        Ok(())
    }

    /// Keeps the expiry index and the waiters of `key` in step with a write that replaced
    /// `old` with `new` (`None`: removed).
    fn track(
        &mut self,
        key: &str,
        old: Option<EntryMeta>,
        new: Option<EntryMeta>,
        now: SystemTime,
    ) {
        if let Some(at) = old.and_then(|m| m.expires_at) {
            self.expiry.remove(key, at);
        }
        if let Some(at) = new.and_then(|m| m.expires_at) {
            self.expiry.insert(key, at);
        }
        // A write over a live record changes its version; a delete, an expiry or a write
        // over an already expired record means the version they waited on is gone.
        let was_live = old.is_some_and(|m| !is_expired(m.expires_at, now));
        let woken = if new.is_some() && was_live {
            Ok(())
        } else {
            Err(Error::NotFound)
        };
        self.wake(key, woken);
    }

    /// Answers everyone waiting on `key` (after the batch is durable and published).
    fn wake(&mut self, key: &str, result: Result<()>) {
        if let Some(waiters) = self.waiters.take(key) {
            for reply in waiters {
                self.pending.push(Pending {
                    reply: Some(reply),
                    result: result.clone().map(|()| Reply::Unit),
                    wrote: false,
                });
            }
        }
    }

    fn wait(&mut self, key: String, version: String, reply: ReplyTx) {
        let result = match self.live_meta(&key, SystemTime::now()) {
            None => Err(Error::NotFound),
            Some(meta) if !version_is(meta.version, &version) => Ok(Reply::Unit),
            Some(_) => {
                tracing::trace!(key, version, "waiting for a version change");
                self.waiters.register(key, reply);
                return;
            }
        };
        self.pending.push(Pending {
            reply: Some(reply),
            result,
            wrote: false,
        });
    }

    fn expire_due(&mut self, now: SystemTime) {
        let due = self.expiry.pop_due(now);
        if due.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(due.len());
        for (at, key) in &due {
            // The index may hold a time the key no longer has if a write raced the timer.
            if self.engine.meta(key).and_then(|m| m.expires_at) == Some(*at) {
                batch.push(Mutation::Expire { key: key.clone() });
            }
        }
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        let keys: Vec<String> = batch.iter().map(|m| m.key().to_owned()).collect();
        // `write` would look up the expiry we just popped; put it back so it is removed once.
        for (at, key) in due {
            self.expiry.insert(&key, at);
        }
        match self.write(batch, now) {
            Ok(()) => tracing::debug!(count, "expired records reclaimed"),
            Err(error) => {
                // Leave them out of the index rather than retry in a tight loop: expired
                // records stay invisible to every read, and compaction drops them. Their
                // waiters are answered all the same: the record is gone for every reader
                // whether or not its removal could be written.
                for (at, key) in self.expiry.pop_due(now) {
                    tracing::trace!(key, ?at, "expiry postponed to compaction");
                }
                for key in keys {
                    self.wake(&key, Err(Error::NotFound));
                }
                tracing::error!(%error, count, "reclaiming expired records failed");
            }
        }
    }

    /// One page of live keys that may match `pattern`, in order. The pattern itself is
    /// applied by the handle, in the lister's task: a page costs the actor at most
    /// `scan_budget` entries and `page_bytes` bytes of keys, whatever the pattern.
    fn list_page(
        &mut self,
        pattern: &Pattern,
        after: Option<String>,
        now: SystemTime,
    ) -> Result<Reply> {
        if let Some(key) = pattern.exact() {
            let keys = match self.live_meta(key, now) {
                Some(_) if after.is_none() => vec![key.to_owned()],
                _ => Vec::new(),
            };
            return Ok(Reply::Page(Page { keys, next: None }));
        }
        let prefix = pattern.literal_prefix();
        let from = match &after {
            Some(cursor) => Bound::Excluded(cursor.as_str()),
            None => Bound::Included(prefix),
        };
        let (page_size, budget, page_bytes) = (
            self.options.page_size,
            self.options.scan_budget,
            self.options.page_bytes,
        );
        let mut keys = Vec::new();
        let mut visited = 0usize;
        let mut bytes = 0usize;
        let mut stopped_at = None;
        self.engine.scan(from, prefix, &mut |key, meta| {
            visited += 1;
            if !is_expired(meta.expires_at, now) {
                bytes += key.len();
                keys.push(key.to_owned());
            }
            if keys.len() >= page_size || visited >= budget || bytes >= page_bytes {
                stopped_at = Some(key.to_owned());
                return false;
            }
            true
        })?;
        Ok(Reply::Page(Page {
            keys,
            next: stopped_at,
        }))
    }
}

/// A record as callers see it, from an engine entry.
pub(crate) fn to_record(key: String, entry: Entry) -> Record {
    Record {
        key,
        value: entry.value,
        version: version_string(entry.version),
        expires_at: entry.expires_at,
    }
}

/// Whether the stored numeric version is the one the caller's string names.
fn version_is(stored: u64, expected: &str) -> bool {
    // Compared without allocating.
    let mut buffer = [0u8; 20];
    decimal(stored, &mut buffer) == expected.as_bytes()
}

/// A version as callers see it: decimal, without leading zeros. Written by hand because
/// `to_string` goes through the formatting machinery, which callgrind put at 190
/// instructions of a 2,100-instruction put.
pub(crate) fn version_string(version: u64) -> String {
    let mut buffer = [0u8; 20];
    // Only ASCII digits are written, so the conversion cannot fail.
    std::str::from_utf8(decimal(version, &mut buffer))
        .unwrap_or_default()
        .to_owned()
}

/// `n` in decimal, written at the end of `buffer` (20 bytes hold every u64).
fn decimal(mut n: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut i = buffer.len();
    loop {
        i -= 1;
        buffer[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buffer[i..]
}

fn log_failure(operation: &'static str, key: Option<&str>, error: &Error) {
    match error {
        Error::NotFound | Error::Conflict | Error::AlreadyExists(_) => {
            tracing::trace!(operation, key, %error, "operation answered");
        }
        _ => tracing::warn!(operation, key, %error, "operation failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::version_is;

    #[test]
    fn version_comparison_is_exact() {
        assert!(version_is(0, "0"));
        assert!(version_is(42, "42"));
        assert!(version_is(u64::MAX, &u64::MAX.to_string()));
        assert!(!version_is(42, "042"));
        assert!(!version_is(42, ""));
        assert!(!version_is(42, "4"));
        for n in [0, 7, 10, 42, 1_000_000, u64::MAX] {
            assert_eq!(super::version_string(n), n.to_string());
        }
    }
}
