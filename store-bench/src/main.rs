//! `store-bench`: measures a store stack against a baseline in the same process.
//!
//! ```text
//! cargo run --release -p store-bench -- --help
//! cargo run --release -p store-bench                       # memory target, about 1.5 minutes
//! cargo run --release -p store-bench -- --target file      # about 1 minute
//! cargo run --release -p store-bench -- --target cache     # about 1 minute
//! cargo run --release -p store-bench -- --target redis     # about 2 minutes; needs a Redis server
//! cargo run --release -p store-bench -- --target memory,redis,postgres --workloads lock,handover
//! cargo run --release -p store-bench -- --target all       # all four, one after the other
//! cargo run --release -p store-bench -- --target all --quick   # smoke run, a few seconds
//! cargo run --release -p store-bench -- --workloads get,put --tasks 64 --duration 5s
//! cargo run --release -p store-bench -- --format json | jq 'select(.type == "goal")'
//! ```
//!
//! # What is measured
//!
//! For each workload, store size and task count, N tokio tasks run on the default
//! multi-thread runtime (one worker per core) for `--duration` against the target (the
//! stack under test, through `Arc<dyn Storage>`) and as long against each of its baselines
//! (what a user would write instead, or a peer), with the same keys, values and harness.
//! The time is cut into `--slices` (default 4) turns: target, baselines, target,
//! baselines, ..., so that a slow spell of a shared machine (another process's fsyncs or
//! CPU load) falls on both alike. Each operation's latency is recorded in a per-task HDR
//! histogram; the report gives ops/s (all tasks, over the slices' wall-clock time), p50 and
//! p99 latency, and the ratio target ops/s / baseline ops/s. The target is measured once
//! per task count; with two baselines it gets two rows that repeat its figures. A note after the ratio gives what the target's own
//! counters saw during its run: the cache's hit ratio, and for durable writes how many
//! records each `fdatasync` covered (the group commit at work).
//!
//! ## `--target memory` (the default)
//!
//! | workload | an operation is | baseline |
//! |----------|-----------------|----------|
//! | `get`    | `get` of a random key among `--keys` pre-populated ones | `Mutex<HashMap>` lookup, `Bytes` clone |
//! | `put`    | `put` of a random existing key | `Mutex<HashMap>` overwrite |
//! | `mixed`  | 90% get, 10% put | the same |
//! | `cas`    | one successful increment of a single hot counter: get + `cas_by_version`, retried on conflict (retries counted) | read version, then compare-and-write under the mutex |
//! | `wait`   | one wake-up: N waiters block in `wait_for_version_change` on one key, one extra notifier task puts once all are registered; latency = put start to waiter running | `tokio::sync::Notify` stored beside the entry |
//! | `list`   | `list_keys("bench/list/target/*")` fully consumed, 100 matches, in stores of each `--list-keys` size | `Mutex<BTreeMap>` range scan collecting the keys |
//!
//! ## `--target file` (issue 3)
//!
//! `FileStorage` with `SyncPolicy::Always` (a put returns once its bytes are fdatasynced),
//! default options otherwise, in a fresh directory under `--dir` (default: the system's
//! temporary directory; the data is removed at the end). Measure on the disk you care
//! about: `--dir /path/on/that/disk`.
//!
//! | workload | an operation is | baselines |
//! |----------|-----------------|-----------|
//! | `put`    | durable `put` of a random existing key, by 1, 16 and 64 writers | `fdatasync-log`: append the framed record to one file and `fdatasync` it, under one mutex, on the blocking pool (one fdatasync per put: its 1-writer rate is the fsync-per-write rate); `redb`: one write transaction with `Durability::Immediate` per put, on the blocking pool (redb serialises writers) |
//! | `get`    | `get` of a random key | `MemoryStorage` `get` (both through the actor) |
//! | `reopen` | not a rate: `--reopen-records` (1M) records of `--value-size` (100) bytes are written with `put_many` and `SyncPolicy::Never`, the store closed, then `FileStorage::open` timed until it returns, 3 times; the figure is the slowest, with the `FileStats` after opening | — |
//! | `space`  | not a rate: `--space-keys` (100k) keys written 5 times each, one in ten deleted, automatic compaction off; `file_bytes / live_bytes` before and after `compact()` | — |
//!
//! ## `--target cache` (issue 4)
//!
//! `CachedStorage<FileStorage>`, the file store as above (sync always).
//!
//! | workload | an operation is | baselines |
//! |----------|-----------------|-----------|
//! | `get`    | a cache hit: `max_capacity` is twice `--keys` and every key is read once after loading, so every `get` is a hit (the note shows 100%) | `MemoryStorage` `get`; `moka::future::Cache<String, Bytes>` used directly (`get`, which clones the `Bytes`) with the same keys |
//! | `miss`   | a cache miss: `max_capacity: 0`, so a miss looks up moka, reads the file store, inserts the record, and moka rejects it at its next maintenance pass; a key read again is practically never found (the note shows the hit ratio measured during the run, about 0%). This is what a miss costs in a full cache: lookup, inner read, fill, eviction | `FileStorage` `get` alone |
//! | `mixed`  | 90% hit `get`, 10% durable `put` (write-through) | `FileStorage` alone, same mix |
//!
//! ## `--target redis` (issue 11)
//!
//! `store_redis::RedisStorage` with default options on the server of `--redis-url` (default
//! `redis://127.0.0.1:6379/0`), under a fresh random prefix whose keys are removed at the
//! end. The baseline, `redis-plain`, is what a user writes with the `redis` crate alone on
//! the same server: one `ConnectionManager` shared by every task (see `plain_redis.rs`).
//!
//! | workload | an operation is | baseline |
//! |----------|-----------------|----------|
//! | `get`    | `get` of a random key among `--keys` | `GET` |
//! | `put`    | `put` of a random existing key | `SET` |
//! | `cas`    | one successful increment of a hot counter: get + `cas_by_version`, retried on conflict | `GET` + a Lua compare-and-set on the value |
//! | `list`   | `list_keys("bench/list/target/*")` fully consumed, 100 matches, in stores of each `--list-keys` size | `ZRANGEBYLEX` over a sorted set of the keys |
//!
//! The target does what the baseline does not: versions, expiry on the server's clock,
//! change notifications for waiters, atomic batches; the ratio is the price of those. For
//! the server's own ceiling, compare with `redis-benchmark -t get,set -c 64 -n 1000000 -q`
//! on the same machine.
//!
//! ## Locks: the `lock` and `handover` workloads (issue 13)
//!
//! On the memory, redis and postgres targets (in their default workloads), `store_sync::Lock`
//! (default options, 10 s lease) on the target's stack, against `raw-records`: the same
//! stack doing a lock's job with raw record operations only (`create` with the same TTL;
//! while the record exists, `wait_for_version_change` on the holder's version; `delete` to
//! release), with no renewal task, lost-lease reporting, cancellation safety or guarded
//! release. Both run in the same process on the same store, in alternating slices. Besides
//! the ratio of rates, each row gives the latency ratios at p50 and p99, baseline ÷ target
//! (like the ratio of rates, above 1 when the target is faster).
//!
//! | workload | an operation is | baseline |
//! |----------|-----------------|----------|
//! | `lock`   | uncontended `acquire` + `release`, each task on a lock of its own | `create` + `delete` |
//! | `handover` | one handover: `--tasks` waiters queue on one lock; once all wait (counted by a layer around the store's `wait_for_version_change`), the holder releases; latency = from the holder's call to `release` to the next holder's `acquire` returning. The releaser competes again only after somebody else holds the lock, so every measured acquisition is a handover to a waiter; at least 5 per run | `delete` by the holder, then the woken waiter's `create` |
//!
//! Nothing polls: waiters are woken by the store (the memory actor's waiters, Redis
//! pub/sub, PostgreSQL LISTEN/NOTIFY), so handover latency is the store's wake-up plus a
//! claim, not an interval.
//!
//! Tasks yield to each other through tokio's cooperative budget (`consume_budget`) after
//! every operation, so N tasks interleave even against a baseline that never awaits.
//! The `cas` run checks that the counter grew by exactly the number of increments, every
//! listing checks that it found the 100 keys, `reopen` checks the record count after every
//! open and `space` the number of live records.
//!
//! # Goals
//!
//! Each target carries the goals of its issue (see `targets.rs`). They are printed after
//! the target's table (or as `"type": "goal"` JSON lines); a missed goal does not change
//! the exit status, because timings on a shared machine are noisy.
//!
//! - `memory`: at 64 tasks, get ≥ 0.7× and put ≥ 0.5× the direct map; listing in a 1M-key
//!   store within 3× of listing in a 10k-key store.
//! - `file`: put by 64 writers ≥ 10× the `fdatasync-log` rate with 1 writer (the
//!   fsync-per-write rate) and ≥ 5× redb with 64 writers; get ≥ 0.7× memory get at 64
//!   tasks; reopen of the store (1M records by default) ≤ 2 s; space amplification after
//!   `compact()` ≤ 1.5×.
//! - `cache`: at 64 tasks, hit get ≥ 1.5× memory get and ≥ 0.5× moka used directly; miss
//!   get ≥ 0.8× the file store's get. The mixed load has no goal; it is reported.
//! - `redis`: at 64 tasks, get ≥ 0.8× plain `GET` and put ≥ 0.5× plain `SET`. CAS and
//!   list have no goal; they are reported.
//! - `lock` and `handover` have no goal (issue 13 asks for their p50 and p99); they are
//!   reported.
//!
//! # Reproducing the issues' figures
//!
//! ```text
//! # issue 3 (file backend): durable puts at 1/16/64 writers vs fdatasync-log and redb,
//! # get vs memory, reopen of 1M records, space amplification; about a minute
//! cargo run --release -p store-bench -- --target file
//! cargo run --release -p store-bench -- --target file --dir /mnt/nvme/tmp   # another disk
//! # issue 4 (cache): hit get vs memory and moka, miss vs file, mixed vs file; about a minute
//! cargo run --release -p store-bench -- --target cache
//! # issue 11 (redis): get, put, cas, list vs plain GET/SET on the same server; about 2 minutes
//! cargo run --release -p store-bench -- --target redis --redis-url redis://127.0.0.1:6379/0
//! # one figure alone, for example the reopen time of 5M records
//! cargo run --release -p store-bench -- --target file --workloads reopen --reopen-records 5000000
//! ```
//!
//! # Structure
//!
//! The modules are layered: each uses only modules of the layers below it (and
//! [`BoxError`] from the crate root), so no two modules import each other, directly or
//! round a circle. From the bottom:
//!
//! 1. `catalog` (the targets and workloads by name, and which workloads each target
//!    runs), `harness` (tasks, clocks, histograms), `scratch` (directories for on-disk
//!    stores).
//! 2. `subject` (the operations workloads call; targets implement it through
//!    `Arc<dyn Storage>`).
//! 3. The baselines' subjects: `baseline` (in-memory baselines and moka), `durable` (the
//!    `fdatasync-log` and `redb` baselines), `plain_redis` (the redis target's baseline),
//!    `postgres` (the postgres target's baseline and server).
//! 4. `workload` (population and per-task loops) and `locks` (the lock workloads).
//! 5. `cli` (arguments, and the settings of a run once defaults are resolved).
//! 6. `report` (rows, figures, goals, table and JSON).
//! 7. `figures` (`reopen` and `space`: measurements that give report figures, not rates).
//! 8. `targets` (how each target's stack is built, its baselines and its goals).
//! 9. `runner` (the plan), then `main`.

