//! The store-core conformance kit on `FileStorage`: once with the default options (fsync on
//! every batch), once with tiny segments, values read from disk and compaction running
//! all the time, so every rule is also checked while compaction rewrites the files.

use std::sync::Arc;

use async_trait::async_trait;
use store_core::{KeyStream, Record, Result, Storage};
use store_file::{FileOptions, FileStorage};

/// A `FileStorage` that owns its temporary directory, so the directory outlives the store
/// and is removed once the last clone is dropped.
#[derive(Clone)]
struct TempFileStorage {
    store: FileStorage,
    _dir: Arc<tempfile::TempDir>,
}

async fn open(options: FileOptions) -> TempFileStorage {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStorage::open_with(dir.path(), options)
        .await
        .expect("open");
    TempFileStorage {
        store,
        _dir: Arc::new(dir),
    }
}

#[async_trait]
impl Storage for TempFileStorage {
    async fn create(&self, record: Record) -> Result<String> {
        self.store.create(record).await
    }
    async fn get(&self, key: &str) -> Result<Record> {
        self.store.get(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        self.store.get_many(keys).await
    }
    async fn put(&self, record: Record) -> Result<Record> {
        self.store.put(record).await
    }
    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        self.store.put_many(records).await
    }
    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        self.store.cas_by_version(record).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(key).await
    }
    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.store.wait_for_version_change(key, version).await
    }
    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        self.store.list_keys(pattern).await
    }
    async fn close(&self) -> Result<()> {
        self.store.close().await
    }
}

mod default_options {
    store_core::conformance_tests!(|| super::open(store_file::FileOptions::default()));
}

mod eager_compaction {
    store_core::conformance_tests!(|| super::open(store_file::FileOptions {
        sync: store_file::SyncPolicy::Never,
        segment_size: 4096,
        compact_garbage_ratio: 0.0,
        compact_min_bytes: 0,
        cache_values_up_to: 0,
        ..Default::default()
    }));
}
