//! The command line ([`Cli`]) and the settings a run uses once defaults are resolved
//! ([`Settings`]).
//!
//! Uses `catalog` and `workload` (the size of a list); `report`, `figures`, `targets` and
//! `runner` read the settings (see the crate's "Structure").

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::catalog::{TargetKind, Workload};
use crate::workload::LIST_MATCHES;

/// Benchmark a store stack against a baseline in the same process.
///
/// Every (workload, tasks) pair runs on the target, then on each of its baselines with the
/// same keys, values and harness, and prints ops/s, p50/p99 latency and the ratio
/// target/baseline. `reopen` and `space` print figures (seconds, amplification) instead.
#[derive(Debug, Parser)]
#[command(name = "store-bench", version)]
pub struct Cli {
    /// Workloads to run, comma-separated. Default: every workload of each target (memory:
    /// get,put,mixed,cas,wait,list,lock,handover; file: put,get,reopen,space; cache:
    /// get,miss,mixed; redis: get,put,cas,list,lock,handover; postgres:
    /// get,put,cas,put_many,lock,handover).
    /// With several targets, each runs the listed workloads it supports.
    #[arg(long, value_delimiter = ',')]
    pub workloads: Option<Vec<Workload>>,

    /// Concurrent tasks per run, comma-separated (for `wait` and `handover`: the number of
    /// waiters).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    pub tasks: Vec<usize>,

    /// Length of each measured run: seconds ("2", "0.5") or a humantime duration ("500ms").
    /// Default 2s, or 40ms with --quick.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Each run is measured in this many slices of duration/slices, the target's and the
    /// baselines' slices taking turns, so that a slow spell of a shared machine (another
    /// process's fsyncs or CPU load) falls on both alike. Default 4, or 1 with --quick.
    #[arg(long)]
    pub slices: Option<u32>,

    /// Keys in the store for get, put and mixed (all pre-populated).
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,

    /// Store sizes for `list`, comma-separated; each holds exactly 100 keys under the listed
    /// prefix. Default 10000,1000000, or 10000,100000 with --quick.
    #[arg(long, value_delimiter = ',')]
    pub list_keys: Option<Vec<usize>>,

    /// Size of every value in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,

    /// Output: an aligned table or one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// The systems under test, comma-separated, or `all` (memory,file,cache,redis), run one
    /// after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [TargetArg::Memory])]
    pub target: Vec<TargetArg>,

    /// Where the file and cache targets and the on-disk baselines keep their data: a fresh
    /// directory is made inside it and removed at the end. Default: the system's temporary
    /// directory. Choose one on the disk you want to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Records (of `--value-size` bytes) in the store that `reopen` opens.
    /// Default 1000000, or 20000 with --quick.
    #[arg(long)]
    pub reopen_records: Option<usize>,

    /// Keys that `space` writes 5 times each (then deletes a tenth of them).
    /// Default 100000, or 5000 with --quick.
    #[arg(long)]
    pub space_keys: Option<usize>,

    /// The Redis server of the redis target and its plain-GET/SET baseline. The run uses a
    /// fresh random prefix and removes every key it wrote at the end.
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,

    /// A smoke run that finishes in a few seconds per target (short runs, small stores).
    #[arg(long)]
    pub quick: bool,
}

/// A `--target` value: one target, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The in-memory backend (`store_memory::MemoryStorage`).
    Memory,
    /// The durable file backend (`store_file::FileStorage`, sync always).
    File,
    /// The cache layer over the file backend (`CachedStorage<FileStorage>`).
    Cache,
    /// The Redis backend (`store_redis::RedisStorage`) on the server of `--redis-url`.
    Redis,
    /// The PostgreSQL backend (`store_postgres::PostgresStorage`) on the server of
    /// `STORE_BENCH_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).
    Postgres,
    /// memory, file and cache, in that order (not redis or postgres: they need a server).
    All,
}

