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
//!
//! `--threads N` runs on a multi-threaded runtime of N workers instead, for `perf` rather
//! than callgrind: the profile of the store alone, without a baseline in the same run.
//!
//! `--tasks N` (default 1) splits the operations over N concurrent tasks on that runtime,
//! so the actor takes several commands per batch, as it does under load: the count per
//! operation then includes a share of each batch's fixed cost and of the task switches.
//! With `--op cas` the tasks increment one hot counter, and conflicts are retried (each
//! retry is a get and a cas more); the program prints the number of retries on stderr.
//!
//! Counts of 2026-12-01 (instructions per operation, `--count 50000` minus `--count 0`;
//! cas with `--count 20000`), before and after the write path stopped copying keys and
//! allocating per-write vectors:
//!
//! | operation | tasks | before | after |
//! |---|---|---|---|
//! | get | 1 | 1,200 | 1,200 |
//! | put | 1 | 6,787 | 5,973 |
//! | put | 64 | 4,747 | 3,857 |
//! | get + cas_by_version | 1 | 8,145 | 7,329 |
//! | get + cas_by_version, one hot key, per success | 64 | 143,896 | 135,489 (31.5 retries each) |
//!
//! Counts of 2026-12-02, after single-record writes of engines that never block began to
//! run in the caller's task (`store-core/src/runtime/owner.rs`), and calls answered there
//! began to spend tokio's cooperative budget (about 100 instructions per call: a put went
//! from 2,017 to 2,115 when it was added):
//!
//! | operation | tasks | count |
//! |---|---|---|
//! | get | 1 | 1,355 |
//! | put | 1 | 2,115 (about 650 of them under the actor's lock) |
//! | put | 64 | 2,109 |
//! | get + cas_by_version | 1 | 4,562 |
//! | get + cas_by_version, one hot key, per success | 64 | 4,546 (no retries) |
//!
//! Later on 2026-12-02 a plain put began to publish to the read view after letting go of the
//! actor's lock (`View::begin_put`): a few more moves in all, less under the lock:
//!
//! | operation | tasks | count |
//! |---|---|---|
//! | put | 1 | 2,221 (422 of them under the actor's lock) |
//! | put | 64 | 2,217 |
//!
//! The Redis ops count the client only (the server is another process): `--op redis_get`
//! went from 19,768 (through the actor, records as hashes read with `HMGET`) to 14,814 (one
//! `GET` from the caller's task, records as one string); `--op redis_plain_get`, the
//! baseline's plain `GET`, is 14,628. `--op redis_put --tasks 64` is 8,270. These need the
//! Redis server of the tests (`STORE_TEST_REDIS_URL`, default 127.0.0.1:6379).

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
    /// `get` on `store_redis::RedisStorage` (the local server, a fresh prefix).
    RedisGet,
    /// `put` on `store_redis::RedisStorage`.
    RedisPut,
    /// `GET` through the `redis` crate alone: the redis target's baseline.
    RedisPlainGet,
}

fn parse_args() -> (Op, u64, u64, usize) {
    let mut op = Op::Get;
    let mut count = 100_000;
    let mut tasks = 1;
    let mut threads = 0;
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
                    Some("redis_get") => Op::RedisGet,
                    Some("redis_put") => Op::RedisPut,
                    Some("redis_plain_get") => Op::RedisPlainGet,
                    other => panic!(
                        "--op get|put|get_many|cas|cache_hit|redis_get|redis_put|redis_plain_get, \
                         not {other:?}"
                    ),
                }
            }
            "--count" => count = args.next().and_then(|n| n.parse().ok()).expect("--count N"),
            "--tasks" => {
                tasks = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .expect("--tasks N (N > 0)")
            }
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--threads N")
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    (op, count, tasks, threads)
}

