//! A snapshot of a file store restored into memory, Redis and PostgreSQL, compared record
//! by record through both APIs (stored bytes, metadata, expiry).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use store_cli::progress::Progress;
use store_cli::snapshot::{RestoreOptions, Source, restore};
use store_compat::Stack;

use crate::support::{assert_same, config, file_config, ok, open, populate};

/// A populated file store (closed again) and its snapshot.
async fn source(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let c = file_config(dir, "source");
    let stack = open(&c).await;
    populate(&stack).await;
    stack.close().await.unwrap();
    let snap = dir.join("source.snap");
    ok(&c, &["snapshot", snap.to_str().unwrap()]);
    (c, snap)
}

/// Restores `snap` into the store of `target` with the binary and compares.
async fn restore_with_binary_and_compare(source: &Path, target: &Path, snap: &Path) {
    let out = ok(
        target,
        &["restore", snap.to_str().unwrap(), "--verify", "-o", "json"],
    );
    assert!(out.contains("\"verified\":9"), "{out}");
    let (source, target) = (open(source).await, open(target).await);
    assert_same(&source, &target, Duration::from_secs(60)).await;
    source.close().await.unwrap();
    target.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (c, snap) = source(dir.path()).await;
    // In process, with the functions the binary runs.
    let memory = Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    let options = RestoreOptions {
        verify: true,
        ..Default::default()
    };
    let summary = restore(
        memory.storage(),
        &Source::File(snap.clone()),
        &options,
        &Progress::new("t", None),
    )
    .await
    .unwrap();
    assert_eq!((summary.records, summary.verified), (9, Some(9)));
    let file = open(&c).await;
    assert_same(&file, &memory, Duration::from_secs(60)).await;
    file.close().await.unwrap();
    // And the binary, which restores and verifies in one run (memory dies with it).
    let m = config(
        dir.path(),
        "memory.toml",
        "backend = \"memory\"\n[cache]\nmax_capacity = 100\n",
    );
    let out = ok(&m, &["restore", snap.to_str().unwrap(), "--verify"]);
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_redis() {
    let dir = tempfile::tempdir().unwrap();
    let (c, snap) = source(dir.path()).await;
    let url = store_redis::testing::server_url();
    store_redis::testing::require_server(&url);
    let prefix = store_redis::testing::fresh_name("storectl");
    let _guard = store_redis::testing::PrefixGuard::new(&url, &prefix);
    let target = config(
        dir.path(),
        "redis.toml",
        &format!("backend = \"redis\"\n[redis]\nurl = {url:?}\nprefix = {prefix:?}\n"),
    );
    restore_with_binary_and_compare(&c, &target, &snap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let (c, snap) = source(dir.path()).await;
    let options = store_postgres::testing::fresh_options();
    let _guard = store_postgres::testing::TableGuard::new(options.clone());
    let target = config(
        dir.path(),
        "postgres.toml",
        &format!(
            "backend = \"postgres\"\nnamespace = \"tenant\"\n[postgres]\nurl = {:?}\ntable = {:?}\n",
            options.url, options.table
        ),
    );
    restore_with_binary_and_compare(&c, &target, &snap).await;
    // And back: a snapshot of PostgreSQL restored into a new file store is the same again.
    let back = dir.path().join("back.snap");
    ok(&target, &["snapshot", back.to_str().unwrap()]);
    let again = file_config(dir.path(), "again");
    restore_with_binary_and_compare(&c, &again, &back).await;
}