impl TargetArg {
    fn kinds(self) -> Vec<TargetKind> {
        match self {
            TargetArg::Memory => vec![TargetKind::Memory],
            TargetArg::File => vec![TargetKind::File],
            TargetArg::Cache => vec![TargetKind::Cache],
            TargetArg::Redis => vec![TargetKind::Redis],
            TargetArg::Postgres => vec![TargetKind::Postgres],
            TargetArg::All => TargetKind::ALL.to_vec(),
        }
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned, human-readable table followed by the goals.
    Table,
    /// One JSON object per line: `"type"` is `config`, `result` or `goal`.
    Json,
}

/// The settings of a run: the command line with every default resolved and checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Each target with the workloads it runs, in order, without repeats.
    pub plan: Vec<(TargetKind, Vec<Workload>)>,
    /// Task counts, in order, without repeats.
    pub tasks: Vec<usize>,
    /// Length of each measured run.
    pub duration: Duration,
    /// Slices each run is measured in, target and baselines taking turns.
    pub slices: u32,
    /// Keyspace of get, put and mixed.
    pub keys: usize,
    /// Store sizes for `list`, ascending, without repeats.
    pub list_keys: Vec<usize>,
    /// Size of every value in bytes.
    pub value_size: usize,
    /// Output format.
    pub format: Format,
    /// Where on-disk stores are made (a fresh directory inside it).
    pub dir: PathBuf,
    /// Records in the `reopen` store.
    pub reopen_records: usize,
    /// Keys of the `space` workload.
    pub space_keys: usize,
    /// The Redis server of the redis target.
    pub redis_url: String,
    /// Whether this is a `--quick` smoke run.
    pub quick: bool,
}

impl Settings {
    /// Resolves the defaults that depend on `--quick` and rejects values no run can use.
    pub fn from_cli(cli: Cli) -> Result<Self, String> {
        let duration = cli.duration.unwrap_or(if cli.quick {
            Duration::from_millis(40)
        } else {
            Duration::from_secs(2)
        });
        let mut list_keys = cli.list_keys.unwrap_or_else(|| {
            if cli.quick {
                vec![10_000, 100_000]
            } else {
                vec![10_000, 1_000_000]
            }
        });
        list_keys.sort_unstable();
        list_keys.dedup();
        if let Some(small) = list_keys.iter().find(|n| **n < LIST_MATCHES) {
            return Err(format!(
                "--list-keys {small}: every list store holds the {LIST_MATCHES} listed keys, \
                 so each size must be at least {LIST_MATCHES}"
            ));
        }
        if list_keys.is_empty() {
            return Err("--list-keys needs at least one store size".into());
        }
        if let Some(zero) = cli.tasks.iter().find(|n| **n == 0) {
            return Err(format!("--tasks {zero}: a run needs at least one task"));
        }
        if cli.tasks.is_empty() {
            return Err("--tasks needs at least one task count".into());
        }
        if cli.keys == 0 {
            return Err("--keys 0: the keyspace needs at least one key".into());
        }
        let slices = cli.slices.unwrap_or(if cli.quick { 1 } else { 4 });
        if slices == 0 {
            return Err("--slices 0: a run needs at least one slice".into());
        }
        let reopen_records =
            cli.reopen_records
                .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 });
        let space_keys = cli
            .space_keys
            .unwrap_or(if cli.quick { 5_000 } else { 100_000 });
        if reopen_records == 0 {
            return Err("--reopen-records 0: the store needs at least one record".into());
        }
        if space_keys < 10 {
            return Err(format!(
                "--space-keys {space_keys}: a tenth of the keys is deleted, so at least 10 \
                 are needed"
            ));
        }
        let targets = unique(cli.target.iter().flat_map(|t| t.kinds()).collect());
        if targets.is_empty() {
            return Err("--target needs at least one target".into());
        }
        let plan: Vec<(TargetKind, Vec<Workload>)> = match cli.workloads {
            None => targets.iter().map(|t| (*t, t.workloads())).collect(),
            Some(asked) => {
                if asked.is_empty() {
                    return Err("--workloads needs at least one workload".into());
                }
                let asked = unique(asked);
                if let Some(orphan) = asked
                    .iter()
                    .find(|w| !targets.iter().any(|t| t.supports(**w)))
                {
                    let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
                    let runs_it: Vec<&str> = TargetKind::ALL
                        .iter()
                        .filter(|t| t.supports(*orphan))
                        .map(|t| t.name())
                        .collect();
                    return Err(format!(
                        "--workloads {orphan}: not measured on --target {}; it runs on {}",
                        names.join(","),
                        runs_it.join(", ")
                    ));
                }
                targets
                    .iter()
                    .map(|t| {
                        let mine = asked.iter().copied().filter(|w| t.supports(*w)).collect();
                        (*t, mine)
                    })
                    .filter(|(_, mine): &(TargetKind, Vec<Workload>)| !mine.is_empty())
                    .collect()
            }
        };
        Ok(Self {
            plan,
            tasks: unique(cli.tasks),
            duration,
            slices,
            keys: cli.keys,
            list_keys,
            value_size: cli.value_size,
            format: cli.format,
            dir: cli.dir.unwrap_or_else(std::env::temp_dir),
            reopen_records,
            space_keys,
            redis_url: cli.redis_url,
            quick: cli.quick,
        })
    }
}

