//! [`Subject`]: the operations a workload performs, implemented by the system under test
//! ([`StorageSubject`], any `Arc<dyn Storage>`) and by every baseline.
//!
//! Workloads and the harness are generic over `Subject`, so the target and its baseline run
//! the very same compiled loop; only the operations differ. The trait uses static dispatch
//! (`impl Future`), so a baseline pays no boxing or virtual call the user's own code would
//! not pay, while the target pays exactly what a user of `Arc<dyn Storage>` pays.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use store_core::{Error, Record, Result, Storage};

use crate::scratch::StoreDir;

/// The outcome of a compare-and-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was stored.
    Stored,
    /// Somebody else wrote first; read again and retry.
    Conflict,
}

/// The operations that workloads run, on a target or a baseline.
pub trait Subject: Send + Sync + 'static {
    /// What identifies a stored value for `cas` and `wait_change`.
    type Version: Clone + Send + Sync + 'static;

    /// The subject's name in errors (a baseline's is the one the report gives it).
    const NAME: &'static str;

    /// Stores `entries` (used to populate a subject before a run; not measured).
    fn load(&self, entries: Vec<(String, Bytes)>) -> impl Future<Output = Result<()>> + Send;

    /// The value under `key`; `NotFound` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes>> + Send;

    /// Stores `value` under `key` and returns its new version.
    fn put(&self, key: &str, value: Bytes) -> impl Future<Output = Result<Self::Version>> + Send;

    /// Stores every entry in one call where the subject can (the default stores them one
    /// by one).
    fn put_many(&self, entries: Vec<(String, Bytes)>) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (key, value) in entries {
                self.put(&key, value).await?;
            }
            Ok(())
        }
    }

    // The four calls below are not every baseline's: one that lacks a call leaves it out
    // and answers `unsupported` (the runner never pairs it with a workload that needs it).

    /// The value and version under `key`; `NotFound` when there is none.
    fn get_versioned(
        &self,
        _key: &str,
    ) -> impl Future<Output = Result<(Bytes, Self::Version)>> + Send {
        async { Err(unsupported(Self::NAME, "versioned reads")) }
    }

    /// Stores `value` under `key` if its version is still `expected`.
    fn cas(
        &self,
        _key: &str,
        _expected: Self::Version,
        _value: Bytes,
    ) -> impl Future<Output = Result<CasOutcome>> + Send {
        async { Err(unsupported(Self::NAME, "cas")) }
    }

    /// Returns once the version under `key` is no longer `version`.
    fn wait_change(
        &self,
        _key: &str,
        _version: &Self::Version,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Err(unsupported(Self::NAME, "wait")) }
    }

    /// Lists every key that starts with `prefix`, consuming the whole listing, and returns
    /// how many there were.
    fn list_prefix(&self, _prefix: &str) -> impl Future<Output = Result<usize>> + Send {
        async { Err(unsupported(Self::NAME, "list")) }
    }

    /// Releases the subject after its last run.
    fn close(&self) -> impl Future<Output = Result<()>> + Send;
}

/// An error for an operation a baseline does not implement (the runner never pairs such a
/// baseline with a workload that needs it).
pub fn unsupported(baseline: &str, operation: &str) -> Error {
    Error::Backend(format!(
        "the {baseline} baseline does not implement {operation}"
    ))
}

/// The system under test (or one of the project's backends used as a baseline): any
/// storage stack, through the public [`Storage`] API.
#[derive(Clone)]
pub struct StorageSubject {
    storage: Arc<dyn Storage>,
    warm: bool,
    _dir: Option<Arc<StoreDir>>,
}

impl StorageSubject {
    /// Wraps a storage stack.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            warm: false,
            _dir: None,
        }
    }

    /// Keeps `dir` (where the stack stores its data) until the subject is dropped.
    pub fn keep_dir(mut self, dir: StoreDir) -> Self {
        self._dir = Some(Arc::new(dir));
        self
    }

    /// With `warm`, [`Subject::load`] reads every key back after storing it (`get_many`
    /// per chunk), so a cache layer holds all of them before the first run.
    pub fn warm_up(mut self, warm: bool) -> Self {
        self.warm = warm;
        self
    }
}

/// Records per `put_many` call while loading, so one call never holds the actor for long.
const LOAD_CHUNK: usize = 10_000;

impl Subject for StorageSubject {
    type Version = String;
    const NAME: &'static str = "storage";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let mut records = entries
            .into_iter()
            .map(|(key, value)| Record::new(key, value));
        loop {
            let chunk: Vec<Record> = records.by_ref().take(LOAD_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let keys: Vec<String> = if self.warm {
                chunk.iter().map(|record| record.key.clone()).collect()
            } else {
                Vec::new()
            };
            self.storage.put_many(chunk).await?;
            if self.warm {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let found = self.storage.get_many(&keys).await?;
                if found.iter().any(Option::is_none) {
                    return Err(Error::Backend("warm-up: a loaded key is missing".into()));
                }
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.storage.get(key).await?.value)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<String> {
        Ok(self.storage.put(Record::new(key, value)).await?.version)
    }

    async fn put_many(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let records = entries
            .into_iter()
            .map(|(key, value)| Record::new(key, value))
            .collect();
        self.storage.put_many(records).await
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, String)> {
        let record = self.storage.get(key).await?;
        Ok((record.value, record.version))
    }

    async fn cas(&self, key: &str, expected: String, value: Bytes) -> Result<CasOutcome> {
        let record = Record::new(key, value).with_version(expected);
        match self.storage.cas_by_version(record).await {
            Ok(_) => Ok(CasOutcome::Stored),
            Err(Error::Conflict) => Ok(CasOutcome::Conflict),
            Err(other) => Err(other),
        }
    }

    async fn wait_change(&self, key: &str, version: &String) -> Result<()> {
        self.storage.wait_for_version_change(key, version).await
    }

    async fn list_prefix(&self, prefix: &str) -> Result<usize> {
        let pattern = format!("{prefix}*");
        let mut keys = self.storage.list_keys(&pattern).await?;
        let mut count = 0;
        while let Some(key) = keys.next().await {
            key?;
            count += 1;
        }
        Ok(count)
    }

    async fn close(&self) -> Result<()> {
        self.storage.close().await
    }
}
