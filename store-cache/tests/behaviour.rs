//! Expiry, negative caching, statistics and closing.

use std::time::Duration;

use store_cache::{CacheOptions, CachedStorage};
use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;

#[tokio::test]
async fn hits_are_counted_and_served_without_the_inner_store() {
    let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
    cached.put(Record::new("k", "v")).await.unwrap();
    for _ in 0..10 {
        cached.get("k").await.unwrap();
    }
    let stats = cached.stats();
    assert_eq!((stats.hits, stats.misses), (10, 0), "{stats:?}");
    assert!(cached.get("other").await.is_err());
    assert_eq!(cached.stats().misses, 1);
}

#[tokio::test]
async fn a_cached_record_disappears_when_it_expires() {
    let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
    cached
        .put(Record::new("k", "v").with_ttl(Duration::from_millis(150)))
        .await
        .unwrap();
    cached.get("k").await.unwrap();
    assert_eq!(
        cached.stats().hits,
        1,
        "the put should have filled the cache"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(cached.get("k").await, Err(Error::NotFound)));
}

#[tokio::test]
async fn a_write_that_bypasses_the_cache_shows_after_ttl() {
    let options = CacheOptions {
        ttl: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let cached = CachedStorage::new(MemoryStorage::new(), options);
    cached.put(Record::new("k", "old")).await.unwrap();
    // Another process (here: a direct write below the cache) changes the key.
    cached.inner().put(Record::new("k", "new")).await.unwrap();
    let seen = cached.get("k").await.unwrap();
    assert_eq!(&seen.value[..], b"old", "within ttl the cache may lag");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(&cached.get("k").await.unwrap().value[..], b"new");
}

#[tokio::test]
async fn negative_caching_is_off_by_default() {
    let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
    assert!(matches!(cached.get("k").await, Err(Error::NotFound)));
    cached.inner().put(Record::new("k", "v")).await.unwrap();
    assert_eq!(&cached.get("k").await.unwrap().value[..], b"v");
}

#[tokio::test]
async fn negative_caching_remembers_not_found_until_a_local_write() {
    let options = CacheOptions {
        negative_ttl: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let cached = CachedStorage::new(MemoryStorage::new(), options);
    assert!(matches!(cached.get("k").await, Err(Error::NotFound)));
    assert!(matches!(cached.get("k").await, Err(Error::NotFound)));
    assert_eq!(
        cached.stats().hits,
        1,
        "the second NotFound should be a hit"
    );
    assert_eq!(cached.get_many(&["k"]).await.unwrap(), vec![None]);

    // A write that bypasses the cache stays hidden at most negative_ttl ...
    cached.inner().put(Record::new("k", "v")).await.unwrap();
    assert!(matches!(cached.get("k").await, Err(Error::NotFound)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(&cached.get("k").await.unwrap().value[..], b"v");

    // ... and a write through the cache clears a remembered NotFound at once.
    assert!(matches!(cached.get("n").await, Err(Error::NotFound)));
    cached.create(Record::new("n", "now")).await.unwrap();
    assert_eq!(&cached.get("n").await.unwrap().value[..], b"now");
}

#[tokio::test]
async fn conflicts_invalidate_what_another_process_changed() {
    let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
    let v1 = cached.put(Record::new("k", "v1")).await.unwrap();
    let v2 = cached.inner().put(Record::new("k", "v2")).await.unwrap();
    // The cache still shows v1, so the caller tries CAS from v1 and conflicts ...
    let stale = Record::new("k", "v3").with_version(v1.version);
    assert!(matches!(
        cached.cas_by_version(stale).await,
        Err(Error::Conflict)
    ));
    // ... and the conflict made the cache drop its copy, so the retry reads the truth.
    assert_eq!(cached.get("k").await.unwrap(), v2);
}

#[tokio::test]
async fn close_closes_the_inner_store_and_stops_hits() {
    let memory = MemoryStorage::new();
    let cached = CachedStorage::new(memory.clone(), CacheOptions::default());
    cached.put(Record::new("k", "v")).await.unwrap();
    cached.get("k").await.unwrap();
    cached.close().await.unwrap();
    assert!(matches!(cached.get("k").await, Err(Error::Closed)));
    assert!(matches!(cached.get_many(&["k"]).await, Err(Error::Closed)));
    assert!(matches!(memory.get("k").await, Err(Error::Closed)));
    assert!(matches!(cached.close().await, Err(Error::Closed)));
}

#[tokio::test]
async fn closing_below_the_cache_stops_hits_too() {
    let memory = MemoryStorage::new();
    let cached = CachedStorage::new(memory.clone(), CacheOptions::default());
    cached.put(Record::new("k", "v")).await.unwrap();
    memory.close().await.unwrap();
    // The first call that reaches the inner store learns it is closed ...
    assert!(matches!(cached.get("other").await, Err(Error::Closed)));
    // ... and from then on cached keys answer Closed as well.
    assert!(matches!(cached.get("k").await, Err(Error::Closed)));
}

#[tokio::test]
async fn capacity_bounds_the_entries() {
    let options = CacheOptions {
        max_capacity: 100,
        ..Default::default()
    };
    let cached = CachedStorage::new(MemoryStorage::new(), options);
    for i in 0..1_000 {
        cached.put(Record::new(format!("k{i}"), "v")).await.unwrap();
    }
    for i in 0..1_000 {
        cached.get(&format!("k{i}")).await.unwrap();
    }
    // moka applies evictions in the background; give it its turn before counting.
    for _ in 0..100 {
        if cached.stats().entries <= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = cached.stats();
    assert!(stats.entries <= 100, "{stats:?}");
    assert!(stats.evictions > 0, "{stats:?}");
}

/// An inner store that panics after applying a put of the key `boom`, as a buggy backend or
/// layer might: the write happened below, but its caller never hears back.
struct PanicsAfterPut(MemoryStorage);

#[async_trait::async_trait]
impl store_core::Layer for PanicsAfterPut {
    type Inner = MemoryStorage;
    fn inner(&self) -> &MemoryStorage {
        &self.0
    }
    async fn put(&self, record: Record) -> store_core::Result<Record> {
        let boom = record.key == "boom";
        // `Layer` is in scope inside its impl and `MemoryStorage` is a layer too: name the trait.
        let stored = Storage::put(&self.0, record).await?;
        assert!(!boom, "the inner store panics after applying the put");
        Ok(stored)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_below_leaves_no_stale_entry_and_no_stuck_stripe() {
    let memory = MemoryStorage::new();
    let options = CacheOptions {
        stripes: 1, // every key on one stripe: a stuck stripe would stop every hit
        ..Default::default()
    };
    let cached = CachedStorage::new(PanicsAfterPut(memory.clone()), options);
    cached.put(Record::new("boom", "old")).await.unwrap_err();
    cached.settled().await;
    memory.put(Record::new("boom", "old")).await.unwrap();
    assert_eq!(&cached.get("boom").await.unwrap().value[..], b"old"); // now cached

    let failed = cached.put(Record::new("boom", "new")).await;
    assert!(matches!(failed, Err(Error::Backend(_))), "{failed:?}");
    // The put was applied below; the cache must not keep answering the old value.
    assert_eq!(&cached.get("boom").await.unwrap().value[..], b"new");
    // And the stripe is usable again: the next read of a freshly written key is a hit.
    cached.put(Record::new("other", "v")).await.unwrap();
    let hits = cached.stats().hits;
    cached.get("other").await.unwrap();
    assert_eq!(
        cached.stats().hits,
        hits + 1,
        "the stripe still refuses the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_woken_by_a_write_reads_it_through_the_cache() {
    for round in 0..200 {
        let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
        let first = cached.put(Record::new("k", "v1")).await.unwrap();
        cached.get("k").await.unwrap(); // cached
        let waiter = tokio::spawn({
            let cached = cached.clone();
            let version = first.version.clone();
            async move {
                cached.wait_for_version_change("k", &version).await.unwrap();
                cached.get("k").await.unwrap()
            }
        });
        tokio::task::yield_now().await;
        let second = cached.put(Record::new("k", "v2")).await.unwrap();
        let seen = waiter.await.unwrap();
        assert_eq!(
            seen.version, second.version,
            "round {round}: the woken waiter read the version it waited on"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_is_never_torn_by_put_many_through_the_cache() {
    let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
    cached
        .put_many(vec![Record::new("a", "0"), Record::new("b", "0")])
        .await
        .unwrap();
    let writer = tokio::spawn({
        let cached = cached.clone();
        async move {
            for i in 1..=20_000u32 {
                let v = i.to_string();
                cached
                    .put_many(vec![Record::new("a", v.clone()), Record::new("b", v)])
                    .await
                    .unwrap();
            }
        }
    });
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let cached = cached.clone();
            tokio::spawn(async move {
                let mut reads = 0u32;
                loop {
                    // Warm one key only, so the next get_many mixes a hit with a miss: the
                    // case that tore reads before.
                    let warm = if r % 2 == 0 { "a" } else { "b" };
                    cached.get(warm).await.unwrap();
                    let both = cached.get_many(&["a", "b"]).await.unwrap();
                    let a = both[0].as_ref().unwrap().value.clone();
                    let b = both[1].as_ref().unwrap().value.clone();
                    assert_eq!(a, b, "get_many saw half of a put_many");
                    reads += 1;
                    if a == "20000" {
                        return reads;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}