fn unique<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

/// Parses "2", "0.5" (seconds) or a humantime duration such as "500ms" or "1m 30s".
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds),
        Ok(_) => return Err(format!("{text:?} is not a positive number of seconds")),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("{text:?} is neither seconds (\"2\", \"0.5\") nor a duration (\"500ms\"): {e}")
        })?,
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: a run must last longer than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_humantime() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_follow_quick() {
        let full = Settings::from_cli(Cli::parse_from(["store-bench"])).unwrap();
        assert_eq!(full.plan.len(), 1);
        assert_eq!(full.plan[0].0, TargetKind::Memory);
        assert_eq!(
            full.plan[0].1,
            [
                Workload::Get,
                Workload::Put,
                Workload::Mixed,
                Workload::Cas,
                Workload::Wait,
                Workload::List,
                Workload::Lock,
                Workload::Handover,
            ]
        );
        assert_eq!(full.reopen_records, 1_000_000);
        assert_eq!(full.tasks, vec![1, 16, 64]);
        assert_eq!(full.duration, Duration::from_secs(2));
        assert_eq!(full.list_keys, vec![10_000, 1_000_000]);
        let quick = Settings::from_cli(Cli::parse_from(["store-bench", "--quick"])).unwrap();
        assert!(quick.duration < Duration::from_millis(100));
        assert_eq!((full.slices, quick.slices), (4, 1));
        assert_eq!(quick.list_keys, vec![10_000, 100_000]);
        assert_eq!(quick.reopen_records, 20_000);
        assert_eq!(quick.space_keys, 5_000);
    }

    #[test]
    fn targets_and_their_workloads() {
        let all = Cli::parse_from(["store-bench", "--target", "all"]);
        let plan = Settings::from_cli(all).unwrap().plan;
        let targets: Vec<TargetKind> = plan.iter().map(|(t, _)| *t).collect();
        assert_eq!(targets, TargetKind::ALL.to_vec());
        let file = Cli::parse_from([
            "store-bench",
            "--target",
            "file,cache",
            "--workloads",
            "get",
        ]);
        let plan = Settings::from_cli(file).unwrap().plan;
        assert_eq!(plan.len(), 2);
        assert!(plan.iter().all(|(_, w)| w == &[Workload::Get]));
        let mixed = Cli::parse_from(["store-bench", "--target", "all", "--workloads", "reopen"]);
        let plan = Settings::from_cli(mixed).unwrap().plan;
        assert_eq!(plan, vec![(TargetKind::File, vec![Workload::Reopen])]);
        let unsupported = Cli::parse_from(["store-bench", "--workloads", "reopen"]);
        let message = Settings::from_cli(unsupported).unwrap_err();
        assert!(message.contains("file"), "{message}");
    }

    #[test]
    fn lists_and_bad_values() {
        let cli = Cli::parse_from(["store-bench", "--workloads", "get,list,get", "--tasks", "4"]);
        let settings = Settings::from_cli(cli).unwrap();
        assert_eq!(settings.plan[0].1, vec![Workload::Get, Workload::List]);
        assert_eq!(settings.tasks, vec![4]);
        assert!(Cli::try_parse_from(["store-bench", "--workloads", "scan"]).is_err());
        let zero = Cli::parse_from(["store-bench", "--tasks", "0"]);
        assert!(Settings::from_cli(zero).is_err());
        let tiny = Cli::parse_from(["store-bench", "--list-keys", "50"]);
        assert!(Settings::from_cli(tiny).is_err());
    }
}
