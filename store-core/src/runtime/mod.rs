//! The generic actor runtime that runs every local backend.
//!
//! A backend is an [`Engine`]: a synchronous state machine that stores entries. The runtime
//! gives it an owner, a mailbox and a read view:
//!
//! ```text
//!  handles (Clone)          actor task or thread; the engine sits in its Owned slot
//!  ┌────────────┐  bounded  ┌──────────────────────────────────────────────────────┐
//!  │ ActorHandle├─ mpsc ───►│ recv_many ─► apply each command ─► engine.sync      │
//!  └─┬───┬──────┘           │    ▲            (versions, expiry,   (one per batch) │
//!    │   │   ▲              │    │             waiters, paging)         │          │
//!    │   │   └── oneshot ───┤ replies ◄── publish the batch ◄───────────┘          │
//!    │   │                  │ timer: expiry reclaim, engine deadlines              │
//!    │   │                  └────────────────────────────┬─────────────────────────┘
//!    │   │ create, put, cas, delete (engines that        │ after each durable batch
//!    │   │ never block): the same steps, in the          │
//!    │   │ caller's task, holding the Owned slot ────────┤
//!    │   │ get, get_many                                 ▼
//!    │   └──────────────────────────────────────► read view
//!    └── (see owner.rs)                           (sharded map, sequence lock)
//! ```
//!
//! What lives here, once, for every engine:
//! - **Semantics**: create/cas/delete rules, expiry visibility, version assignment (a counter
//!   above [`Engine::last_version`], printed in decimal, never wrapping).
//! - **Batching and group commit**: the actor drains every queued command, applies them,
//!   calls [`Engine::sync`] once if anything was written, publishes, then replies. A reply
//!   to a read that shared a batch with writes is also held until that sync, so nobody
//!   observes a write that could still be lost.
//! - **Same key, same batch**: a batch's writes become visible when it is published, after
//!   the engine's sync, but the batch's later commands see them at once. If a later
//!   command of the batch saw a record the batch wrote with an expiry (a get found it live,
//!   a CAS matched it), that write must have happened before the record expired; if it
//!   expired before the publication, readers of the view that saw the old state after the
//!   write's moment could not be ordered. So a command that touches a key to which the
//!   batch has written a record with an expiry waits for the next batch, with those
//!   behind it (order is kept): it then sees the record on a clock read after the
//!   publication. Only batches that write expiring records are ever split.
//! - **The read path**: `get` and `get_many` are served in the caller's task from a view
//!   the actor publishes after each durable batch, so reads never wait behind writes or a
//!   thread wake-up. `view.rs` explains why this keeps every read linearizable and
//!   `get_many` untorn.
//! - **The write path**: for an engine that never blocks (run by [`spawn`]), a create,
//!   put, cas or delete takes the actor's state from its slot and runs the actor's own
//!   steps in the caller's task, as a batch of one: no channel, no oneshot, no wake-up.
//!   Engines run by [`spawn_on_thread`] (they block on I/O) keep every write on their
//!   thread, where writes share a sync. `owner.rs` explains what this keeps. Every other
//!   call (`put_many`, waits, listings, requests, `close`) goes through the mailbox.
//! - **Cooperation**: a call answered in the caller's task spends a unit of tokio's
//!   cooperative budget, as tokio's own resources do, so a task that reads or writes in a
//!   loop still gives its worker thread back now and then.
//! - **Waiters** for `wait_for_version_change`, woken after the write that changed the key is
//!   durable and published; cancelled waits are swept so they cost no memory. A record's
//!   expiry answers its waiters even when its removal cannot be written.
//! - **Expiry**: an index by time and a timer that reclaims records nobody reads.
//! - **Listing**: pages of at most `page_size` live keys under the pattern's literal prefix,
//!   scanning at most `scan_budget` entries and `page_bytes` bytes of keys; the pattern is
//!   matched by the handle, in the lister's task, so no pattern can make the actor slow for
//!   everyone else. The stream asks for the next page only when it is consumed.
//! - **Shutdown**: `close` runs after the work queued before it; later calls get `Closed`.
//!   If the actor stops otherwise (its engine panicked, its tokio runtime shut down), later
//!   calls get [`Error::Stopped`] saying which.
//!
//! # Modules, and which may use which
//!
//! Each uses only the modules below it (and [`RuntimeOptions`]), from the top:
//!
//! 1. This module: spawning an actor and its handles.
//! 2. `handle`: what callers hold.
//! 3. `owner`: who holds the actor, its task or a writer in its own task.
//! 4. `actor`: the state and the rules; it knows nothing of who holds it, or of handles.
//! 5. `view` (the read view), `waiters`, `expiry`.
//! 6. `command` (the messages) and `engine` (an engine's contract), which refer to each
//!    other: an engine answers through a [`Responder`], and replies carry its [`Entry`].