fn main() {
    let (op, count, tasks, threads) = parse_args();
    let runtime = match threads {
        0 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    }
    .enable_all()
    .build()
    .expect("runtime");
    runtime.block_on(async {
        if let Op::RedisPlainGet = op {
            return plain_redis_gets(count).await;
        }
        let url = store_redis::testing::server_url();
        let prefix = store_redis::testing::fresh_name("instructions");
        let memory = store_memory::MemoryStorage::new();
        let store: Arc<dyn Storage> = match op {
            Op::CacheHit => Arc::new(store_cache::CachedStorage::new(
                memory,
                store_cache::CacheOptions::default(),
            )),
            Op::RedisGet | Op::RedisPut => Arc::new(
                store_redis::RedisStorage::connect(&url, &prefix)
                    .await
                    .expect("a Redis server at STORE_TEST_REDIS_URL or 127.0.0.1:6379"),
            ),
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
        let keys: Arc<[String]> = keys.into();
        let mut workers = Vec::new();
        for task in 0..tasks {
            // Task `task` does operations task, task + tasks, task + 2·tasks, ...
            // A buffer of its own per task, as in store-bench (see workload.rs).
            let (store, keys, value) =
                (store.clone(), keys.clone(), Bytes::copy_from_slice(&value));
            workers.push(tokio::spawn(async move {
                let mut retries = 0u64;
                for i in (task..count).step_by(tasks as usize) {
                    retries += run_one(op, store.as_ref(), &keys, &value, i).await;
                }
                retries
            }));
        }
        let mut retries = 0;
        for worker in workers {
            retries += worker.await.expect("task");
        }
        if retries > 0 {
            eprintln!("retries: {retries}");
        }
        store.close().await.expect("close");
        if let Op::RedisGet | Op::RedisPut = op {
            store_redis::testing::delete_prefix(&url, &prefix).expect("remove the prefix");
        }
    });
}

/// `count` plain `GET`s of 1,000 keys under a fresh prefix, which is removed afterwards.
async fn plain_redis_gets(count: u64) {
    let url = store_redis::testing::server_url();
    let client = redis::Client::open(url.as_str()).expect("a Redis URL");
    let mut connection = redis::aio::ConnectionManager::new(client)
        .await
        .expect("a Redis server at STORE_TEST_REDIS_URL or 127.0.0.1:6379");
    let prefix = format!(
        "{}:",
        store_redis::testing::fresh_name("instructions-plain")
    );
    let mut load = redis::pipe();
    for i in 0..1000 {
        load.set(format!("{prefix}bench/key/{i:06}"), vec![7u8; 100])
            .ignore();
    }
    load.exec_async(&mut connection).await.expect("load");
    for i in 0..count {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{prefix}bench/key/{:06}", i % 1000))
            .query_async(&mut connection.clone())
            .await
            .expect("get");
        drop(Bytes::from(value.expect("a loaded key")));
    }
    let mut clean = redis::pipe();
    for i in 0..1000 {
        clean.del(format!("{prefix}bench/key/{i:06}")).ignore();
    }
    clean.exec_async(&mut connection).await.expect("clean up");
}

/// Runs operation number `i`; returns how many times a cas had to be retried.
async fn run_one(op: Op, store: &dyn Storage, keys: &[String], value: &Bytes, i: u64) -> u64 {
    let key = &keys[(i % 1000) as usize];
    match op {
        Op::Get | Op::CacheHit | Op::RedisGet => {
            store.get(key).await.expect("get");
        }
        Op::Put | Op::RedisPut => {
            store
                .put(Record::new(key.clone(), value.clone()))
                .await
                .expect("put");
        }
        Op::GetMany => {
            let other = &keys[((i + 1) % 1000) as usize];
            store.get_many(&[key, other]).await.expect("get_many");
        }
        Op::RedisPlainGet => unreachable!("plain_redis_gets runs these"),
        Op::Cas => {
            // Every cas goes to the first key: with several tasks, a hot key.
            let key = &keys[0];
            let mut retries = 0;
            loop {
                let current = store.get(key).await.expect("get");
                let next = Record::new(key.clone(), value.clone()).with_version(current.version);
                match store.cas_by_version(next).await {
                    Ok(_) => return retries,
                    Err(store_core::Error::Conflict) => retries += 1,
                    Err(error) => panic!("cas: {error}"),
                }
            }
        }
    }
    0
}
