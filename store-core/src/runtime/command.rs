//! The messages that travel between handles and the actor.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::{mpsc, oneshot, Notify};

use super::engine::Entry;
use crate::{Error, Pattern, Record, Result};

/// What a handle asks the actor to do.
pub(crate) enum Op {
    Create(Record),
    /// Reads reach the actor only when the read view was busy (see `view.rs`).
    Get(String),
    GetMany(Vec<String>),
    Put(Record),
    PutMany(Vec<Record>),
    Cas(Record),
    Delete(String),
    Wait {
        key: String,
        version: String,
    },
    ListPage {
        pattern: Arc<Pattern>,
        after: Option<String>,
    },
    /// An engine-specific request (`ActorHandle::request`), typed by the engine.
    Request(Box<dyn Any + Send>),
    Close,
}

impl Op {
    /// Whether the operation reads or writes `key` (a listing: any key, since its pattern
    /// may match it). Waits count as reading: they judge the key's live version.
    pub(crate) fn touches(&self, key: &str) -> bool {
        match self {
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => r.key == key,
            Op::Get(k) | Op::Delete(k) | Op::Wait { key: k, .. } => k == key,
            Op::GetMany(keys) => keys.iter().any(|k| k == key),
            Op::PutMany(records) => records.iter().any(|r| r.key == key),
            Op::ListPage { .. } => true,
            Op::Request(_) | Op::Close => false,
        }
    }

    /// The keys to which the operation may write a record with an expiry.
    pub(crate) fn expiring_writes(&self) -> impl Iterator<Item = &str> {
        let records: &[Record] = match self {
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => std::slice::from_ref(r),
            Op::PutMany(records) => records,
            _ => &[],
        };
        records
            .iter()
            .filter(|r| r.expires_at.is_some())
            .map(|r| r.key.as_str())
    }

    /// The key the operation is about, for tracing (the first one for batches).
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => Some(&r.key),
            Op::Get(key) | Op::Delete(key) | Op::Wait { key, .. } => Some(key),
            Op::GetMany(keys) => keys.first().map(String::as_str),
            Op::PutMany(records) => records.first().map(|r| r.key.as_str()),
            Op::ListPage { pattern, .. } => Some(pattern.as_str()),
            Op::Request(_) | Op::Close => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Create(_) => "create",
            Op::Get(_) => "get",
            Op::GetMany(_) => "get_many",
            Op::Put(_) => "put",
            Op::PutMany(_) => "put_many",
            Op::Cas(_) => "cas_by_version",
            Op::Delete(_) => "delete",
            Op::Wait { .. } => "wait_for_version_change",
            Op::ListPage { .. } => "list_keys",
            Op::Request(_) => "request",
            Op::Close => "close",
        }
    }
}

/// What the actor answers. Replies are raw (numeric versions, engine entries, the caller's
/// own key handed back) so that building `Record`s and version strings happens in the
/// caller's task, not on the actor that every caller shares.
pub(crate) enum Reply {
    Unit,
    /// What a create, put or cas stored: the caller's own key, handed back once the write
    /// is published (so neither the handle nor the actor copies it), and the new version.
    Stored {
        key: String,
        version: u64,
    },
    /// A get: the key the caller sent, and the live entry.
    Entry(String, Entry),
    /// A get_many: the keys the caller sent, and their live entries.
    Entries(Vec<String>, Vec<Option<Entry>>),
    Page(Page),
}

impl Reply {
    /// A write's reply before publication: the key is filled in when it comes back.
    pub(crate) fn stored(version: u64) -> Self {
        Reply::Stored {
            key: String::new(),
            version,
        }
    }
}

/// One page of `list_keys`: live keys in order that may match (the handle applies the
/// pattern), and where to continue (`None`: done).
pub(crate) struct Page {
    pub(crate) keys: Vec<String>,
    pub(crate) next: Option<String>,
}

pub(crate) type ReplyTx = oneshot::Sender<Result<Reply>>;

pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: ReplyTx,
}

/// Answers and wake-ups that reach the actor from outside a batch: engine requests
/// answered later (perhaps from another thread), and engines asking to run maintenance.
/// The actor sends the answers after the next publication, so whoever awaited a request
/// (a compaction, say) sees its effects in the read view.
#[derive(Default)]
pub(crate) struct Outbox {
    answers: Mutex<Vec<(ReplyTx, Result<()>)>>,
    /// Whether `answers` may hold something, so that a batch with nothing to deliver does
    /// not take the lock.
    answered: AtomicBool,
    /// An engine asked for `on_deadline` (see [`Waker`]).
    maintenance: AtomicBool,
    pub(crate) wake: Notify,
}