mod actor;
mod command;
mod engine;
mod expiry;
mod handle;
mod owner;
mod view;
mod waiters;

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

pub use command::{Responder, Waker};
pub use engine::{Engine, Entry, EntryMeta, Moved, Mutation, StoredValue};
pub use handle::ActorHandle;

use crate::{Error, Result};

/// Tuning for an actor; the defaults suit every engine in this workspace.
///
/// ```
/// let options = store_core::runtime::RuntimeOptions::default().mailbox(4096);
/// assert_eq!(options.mailbox, 4096);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// Capacity of the command channel; senders wait when it is full (back-pressure).
    pub mailbox: usize,
    /// Most commands applied per batch (and so per sync).
    pub max_batch: usize,
    /// Most keys per `list_keys` page.
    pub page_size: usize,
    /// Most entries scanned per `list_keys` page, live or not.
    pub scan_budget: usize,
    /// Most bytes of keys per `list_keys` page.
    pub page_bytes: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            mailbox: 1024,
            max_batch: 512,
            page_size: 256,
            scan_budget: 4096,
            page_bytes: 256 * 1024,
        }
    }
}

impl RuntimeOptions {
    /// Sets [`mailbox`](RuntimeOptions::mailbox).
    ///
    /// ```
    /// assert_eq!(store_core::runtime::RuntimeOptions::default().mailbox(8).mailbox, 8);
    /// ```
    #[must_use]
    pub fn mailbox(mut self, commands: usize) -> Self {
        self.mailbox = commands;
        self
    }

    /// Sets [`max_batch`](RuntimeOptions::max_batch).
    ///
    /// ```
    /// assert_eq!(store_core::runtime::RuntimeOptions::default().max_batch(1).max_batch, 1);
    /// ```
    #[must_use]
    pub fn max_batch(mut self, commands: usize) -> Self {
        self.max_batch = commands;
        self
    }

    /// Sets [`page_size`](RuntimeOptions::page_size).
    ///
    /// ```
    /// assert_eq!(store_core::runtime::RuntimeOptions::default().page_size(2).page_size, 2);
    /// ```
    #[must_use]
    pub fn page_size(mut self, keys: usize) -> Self {
        self.page_size = keys;
        self
    }

    /// Sets [`scan_budget`](RuntimeOptions::scan_budget).
    ///
    /// ```
    /// assert_eq!(store_core::runtime::RuntimeOptions::default().scan_budget(3).scan_budget, 3);
    /// ```
    #[must_use]
    pub fn scan_budget(mut self, entries: usize) -> Self {
        self.scan_budget = entries;
        self
    }

    /// Sets [`page_bytes`](RuntimeOptions::page_bytes).
    ///
    /// ```
    /// assert_eq!(store_core::runtime::RuntimeOptions::default().page_bytes(64).page_bytes, 64);
    /// ```
    #[must_use]
    pub fn page_bytes(mut self, bytes: usize) -> Self {
        self.page_bytes = bytes;
        self
    }

    fn checked(self) -> Self {
        Self {
            mailbox: self.mailbox.max(1),
            max_batch: self.max_batch.max(1),
            page_size: self.page_size.max(1),
            scan_budget: self.scan_budget.max(1),
            page_bytes: self.page_bytes.max(1),
        }
    }
}

/// The pieces an actor and its handles share, made before either exists.
struct Wiring<E: Engine> {
    tx: mpsc::Sender<command::Command>,
    view: Arc<view::View<E::Value>>,
    stopped: Arc<OnceLock<Error>>,
}

impl<E: Engine> Wiring<E> {
    /// The shared pieces, and the mailbox's receiving end for the actor.
    fn new(options: &RuntimeOptions) -> (Self, command::Mailbox) {
        let (tx, rx) = mpsc::channel(options.mailbox);
        let stopped = Arc::new(OnceLock::new());
        let mailbox = command::Mailbox::new(rx, stopped.clone());
        let wiring = Self {
            tx,
            view: Arc::new(view::View::new()),
            stopped,
        };
        (wiring, mailbox)
    }

    /// A handle; `inline` lets it apply single-record writes in its own task.
    fn handle(&self, name: &str, inline: Option<Arc<dyn owner::InlineWrites>>) -> ActorHandle {
        ActorHandle::new(
            self.tx.clone(),
            self.view.clone(),
            inline,
            self.stopped.clone(),
            name,
        )
    }

