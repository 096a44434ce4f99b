//! [`ActorHandle`]: the cloneable, `Send + Sync` front of an actor.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::actor::{to_record, version_string};
use super::command::{Command, Op, Page, Reply};
use super::owner::{Attempt, InlineWrites};
use super::view::ReadPath;
use crate::{validate_key, Error, KeyStream, Pattern, Record, Result, Stats, Storage};

/// A handle to a running actor; implements [`Storage`].
///
/// Cloning is cheap. Calls validate their input before doing anything, so bad keys and
/// patterns never reach the actor. `get` and `get_many` are answered from the actor's
/// published read view in the caller's task (see the [runtime docs](crate::runtime)); for
/// an engine that never blocks, single-record writes are applied in the caller's task too,
/// holding the actor's state as the actor would; every other call is a command in the
/// actor's mailbox. Once the actor has stopped, every
/// call returns [`Error::Closed`] after `close`, or [`Error::Stopped`] saying why when it
/// stopped otherwise.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// # let handle = store_core::__private::doc_store();
/// let other = handle.clone();
/// handle.put(Record::new("k", "v")).await.unwrap();
/// assert_eq!(&other.get("k").await.unwrap().value[..], b"v");
/// handle.close().await.unwrap();
/// assert!(matches!(other.get("k").await, Err(store_core::Error::Closed)));
/// # });
/// ```
#[derive(Clone)]
pub struct ActorHandle {
    mailbox: mpsc::Sender<Command>,
    reader: Arc<dyn ReadPath>,
    /// Present for engines that never block (see `owner.rs`).
    inline: Option<Arc<dyn InlineWrites>>,
    stopped: Arc<OnceLock<Error>>,
    name: Arc<str>,
}

impl std::fmt::Debug for ActorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle")
            .field("name", &self.name)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl ActorHandle {
    pub(crate) fn new(
        mailbox: mpsc::Sender<Command>,
        reader: Arc<dyn ReadPath>,
        inline: Option<Arc<dyn InlineWrites>>,
        stopped: Arc<OnceLock<Error>>,
        name: &str,
    ) -> Self {
        Self {
            mailbox,
            reader,
            inline,
            stopped,
            name: name.into(),
        }
    }

    /// Whether the actor has stopped (closed, or failed).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use store_core::Storage;
    /// # let handle = store_core::__private::doc_store();
    /// assert!(!handle.is_closed());
    /// handle.close().await.unwrap();
    /// assert!(handle.is_closed());
    /// # });
    /// ```
    pub fn is_closed(&self) -> bool {
        // A store stops (and records why) just before its mailbox closes.
        self.stopped.get().is_some() || self.mailbox.is_closed()
    }

    /// Commands sent to the actor and not yet taken by it (a queue-depth gauge for operators).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let handle = store_core::__private::doc_store();
    /// assert_eq!(handle.queued_commands(), 0);
    /// # });
    /// ```
    pub fn queued_commands(&self) -> usize {
        self.mailbox.max_capacity() - self.mailbox.capacity()
    }

    /// Sends an engine-specific request (see
    /// [`Engine::Request`](crate::runtime::Engine::Request)) through the mailbox, after the
    /// commands queued before it, and returns the engine's answer. A request of a type the
    /// engine does not take is [`Error::Unsupported`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let handle = store_core::__private::doc_store();
    /// // The engine behind this handle takes no requests.
    /// assert!(matches!(handle.request(()).await, Err(store_core::Error::Unsupported(_))));
    /// # });
    /// ```
    pub async fn request<R: Any + Send>(&self, request: R) -> Result<()> {
        match self.call(Op::Request(Box::new(request))).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("request")),
        }
    }

    /// Why calls fail once the actor is gone.
    fn stop_error(&self) -> Error {
        self.stopped.get().cloned().unwrap_or(Error::Closed)
    }

    async fn call(&self, op: Op) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        if self.mailbox.send(Command { op, reply }).await.is_err() {
            return Err(self.stop_error());
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => {
                // The actor answers every command it takes; a reply dropped unanswered means
                // it is being torn down. Its mailbox records why as it goes, so wait for that.
                self.mailbox.closed().await;
                Err(self.stop_error())
            }
        }
    }

    /// A single-record write: applied in this task when the engine never blocks, otherwise
    /// sent through the mailbox.
    async fn write(&self, op: Op) -> Result<Reply> {
        match &self.inline {
            Some(inline) => {
                cooperate().await;
                match inline.write(op) {
                    Attempt::Done(answer) => answer,
                    Attempt::Stopped => Err(self.stop_error()),
                }
            }
            // Boxed: the mailbox's future is large, and every write's future would carry
            // (and copy into its own box) its space even when it is applied here.
            None => Box::pin(self.call(op)).await,
        }
    }

    async fn page(&self, pattern: Arc<Pattern>, after: Option<String>) -> Result<Page> {
        match self.call(Op::ListPage { pattern, after }).await? {
            Reply::Page(page) => Ok(page),
            _ => Err(unexpected("list_keys")),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(self.stop_error())
        } else {
            Ok(())
        }
    }
}