impl Outbox {
    /// The answers given since the last call.
    pub(crate) fn take_answers(&self) -> Vec<(ReplyTx, Result<()>)> {
        self.answered.store(false, Ordering::Release);
        std::mem::take(&mut *self.answers.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether answers may be waiting for [`Outbox::take_answers`].
    pub(crate) fn has_answers(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }

    /// Whether an engine asked for maintenance since the last call.
    pub(crate) fn take_maintenance(&self) -> bool {
        self.maintenance.swap(false, Ordering::AcqRel)
    }

    fn answer(&self, reply: ReplyTx, result: Result<()>) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((reply, result));
        self.answered.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The answer to an engine-specific request (see
/// [`Engine::request`](crate::runtime::Engine::request)), which the engine may keep and
/// give later, from any thread. The answer is delivered after the actor's next publication,
/// so the asker sees in the read view what the request did.
///
/// ```
/// # use store_core::runtime::Responder;
/// fn finish(responder: Responder, outcome: store_core::Result<()>) {
///     if !responder.is_cancelled() {
///         responder.respond(outcome);
///     }
/// }
/// ```
pub struct Responder {
    reply: Option<ReplyTx>,
    outbox: Arc<Outbox>,
}

impl Responder {
    pub(crate) fn new(reply: ReplyTx, outbox: Arc<Outbox>) -> Self {
        Self {
            reply: Some(reply),
            outbox,
        }
    }

    /// Gives the answer; the actor delivers it after its next publication.
    pub fn respond(mut self, result: Result<()>) {
        if let Some(reply) = self.reply.take() {
            self.outbox.answer(reply, result);
        }
    }

    /// Whether the asker has stopped waiting (dropped its future).
    pub fn is_cancelled(&self) -> bool {
        self.reply.as_ref().is_none_or(|reply| reply.is_closed())
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            self.outbox.answer(
                reply,
                Err(Error::Stopped(
                    "the engine dropped a request without answering it".to_owned(),
                )),
            );
        }
    }
}

/// Lets an engine ask its actor, from any thread, to call
/// [`Engine::on_deadline`](crate::runtime::Engine::on_deadline) soon: a background job
/// that finished (a compaction's rewrite, say) needs no polling deadline to be noticed.
/// It does not keep the actor alive; waking a stopped actor does nothing.
///
/// ```
/// # use store_core::runtime::Waker;
/// fn background_job_done(waker: &Waker) {
///     waker.wake(); // the actor runs on_deadline after its current batch
/// }
/// ```
#[derive(Clone)]
pub struct Waker {
    outbox: Arc<Outbox>,
}

impl Waker {
    pub(crate) fn new(outbox: Arc<Outbox>) -> Self {
        Self { outbox }
    }

    /// Asks the actor to call `on_deadline` after its current batch.
    pub fn wake(&self) {
        self.outbox.maintenance.store(true, Ordering::Release);
        self.outbox.wake.notify_one();
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// The actor's end of the command channel. Dropping it records why the actor stopped, if
/// nothing has yet: handles whose reply was dropped wait for this end to go (see
/// `ActorHandle::call`), so they always read the reason, never an unset one.
pub(crate) struct Mailbox {
    rx: mpsc::Receiver<Command>,
    stopped: Arc<OnceLock<Error>>,
    /// Run on drop, after the reason is recorded: lets go of the actor's state, which
    /// handles can also reach (see `owner.rs`), when the actor stops without closing.
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl Mailbox {
    pub(crate) fn new(rx: mpsc::Receiver<Command>, stopped: Arc<OnceLock<Error>>) -> Self {
        Self {
            rx,
            stopped,
            release: None,
        }
    }

    /// Sets what to run when the mailbox is dropped (see [`Mailbox::release`]).
    pub(crate) fn on_drop(&mut self, release: impl FnOnce() + Send + 'static) {
        self.release = Some(Box::new(release));
    }

    pub(crate) async fn recv_many(&mut self, batch: &mut Vec<Command>, limit: usize) -> usize {
        self.rx.recv_many(batch, limit).await
    }

    pub(crate) async fn recv(&mut self) -> Option<Command> {
        self.rx.recv().await
    }

    /// Refuses new commands from now on, recording that the store was closed.
    pub(crate) fn close(&mut self) {
        let _ = self.stopped.set(Error::Closed);
        self.rx.close();
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        // A normal stop has recorded itself already; otherwise the actor is being torn down
        // from outside: a panic unwinding through it, or its runtime dropping its task.
        let reason = if std::thread::panicking() {
            "the storage actor panicked (the panic message is in the log); reopen the store"
        } else {
            "the tokio runtime that ran the storage actor shut down; create the store inside \
             a runtime that outlives every user of it, or outside any runtime so that it runs \
             on a thread of its own"
        };
        if self.stopped.set(Error::Stopped(reason.to_owned())).is_ok() {
            tracing::error!(reason, "storage actor stopped");
        }
        if let Some(release) = self.release.take() {
            release();
        }
    }
}
