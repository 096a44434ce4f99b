//! Quick numbers for the file backend (moved here from store-file's examples; `cargo bench`
//! builds it in release):
//!
//! ```text
//! cargo bench -p store-bench --bench file_numbers [-- RECORDS_FOR_REOPEN]
//! ```
//!
//! 1. Durable put rate, `SyncPolicy::Always`, 64 concurrent writers, against the baseline
//!    of a write + fdatasync per record loop on the same disk.
//! 2. Reopen time of a store holding RECORDS_FOR_REOPEN (default 1,000,000) records of
//!    100-byte values.
//! 3. Get rate through the actor, file against memory, 64 concurrent readers.
//!
//! The store-bench program (`store-bench --target file`) is the real benchmark, with the
//! goals; this is a smoke-sized check that also reports the worst `get` latency while a
//! whole store is compacted.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy};

const VALUE: [u8; 100] = [b'v'; 100];

fn baseline_fdatasync_rate(dir: &std::path::Path, seconds: f64) -> f64 {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("baseline.log"))
        .unwrap();
    let record = [b'r'; 120];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn durable_put_rate(dir: &std::path::Path, writers: usize, seconds: f64) -> (f64, f64) {
    let store = FileStorage::open(dir.join("puts")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                store
                    .put(Record::new(format!("w{w}/k{}", n % 1000), &VALUE[..]))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.stats();
    store.close().await.unwrap();
    (
        total as f64 / elapsed,
        stats.frames_written as f64 / stats.fsyncs.max(1) as f64,
    )
}

async fn reopen_time(dir: &std::path::Path, records: usize) -> (Duration, u64) {
    let path = dir.join("reopen");
    let options = FileOptions {
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let store = FileStorage::open_with(&path, options.clone())
        .await
        .unwrap();
    let fill = Instant::now();
    for chunk in 0..records.div_ceil(1000) {
        let batch = (chunk * 1000..((chunk + 1) * 1000).min(records))
            .map(|i| Record::new(format!("key/{i:08}"), &VALUE[..]))
            .collect();
        store.put_many(batch).await.unwrap();
    }
    store.close().await.unwrap();
    eprintln!("  filled {records} records in {:?}", fill.elapsed());
    let start = Instant::now();
    let store = FileStorage::open_with(&path, options).await.unwrap();
    let elapsed = start.elapsed();
    let stats = store.stats();
    assert_eq!(stats.records, records as u64);
    // Compaction of the whole store, with one reader measuring its worst get latency.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut i = 0usize;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                store
                    .get(&format!("key/{:08}", i * 37 % records))
                    .await
                    .unwrap();
                worst = worst.max(t.elapsed());
                i += 1;
            }
            worst
        })
    };
    let t = Instant::now();
    store.compact().await.unwrap();
    let compaction = t.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = reader.await.unwrap();
    eprintln!(
        "  compacting {records} records took {compaction:?}; worst get latency meanwhile {worst:?}"
    );
    store.close().await.unwrap();
    (elapsed, stats.file_bytes)
}

async fn get_rate(store: Arc<dyn Storage>, keys: usize, readers: usize, seconds: f64) -> f64 {
    for chunk in 0..keys.div_ceil(1000) {
        let batch = (chunk * 1000..((chunk + 1) * 1000).min(keys))
            .map(|i| Record::new(format!("key/{i:08}"), &VALUE[..]))
            .collect();
        store.put_many(batch).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..readers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut x = r as u64 * 7919 + 1;
            while Instant::now() < deadline {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (x >> 33) as usize % keys;
                store.get(&format!("key/{k:08}")).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    store.close().await.unwrap();
    rate
}

#[tokio::main]
async fn main() {
    // `cargo bench` adds `--bench`; the first number is the record count.
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let baseline = baseline_fdatasync_rate(dir, 2.0);
    println!("baseline write+fdatasync per record: {baseline:>10.0} writes/s");
    for writers in [1, 64] {
        let (rate, per_sync) = durable_put_rate(dir, writers, 3.0).await;
        println!(
            "FileStorage Always, {writers:>2} writers:     {rate:>10.0} writes/s ({:.1}x baseline, {per_sync:.1} writes per fdatasync)",
            rate / baseline
        );
    }

    let (elapsed, bytes) = reopen_time(dir, records).await;
    println!(
        "reopen {records} records of 100 B ({:.0} MB of files): {elapsed:?}",
        bytes as f64 / 1e6
    );

    let file: Arc<dyn Storage> = Arc::new(
        FileStorage::open_with(
            dir.join("gets"),
            FileOptions {
                sync: SyncPolicy::Never,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let file_rate = get_rate(file, 100_000, 64, 3.0).await;
    let memory: Arc<dyn Storage> = Arc::new(store_memory::MemoryStorage::new());
    let memory_rate = get_rate(memory, 100_000, 64, 3.0).await;
    println!(
        "get, 64 readers: file {file_rate:.0}/s, memory {memory_rate:.0}/s ({:.2}x)",
        file_rate / memory_rate
    );
}
