//! The generic actor runtime that runs every backend.
//!
//! A backend is an [`Engine`]: a synchronous state machine that stores entries. The runtime
//! gives it an owner and a mailbox:
//!
//! ```text
//!  handles (Clone)          actor task or thread (owns the engine)
//!  ┌────────────┐  bounded  ┌────────────────────────────────────────────────┐
//!  │ ActorHandle├─ mpsc ───►│ recv_many ─► apply each command ─► engine.sync │
//!  └────────────┘           │    ▲            (versions, expiry,   (one per  │
//!        ▲                  │    │             waiters, paging)     batch)   │
//!        └──── oneshot ─────┤ replies sent after the sync ◄──────────────────┘
//!                           │ timer: expiry reclaim, engine deadlines         │
//!                           └────────────────────────────────────────────────┘
//! ```
//!
//! What lives here, once, for every engine:
//! - **Semantics**: create/cas/delete rules, expiry visibility, version assignment (a counter
//!   above [`Engine::last_version`], printed in decimal).
//! - **Batching and group commit**: the actor drains every queued command, applies them,
//!   calls [`Engine::sync`] once if anything was written, then replies. A reply to a read
//!   that shared a batch with writes is also held until that sync, so nobody observes a
//!   write that could still be lost.
//! - **Waiters** for `wait_for_version_change`, woken after the write that changed the key is
//!   durable; cancelled waits are swept so they cost no memory.
//! - **Expiry**: an index by time and a timer that reclaims records nobody reads.
//! - **Listing**: pages of at most `page_size` keys, scanning at most `scan_budget` entries per
//!   page, so a sparse pattern never stalls the actor; the stream asks for the next page only
//!   when it is consumed.
//! - **Shutdown**: `close` runs after the work queued before it; later calls get `Closed`. If
//!   the engine panics, the actor's mailbox and reply channels drop and callers get `Closed`.

mod actor;
mod command;
mod engine;
mod expiry;
mod handle;
mod waiters;

use tokio::sync::{mpsc, oneshot};

pub use engine::{Engine, Entry, EntryMeta, Mutation};
pub use handle::ActorHandle;

use crate::{Error, Result};

/// Tuning for an actor; the defaults suit every engine in this workspace.
///
/// ```
/// let options = store_core::runtime::RuntimeOptions { mailbox: 4096, ..Default::default() };
/// assert_eq!(options.mailbox, 4096);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Capacity of the command channel; senders wait when it is full (back-pressure).
    pub mailbox: usize,
    /// Most commands applied per batch (and so per sync).
    pub max_batch: usize,
    /// Most keys per `list_keys` page.
    pub page_size: usize,
    /// Most entries scanned per `list_keys` page, matching or not.
    pub scan_budget: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            mailbox: 1024,
            max_batch: 512,
            page_size: 256,
            scan_budget: 4096,
        }
    }
}

fn checked(options: RuntimeOptions) -> RuntimeOptions {
    RuntimeOptions {
        mailbox: options.mailbox.max(1),
        max_batch: options.max_batch.max(1),
        page_size: options.page_size.max(1),
        scan_budget: options.scan_budget.max(1),
    }
}

/// Runs `engine` as an actor on a task of the current tokio runtime (for engines that never
/// block, such as the memory engine).
///
/// # Panics
///
/// Panics when called outside a tokio runtime, like `tokio::spawn`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # struct E; impl store_core::runtime::Engine for E {
/// #   fn last_version(&self) -> u64 { 0 }
/// #   fn get(&mut self, _: &str) -> store_core::Result<Option<store_core::runtime::Entry>> { Ok(None) }
/// #   fn meta(&mut self, _: &str) -> Option<store_core::runtime::EntryMeta> { None }
/// #   fn apply(&mut self, _: Vec<store_core::runtime::Mutation>) -> store_core::Result<()> { Ok(()) }
/// #   fn scan(&mut self, _: std::ops::Bound<&str>, _: &str, _: &mut dyn FnMut(&str, &store_core::runtime::EntryMeta) -> bool) -> store_core::Result<()> { Ok(()) }
/// # }
/// use store_core::Storage;
/// let handle = store_core::runtime::spawn(E, Default::default());
/// assert!(matches!(handle.get("missing").await, Err(store_core::Error::NotFound)));
/// # });
/// ```
pub fn spawn<E: Engine>(engine: E, options: RuntimeOptions) -> ActorHandle {
    let options = checked(options);
    let (tx, rx) = mpsc::channel(options.mailbox);
    match actor::Actor::new(engine, options) {
        Ok(actor) => {
            tokio::spawn(actor.run(rx));
        }
        Err(error) => {
            // Dropping the receiver closes the handle: every call answers `Closed`.
            tracing::error!(%error, "the engine could not be scanned at start; storage closed");
        }
    }
    ActorHandle::new(tx)
}

/// Opens an engine with `open` on a new OS thread named `name` and runs it there as an actor
/// (for engines that block on I/O, such as the file engine). Recovery work done by `open`
/// runs on that thread too, never on the async workers. Errors from `open` are returned.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # struct E; impl store_core::runtime::Engine for E {
/// #   fn last_version(&self) -> u64 { 0 }
/// #   fn get(&mut self, _: &str) -> store_core::Result<Option<store_core::runtime::Entry>> { Ok(None) }
/// #   fn meta(&mut self, _: &str) -> Option<store_core::runtime::EntryMeta> { None }
/// #   fn apply(&mut self, _: Vec<store_core::runtime::Mutation>) -> store_core::Result<()> { Ok(()) }
/// #   fn scan(&mut self, _: std::ops::Bound<&str>, _: &str, _: &mut dyn FnMut(&str, &store_core::runtime::EntryMeta) -> bool) -> store_core::Result<()> { Ok(()) }
/// # }
/// use store_core::Storage;
/// let handle = store_core::runtime::spawn_on_thread("my-engine", Default::default(), || Ok(E))
///     .await
///     .unwrap();
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
    let options = checked(options);
    let (tx, rx) = mpsc::channel(options.mailbox);
    let (opened_tx, opened_rx) = oneshot::channel::<Result<()>>();
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
            let actor = open().and_then(|engine| actor::Actor::new(engine, options));
            match actor {
                Ok(actor) => {
                    let _ = opened_tx.send(Ok(()));
                    runtime.block_on(actor.run(rx));
                }
                Err(error) => {
                    let _ = opened_tx.send(Err(error));
                }
            }
        })
        .map_err(|e| Error::io(format!("spawning the actor thread {name:?}"), e))?;
    opened_rx.await.map_err(|_| Error::Closed)??;
    Ok(ActorHandle::new(tx))
}
