//! A fixed, single-threaded workload to run under `valgrind --tool=callgrind`, so that the
//! instruction count of one operation can be compared across changes without the noise of
//! a shared machine (callgrind counts instructions, not time).
//!
//! ```sh
//! cargo build --release -p store-bench --bin instructions
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/instructions --op get --count 100000
//! # instructions per operation ≈ (total at --count 100000 − total at --count 0) / 100000
//! ```
//!
//! Everything runs on one current-thread tokio runtime (the memory store's actor included),
//! so there are no thread hand-offs in the count: it is the work of the code path itself.

use std::sync::Arc;

use bytes::Bytes;
use store_core::{Record, Storage};

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Put,
    GetMany,
    Cas,
    CacheHit,
}

fn parse_args() -> (Op, u64) {
    let mut op = Op::Get;
    let mut count = 100_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--op" => {
                op = match args.next().as_deref() {
                    Some("get") => Op::Get,
                    Some("put") => Op::Put,
                    Some("get_many") => Op::GetMany,
                    Some("cas") => Op::Cas,
                    Some("cache_hit") => Op::CacheHit,
                    other => panic!("--op get|put|get_many|cas|cache_hit, not {other:?}"),
                }
            }
            "--count" => count = args.next().and_then(|n| n.parse().ok()).expect("--count N"),
            other => panic!("unknown argument {other:?}"),
        }
    }
    (op, count)
}

fn main() {
    let (op, count) = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let memory = store_memory::MemoryStorage::new();
        let store: Arc<dyn Storage> = match op {
            Op::CacheHit => Arc::new(store_cache::CachedStorage::new(
                memory,
                store_cache::CacheOptions::default(),
            )),
            _ => Arc::new(memory),
        };
        let keys: Vec<String> = (0..1000).map(|i| format!("bench/key/{i:06}")).collect();
        let value = Bytes::from(vec![7u8; 100]);
        for key in &keys {
            store
                .put(Record::new(key.clone(), value.clone()))
                .await
                .expect("load");
            if matches!(op, Op::CacheHit) {
                store.get(key).await.expect("warm");
            }
        }
        for i in 0..count {
            let key = &keys[(i % 1000) as usize];
            match op {
                Op::Get | Op::CacheHit => {
                    store.get(key).await.expect("get");
                }
                Op::Put => {
                    store
                        .put(Record::new(key.clone(), value.clone()))
                        .await
                        .expect("put");
                }
                Op::GetMany => {
                    let other = &keys[((i + 1) % 1000) as usize];
                    store.get_many(&[key, other]).await.expect("get_many");
                }
                Op::Cas => {
                    let current = store.get(key).await.expect("get");
                    let next =
                        Record::new(key.clone(), value.clone()).with_version(current.version);
                    store.cas_by_version(next).await.expect("cas");
                }
            }
        }
        store.close().await.expect("close");
    });
}
