//! A cache-over-file stack built from `examples/cache_over_file.toml`.
//!
//! Run it with `cargo run -p examples --features compat --example cache_over_file` (the
//! `compat` feature compiles in store-compat with its default backends). It writes orders,
//! reads them back, closes the stack, and opens it again from the same file to show that
//! every acknowledged write survived and that a cold cache fills on the first read of each
//! key, then prints what each layer of the stack reports.

use std::path::Path;
use std::time::Instant;

use futures::TryStreamExt;
use store_compat::config::StoreConfig;
use store_core::{Error, Record, Storage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cache_over_file.toml");
    let config = StoreConfig::from_path(&path)?;
    let dir = &config
        .file
        .as_ref()
        .expect("the example uses the file backend")
        .dir;
    // Start from an empty directory so every run shows the same thing.
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    println!("stack from {}: {config:?}", path.display());

    let store = config.build().await?;
    for id in 1..=100 {
        store
            .put(Record::new(
                format!("{id:04}"),
                format!("order {id}: pending"),
            ))
            .await?;
    }
    println!("wrote 100 orders durably");

    // Conditional update through the whole stack.
    let current = store.get("0042").await?;
    let shipped = Record::new("0042", "order 42: shipped").with_version(current.version);
    store.cas_by_version(shipped.clone()).await?;
    assert!(matches!(
        store.cas_by_version(shipped).await,
        Err(Error::Conflict)
    ));

    store.close().await?;
    println!("closed; reopening from {}", dir.display());

    // build_stack: the storage, plus the facade, the versioned API of any table and stats.
    let stack = config.build_stack().await?;
    let reopened = stack.storage();
    // A fresh cache: the first read of each key goes to the file, the second is a hit.
    let started = Instant::now();
    for id in 1..=100 {
        reopened.get(&format!("{id:04}")).await?;
    }
    let misses = started.elapsed();
    let started = Instant::now();
    for id in 1..=100 {
        reopened.get(&format!("{id:04}")).await?;
    }
    let hits = started.elapsed();
    println!("100 gets on a cold cache: {misses:?}; the same 100 again (cache hits): {hits:?}");
    let keys: Vec<String> = reopened.list_keys("00{0,1}?").await?.try_collect().await?;
    println!("orders 0000-0019 after reopening: {} keys", keys.len());
    let order = reopened.get("0042").await?;
    println!(
        "order 0042 after reopening: {:?} (version {})",
        String::from_utf8_lossy(&order.value),
        order.version
    );
    assert_eq!(&order.value[..], b"order 42: shipped");
    println!("stack: {}", stack.describe());
    println!("what each layer reports:\n{}", stack.stats().await?);
    stack.close().await?;
    Ok(())
}
