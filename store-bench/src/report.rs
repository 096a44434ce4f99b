//! Results: a [`Row`] per (workload, store size, tasks, baseline), the [`Goal`]s checked
//! against them, and the [`Reporter`] that prints both as a table or as JSON lines.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::{Format, Settings, Workload};
use crate::harness::Measurement;

/// One run of the target beside one run of a baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Always `"result"` (tells rows from goals in JSON lines).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The workload.
    pub workload: &'static str,
    /// Keys in the store.
    pub keys: usize,
    /// Concurrent tasks (for `wait`: waiters).
    pub tasks: usize,
    /// The target's name.
    pub target: &'static str,
    /// Target operations per second.
    pub target_ops_per_sec: f64,
    /// Target median latency, nanoseconds.
    pub target_p50_ns: u64,
    /// Target 99th-percentile latency, nanoseconds.
    pub target_p99_ns: u64,
    /// Target retried attempts (`cas` conflicts).
    pub target_retries: u64,
    /// The baseline's name.
    pub baseline: &'static str,
    /// Baseline operations per second.
    pub baseline_ops_per_sec: f64,
    /// Baseline median latency, nanoseconds.
    pub baseline_p50_ns: u64,
    /// Baseline 99th-percentile latency, nanoseconds.
    pub baseline_p99_ns: u64,
    /// Baseline retried attempts (`cas` conflicts).
    pub baseline_retries: u64,
    /// Target ops/s divided by baseline ops/s.
    pub ratio: f64,
}

impl Row {
    /// A row from the two measurements of one (workload, store size, tasks).
    pub fn new(
        workload: Workload,
        keys: usize,
        tasks: usize,
        (target, target_run): (&'static str, &Measurement),
        (baseline, baseline_run): (&'static str, &Measurement),
    ) -> Self {
        let (t, b) = (target_run.ops_per_sec(), baseline_run.ops_per_sec());
        Row {
            kind: "result",
            workload: workload.name(),
            keys,
            tasks,
            target,
            target_ops_per_sec: round2(t),
            target_p50_ns: target_run.latency_ns(0.5),
            target_p99_ns: target_run.latency_ns(0.99),
            target_retries: target_run.retries,
            baseline,
            baseline_ops_per_sec: round2(b),
            baseline_p50_ns: baseline_run.latency_ns(0.5),
            baseline_p99_ns: baseline_run.latency_ns(0.99),
            baseline_retries: baseline_run.retries,
            ratio: if b > 0.0 { round4(t / b) } else { 0.0 },
        }
    }
}

/// A performance goal a target is held to.
#[derive(Clone, Debug)]
pub enum Goal {
    /// At `tasks` tasks, target/baseline ops/s for `workload` is at least `min`.
    RatioAtLeast {
        /// The workload.
        workload: Workload,
        /// The task count.
        tasks: usize,
        /// The smallest acceptable ratio.
        min: f64,
    },
    /// At every task count, a `list` in the largest store takes at most `max` times as long
    /// (mean, from ops/s) as in the smallest.
    ListScalingAtMost {
        /// The largest acceptable slowdown.
        max: f64,
    },
}

/// A goal checked against the rows of a run.
#[derive(Clone, Debug, Serialize)]
pub struct GoalResult {
    /// Always `"goal"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What is measured, for example `get ratio at 64 tasks`.
    pub goal: String,
    /// The target's figure.
    pub value: f64,
    /// `>=` or `<=`.
    pub op: &'static str,
    /// The limit the figure is held to.
    pub limit: f64,
    /// Whether the goal is met.
    pub met: bool,
    /// The same figure for the baseline, where it has a meaning.
    pub baseline_value: Option<f64>,
}

impl Goal {
    /// The results of this goal in `rows`; empty when the run did not measure it.
    pub fn check(&self, rows: &[Row]) -> Vec<GoalResult> {
        match *self {
            Goal::RatioAtLeast {
                workload,
                tasks,
                min,
            } => rows
                .iter()
                .filter(|row| row.workload == workload.name() && row.tasks == tasks)
                .map(|row| GoalResult {
                    kind: "goal",
                    goal: format!("{workload} ratio vs {} at {tasks} tasks", row.baseline),
                    value: row.ratio,
                    op: ">=",
                    limit: min,
                    met: row.ratio >= min,
                    baseline_value: None,
                })
                .collect(),
            Goal::ListScalingAtMost { max } => {
                let lists: Vec<&Row> = rows.iter().filter(|r| r.workload == "list").collect();
                let (Some(small), Some(large)) = (
                    lists.iter().map(|r| r.keys).min(),
                    lists.iter().map(|r| r.keys).max(),
                ) else {
                    return Vec::new();
                };
                if small == large {
                    return Vec::new();
                }
                let mut results = Vec::new();
                for low in lists.iter().filter(|r| r.keys == small) {
                    let high = lists
                        .iter()
                        .find(|r| r.keys == large && r.tasks == low.tasks);
                    let Some(high) = high else { continue };
                    let slowdown = |low: f64, high: f64| {
                        if high > 0.0 {
                            round4(low / high)
                        } else {
                            f64::INFINITY
                        }
                    };
                    let value = slowdown(low.target_ops_per_sec, high.target_ops_per_sec);
                    results.push(GoalResult {
                        kind: "goal",
                        goal: format!(
                            "list time with {large} keys / with {small} keys at {} tasks",
                            low.tasks
                        ),
                        value,
                        op: "<=",
                        limit: max,
                        met: value <= max,
                        baseline_value: Some(slowdown(
                            low.baseline_ops_per_sec,
                            high.baseline_ops_per_sec,
                        )),
                    });
                }
                results
            }
        }
    }
}

/// Prints rows as they come and the goals at the end, in the chosen format.
pub struct Reporter<W: Write> {
    out: W,
    format: Format,
    rows: Vec<Row>,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            rows: Vec::new(),
        }
    }

