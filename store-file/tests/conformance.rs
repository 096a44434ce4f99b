//! The conformance kit (store-testkit) on `FileStorage`: once with the default options (fsync on
//! every batch), once with tiny segments, values read from disk and compaction running
//! all the time, so every rule is also checked while compaction rewrites the files. Both
//! run the two-handle cases (the second handle is a clone) and the durable cases (reopened
//! on the same directory).

use std::sync::Arc;

use store_file::{FileOptions, FileStorage};

/// A `FileStorage` that owns its temporary directory, so the directory outlives the store
/// and is removed once the last clone is dropped.
#[derive(Clone)]
struct TempFileStorage {
    store: FileStorage,
    dir: Arc<tempfile::TempDir>,
}

async fn open(options: FileOptions) -> TempFileStorage {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStorage::open_with(dir.path(), options)
        .await
        .expect("open");
    TempFileStorage {
        store,
        dir: Arc::new(dir),
    }
}

/// Opens the directory of a closed store again, as a restarted process would.
async fn reopen(closed: TempFileStorage, options: FileOptions) -> TempFileStorage {
    let store = FileStorage::open_with(closed.dir.path(), options)
        .await
        .unwrap_or_else(|e| panic!("reopening {}: {e}", closed.dir.path().display()));
    TempFileStorage {
        store,
        dir: closed.dir,
    }
}

/// Tiny segments, values read from disk, compaction all the time.
fn eager_compaction() -> FileOptions {
    FileOptions {
        sync: store_file::SyncPolicy::Never,
        segment_size: 4096,
        compact_garbage_ratio: 0.0,
        compact_min_bytes: 0,
        cache_values_up_to: 0,
        ..Default::default()
    }
}

impl store_core::Layer for TempFileStorage {
    type Inner = FileStorage;
    fn inner(&self) -> &FileStorage {
        &self.store
    }
}

mod default_options {
    use super::{open, reopen, TempFileStorage};
    use store_file::FileOptions;

    store_testkit::conformance_tests!(
        || open(FileOptions::default()),
        second_handle = |first: &TempFileStorage| async { first.clone() },
        reopen = |closed| reopen(closed, FileOptions::default()),
    );
}

mod eager_compaction {
    use super::{eager_compaction, open, reopen, TempFileStorage};

    store_testkit::conformance_tests!(
        || open(eager_compaction()),
        second_handle = |first: &TempFileStorage| async { first.clone() },
        reopen = |closed| reopen(closed, eager_compaction()),
    );
}
