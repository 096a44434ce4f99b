//! Who holds the engine: the actor's task ([`run`]), or a writer in its own task.
//!
//! The actor's state lives in an [`Owned`] slot: a mutex around the [`Actor`]. The actor's
//! task takes it for each batch. For an engine that never blocks (one run by
//! [`spawn`](super::spawn)), a single-record write (create, put, cas, delete) also takes
//! it, from the caller's task, and runs as a batch of its own: applied, synced, published
//! and its waiters answered, exactly as the actor would, before the caller gets its answer.
//! The engine still has one owner at a time and every rule (versions, expiry, waiters,
//! publication before the reply) is the actor's own code; only the hand-off is gone.
//!
//! # Why
//!
//! Through the mailbox a put costs a channel send, a oneshot, a wake-up of the actor task
//! and a wake-up back, most of them atomic operations on cache lines that both cores
//! write. `perf` put the hand-off at about half of a 64-task put run and the map insert at
//! under 5%; on the 2-core machine of 2026-12-02, `store-bench` had memory puts at 0.15
//! of a `Mutex<HashMap>`. Applied in place, a put is a lock and the work itself: callgrind
//! counts 2,221 instructions per put in all (5,973 through the mailbox), 422 of them under
//! the lock (the view's update runs after it, see below), and the README has the figures.
//!
//! # What it keeps
//!
//! - **Linearizability.** A write in the caller's task holds the slot from before it reads
//!   the engine until after it has published, so writes are totally ordered, whether
//!   applied here or in a batch, and a write is visible to every read before it returns.
//!   A plain put (no expiry, no waiters) lets go a little earlier: once it holds its key's
//!   shard of the read view for writing, which is before anyone else can apply a write,
//!   so the next write of that key publishes after it and a read of the key waits for it
//!   (the view's module docs, "A put on its own"). The shard's update and the old value's
//!   release then run while the next writer already uses the engine.
//! - **Group commit** where it matters: engines whose sync blocks (the file engine) run on
//!   [`spawn_on_thread`](super::spawn_on_thread) and never take this path, so their writes
//!   still share a sync per batch. For an engine that never blocks, sync is cheap by
//!   definition, and a batch of one loses nothing.
//! - **Short waits.** The slot is a `std::sync::Mutex`, which spins briefly and then parks
//!   the thread. A write in a caller's task holds it for one record; the actor's task
//!   holds it for one batch (at most [`max_batch`](super::RuntimeOptions::max_batch)
//!   commands, each bounded: a listing page by its scan budget, a `put_many` by its
//!   caller's own size). A writer that finds it taken waits for that much, the way a
//!   service waits on its own `Mutex<HashMap>`; nothing holds it across an `.await`.
//!   Whole-store calls (`put_many`, listings, waits, requests, `close`) stay in the
//!   mailbox, so they queue rather than hold a worker thread.
//! - **Timers.** A write that brings the next expiry forward wakes the actor, which
//!   recomputes when to sleep until.
//! - **Failure.** If the engine panics during a write in a caller's task, the panic is
//!   caught: the store stops (every later call answers [`Error::Stopped`] saying so, reads
//!   included), the actor task ends, and the caller gets the same error rather than a
//!   panic in its own code.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use super::actor::{Actor, Written};
use super::command::{Mailbox, Op, Outbox, Reply};
use super::engine::Engine;
use super::view::View;
use crate::{Error, Result};

/// Why a store stops when its engine panics in a caller's task.
const PANICKED: &str =
    "the storage actor panicked (the panic message is in the log); reopen the store";

/// The actor's state and the pieces a writer in its own task needs besides it.
pub(crate) struct Owned<E: Engine> {
    actor: Mutex<Option<Actor<E>>>,
    outbox: Arc<Outbox>,
    view: Arc<View<E::Value>>,
    stopped: Arc<OnceLock<Error>>,
}

impl<E: Engine> Owned<E> {
    pub(crate) fn new(
        actor: Actor<E>,
        view: Arc<View<E::Value>>,
        stopped: Arc<OnceLock<Error>>,
    ) -> Self {
        Self {
            outbox: actor.outbox().clone(),
            actor: Mutex::new(Some(actor)),
            view,
            stopped,
        }
    }

    /// The slot, for the actor's task. A panic in a batch leaves the lock poisoned; the
    /// slot is still the right place to take the actor from.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Actor<E>>> {
        self.actor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Lets go of the actor (and its engine) when the actor's task ends without closing:
    /// its runtime shut down, or it panicked. Writes in callers' tasks then find the slot
    /// empty and answer with the reason already recorded.
    pub(crate) fn release(&self) {
        let actor = self.lock().take();
        drop(actor);
    }