/// A call answered in the caller's task never waits, so a task that calls in a loop would
/// never give its worker thread back: other tasks on that worker, the actor's among them,
/// would starve (a conformance case, 8 tasks writing and reading in a loop while another
/// closes the store, hung this way). Like tokio's own resources, each such call spends a
/// unit of the task's cooperative budget and yields once the budget is gone.
async fn cooperate() {
    tokio::task::coop::consume_budget().await;
}

fn unexpected(operation: &str) -> Error {
    Error::Backend(format!("the actor sent an unexpected reply to {operation}"))
}

/// The record a put or cas stored, from the key the actor handed back.
fn stored(
    key: String,
    value: bytes::Bytes,
    version: u64,
    expires_at: Option<std::time::SystemTime>,
    operation: &str,
) -> Result<Record> {
    // Keys are never empty: an empty one means the key did not come back (a bug).
    if key.is_empty() {
        return Err(unexpected(operation));
    }
    Ok(Record {
        key,
        value,
        version: version_string(version),
        expires_at,
    })
}

#[async_trait]
impl Storage for ActorHandle {
    async fn create(&self, record: Record) -> Result<String> {
        validate_key(&record.key)?;
        match self.write(Op::Create(record)).await? {
            Reply::Stored { version, .. } => Ok(version_string(version)),
            _ => Err(unexpected("create")),
        }
    }

    async fn get(&self, key: &str) -> Result<Record> {
        validate_key(key)?;
        self.check_open()?;
        cooperate().await;
        if let Some(found) = self.reader.get(key) {
            return match found {
                Ok(Some(entry)) => Ok(to_record(key.to_owned(), entry)),
                Ok(None) => Err(Error::NotFound),
                // Closed meanwhile: say why, as every other call does.
                Err(Error::Closed) => Err(self.stop_error()),
                Err(error) => Err(error),
            };
        }
        match self.call(Op::Get(key.to_owned())).await? {
            Reply::Entry(key, entry) => Ok(to_record(key, entry)),
            _ => Err(unexpected("get")),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        for key in keys {
            validate_key(key)?;
        }
        self.check_open()?;
        cooperate().await;
        if let Some(found) = self.reader.get_many(keys) {
            let found = match found {
                Err(Error::Closed) => return Err(self.stop_error()),
                other => other?,
            };
            return Ok(keys
                .iter()
                .zip(found)
                .map(|(key, entry)| entry.map(|entry| to_record((*key).to_owned(), entry)))
                .collect());
        }
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        match self.call(Op::GetMany(keys)).await? {
            Reply::Entries(keys, entries) => Ok(keys
                .into_iter()
                .zip(entries)
                .map(|(key, entry)| entry.map(|entry| to_record(key, entry)))
                .collect()),
            _ => Err(unexpected("get_many")),
        }
    }

    async fn put(&self, record: Record) -> Result<Record> {
        validate_key(&record.key)?;
        // Keep the value (a reference count) and expiry here; the actor hands the key back
        // with the version, so it is never copied.
        let (value, expires_at) = (record.value.clone(), record.expires_at);
        match self.write(Op::Put(record)).await? {
            Reply::Stored { key, version } => stored(key, value, version, expires_at, "put"),
            _ => Err(unexpected("put")),
        }
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        for record in &records {
            validate_key(&record.key)?;
        }
        if records.is_empty() {
            // Nothing to write, but a closed store still says so.
            return self.check_open();
        }
        match self.call(Op::PutMany(records)).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("put_many")),
        }
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        validate_key(&record.key)?;
        let (value, expires_at) = (record.value.clone(), record.expires_at);
        match self.write(Op::Cas(record)).await? {
            Reply::Stored { key, version } => {
                stored(key, value, version, expires_at, "cas_by_version")
            }
            _ => Err(unexpected("cas_by_version")),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self.write(Op::Delete(key.to_owned())).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("delete")),
        }
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        validate_key(key)?;
        let op = Op::Wait {
            key: key.to_owned(),
            version: version.to_owned(),
        };
        match self.call(op).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("wait_for_version_change")),
        }
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        let pattern = Arc::new(Pattern::new(pattern)?);
        // The first page is fetched now, so that a closed store fails here, not mid-stream.
        let first = self.page(pattern.clone(), None).await?;
        let fetch = {
            let handle = self.clone();
            let pattern = pattern.clone();
            move |after: String| {
                let handle = handle.clone();
                let pattern = pattern.clone();
                async move {
                    let page = handle.page(pattern, Some(after)).await?;
                    Ok((page.keys, page.next))
                }
            }
        };
        // The actor sends candidates; the pattern runs here, in the lister's task.
        let candidates = crate::paging::key_stream(first.keys, first.next, fetch);
        Ok(crate::paging::matching(candidates, pattern))
    }

    async fn close(&self) -> Result<()> {
        match self.call(Op::Close).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("close")),
        }
    }

    fn describe(&self) -> String {
        self.name.to_string()
    }

    async fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        Ok(Stats::default())
    }
}
