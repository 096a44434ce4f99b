//! What the benchmark can measure, by name: the targets ([`TargetKind`]), the workloads
//! ([`Workload`]) and which workloads each target runs.
//!
//! The bottom of the crate: this module uses no other. The rest of what a target is (how
//! its stack is built, its baselines and its goals) is in `targets.rs`.

use clap::ValueEnum;

/// What the tasks of one run do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Workload {
    /// `get` of random existing keys.
    Get,
    /// `put` of random existing keys (overwrites).
    Put,
    /// 90% `get`, 10% `put`, of random existing keys.
    Mixed,
    /// get + `cas_by_version` increment loops, every task on one hot counter.
    Cas,
    /// Latency from a `put` to the wake-up of tasks blocked in `wait_for_version_change`.
    Wait,
    /// `list_keys("bench/list/target/*")` (100 keys) in stores of several sizes.
    List,
    /// `get` of random existing keys, every one a cache miss (cache target only).
    Miss,
    /// `put_many` of `PUT_MANY_RECORDS` (1,000) existing keys per call; an operation is one
    /// record, so ops/s is records/s (postgres target only).
    #[value(name = "put_many")]
    PutMany,
    /// Time to open a closed store of `--reopen-records` records (file target only).
    Reopen,
    /// File bytes / live bytes after overwrites and deletes, before and after `compact()`
    /// (file target only).
    Space,
    /// Uncontended `store_sync::Lock` acquire + release, each task on a lock of its own
    /// (memory, redis and postgres targets).
    Lock,
    /// Lock handover: latency from the holder's release to the next waiter's acquire
    /// returning, with `--tasks` waiters queued (memory, redis and postgres targets).
    Handover,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Put => "put",
            Workload::Mixed => "mixed",
            Workload::Cas => "cas",
            Workload::Wait => "wait",
            Workload::List => "list",
            Workload::Miss => "miss",
            Workload::PutMany => "put_many",
            Workload::Reopen => "reopen",
            Workload::Space => "space",
            Workload::Lock => "lock",
            Workload::Handover => "handover",
        }
    }

    /// Whether this workload measures `store_sync` locks (see `locks.rs`).
    pub fn on_locks(self) -> bool {
        matches!(self, Workload::Lock | Workload::Handover)
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A named storage stack that the benchmark can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// `store_memory::MemoryStorage` with default runtime options.
    Memory,
    /// `store_file::FileStorage` with `SyncPolicy::Always` (every acknowledged write is on
    /// disk) and default options otherwise, in a scratch directory.
    File,
    /// `store_cache::CachedStorage` over a `FileStorage` like the `file` target's.
    Cache,
    /// `store_redis::RedisStorage` with default options on the `--redis-url` server, under
    /// a fresh prefix removed at the end.
    Redis,
    /// `store_postgres::PostgresStorage` with default options on a fresh table of the
    /// server at `STORE_BENCH_POSTGRES_URL` (default 127.0.0.1:5432/test), dropped after
    /// the run. Not part of `all`: it needs a server.
    Postgres,
}

impl TargetKind {
    /// Every target, in the order `--target all` runs them.
    pub const ALL: [TargetKind; 3] = [TargetKind::Memory, TargetKind::File, TargetKind::Cache];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Memory => "memory",
            TargetKind::File => "file",
            TargetKind::Cache => "cache",
            TargetKind::Redis => "redis",
            TargetKind::Postgres => "postgres",
        }
    }

    /// The workloads this target runs, in their default order.
    pub fn workloads(self) -> Vec<Workload> {
        match self {
            TargetKind::Memory => vec![
                Workload::Get,
                Workload::Put,
                Workload::Mixed,
                Workload::Cas,
                Workload::Wait,
                Workload::List,
                Workload::Lock,
                Workload::Handover,
            ],
            TargetKind::File => vec![
                Workload::Put,
                Workload::Get,
                Workload::Reopen,
                Workload::Space,
            ],
            TargetKind::Cache => vec![Workload::Get, Workload::Miss, Workload::Mixed],
            TargetKind::Redis => vec![
                Workload::Get,
                Workload::Put,
                Workload::Cas,
                Workload::List,
                Workload::Lock,
                Workload::Handover,
            ],
            TargetKind::Postgres => vec![
                Workload::Get,
                Workload::Put,
                Workload::Cas,
                Workload::PutMany,
                Workload::Lock,
                Workload::Handover,
            ],
        }
    }

    /// Whether this target runs `workload`.
    pub fn supports(self, workload: Workload) -> bool {
        self.workloads().contains(&workload)
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
