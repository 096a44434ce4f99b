//! Compaction: it runs while reads and writes go on, leaves every key with its last value,
//! shrinks the files to at most 1.5x the live data, and every state an interrupted
//! compaction can leave on disk reopens correctly.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage};

use common::{fast, file_names, segment_files, Rng};

fn small_segments() -> FileOptions {
    FileOptions {
        segment_size: 16 << 10,
        compact_garbage_ratio: 2.0, // only on demand, unless a test says otherwise
        ..fast()
    }
}

fn value_for(key: &str, n: u64) -> String {
    format!("{key}#{n}#{}", "p".repeat((n % 200) as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_under_concurrent_load_keeps_every_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        compact_garbage_ratio: 0.5,
        compact_min_bytes: 64 << 10,
        cache_values_up_to: 64, // most reads go to the files being compacted
        ..small_segments()
    };
    let store = FileStorage::open_with(dir.path(), options.clone())
        .await
        .unwrap();
    const WRITERS: u64 = 4;
    const KEYS: u64 = 150;
    const OPS: u64 = 1500;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(w + 1);
            let mut last: HashMap<String, Option<String>> = HashMap::new();
            for n in 0..OPS {
                let key = format!("w{w}/k{:03}", rng.range(0, KEYS));
                if rng.range(0, 10) == 0 {
                    match store.delete(&key).await {
                        Ok(()) | Err(Error::NotFound) => {}
                        Err(e) => panic!("delete: {e}"),
                    }
                    last.insert(key, None);
                } else {
                    let value = value_for(&key, n);
                    store
                        .put(Record::new(key.clone(), value.clone()))
                        .await
                        .unwrap();
                    last.insert(key, Some(value));
                }
            }
            last
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let store = store.clone();
        readers.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(100 + r);
            let mut reads = 0u64;
            for _ in 0..3000 {
                let key = format!("w{}/k{:03}", rng.range(0, WRITERS), rng.range(0, KEYS));
                match store.get(&key).await {
                    Ok(record) => {
                        let text = std::str::from_utf8(&record.value).unwrap();
                        let (k, rest) = text.split_once('#').unwrap();
                        assert_eq!(k, key, "read another key's value");
                        let n: u64 = rest.split('#').next().unwrap().parse().unwrap();
                        assert_eq!(text, value_for(&key, n), "damaged value");
                        reads += 1;
                    }
                    Err(Error::NotFound) => {}
                    Err(e) => panic!("get during compaction: {e}"),
                }
            }
            reads
        }));
    }
    let compactor = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..8 {
                store.compact().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut expected: HashMap<String, Option<String>> = HashMap::new();
    for task in tasks {
        expected.extend(task.await.unwrap());
    }
    for reader in readers {
        reader.await.unwrap();
    }
    compactor.await.unwrap();
    let before = store.stats();
    store.compact().await.unwrap();
    let after = store.stats();
    assert!(after.compactions >= 9, "{after:?}");
    assert_eq!(after.failed_compactions, 0);
    assert!(after.file_bytes < before.file_bytes || before.garbage_ratio < 0.1);
    check(&store, &expected).await;
    assert!(
        after.file_bytes as f64 <= 1.5 * after.live_bytes as f64,
        "files hold more than 1.5x the live data after compaction: {after:?}"
    );
    store.close().await.unwrap();

    // And the same after a restart.
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    check(&store, &expected).await;
    let reopened = store.stats();
    assert_eq!(reopened.live_bytes, after.live_bytes);
    assert!(reopened.file_bytes as f64 <= 1.5 * reopened.live_bytes as f64);
    store.close().await.unwrap();
}