    /// Prints what the run is about to measure.
    pub fn start(&mut self, settings: &Settings, workers: usize) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let config = serde_json::json!({
                    "type": "config",
                    "target": settings.target.name(),
                    "workers": workers,
                    "duration_s": settings.duration.as_secs_f64(),
                    "keys": settings.keys,
                    "list_keys": settings.list_keys,
                    "value_size": settings.value_size,
                    "tasks": settings.tasks,
                    "workloads": settings.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
                    "quick": settings.quick,
                });
                writeln!(self.out, "{config}")?;
            }
            Format::Table => {
                writeln!(
                    self.out,
                    "store-bench: target {}, {workers} runtime workers, {:?} per run, \
                     {}-byte values{}",
                    settings.target,
                    settings.duration,
                    settings.value_size,
                    if settings.quick { " (quick)" } else { "" },
                )?;
                writeln!(
                    self.out,
                    "{:<8} {:>8} {:>5} | {:<14} {:>9} {:>9} {:>9} | {:<14} {:>9} {:>9} {:>9} | {:>6}",
                    "workload",
                    "keys",
                    "tasks",
                    "target",
                    "ops/s",
                    "p50",
                    "p99",
                    "baseline",
                    "ops/s",
                    "p50",
                    "p99",
                    "ratio"
                )?;
            }
        }
        self.out.flush()
    }

    /// Prints a row and keeps it for the goals.
    pub fn row(&mut self, row: Row) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}", to_json(&row)?)?,
            Format::Table => writeln!(
                self.out,
                "{:<8} {:>8} {:>5} | {:<14} {:>9} {:>9} {:>9} | {:<14} {:>9} {:>9} {:>9} | {:>6.2}",
                row.workload,
                row.keys,
                row.tasks,
                row.target,
                rate(row.target_ops_per_sec),
                nanos(row.target_p50_ns),
                nanos(row.target_p99_ns),
                row.baseline,
                rate(row.baseline_ops_per_sec),
                nanos(row.baseline_p50_ns),
                nanos(row.baseline_p99_ns),
                row.ratio,
            )?,
        }
        self.rows.push(row);
        self.out.flush()
    }

    /// Checks `goals` against the rows printed so far and prints the results.
    pub fn finish(&mut self, goals: &[Goal]) -> io::Result<Vec<GoalResult>> {
        let results: Vec<GoalResult> = goals.iter().flat_map(|g| g.check(&self.rows)).collect();
        if self.format == Format::Table && !results.is_empty() {
            writeln!(self.out, "\ngoals:")?;
        }
        for result in &results {
            match self.format {
                Format::Json => writeln!(self.out, "{}", to_json(result)?)?,
                Format::Table => {
                    let baseline = result
                        .baseline_value
                        .map(|b| format!(" (baseline {b:.2})"))
                        .unwrap_or_default();
                    writeln!(
                        self.out,
                        "  {:<4} {}: {:.2} {} {}{baseline}",
                        if result.met { "met" } else { "MISS" },
                        result.goal,
                        result.value,
                        result.op,
                        result.limit,
                    )?;
                }
            }
        }
        self.out.flush()?;
        Ok(results)
    }
}

fn to_json<T: Serialize>(value: &T) -> io::Result<String> {
    serde_json::to_string(value).map_err(io::Error::other)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// "12.3M", "456.7k" or "89".
fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2}M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1}k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}

/// "850ns", "12.3us", "4.56ms" or "1.20s".
fn nanos(ns: u64) -> String {
    let x = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}us", x / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", x / 1e6)
    } else {
        format!("{:.2}s", x / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &'static str, keys: usize, tasks: usize, t: f64, b: f64) -> Row {
        Row {
            kind: "result",
            workload,
            keys,
            tasks,
            target: "memory",
            target_ops_per_sec: t,
            target_p50_ns: 1,
            target_p99_ns: 2,
            target_retries: 0,
            baseline: "mutex-hashmap",
            baseline_ops_per_sec: b,
            baseline_p50_ns: 1,
            baseline_p99_ns: 2,
            baseline_retries: 0,
            ratio: t / b,
        }
    }

    #[test]
    fn goals_are_checked_against_rows() {
        let rows = vec![
            row("get", 10_000, 64, 80.0, 100.0),
            row("put", 10_000, 64, 40.0, 100.0),
            row("list", 10_000, 1, 100.0, 100.0),
            row("list", 1_000_000, 1, 25.0, 50.0),
        ];
        let get = Goal::RatioAtLeast {
            workload: Workload::Get,
            tasks: 64,
            min: 0.7,
        };
        assert!(get.check(&rows)[0].met);
        let put = Goal::RatioAtLeast {
            workload: Workload::Put,
            tasks: 64,
            min: 0.5,
        };
        assert!(!put.check(&rows)[0].met);
        let list = Goal::ListScalingAtMost { max: 3.0 }.check(&rows);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].value, 4.0);
        assert_eq!(list[0].baseline_value, Some(2.0));
        assert!(!list[0].met);
    }

    #[test]
    fn json_lines_and_table() {
        let mut out = Vec::new();
        let mut reporter = Reporter::new(&mut out, Format::Json);
        reporter.row(row("get", 10, 1, 2.0, 4.0)).unwrap();
        drop(reporter);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["type"], "result");
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(rate(1_234_567.0), "1.23M");
        assert_eq!(nanos(1_500), "1.5us");
    }
}
