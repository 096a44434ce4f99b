//! The storage stacks every facade test runs on, and the macro that runs them.
//!
//! A test is an `async fn name(storage: Arc<dyn Storage>)`; `stack_tests!(a, b, c)` generates
//! one module per stack with one `#[tokio::test]` per test; `stack_tests_at_once!(a, b)`
//! generates one test per name that runs it on every stack concurrently. Adding a stack is
//! one line in each macro plus its factory here.

#![allow(dead_code)]

use std::sync::Arc;

#[cfg(feature = "cache")]
use store_cache::{CacheOptions, CachedStorage};
use store_core::Storage;
#[cfg(feature = "file")]
use store_file::FileStorage;
use store_memory::MemoryStorage;
use tempfile::TempDir;

/// A storage stack and whatever must outlive it (a temporary directory).
pub struct Stack {
    pub storage: Arc<dyn Storage>,
    _dir: Option<TempDir>,
}

pub async fn memory() -> Stack {
    Stack {
        storage: Arc::new(MemoryStorage::new()),
        _dir: None,
    }
}

#[cfg(feature = "cache")]
pub async fn cached_memory() -> Stack {
    Stack {
        storage: Arc::new(CachedStorage::new(
            MemoryStorage::new(),
            CacheOptions::default(),
        )),
        _dir: None,
    }
}

#[cfg(feature = "file")]
pub async fn file() -> Stack {
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = FileStorage::open(dir.path())
        .await
        .expect("open file store");
    Stack {
        storage: Arc::new(storage),
        _dir: Some(dir),
    }
}

#[cfg(all(feature = "file", feature = "cache"))]
pub async fn cached_file() -> Stack {
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = FileStorage::open(dir.path())
        .await
        .expect("open file store");
    Stack {
        storage: Arc::new(CachedStorage::new(storage, CacheOptions::default())),
        _dir: Some(dir),
    }
}

/// The Redis backend on the test server (127.0.0.1:6379 or `STORE_TEST_REDIS_URL`), under a
/// fresh prefix whose keys are deleted when the stack is dropped.
#[cfg(feature = "redis")]
pub async fn redis() -> Stack {
    Stack {
        storage: Arc::new(store_redis::testing::test_store("compat").await),
        _dir: None,
    }
}

#[cfg(all(feature = "redis", feature = "cache"))]
pub async fn cached_redis() -> Stack {
    let redis = store_redis::testing::test_store("compat-cache").await;
    Stack {
        storage: Arc::new(CachedStorage::new(redis, CacheOptions::default())),
        _dir: None,
    }
}

/// A PostgreSQL store on a fresh table (dropped when the stack is gone), on the server of
/// `STORE_TEST_POSTGRES_URL` or 127.0.0.1:5432/test. go-micro's ported tests write records
/// with TTLs of 100 ms and read them back at once, so commits do not wait for the disk here
/// (`synchronous_commit=off`): a slow flush would expire a record before its first read.
/// Durability is store-postgres's own tests' business.
#[cfg(feature = "postgres")]
async fn postgres_store() -> store_postgres::testing::TestStore {
    let options = store_postgres::testing::fresh_options();
    store_postgres::testing::TestStore::with_options(store_postgres::PostgresOptions {
        url: store_postgres::testing::without_commit_flush(&options.url),
        ..options
    })
    .await
}

/// The PostgreSQL backend.
#[cfg(feature = "postgres")]
pub async fn postgres() -> Stack {
    Stack {
        storage: Arc::new(postgres_store().await),
        _dir: None,
    }
}

/// The cache layer over the PostgreSQL backend.
#[cfg(all(feature = "postgres", feature = "cache"))]
pub async fn cached_postgres() -> Stack {
    let store = postgres_store().await;
    Stack {
        storage: Arc::new(CachedStorage::new(store, CacheOptions::default())),
        _dir: None,
    }
}

