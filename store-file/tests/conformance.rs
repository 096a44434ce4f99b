//! The store-core conformance kit on `FileStorage`: once with the default options (fsync on
//! every batch), once with tiny segments, values read from disk and compaction running
//! all the time, so every rule is also checked while compaction rewrites the files.

use std::sync::Arc;

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

impl store_core::Layer for TempFileStorage {
    type Inner = FileStorage;
    fn inner(&self) -> &FileStorage {
        &self.store
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