    /// The actor's state in the slot its task and (for engines that never block) writers
    /// share; the mailbox lets go of it if the actor stops without closing.
    fn owned(
        engine: E,
        options: RuntimeOptions,
        view: Arc<view::View<E::Value>>,
        stopped: Arc<OnceLock<Error>>,
        mailbox: &mut command::Mailbox,
    ) -> Result<Arc<owner::Owned<E>>> {
        let actor = actor::Actor::new(engine, options, view.clone())?;
        let owned = Arc::new(owner::Owned::new(actor, view, stopped));
        let release = owned.clone();
        mailbox.on_drop(move || release.release());
        Ok(owned)
    }
}

/// Runs `engine` as an actor: on a task of the current tokio runtime when there is one (for
/// engines that never block, such as the memory engine), otherwise on a thread of its own
/// with a single-threaded runtime, so a store can be created anywhere.
///
/// The engine must never block: its single-record writes are also applied in their
/// callers' tasks (see the module docs). An engine that blocks belongs on
/// [`spawn_on_thread`].
///
/// A store made inside a runtime lives as long as that runtime; if the runtime shuts down
/// first, later calls answer [`Error::Stopped`] saying so.
///
/// ```
/// // No runtime here: the actor gets a thread of its own.
/// # let store = store_core::__private::doc_store();
/// # drop(store);
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// # let store = store_core::__private::doc_store();
/// store.put(Record::new("k", "v")).await.unwrap();
/// assert_eq!(&store.get("k").await.unwrap().value[..], b"v");
/// # });
/// ```
pub fn spawn<E: Engine>(engine: E, options: RuntimeOptions) -> ActorHandle {
    let options = options.checked();
    let (wiring, mut rx) = Wiring::<E>::new(&options);
    let name = engine.describe();
    let owned = match Wiring::owned(
        engine,
        options,
        wiring.view.clone(),
        wiring.stopped.clone(),
        &mut rx,
    ) {
        Ok(owned) => owned,
        Err(error) => {
            // The mailbox drops here: every call answers with the cause.
            tracing::error!(%error, "the engine could not be read at start; storage stopped");
            let _ = wiring.stopped.set(Error::Stopped(format!(
                "the engine could not be read at start: {error}"
            )));
            drop(rx);
            return wiring.handle(&name, None);
        }
    };
    // The engine never blocks, so writers may apply their writes in their own task.
    let handle = wiring.handle(&name, Some(owned.clone()));
    let actor = owner::run(owned, rx);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(actor);
        }
        Err(_) => {
            let name = "store-actor".to_owned();
            let stopped = wiring.stopped.clone();
            let started = std::thread::Builder::new().name(name).spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(actor),
                    Err(error) => {
                        let _ = stopped.set(Error::Stopped(format!(
                            "could not start the actor's runtime: {error}"
                        )));
                    }
                }
            });
            if let Err(error) = started {
                let _ = wiring.stopped.set(Error::Stopped(format!(
                    "could not start the actor's thread: {error}"
                )));
            }
        }
    }
    handle
}

/// Opens an engine with `open` on a new OS thread named `name` and runs it there as an actor
/// (for engines that block on I/O, such as the file engine). Recovery work done by `open`
/// runs on that thread too, never on the async workers. Errors from `open` are returned.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::Storage;
/// let handle = store_core::runtime::spawn_on_thread("my-engine", Default::default(), || {
///     Ok(store_core::__private::DocEngine::default())
/// })
/// .await
/// .unwrap();
/// handle.close().await.unwrap();
/// # });
/// ```
pub async fn spawn_on_thread<E, F>(
    name: &str,
    options: RuntimeOptions,
    open: F,
) -> Result<ActorHandle>
where
    E: Engine,
    F: FnOnce() -> Result<E> + Send + 'static,
{
    let options = options.checked();
    let (wiring, mut rx) = Wiring::<E>::new(&options);
    let (opened_tx, opened_rx) = oneshot::channel::<Result<String>>();
    let view = wiring.view.clone();
    let stopped = wiring.stopped.clone();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = opened_tx.send(Err(Error::io("starting the actor's runtime", e)));
                    return;
                }
            };
            let owned = open().and_then(|engine| {
                let name = engine.describe();
                Wiring::owned(engine, options, view, stopped, &mut rx).map(|owned| (owned, name))
            });
            match owned {
                Ok((owned, name)) => {
                    let _ = opened_tx.send(Ok(name));
                    // Writes all go through the mailbox: this engine may block, so it
                    // runs only here, never in a caller's task.
                    runtime.block_on(owner::run(owned, rx));
                }
                Err(error) => {
                    let _ = opened_tx.send(Err(error));
                }
            }
        })
        .map_err(|e| Error::io(format!("spawning the actor thread {name:?}"), e))?;
    let described = opened_rx.await.map_err(|_| {
        Error::Stopped(format!(
            "the actor thread {name:?} stopped while opening the engine"
        ))
    })??;
    Ok(wiring.handle(&described, None))
}
