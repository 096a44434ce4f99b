//! The cache never answers differently from the inner store once operations have completed.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use store_cache::{CacheOptions, CachedStorage};
use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;

const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// Compares every key through the cache with the inner store.
async fn assert_agrees(cached: &CachedStorage<MemoryStorage>, round: usize) {
    for key in KEYS {
        let through_cache = cached.get(key).await;
        let below = cached.inner().get(key).await;
        match (&through_cache, &below) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "round {round}: key {key} differs"),
            (Err(Error::NotFound), Err(Error::NotFound)) => {}
            _ => panic!("round {round}: key {key}: cache {through_cache:?} vs store {below:?}"),
        }
    }
}

/// One random operation through the cache; errors such as Conflict are part of the game.
async fn random_op(cached: &CachedStorage<MemoryStorage>, rng: &mut rand::rngs::StdRng) {
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
            // CAS with the version we just read: often wins, sometimes races and conflicts.
            if let Ok(current) = cached.get(key).await {
                let next = Record::new(key, value).with_version(current.version);
                let _ = cached.cas_by_version(next).await;
            }
        }
        3 => {
            let _ = cached
                .cas_by_version(Record::new(key, value).with_version("1"))
                .await;
        }
        4 => {
            let _ = cached.delete(key).await;
        }
        5 => {
            let other = KEYS[rng.gen_range(0..KEYS.len())];
            let _ = cached.get_many(&[key, other, "missing"]).await;
        }
        6 => {
            let other = KEYS[rng.gen_range(0..KEYS.len())];
            let _ = cached
                .put_many(vec![
                    Record::new(key, value.clone()),
                    Record::new(other, value),
                ])
                .await;
        }
        7 => {
            // A caller that gives up at once: the write may or may not happen, but the
            // cache must still agree with the store afterwards.
            let _ = tokio::time::timeout(Duration::ZERO, cached.put(Record::new(key, value))).await;
        }
        _ => {
            let _ = cached.get(key).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_random_operations_leave_cache_and_store_in_agreement() {
    let negative = [None, Some(Duration::from_secs(60))];
    for (variant, negative_ttl) in negative.into_iter().enumerate() {
        let options = CacheOptions {
            negative_ttl,
            stripes: 4, // few stripes: unrelated keys share locks, the harder case
            ..Default::default()
        };
        let cached = CachedStorage::new(MemoryStorage::new(), options);
        for round in 0..60 {
            let mut tasks = Vec::new();
            for task in 0..12 {
                let cached = cached.clone();
                let seed = (variant * 1_000_000 + round * 100 + task) as u64;
                tasks.push(tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                    for _ in 0..40 {
                        random_op(&cached, &mut rng).await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            // Writes whose callers gave up (op 7) run on in the background: the comparison is
            // about the state after every operation has completed, so wait for them.
            cached.settled().await;
            assert_agrees(&cached, round).await;
        }
        let stats = cached.stats();
        assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
    }
}

/// The operations of the model test.
#[derive(Clone, Debug)]
enum Op {
    Create(usize, u8),
    Put(usize, u8),
    CasCurrent(usize, u8),
    CasStale(usize, u8),
    Delete(usize),
    Get(usize),
    GetMany(Vec<usize>),
    PutMany(Vec<(usize, u8)>),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::CasCurrent(k, v)),
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::CasStale(k, v)),
        key.clone().prop_map(Op::Delete),
        key.clone().prop_map(Op::Get),
        prop::collection::vec(key.clone(), 0..4).prop_map(Op::GetMany),
        prop::collection::vec((key, any::<u8>()), 0..4).prop_map(Op::PutMany),
    ]
}

/// The model: what each key holds (value, version as last reported by a write).
type Model = HashMap<usize, (u8, Option<String>)>;

async fn check_against_model(ops: Vec<Op>, negative: bool) {
    let options = CacheOptions {
        negative_ttl: negative.then_some(Duration::from_secs(60)),
        max_capacity: 3, // tiny: evictions happen all the time
        ..Default::default()
    };
    let cached = CachedStorage::new(MemoryStorage::new(), options);
    let mut model: Model = HashMap::new();
    for op in ops {
        match op {
            Op::Create(k, v) => match cached.create(Record::new(KEYS[k], vec![v])).await {
                Ok(version) => {
                    assert!(!model.contains_key(&k), "create succeeded over a live key");
                    model.insert(k, (v, Some(version)));
                }
                Err(Error::AlreadyExists(live)) => {
                    let (value, _) = model.get(&k).expect("AlreadyExists on a missing key");
                    assert_eq!(live.value[..], [*value]);
                }
                Err(other) => panic!("create: {other:?}"),
            },
            Op::Put(k, v) => {
                let stored = cached.put(Record::new(KEYS[k], vec![v])).await.unwrap();
                model.insert(k, (v, Some(stored.version)));
            }
            Op::CasCurrent(k, v) => {
                let current = cached.get(KEYS[k]).await;
                match (current, model.get(&k)) {
                    (Ok(current), Some(_)) => {
                        let next = Record::new(KEYS[k], vec![v]).with_version(current.version);
                        let stored = cached.cas_by_version(next).await.unwrap();
                        model.insert(k, (v, Some(stored.version)));
                    }
                    (Err(Error::NotFound), None) => {}
                    (answer, expected) => panic!("get before cas: {answer:?} vs {expected:?}"),
                }
            }
            Op::CasStale(k, v) => {
                let stale = Record::new(KEYS[k], vec![v]).with_version("no-such-version");
                match (cached.cas_by_version(stale).await, model.contains_key(&k)) {
                    (Err(Error::Conflict), true) | (Err(Error::NotFound), false) => {}
                    (answer, exists) => panic!("stale cas: {answer:?}, key exists: {exists}"),
                }
            }
            Op::Delete(k) => match (cached.delete(KEYS[k]).await, model.remove(&k)) {
                (Ok(()), Some(_)) | (Err(Error::NotFound), None) => {}
                (answer, expected) => panic!("delete: {answer:?} vs {expected:?}"),
            },
            Op::Get(k) => match (cached.get(KEYS[k]).await, model.get(&k)) {
                (Ok(record), Some((value, version))) => {
                    assert_eq!(record.value[..], [*value]);
                    if let Some(version) = version {
                        assert_eq!(&record.version, version);
                    }
                }
                (Err(Error::NotFound), None) => {}
                (answer, expected) => panic!("get: {answer:?} vs {expected:?}"),
            },
            Op::GetMany(ks) => {
                let keys: Vec<&str> = ks.iter().map(|&k| KEYS[k]).collect();
                let records = cached.get_many(&keys).await.unwrap();
                assert_eq!(records.len(), keys.len());
                for (k, record) in ks.iter().zip(records) {
                    match (record, model.get(k)) {
                        (Some(record), Some((value, _))) => assert_eq!(record.value[..], [*value]),
                        (None, None) => {}
                        (answer, expected) => panic!("get_many: {answer:?} vs {expected:?}"),
                    }
                }
            }
            Op::PutMany(entries) => {
                let records = entries
                    .iter()
                    .map(|&(k, v)| Record::new(KEYS[k], vec![v]))
                    .collect();
                cached.put_many(records).await.unwrap();
                for (k, v) in entries {
                    // put_many reports no versions; the next get tells.
                    model.insert(k, (v, None));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_cache_behaves_like_the_model(ops in prop::collection::vec(op(), 1..60), negative in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(check_against_model(ops, negative));
    }
}