/// Runs each named `async fn(Arc<dyn Storage>)` on every stack this build has (the file,
/// cache, redis and postgres stacks need those features of store-compat).
#[macro_export]
macro_rules! stack_tests {
    ($($test:ident),* $(,)?) => {
        $crate::stack_tests!(@stack memory, $crate::common::memory, [all()]; $($test),*);
        $crate::stack_tests!(@stack cached_memory, $crate::common::cached_memory, [feature = "cache"]; $($test),*);
        $crate::stack_tests!(@stack file, $crate::common::file, [feature = "file"]; $($test),*);
        $crate::stack_tests!(@stack cached_file, $crate::common::cached_file, [all(feature = "file", feature = "cache")]; $($test),*);
        $crate::stack_tests!(@stack redis, $crate::common::redis, [feature = "redis"]; $($test),*);
        $crate::stack_tests!(@stack cached_redis, $crate::common::cached_redis, [all(feature = "redis", feature = "cache")]; $($test),*);
        $crate::stack_tests!(@stack postgres, $crate::common::postgres, [feature = "postgres"]; $($test),*);
        $crate::stack_tests!(@stack cached_postgres, $crate::common::cached_postgres, [all(feature = "postgres", feature = "cache")]; $($test),*);
    };
    (@stack $module:ident, $factory:path, [$cfg:meta]; $($test:ident),*) => {
        #[cfg($cfg)]
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    let stack = $factory().await;
                    super::$test(stack.storage.clone()).await;
                    // Close before the temporary directory goes away.
                    let _ = store_core::Storage::close(&stack.storage).await;
                }
            )*
        }
    };
}

/// Like [`stack_tests!`], but one `#[tokio::test]` per test that runs it on every stack at
/// once, for tests that mostly sleep (go-micro's TTL tests): their sleeps then overlap
/// instead of adding up two at a time on the two test threads. A failure names the stack.
#[macro_export]
macro_rules! stack_tests_at_once {
    ($($test:ident),* $(,)?) => {
        mod on_every_stack {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let mut runs: Vec<(&str, tokio::task::JoinHandle<()>)> = Vec::new();
                $crate::stack_tests_at_once!(@spawn runs, $test, memory, $crate::common::memory, [all()]);
                $crate::stack_tests_at_once!(@spawn runs, $test, cached_memory, $crate::common::cached_memory, [feature = "cache"]);
                $crate::stack_tests_at_once!(@spawn runs, $test, file, $crate::common::file, [feature = "file"]);
                $crate::stack_tests_at_once!(@spawn runs, $test, cached_file, $crate::common::cached_file, [all(feature = "file", feature = "cache")]);
                $crate::stack_tests_at_once!(@spawn runs, $test, redis, $crate::common::redis, [feature = "redis"]);
                $crate::stack_tests_at_once!(@spawn runs, $test, cached_redis, $crate::common::cached_redis, [all(feature = "redis", feature = "cache")]);
                $crate::stack_tests_at_once!(@spawn runs, $test, postgres, $crate::common::postgres, [feature = "postgres"]);
                $crate::stack_tests_at_once!(@spawn runs, $test, cached_postgres, $crate::common::cached_postgres, [all(feature = "postgres", feature = "cache")]);
                for (stack, run) in runs {
                    match run.await {
                        Ok(()) => {}
                        Err(error) if error.is_panic() => {
                            eprintln!("{} failed on the {stack} stack", stringify!($test));
                            std::panic::resume_unwind(error.into_panic());
                        }
                        Err(error) => panic!("{} on the {stack} stack: {error}", stringify!($test)),
                    }
                }
            }
        )*
        }
    };
    (@spawn $runs:ident, $test:ident, $stack:ident, $factory:path, [$cfg:meta]) => {
        #[cfg($cfg)]
        $runs.push((
            stringify!($stack),
            tokio::spawn(async {
                let stack = $factory().await;
                super::$test(stack.storage.clone()).await;
                // Close before the temporary directory goes away.
                let _ = store_core::Storage::close(&stack.storage).await;
            }),
        ));
    };
}
