//! Restarts: values, versions, deletions and expiries survive a close and reopen, with every
//! sync policy; versions are never handed out twice, not even after the key that carried
//! the highest one was deleted and compacted away.

mod common;

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy};

async fn keys(store: &FileStorage) -> Vec<String> {
    store
        .list_keys("*")
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await
}

fn version(v: &str) -> u64 {
    v.parse().expect("file versions are decimal numbers")
}

#[tokio::test]
async fn values_versions_deletions_and_expiries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let far = SystemTime::now() + Duration::from_secs(3600);
    let store = FileStorage::open(dir.path()).await.unwrap();
    let a = store.put(Record::new("a", "alpha")).await.unwrap();
    let b = store
        .put(Record::new("b", vec![0u8, 1, 2, 255]).with_expires_at(far))
        .await
        .unwrap();
    let big = store
        .put(Record::new("big", vec![9u8; 100_000]))
        .await
        .unwrap();
    store
        .put_many(vec![Record::new("m1", "one"), Record::new("m2", "two")])
        .await
        .unwrap();
    store.put(Record::new("gone", "x")).await.unwrap();
    store.delete("gone").await.unwrap();
    store
        .put(Record::new("soon", "x").with_ttl(Duration::from_millis(150)))
        .await
        .unwrap();
    let created = store.create(Record::new("c", "made")).await.unwrap();
    let cas = store
        .cas_by_version(Record::new("a", "alpha2").with_version(a.version.clone()))
        .await
        .unwrap();
    let last = store.stats().last_version;
    store.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let store = FileStorage::open(dir.path()).await.unwrap();
    let got = store.get("a").await.unwrap();
    assert_eq!(
        (&got.value[..], &got.version),
        (&b"alpha2"[..], &cas.version)
    );
    let got = store.get("b").await.unwrap();
    assert_eq!(got.version, b.version);
    assert_eq!(&got.value[..], &[0u8, 1, 2, 255]);
    assert_eq!(got.expires_at, Some(far), "expiry times survive exactly");
    assert_eq!(store.get("big").await.unwrap().version, big.version);
    assert_eq!(store.get("c").await.unwrap().version, created);
    assert!(matches!(store.get("gone").await, Err(Error::NotFound)));
    assert!(
        matches!(store.get("soon").await, Err(Error::NotFound)),
        "expired while closed"
    );
    assert_eq!(keys(&store).await, ["a", "b", "big", "c", "m1", "m2"]);
    assert_eq!(store.stats().last_version, last);
    // New versions continue above the old ones.
    let next = store.put(Record::new("gone", "again")).await.unwrap();
    assert!(version(&next.version) > last);
    store.close().await.unwrap();
}

#[tokio::test]
async fn versions_are_never_reused_after_delete_compaction_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    let mut highest = 0;
    for i in 0..10 {
        let r = store.put(Record::new("k", format!("{i}"))).await.unwrap();
        highest = version(&r.version);
    }
    store.delete("k").await.unwrap();
    store.compact().await.unwrap();
    store.close().await.unwrap();

    // Nothing in the files mentions "k" any more, but its versions are still taken.
    let store = FileStorage::open(dir.path()).await.unwrap();
    assert_eq!(store.stats().records, 0);
    let again = store.create(Record::new("k", "new")).await.unwrap();
    assert!(
        version(&again) > highest,
        "{again} reuses a version <= {highest}"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn repeated_restarts_with_every_sync_policy() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Never,
        SyncPolicy::Interval(Duration::from_millis(2)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = FileOptions {
            sync,
            segment_size: 2048,
            ..Default::default()
        };
        let mut seen_versions = std::collections::HashSet::new();
        for cycle in 0..8u32 {
            let store = FileStorage::open_with(dir.path(), options.clone())
                .await
                .unwrap();
            for k in 0..cycle {
                let r = store.get(&format!("k{k}")).await.unwrap();
                assert_eq!(
                    &r.value[..],
                    format!("v{k}-{}", cycle - 1).as_bytes(),
                    "{sync:?}"
                );
            }
            for k in 0..=cycle {
                let r = store
                    .put(Record::new(format!("k{k}"), format!("v{k}-{cycle}")))
                    .await
                    .unwrap();
                assert!(
                    seen_versions.insert(r.version.clone()),
                    "{sync:?}: version {} reused",
                    r.version
                );
            }
            if cycle % 3 == 2 {
                store.compact().await.unwrap();
            }
            store.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn interval_policy_syncs_without_further_writes() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        sync: SyncPolicy::Interval(Duration::from_millis(30)),
        ..Default::default()
    };
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    let before = store.stats().fsyncs;
    store.put(Record::new("a", "1")).await.unwrap();
    // Either forced at once (the last fsync was long enough ago) or by the deadline.
    let mut waited = 0;
    while store.stats().fsyncs == before && waited < 2000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 5;
    }
    assert!(store.stats().fsyncs > before, "no fsync within {waited} ms");
    assert!(waited < 1000, "the interval fsync came {waited} ms late");
    store.close().await.unwrap();
}

#[tokio::test]
async fn never_policy_still_survives_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let store = FileStorage::open_with(dir.path(), options.clone())
        .await
        .unwrap();
    store.put(Record::new("k", "v")).await.unwrap();
    let before = store.stats().fsyncs;
    store.close().await.unwrap();
    assert!(store.stats().fsyncs > before, "close always syncs");
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    assert_eq!(&store.get("k").await.unwrap().value[..], b"v");
    store.close().await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    store.put(Record::new("k", "v")).await.unwrap();
    drop(store);
    // The actor closes on its own thread once the last handle is gone; the lock is free
    // moments later.
    let mut reopened = None;
    for _ in 0..200 {
        match FileStorage::open(dir.path()).await {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    let store = reopened.expect("the lock was never released");
    assert_eq!(&store.get("k").await.unwrap().value[..], b"v");
    store.close().await.unwrap();
}

#[tokio::test]
async fn too_large_values_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    store.put(Record::new("k", "small")).await.unwrap();
    // Zeroed memory from the allocator is not touched, so this costs little.
    let huge = bytes::Bytes::from(vec![0u8; store_file::MAX_VALUE_LEN + 1]);
    match store.put(Record::new("k", huge.clone())).await {
        Err(Error::InvalidValue(message)) => assert!(message.contains("\"k\""), "{message}"),
        other => panic!("expected InvalidValue, got {:?}", other.map(|r| r.version)),
    }
    let batch = vec![Record::new("x", "fits"), Record::new("k", huge)];
    assert!(matches!(
        store.put_many(batch).await,
        Err(Error::InvalidValue(_))
    ));
    assert!(
        matches!(store.get("x").await, Err(Error::NotFound)),
        "put_many is atomic"
    );
    assert_eq!(&store.get("k").await.unwrap().value[..], b"small");
    store.close().await.unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    assert_eq!(&store.get("k").await.unwrap().value[..], b"small");
    assert!(matches!(store.get("x").await, Err(Error::NotFound)));
    store.close().await.unwrap();
}
