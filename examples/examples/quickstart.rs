//! The versioned API in one minute, on the in-memory backend.
//!
//! Run it with `cargo run -p examples --example quickstart`. It needs no feature of the
//! examples crate, so that command compiles only what it uses: store-core, store-memory,
//! tokio, futures and their dependencies.

use std::time::Duration;

use futures::TryStreamExt;
use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = MemoryStorage::new();

    // create: only if the key is absent. The storage assigns the version.
    let version = store.create(Record::new("config/mode", "blue")).await?;
    println!("created config/mode at version {version}");
    match store.create(Record::new("config/mode", "green")).await {
        Err(Error::AlreadyExists(live)) => println!(
            "second create refused: live value {:?}",
            String::from_utf8_lossy(&live.value)
        ),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    // get returns the value with its version.
    let current = store.get("config/mode").await?;
    println!(
        "get: {:?} (version {})",
        String::from_utf8_lossy(&current.value),
        current.version
    );

    // put replaces unconditionally and returns the new version.
    let stored = store.put(Record::new("config/mode", "green")).await?;
    println!("put: now version {}", stored.version);

    // cas_by_version replaces only if nobody wrote since we read.
    let stale = Record::new("config/mode", "red").with_version(current.version.clone());
    match store.cas_by_version(stale).await {
        Err(Error::Conflict) => println!("cas with the old version {}: conflict", current.version),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let fresh = Record::new("config/mode", "red").with_version(stored.version.clone());
    let after_cas = store.cas_by_version(fresh).await?;
    println!(
        "cas with version {}: ok, now {}",
        stored.version, after_cas.version
    );

    // wait_for_version_change blocks until somebody writes the key.
    let watcher = {
        let store = store.clone();
        let seen = after_cas.version.clone();
        tokio::spawn(async move {
            store.wait_for_version_change("config/mode", &seen).await?;
            store.get("config/mode").await
        })
    };
    // Give the watcher a moment to start waiting. Correctness does not depend on it: had the
    // put landed first, the wait would see a newer version and return at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.put(Record::new("config/mode", "purple")).await?;
    let woken = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the watcher was not woken")
        .expect("the watcher task failed")?;
    println!(
        "watcher woken: config/mode is now {:?}",
        String::from_utf8_lossy(&woken.value)
    );

    // list_keys takes a glob; keys come back in ascending order.
    store.put(Record::new("config/colour", "teal")).await?;
    store
        .put(Record::new("session/1", "x").with_ttl(Duration::from_secs(60)))
        .await?;
    let keys: Vec<String> = store.list_keys("config/*").await?.try_collect().await?;
    println!("config keys: {keys:?}");

    store.close().await?;
    println!(
        "closed; later calls answer: {}",
        store.get("config/mode").await.unwrap_err()
    );
    Ok(())
}