async fn check(store: &FileStorage, expected: &HashMap<String, Option<String>>) {
    for (key, value) in expected {
        match (store.get(key).await, value) {
            (Ok(record), Some(value)) => assert_eq!(&record.value[..], value.as_bytes(), "{key}"),
            (Err(Error::NotFound), None) => {}
            (got, want) => panic!("{key}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn compaction_starts_by_itself_past_the_garbage_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        compact_garbage_ratio: 0.5,
        compact_min_bytes: 64 << 10,
        ..small_segments()
    };
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    let value = vec![b'x'; 1000];
    for round in 0..40 {
        let records = (0..50)
            .map(|k| Record::new(format!("k{k}"), value.clone()))
            .collect();
        store.put_many(records).await.unwrap();
        if round % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Automatic compaction goes on after the writes stop (runs are spaced out, and the
    // last one is due once the spacing has passed), until the garbage is gone.
    let mut stats = store.stats();
    for _ in 0..300 {
        if stats.compactions > 0 && !stats.compacting && stats.garbage_ratio < 0.5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = store.stats();
    }
    assert!(stats.compactions >= 1, "{stats:?}");
    assert!(stats.garbage_ratio < 0.5, "{stats:?}");
    // 2 MB were written for 50 KB of live data.
    assert!(stats.file_bytes < 200 << 10, "{stats:?}");
    store.close().await.unwrap();
}

/// Writes a history with overwrites, deletes and expiries over several segments.
async fn history(dir: &Path) -> HashMap<String, Option<Vec<u8>>> {
    let store = FileStorage::open_with(dir, small_segments()).await.unwrap();
    let mut expected = HashMap::new();
    for round in 0..6u8 {
        for k in 0..60 {
            let key = format!("k{k:02}");
            let value = vec![round; 300 + k];
            store
                .put(Record::new(key.clone(), value.clone()))
                .await
                .unwrap();
            expected.insert(key, Some(value));
        }
        for k in (round as usize..60).step_by(7) {
            let key = format!("k{k:02}");
            store.delete(&key).await.unwrap();
            expected.insert(key, None);
        }
    }
    // A record that has expired by the time it is compacted.
    store
        .put(Record::new("short", "lived").with_ttl(Duration::from_millis(1)))
        .await
        .unwrap();
    expected.insert("short".into(), None);
    store.close().await.unwrap();
    expected
}

async fn check_dir(dir: &Path, expected: &HashMap<String, Option<Vec<u8>>>) -> FileStorage {
    let store = FileStorage::open_with(dir, small_segments()).await.unwrap();
    for (key, value) in expected {
        match (store.get(key).await, value) {
            (Ok(record), Some(value)) => assert_eq!(&record.value[..], &value[..], "{key}"),
            (Err(Error::NotFound), None) => {}
            (got, want) => panic!("{key}: got {got:?}, want {want:?}"),
        }
    }
    store
}

/// Copies a store's files (segments and manifest), as a backup would.
fn copy_segments(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in segment_files(from) {
        std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
    std::fs::copy(from.join("MANIFEST"), to.join("MANIFEST")).unwrap();
}

#[tokio::test]
async fn leftovers_of_a_compaction_killed_after_its_rename_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let expected = history(dir.path()).await;
    copy_segments(dir.path(), backup.path());
    let before = segment_files(dir.path()).len();
    assert!(before >= 4, "the history should span several segments");

    let store = check_dir(dir.path(), &expected).await;
    store.compact().await.unwrap();
    store.close().await.unwrap();
    let compacted = segment_files(dir.path());
    assert_eq!(
        compacted.len(),
        2,
        "one compacted segment and a fresh active one"
    );

    // The crash: the output was renamed over the newest input, but the older inputs were
    // not removed yet. Put them back.
    let output = compacted[0].file_name().unwrap().to_owned();
    for file in segment_files(backup.path()) {
        if file.file_name().unwrap() < output.as_os_str() {
            std::fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();
        }
    }
    assert_eq!(segment_files(dir.path()).len(), before + 1);
    // Replaying them would bring back deleted keys; recovery must drop them instead.
    let store = check_dir(dir.path(), &expected).await;
    assert_eq!(store.stats().recoveries as usize, before - 1);
    store.close().await.unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn output_of_a_compaction_killed_before_its_rename_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let expected = history(dir.path()).await;
    copy_segments(dir.path(), backup.path());

    let store = check_dir(dir.path(), &expected).await;
    store.compact().await.unwrap();
    store.close().await.unwrap();
    let compacted = segment_files(dir.path());
    let output = compacted[0].clone();
    let finished = std::fs::read(&output).unwrap();

    // The crash: the output was complete (or half written) but not renamed yet.
    for written in [finished.len(), finished.len() / 2, 10] {
        let crashed = tempfile::tempdir().unwrap();
        copy_segments(backup.path(), crashed.path());
        let name = format!("{}.compact", output.file_name().unwrap().to_str().unwrap());
        std::fs::write(crashed.path().join(&name), &finished[..written]).unwrap();
        let store = check_dir(crashed.path(), &expected).await;
        assert_eq!(store.stats().recoveries, 1);
        store.close().await.unwrap();
        assert!(!file_names(crashed.path()).contains(&name));
    }
}

#[tokio::test]
async fn compaction_drops_expired_records_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let expected = history(dir.path()).await;
    let store = check_dir(dir.path(), &expected).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.compact().await.unwrap();
    let stats = store.stats();
    let live = expected.values().filter(|v| v.is_some()).count() as u64;
    assert_eq!(stats.records, live);
    assert!(
        stats.file_bytes as f64 <= 1.5 * stats.live_bytes as f64,
        "{stats:?}"
    );
    store.close().await.unwrap();
    let store = check_dir(dir.path(), &expected).await;
    assert_eq!(store.stats().recovered_records, live);
    store.close().await.unwrap();
}

#[tokio::test]
async fn compact_on_an_empty_or_closed_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    store.compact().await.unwrap();
    store.compact().await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(store.compact().await, Err(Error::Closed)));
}

/// A compaction large enough that its install moves the index over in several steps, with
/// reads (from disk, no value cache) and writes going on throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_compaction_installs_in_steps_while_reads_and_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        cache_values_up_to: 0,
        segment_size: 256 << 10,
        ..small_segments()
    };
    let store = FileStorage::open_with(dir.path(), options.clone())
        .await
        .unwrap();
    const KEYS: u64 = 40_000;
    let key = |k: u64| format!("k{k:06}");
    for chunk in 0..KEYS / 1000 {
        let records = (chunk * 1000..(chunk + 1) * 1000)
            .map(|k| Record::new(key(k), value_for(&key(k), 0)))
            .collect();
        store.put_many(records).await.unwrap();
    }
    let compactor = {
        let store = store.clone();
        tokio::spawn(async move { store.compact().await.unwrap() })
    };
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = HashMap::new();
            let mut n = 1;
            let start = std::time::Instant::now();
            while !store.stats().compacting && start.elapsed() < Duration::from_secs(2) {
                tokio::task::yield_now().await;
            }
            while store.stats().compacting || n < 500 {
                let k = (n * 7919) % KEYS;
                if n % 5 == 0 {
                    store.delete(&key(k)).await.ok();
                    last.insert(k, None);
                } else {
                    store
                        .put(Record::new(key(k), value_for(&key(k), n)))
                        .await
                        .unwrap();
                    last.insert(k, Some(n));
                }
                let probe = (n * 104_729) % KEYS;
                match store.get(&key(probe)).await {
                    Ok(record) => {
                        let text = std::str::from_utf8(&record.value).unwrap();
                        let generation: u64 = text.split('#').nth(1).unwrap().parse().unwrap();
                        assert_eq!(text, value_for(&key(probe), generation));
                    }
                    Err(Error::NotFound) => {}
                    Err(e) => panic!("get during install: {e}"),
                }
                n += 1;
            }
            last
        })
    };
    compactor.await.unwrap();
    let last = writer.await.unwrap();
    let check_all = |store: FileStorage, last: HashMap<u64, Option<u64>>| async move {
        for k in 0..KEYS {
            match (
                store.get(&key(k)).await,
                last.get(&k).copied().unwrap_or(Some(0)),
            ) {
                (Ok(r), Some(n)) => assert_eq!(&r.value[..], value_for(&key(k), n).as_bytes()),
                (Err(Error::NotFound), None) => {}
                (got, want) => panic!("{}: got {got:?}, want {want:?}", key(k)),
            }
        }
        store
    };
    let store = check_all(store, last.clone()).await;
    assert_eq!(store.stats().compactions, 1);
    store.close().await.unwrap();
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    let store = check_all(store, last).await;
    store.close().await.unwrap();
}