    /// The store stops because the engine panicked in a caller's task: record why, let
    /// readers know, let go of the actor and tell its task to end.
    fn stop_after_panic(&self, slot: &mut MutexGuard<'_, Option<Actor<E>>>) -> Error {
        let error = Error::Stopped(PANICKED.to_owned());
        if self.stopped.set(error.clone()).is_ok() {
            tracing::error!(
                reason = PANICKED,
                "storage engine panicked during a write; storage stopped"
            );
        }
        let actor = slot.take();
        // Readers of the view answer with the reason from now on.
        self.view.clear();
        // Dropping an engine that panicked half-way may panic again; that must not reach
        // the caller either.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(actor)));
        self.outbox.wake.notify_one();
        error
    }
}

/// What became of a write offered to [`InlineWrites::write`].
pub(crate) enum Attempt {
    /// Applied and published (or refused by the rules): the answer.
    Done(Result<Reply>),
    /// The actor has stopped (closed, or failed): answer with the recorded reason.
    Stopped,
}

/// The handle's way to apply a write in its own task, without knowing the engine's type.
pub(crate) trait InlineWrites: Send + Sync + 'static {
    fn write(&self, op: Op) -> Attempt;
}

impl<E: Engine> InlineWrites for Owned<E> {
    fn write(&self, op: Op) -> Attempt {
        let mut slot = match self.actor.lock() {
            Ok(slot) => slot,
            // The actor's task panicked in a batch; its mailbox records why.
            Err(_) => return Attempt::Stopped,
        };
        let Some(actor) = slot.as_mut() else {
            return Attempt::Stopped;
        };
        match catch_unwind(AssertUnwindSafe(|| actor.write_inline(op))) {
            Ok(Written::Answered(answer)) => Attempt::Done(answer),
            Ok(Written::Put { key, slot: record }) => {
                // The key's shard is taken before the slot is let go of, so the next write
                // of this key (which needs the slot, then the shard) publishes after this
                // one; the update itself then runs while other writers use the engine.
                let version = record.version;
                let publication = self.view.begin_put(&key);
                drop(slot);
                Attempt::Done(Ok(Reply::Stored {
                    key: publication.publish(key, record),
                    version,
                }))
            }
            Err(_) => Attempt::Done(Err(self.stop_after_panic(&mut slot))),
        }
    }
}

/// Runs the actor in `owned` until `close`, until every handle is gone, or until a write
/// applied in its caller's task panicked and took the actor down.
pub(crate) async fn run<E: Engine>(owned: Arc<Owned<E>>, mut mailbox: Mailbox) {
    let outbox = owned.outbox().clone();
    let max_batch = match owned.lock().as_ref() {
        Some(actor) => actor.max_batch(),
        None => return,
    };
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let Some(deadline) = owned.lock().as_mut().map(Actor::arm) else {
            return;
        };
        // Commands the last batch left for this one (see "Same key, same batch") run at once.
        if batch.is_empty() {
            tokio::select! {
                received = mailbox.recv_many(&mut batch, max_batch) => {
                    if received == 0 {
                        // Every handle was dropped: stop as if closed.
                        let actor = owned.lock().take();
                        mailbox.close();
                        if let Some(actor) = actor {
                            actor.shutdown(None);
                        }
                        return;
                    }
                }
                () = sleep_until(deadline) => {}
                // An answer given outside a batch, an engine asking for maintenance, or a
                // write applied in its caller's task that moved the next deadline forward.
                () = outbox.wake.notified() => {}
            }
        }
        // The slot is held for the batch only, never across an await.
        let closing = {
            let mut slot = owned.lock();
            // Gone only if a write applied in its caller's task panicked; the reason is set.
            let Some(actor) = slot.as_mut() else {
                return;
            };
            // On close, the actor leaves the slot: from here on, writes in callers' tasks
            // find it empty and answer Closed.
            actor
                .run_batch(&mut batch)
                .map(|close| (close, slot.take()))
        };
        if let Some((close, actor)) = closing {
            mailbox.close();
            // Commands that raced in behind `close` get `Closed`, never silence. `recv`
            // (unlike `try_recv`) also waits for senders that reserved a slot before the
            // close and have not yet put their command in it; a command sent into the slot
            // after a `try_recv` drain would never be answered.
            while let Some(command) = mailbox.recv().await {
                let _ = command.reply.send(Err(Error::Closed));
            }
            if let Some(actor) = actor {
                actor.shutdown(Some(close));
            }
            return;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
