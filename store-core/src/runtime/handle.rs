//! [`ActorHandle`]: the cloneable, `Send + Sync` front of an actor.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::actor::to_record;
use super::command::{Command, Op, Page, Reply};
use crate::{validate_key, Error, KeyStream, Pattern, Record, Result, Storage};

/// A handle to a running actor; implements [`Storage`] by sending commands to it.
///
/// Cloning is cheap (a channel sender). Calls validate their input before sending anything,
/// so bad keys and patterns never reach the actor. Once the actor has stopped (after
/// `close`, or if its engine panicked), every call returns [`Error::Closed`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// # #[derive(Default)] struct E(std::collections::BTreeMap<String, store_core::runtime::Entry>);
/// # impl store_core::runtime::Engine for E {
/// #   fn last_version(&self) -> u64 { 0 }
/// #   fn get(&mut self, k: &str) -> store_core::Result<Option<store_core::runtime::Entry>> { Ok(self.0.get(k).cloned()) }
/// #   fn meta(&mut self, k: &str) -> Option<store_core::runtime::EntryMeta> { self.0.get(k).map(Into::into) }
/// #   fn apply(&mut self, b: Vec<store_core::runtime::Mutation>) -> store_core::Result<()> {
/// #     for m in b { match m { store_core::runtime::Mutation::Put { key, entry } => { self.0.insert(key, entry); }
/// #       store_core::runtime::Mutation::Delete { key } | store_core::runtime::Mutation::Expire { key } => { self.0.remove(&key); } } } Ok(()) }
/// #   fn scan(&mut self, f: std::ops::Bound<&str>, p: &str, v: &mut dyn FnMut(&str, &store_core::runtime::EntryMeta) -> bool) -> store_core::Result<()> {
/// #     for (k, e) in self.0.range::<str, _>((f, std::ops::Bound::Unbounded)) { if !k.starts_with(p) || !v(k, &e.into()) { break } } Ok(()) }
/// # }
/// let handle = store_core::runtime::spawn(E::default(), Default::default());
/// let other = handle.clone();
/// handle.put(Record::new("k", "v")).await.unwrap();
/// assert_eq!(&other.get("k").await.unwrap().value[..], b"v");
/// handle.close().await.unwrap();
/// assert!(matches!(other.get("k").await, Err(store_core::Error::Closed)));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ActorHandle {
    mailbox: mpsc::Sender<Command>,
}

impl ActorHandle {
    pub(crate) fn new(mailbox: mpsc::Sender<Command>) -> Self {
        Self { mailbox }
    }

    /// Whether the actor has stopped (closed, or its engine panicked).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use store_core::Storage;
    /// # struct E; impl store_core::runtime::Engine for E {
    /// #   fn last_version(&self) -> u64 { 0 }
    /// #   fn get(&mut self, _: &str) -> store_core::Result<Option<store_core::runtime::Entry>> { Ok(None) }
    /// #   fn meta(&mut self, _: &str) -> Option<store_core::runtime::EntryMeta> { None }
    /// #   fn apply(&mut self, _: Vec<store_core::runtime::Mutation>) -> store_core::Result<()> { Ok(()) }
    /// #   fn scan(&mut self, _: std::ops::Bound<&str>, _: &str, _: &mut dyn FnMut(&str, &store_core::runtime::EntryMeta) -> bool) -> store_core::Result<()> { Ok(()) }
    /// # }
    /// let handle = store_core::runtime::spawn(E, Default::default());
    /// assert!(!handle.is_closed());
    /// handle.close().await.unwrap();
    /// assert!(handle.is_closed());
    /// # });
    /// ```
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }

    /// Commands sent to the actor and not yet taken by it (a queue-depth gauge for operators).
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
    /// let handle = store_core::runtime::spawn(E, Default::default());
    /// assert_eq!(handle.queued_commands(), 0);
    /// # });
    /// ```
    pub fn queued_commands(&self) -> usize {
        self.mailbox.max_capacity() - self.mailbox.capacity()
    }

    /// Asks the actor to call [`Engine::on_deadline`](crate::runtime::Engine::on_deadline)
    /// now, after the commands queued before this one, and returns once it has (with its
    /// error, if any). Backends use it for work requested from outside the command set, such
    /// as an on-demand compaction: set a flag the engine reads, then wake it.
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
    /// let handle = store_core::runtime::spawn(E, Default::default());
    /// handle.wake_engine().await.unwrap();
    /// # });
    /// ```
    pub async fn wake_engine(&self) -> Result<()> {
        match self.call(Op::WakeEngine).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("wake_engine")),
        }
    }

    async fn call(&self, op: Op) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        self.mailbox
            .send(Command { op, reply })
            .await
            .map_err(|_| Error::Closed)?;
        // A dropped reply sender means the actor stopped before answering.
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn page(&self, pattern: Arc<Pattern>, after: Option<String>) -> Result<Page> {
        match self.call(Op::ListPage { pattern, after }).await? {
            Reply::Page(page) => Ok(page),
            _ => Err(unexpected("list_keys")),
        }
    }
}

