//! The cache layer over Redis (its conformance cases run in conformance.rs): concurrent
//! random operations through the cache leave it agreeing with the server, and a cache in
//! another instance serves another instance's write within its `ttl`.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use store_cache::{CacheOptions, CachedStorage};
use store_core::{Error, Record, Storage};
use store_redis::testing::{test_store, TestStore};

const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

async fn random_op(cached: &CachedStorage<TestStore>, rng: &mut rand::rngs::StdRng) {
    let key = KEYS[rng.gen_range(0..KEYS.len())];
    let value = rng.gen::<u32>().to_string();
    match rng.gen_range(0..9) {
        0 => {
            let _ = cached.create(Record::new(key, value)).await;
        }
        1 => {
            let _ = cached.put(Record::new(key, value)).await;
        }
        2 => {
            if let Ok(current) = cached.get(key).await {
                let next = Record::new(key, value).with_version(current.version);
                let _ = cached.cas_by_version(next).await;
            }
        }
        3 => {
            let _ = cached.delete(key).await;
        }
        4 => {
            let other = KEYS[rng.gen_range(0..KEYS.len())];
            let _ = cached.get_many(&[key, other, "missing"]).await;
        }
        5 => {
            let other = KEYS[rng.gen_range(0..KEYS.len())];
            let records = vec![Record::new(key, value.clone()), Record::new(other, value)];
            let _ = cached.put_many(records).await;
        }
        6 => {
            // A caller that gives up at once: the write happens or not, and the cache must
            // agree with the server afterwards either way.
            let _ = tokio::time::timeout(Duration::ZERO, cached.put(Record::new(key, value))).await;
        }
        7 => {
            let _ = cached
                .put(Record::new(key, value).with_ttl(Duration::from_millis(rng.gen_range(1..30))))
                .await;
        }
        _ => {
            let _ = cached.get(key).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_random_operations_leave_cache_and_server_in_agreement() {
    let cached = CachedStorage::new(test_store("cache-agree").await, CacheOptions::default());
    for round in 0..15u64 {
        let mut tasks = Vec::new();
        for task in 0..8 {
            let cached = cached.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(round * 100 + task);
                for _ in 0..30 {
                    random_op(&cached, &mut rng).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        cached.settled().await;
        // Records written with short TTLs may expire between the two reads of a key; wait
        // until they have, so that both reads see the same moment.
        tokio::time::sleep(Duration::from_millis(40)).await;
        for key in KEYS {
            let through_cache = cached.get(key).await;
            let on_server = cached.inner().get(key).await;
            match (&through_cache, &on_server) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "round {round}: key {key} differs"),
                (Err(Error::NotFound), Err(Error::NotFound)) => {}
                _ => panic!("round {round}: {key}: cache {through_cache:?}, server {on_server:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_in_another_instance_serves_its_write_within_the_ttl() {
    let ttl = Duration::from_millis(300);
    let options = CacheOptions {
        ttl: Some(ttl),
        ..Default::default()
    };
    let here = CachedStorage::new(test_store("cache-ttl").await, options.clone());
    let there = CachedStorage::new(here.inner().another().await, options);
    here.put(Record::new("k", "old")).await.unwrap();
    assert_eq!(here.get("k").await.unwrap().value, "old".as_bytes()); // cached here now
    let written = Instant::now();
    there.put(Record::new("k", "new")).await.unwrap();
    // Within the ttl the old value may still be served here; after it, never.
    let deadline = written + ttl + Duration::from_secs(5);
    loop {
        let value = here.get("k").await.unwrap().value;
        if value == "new".as_bytes() {
            break;
        }
        assert!(
            written.elapsed() <= ttl + Duration::from_millis(250),
            "the old value was served {:?} after the write, past the cache's ttl",
            written.elapsed()
        );
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The waiters of a cache stack always go to the server: woken by the other instance.
    let current = here.get("k").await.unwrap();
    let waiter = tokio::spawn({
        let here = here.clone();
        async move { here.wait_for_version_change("k", &current.version).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    there.delete("k").await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken")
        .unwrap();
    assert!(matches!(woke, Err(Error::NotFound)), "{woke:?}");
}