mod baseline;
mod catalog;
mod cli;
mod durable;
mod figures;
mod harness;
mod locks;
mod plain_redis;
mod postgres;
mod report;
mod runner;
mod scratch;
mod subject;
mod targets;
mod workload;

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Settings};
use crate::report::Reporter;
use crate::scratch::Scratch;

/// Any failure that ends a run.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let settings = match Settings::from_cli(Cli::parse()) {
        Ok(settings) => settings,
        Err(message) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("store-bench: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let workers = runtime.metrics().num_workers();
    // Everything, coordination included, runs on the runtime's workers, not on this thread.
    let task = runtime.spawn(async move {
        let mut reporter = Reporter::new(BufWriter::new(io::stdout()), settings.format);
        // Made on first use, removed with everything in it when dropped.
        let scratch = Scratch::new(settings.dir.clone());
        for (target, workloads) in &settings.plan {
            reporter.start(&settings, *target, workloads, workers)?;
            runner::run(&settings, *target, workloads, &scratch, &mut reporter).await?;
            reporter.finish(*target, &target.goals())?;
        }
        Ok::<(), BoxError>(())
    });
    let outcome = runtime.block_on(task);
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("store-bench: {error}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            eprintln!("store-bench: the benchmark task failed: {panic}");
            ExitCode::FAILURE
        }
    }
}
