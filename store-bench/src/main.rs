//! `store-bench`: measures a store stack against a baseline in the same process.
//!
//! ```text
//! cargo run --release -p store-bench -- --help
//! cargo run --release -p store-bench                       # everything, about 1.5 minutes
//! cargo run --release -p store-bench -- --quick            # smoke run, a few seconds
//! cargo run --release -p store-bench -- --workloads get,put --tasks 64 --duration 5s
//! cargo run --release -p store-bench -- --format json | jq 'select(.type == "goal")'
//! ```
//!
//! # What is measured
//!
//! For each workload, store size and task count, N tokio tasks run on the default
//! multi-thread runtime (one worker per core) for `--duration`, first against the target
//! (the stack under test, through `Arc<dyn Storage>`) and then against a baseline (what a user
//! would write instead), with the same keys, values and harness. Each operation's latency is
//! recorded in a per-task HDR histogram; the report gives ops/s (all tasks, wall-clock),
//! p50 and p99 latency, and the ratio target ops/s / baseline ops/s.
//!
//! | workload | an operation is | baseline for `memory` |
//! |----------|-----------------|-----------------------|
//! | `get`    | `get` of a random key among `--keys` pre-populated ones | `Mutex<HashMap>` lookup, `Bytes` clone |
//! | `put`    | `put` of a random existing key | `Mutex<HashMap>` overwrite |
//! | `mixed`  | 90% get, 10% put | the same |
//! | `cas`    | one successful increment of a single hot counter: get + `cas_by_version`, retried on conflict (retries counted) | read version, then compare-and-write under the mutex |
//! | `wait`   | one wake-up: N waiters block in `wait_for_version_change` on one key, one extra notifier task puts once all are registered; latency = put start to waiter running | `tokio::sync::Notify` stored beside the entry |
//! | `list`   | `list_keys("bench/list/target/*")` fully consumed, 100 matches, in stores of each `--list-keys` size | `Mutex<BTreeMap>` range scan collecting the keys |
//!
//! Tasks yield to each other through tokio's cooperative budget (`consume_budget`) after
//! every operation, so N tasks interleave even against a baseline that never awaits.
//! The `cas` run checks that the counter grew by exactly the number of increments, and
//! every listing checks that it found the 100 keys.
//!
//! # Goals
//!
//! Each target carries goals (see `targets.rs`); the `memory` target's, from its issue:
//! at 64 tasks, get ≥ 0.7× and put ≥ 0.5× the direct map, and listing in a 1M-key store
//! within 3× of listing in a 10k-key store. They are printed after the table (or as
//! `"type": "goal"` JSON lines); a missed goal does not change the exit status, because
//! timings on a shared machine are noisy.
//!
//! # Structure
//!
//! `cli` (arguments and settings), `targets` (stacks under test, their baselines and goals),
//! `subject` (the operations workloads call, for targets), `baseline` (the same for
//! baselines), `workload` (population and per-task loops), `harness` (tasks, clocks,
//! histograms), `runner` (the plan), `report` (rows, goals, table and JSON).

mod baseline;
mod cli;
mod harness;
mod report;
mod runner;
mod subject;
mod targets;
mod workload;

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Settings};
use crate::report::Reporter;

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
        reporter.start(&settings, workers)?;
        runner::run(&settings, &mut reporter).await?;
        reporter.finish(&settings.target.goals())?;
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
