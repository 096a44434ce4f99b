//! Durable file backend (docs below are being written).

mod compaction;
mod engine;
mod format;
mod index;
mod lock;
mod options;
mod recovery;
mod segment;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use store_core::runtime::{self, ActorHandle};
use store_core::{Error, KeyStream, Record, Result, Storage};

pub use format::MAX_VALUE_LEN;
pub use options::{FileOptions, SyncPolicy};
pub use stats::FileStats;

use engine::{FileEngine, Shared};

/// A key no caller is expected to use; a `get` of it wakes the actor so that it notices a
/// compaction request (see [`FileStorage::compact`]).
const WAKE_KEY: &str = "\u{0}store-file:wake";

/// A durable [`Storage`] in a directory.
#[derive(Clone)]
pub struct FileStorage {
    handle: ActorHandle,
    shared: Arc<Shared>,
    dir: Arc<PathBuf>,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl FileStorage {
    /// Opens the store in `dir` with default options.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, FileOptions::default()).await
    }

    /// Opens the store in `dir` with `options`.
    pub async fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let shared = Arc::new(Shared::default());
        let runtime_options = options.runtime.clone();
        let engine_shared = shared.clone();
        let engine_dir = dir.clone();
        let handle = runtime::spawn_on_thread("store-file", runtime_options, move || {
            FileEngine::open(engine_dir, options, engine_shared)
        })
        .await?;
        Ok(Self {
            handle,
            shared,
            dir: Arc::new(dir),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's counters, read without a round trip to the actor.
    pub fn stats(&self) -> FileStats {
        self.shared.stats.snapshot()
    }

    /// Compacts now and returns once done.
    pub async fn compact(&self) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared
            .compact_waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        self.shared.compact_requested.store(true, Ordering::Release);
        match self.handle.get(WAKE_KEY).await {
            Ok(_) | Err(Error::NotFound) => {}
            Err(error) => return Err(error),
        }
        rx.await.map_err(|_| Error::Closed)?
    }
}

#[async_trait]
impl Storage for FileStorage {
    async fn create(&self, record: Record) -> Result<String> {
        self.handle.create(record).await
    }
    async fn get(&self, key: &str) -> Result<Record> {
        self.handle.get(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        self.handle.get_many(keys).await
    }
    async fn put(&self, record: Record) -> Result<Record> {
        self.handle.put(record).await
    }
    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        self.handle.put_many(records).await
    }
    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        self.handle.cas_by_version(record).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.handle.delete(key).await
    }
    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.handle.wait_for_version_change(key, version).await
    }
    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        self.handle.list_keys(pattern).await
    }
    async fn close(&self) -> Result<()> {
        self.handle.close().await
    }
}
