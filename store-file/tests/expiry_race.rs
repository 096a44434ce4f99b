//! Issue 9.1 as a stress test: records on short TTLs (1–200 ms), readers doing `get_many`
//! and `get` (served from the runtime's read view), a task calling `compact()` in a loop,
//! and values kept on disk only (`cache_values_up_to = 0`). A compaction drops the values of
//! records expired by its cut-off; no reader may ever see such a record as live with an
//! empty (or any never-written) value. Runs for about three seconds.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Record, Storage};
use store_file::{FileOptions, FileStorage};

use common::{fast, Rng};

const KEYS: u64 = 64;
const RUN: Duration = Duration::from_secs(3);

fn key(k: u64) -> String {
    format!("lease/{k:02}")
}

/// What the `n`th write of key `k` stores: never empty, and recognisable.
fn value(k: u64, n: u64) -> String {
    format!("{}#{n}#{}", key(k), "p".repeat((n % 300) as usize))
}

/// Panics unless `bytes` is a value some writer wrote under `key`.
fn check(key: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|_| panic!("{key}: a value that is not UTF-8: {bytes:?}"));
    assert!(
        !text.is_empty(),
        "{key}: an empty value that was never written"
    );
    let mut parts = text.splitn(3, '#');
    let (Some(k), Some(n), Some(pad)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("{key}: a value that was never written: {text:?}");
    };
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("{key}: a value that was never written: {text:?}"));
    assert_eq!(k, key, "{key}: another key's value: {text:?}");
    assert_eq!(
        pad.len() as u64,
        n % 300,
        "{key}: a mangled value: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_never_read_as_empty_or_unwritten_values_during_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        cache_values_up_to: 0,
        segment_size: 16 << 10,
        compact_garbage_ratio: 2.0, // only the loop below compacts
        ..fast()
    };
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let compactions = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..2u64 {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(0x9e1 + w);
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                n += 2;
                let k = rng.range(0, KEYS);
                let ttl = Duration::from_millis(rng.range(1, 201));
                store
                    .put(Record::new(key(k), value(k, n)).with_ttl(ttl))
                    .await
                    .unwrap();
            }
        }));
    }
    for r in 0..2u64 {
        let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(0x7ead + r);
            while !stop.load(Ordering::Relaxed) {
                let keys: Vec<String> = (0..8).map(|_| key(rng.range(0, KEYS))).collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let found = store.get_many(&refs).await.unwrap();
                for (key, record) in keys.iter().zip(found) {
                    if let Some(record) = record {
                        check(key, &record.value);
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let one = &keys[0];
                if let Ok(record) = store.get(one).await {
                    check(one, &record.value);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    {
        let (store, stop, compactions) = (store.clone(), stop.clone(), compactions.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                store.compact().await.unwrap();
                compactions.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    while started.elapsed() < RUN {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if tasks.iter().any(|t| t.is_finished()) {
            break; // a task failed: stop and report it below
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let (reads, compactions) = (
        reads.load(Ordering::Relaxed),
        compactions.load(Ordering::Relaxed),
    );
    eprintln!("{reads} live values checked across {compactions} compactions");
    assert!(reads > 1000, "too few reads to judge: {reads}");
    assert!(
        compactions > 10,
        "too few compactions to judge: {compactions}"
    );
    store.close().await.unwrap();
}