fn unexpected(operation: &str) -> Error {
    Error::Backend(format!("the actor sent an unexpected reply to {operation}"))
}

#[async_trait]
impl Storage for ActorHandle {
    async fn create(&self, record: Record) -> Result<String> {
        validate_key(&record.key)?;
        match self.call(Op::Create(record)).await? {
            Reply::Version(version) => Ok(version.to_string()),
            _ => Err(unexpected("create")),
        }
    }

    async fn get(&self, key: &str) -> Result<Record> {
        validate_key(key)?;
        match self.call(Op::Get(key.to_owned())).await? {
            Reply::Entry(key, entry) => Ok(to_record(key, entry)),
            _ => Err(unexpected("get")),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        for key in keys {
            validate_key(key)?;
        }
        if keys.is_empty() {
            // Nothing to ask, but a closed store still answers `Closed`.
            return if self.is_closed() {
                Err(Error::Closed)
            } else {
                Ok(Vec::new())
            };
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
        // Keep what the reply needs here, so the actor only answers with a version.
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        match self.call(Op::Put(record)).await? {
            Reply::Version(version) => Ok(Record {
                key,
                value,
                version: version.to_string(),
                expires_at,
            }),
            _ => Err(unexpected("put")),
        }
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        for record in &records {
            validate_key(&record.key)?;
        }
        if records.is_empty() {
            // Still answer `Closed` on a closed store.
            return if self.is_closed() {
                Err(Error::Closed)
            } else {
                Ok(())
            };
        }
        match self.call(Op::PutMany(records)).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("put_many")),
        }
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        validate_key(&record.key)?;
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        match self.call(Op::Cas(record)).await? {
            Reply::Version(version) => Ok(Record {
                key,
                value,
                version: version.to_string(),
                expires_at,
            }),
            _ => Err(unexpected("cas_by_version")),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self.call(Op::Delete(key.to_owned())).await? {
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
        struct Cursor {
            handle: ActorHandle,
            pattern: Arc<Pattern>,
            keys: std::vec::IntoIter<String>,
            next: Option<String>,
        }
        let cursor = Cursor {
            handle: self.clone(),
            pattern,
            keys: first.keys.into_iter(),
            next: first.next,
        };
        let stream = futures::stream::unfold(cursor, |mut cursor| async move {
            loop {
                if let Some(key) = cursor.keys.next() {
                    return Some((Ok(key), cursor));
                }
                let after = cursor.next.take()?;
                match cursor
                    .handle
                    .page(cursor.pattern.clone(), Some(after))
                    .await
                {
                    Ok(page) => {
                        cursor.keys = page.keys.into_iter();
                        cursor.next = page.next;
                    }
                    Err(error) => return Some((Err(error), cursor)),
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn close(&self) -> Result<()> {
        match self.call(Op::Close).await? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected("close")),
        }
    }
}
