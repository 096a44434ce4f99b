//! Results: a [`Row`] per (workload, store size, tasks, baseline), a [`Figure`] per
//! non-throughput measurement (`reopen` seconds, `space` amplification), the [`Goal`]s
//! checked against them, and the [`Reporter`] that prints all of them as a table or as JSON
//! lines, one section per target.
//!
//! Knows targets and workloads by name only (`catalog`) and the settings (`cli`); the
//! targets pick their goals from here, and `figures` makes its figures (see the crate's
//! "Structure").

use std::io::{self, Write};

use serde::Serialize;

use crate::baseline::BaselineKind;
use crate::catalog::{TargetKind, Workload};
use crate::cli::{Format, Settings};
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
    /// What the target's counters saw during its run (cache hit ratio, writes per fsync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Baseline p50 latency divided by target p50 latency (lock workloads): like `ratio`,
    /// above 1 when the target is faster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ratio: Option<f64>,
    /// Baseline p99 latency divided by target p99 latency (lock workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ratio: Option<f64>,
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
            note: None,
            p50_ratio: None,
            p99_ratio: None,
        }
    }

    /// The row with its latency ratios (baseline / target at p50 and p99, so that like the
    /// ratio of rates they are above 1 when the target is faster), which the table shows
    /// after the ratio of rates.
    pub fn with_latency_ratios(mut self) -> Self {
        let ratio = |t: u64, b: u64| (t > 0).then(|| round4(b as f64 / t as f64));
        self.p50_ratio = ratio(self.target_p50_ns, self.baseline_p50_ns);
        self.p99_ratio = ratio(self.target_p99_ns, self.baseline_p99_ns);
        self
    }

    /// The row with `note` attached.
    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

/// A measured quantity that is not a rate: seconds to reopen a store, space amplification.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Always `"figure"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The workload that produced it.
    pub workload: &'static str,
    /// Keys (records) in the store.
    pub keys: usize,
    /// The target's name.
    pub target: &'static str,
    /// A stable identifier goals refer to, for example `reopen_seconds`.
    pub name: &'static str,
    /// What it is, in words, for goal lines.
    pub label: String,
    /// The figure.
    pub value: f64,
    /// Its unit: `s`, `x`, ...
    pub unit: &'static str,
    /// One line for the table.
    pub summary: String,
    /// Everything else that was measured alongside (sizes, counts, other timings).
    pub details: serde_json::Value,
}

/// A performance goal a target is held to.
#[derive(Clone, Debug)]
pub enum Goal {
    /// At `tasks` tasks, target ops/s for `workload` divided by the baseline's ops/s (at
    /// `baseline_tasks` tasks, default the same) is at least `min`; for every baseline of
    /// the workload, or only `baseline`.
    RatioAtLeast {
        /// The workload.
        workload: Workload,
        /// The target's task count.
        tasks: usize,
        /// The smallest acceptable ratio.
        min: f64,
        /// Only rows against this baseline; `None`: every row.
        baseline: Option<BaselineKind>,
        /// The baseline's task count, when it is not `tasks`.
        baseline_tasks: Option<usize>,
    },
    /// At every task count, a `list` in the largest store takes at most `max` times as long
    /// (mean, from ops/s) as in the smallest.
    ListScalingAtMost {
        /// The largest acceptable slowdown.
        max: f64,
    },
    /// The target's own ops/s of `workload` at `tasks` over its ops/s of `versus` at
    /// `versus_tasks` is at least `min` (for example put_many records/s over put/s).
    TargetRatioAtLeast {
        /// The workload on top.
        workload: Workload,
        /// Its task count.
        tasks: usize,
        /// The workload below.
        versus: Workload,
        /// Its task count.
        versus_tasks: usize,
        /// The smallest acceptable ratio.
        min: f64,
    },
    /// The [`Figure`] named `figure` is at most `max`.
    FigureAtMost {
        /// The figure's [`Figure::name`].
        figure: &'static str,
        /// The largest acceptable value.
        max: f64,
    },
}

/// A goal checked against the rows of a run.
#[derive(Clone, Debug, Serialize)]
pub struct GoalResult {
    /// Always `"goal"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The target's name.
    pub target: &'static str,
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
    /// Target/baseline ops/s of `workload` at `tasks` tasks, against every baseline.
    pub fn ratio(workload: Workload, tasks: usize, min: f64) -> Self {
        Goal::RatioAtLeast {
            workload,
            tasks,
            min,
            baseline: None,
            baseline_tasks: None,
        }
    }

    /// Target ops/s of `workload` at `tasks` tasks over `baseline`'s at `baseline_tasks`.
    pub fn ratio_vs(
        workload: Workload,
        tasks: usize,
        baseline: BaselineKind,
        baseline_tasks: usize,
        min: f64,
    ) -> Self {
        Goal::RatioAtLeast {
            workload,
            tasks,
            min,
            baseline: Some(baseline),
            baseline_tasks: Some(baseline_tasks),
        }
    }

    /// The results of this goal for `target`'s `rows` and `figures`; empty when the run
    /// did not measure it.
    pub fn check(&self, target: TargetKind, rows: &[Row], figures: &[Figure]) -> Vec<GoalResult> {
        let result = |goal: String, value: f64, op: &'static str, limit: f64| GoalResult {
            kind: "goal",
            target: target.name(),
            goal,
            value,
            op,
            limit,
            met: if op == ">=" {
                value >= limit
            } else {
                value <= limit
            },
            baseline_value: None,
        };
        match *self {
            Goal::RatioAtLeast {
                workload,
                tasks,
                min,
                baseline,
                baseline_tasks,
            } => {
                let against = |row: &&Row| {
                    row.workload == workload.name()
                        && baseline.is_none_or(|b| row.baseline == b.name())
                };
                let targets = rows.iter().filter(against).filter(|row| row.tasks == tasks);
                match baseline_tasks {
                    Some(other) if other != tasks => targets
                        .filter_map(|row| {
                            let base = rows.iter().filter(against).find(|b| {
                                b.tasks == other && b.keys == row.keys && b.baseline == row.baseline
                            })?;
                            let value = if base.baseline_ops_per_sec > 0.0 {
                                round4(row.target_ops_per_sec / base.baseline_ops_per_sec)
                            } else {
                                0.0
                            };
                            let goal = format!(
                                "{workload} at {tasks} tasks / {} at {other} task{}",
                                row.baseline,
                                if other == 1 { "" } else { "s" }
                            );
                            Some(result(goal, value, ">=", min))
                        })
                        .collect(),
                    _ => targets
                        .map(|row| {
                            let goal =
                                format!("{workload} ratio vs {} at {tasks} tasks", row.baseline);
                            result(goal, row.ratio, ">=", min)
                        })
                        .collect(),
                }
            }
            Goal::TargetRatioAtLeast {
                workload,
                tasks,
                versus,
                versus_tasks,
                min,
            } => {
                let find = |w: Workload, t: usize| {
                    rows.iter()
                        .find(|row| row.workload == w.name() && row.tasks == t)
                        .map(|row| row.target_ops_per_sec)
                };
                match (find(workload, tasks), find(versus, versus_tasks)) {
                    (Some(top), Some(bottom)) => {
                        let value = if bottom > 0.0 {
                            round4(top / bottom)
                        } else {
                            0.0
                        };
                        let goal = format!(
                            "{workload} at {tasks} task{} / {versus} at {versus_tasks} task{} (target alone)",
                            if tasks == 1 { "" } else { "s" },
                            if versus_tasks == 1 { "" } else { "s" },
                        );
                        vec![result(goal, value, ">=", min)]
                    }
                    _ => Vec::new(),
                }
            }
            Goal::FigureAtMost { figure, max } => figures
                .iter()
                .filter(|f| f.name == figure)
                .map(|f| result(f.label.clone(), f.value, "<=", max))
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
                        target: target.name(),
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

/// Prints rows and figures as they come and each target's goals at the end of its section,
/// in the chosen format.
pub struct Reporter<W: Write> {
    out: W,
    format: Format,
    sections: usize,
    rows: Vec<Row>,
    figures: Vec<Figure>,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            sections: 0,
            rows: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// Starts the section of `target`, which runs `workloads`.
    pub fn start(
        &mut self,
        settings: &Settings,
        target: TargetKind,
        workloads: &[Workload],
        workers: usize,
    ) -> io::Result<()> {
        self.rows.clear();
        self.figures.clear();
        self.sections += 1;
        let on_disk = target != TargetKind::Memory;
        match self.format {
            Format::Json => {
                let config = serde_json::json!({
                    "type": "config",
                    "target": target.name(),
                    "workers": workers,
                    "duration_s": settings.duration.as_secs_f64(),
                    "slices": settings.slices,
                    "keys": settings.keys,
                    "list_keys": settings.list_keys,
                    "value_size": settings.value_size,
                    "tasks": settings.tasks,
                    "workloads": workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
                    "dir": on_disk.then(|| settings.dir.display().to_string()),
                    "reopen_records": settings.reopen_records,
                    "space_keys": settings.space_keys,
                    "quick": settings.quick,
                });
                writeln!(self.out, "{config}")?;
            }
            Format::Table => {
                if self.sections > 1 {
                    writeln!(self.out)?;
                }
                let dir = if on_disk {
                    format!(", data in {}", settings.dir.display())
                } else {
                    String::new()
                };
                writeln!(
                    self.out,
                    "store-bench: target {target}, {workers} runtime workers, {:?} per run{}, \
                     {}-byte values{dir}{}",
                    settings.duration,
                    if settings.slices > 1 {
                        format!(" in {} alternating slices", settings.slices)
                    } else {
                        String::new()
                    },
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
            Format::Table => write!(
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
            )
            .and_then(|()| {
                let latency = match (row.p50_ratio, row.p99_ratio) {
                    (Some(p50), Some(p99)) => Some(format!(
                        "latency ratio (baseline/target) p50 {p50:.2}, p99 {p99:.2}"
                    )),
                    _ => None,
                };
                match (latency.as_deref(), row.note.as_deref()) {
                    (Some(latency), Some(note)) => writeln!(self.out, "  {latency}; {note}"),
                    (Some(text), None) | (None, Some(text)) => writeln!(self.out, "  {text}"),
                    (None, None) => writeln!(self.out),
                }
            })?,
        }
        self.rows.push(row);
        self.out.flush()
    }

    /// Prints a figure and keeps it for the goals.
    pub fn figure(&mut self, figure: Figure) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}", to_json(&figure)?)?,
            Format::Table => writeln!(
                self.out,
                "{:<8} {:>8} {:>5} | {:<14} {}",
                figure.workload, figure.keys, "", figure.target, figure.summary,
            )?,
        }
        self.figures.push(figure);
        self.out.flush()
    }

    /// Checks `target`'s `goals` against the rows and figures of its section and prints
    /// the results.
    pub fn finish(&mut self, target: TargetKind, goals: &[Goal]) -> io::Result<Vec<GoalResult>> {
        let results: Vec<GoalResult> = goals
            .iter()
            .flat_map(|g| g.check(target, &self.rows, &self.figures))
            .collect();
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
            note: None,
            p50_ratio: None,
            p99_ratio: None,
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
        let memory = TargetKind::Memory;
        let get = Goal::ratio(Workload::Get, 64, 0.7);
        assert!(get.check(memory, &rows, &[])[0].met);
        let put = Goal::ratio(Workload::Put, 64, 0.5);
        assert!(!put.check(memory, &rows, &[])[0].met);
        let list = Goal::ListScalingAtMost { max: 3.0 }.check(memory, &rows, &[]);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].value, 4.0);
        assert_eq!(list[0].baseline_value, Some(2.0));
        assert!(!list[0].met);
    }

    #[test]
    fn goals_against_one_baseline_at_another_task_count_and_figures() {
        let mut rows = vec![
            row("put", 100, 1, 10.0, 5.0),
            row("put", 100, 64, 300.0, 6.0),
            row("put", 100, 64, 300.0, 100.0),
        ];
        rows[0].baseline = "fdatasync-log";
        rows[1].baseline = "fdatasync-log";
        rows[2].baseline = "redb";
        let file = TargetKind::File;
        let vs_one = Goal::ratio_vs(Workload::Put, 64, BaselineKind::FsyncLog, 1, 10.0);
        let results = vs_one.check(file, &rows, &[]);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].value, 60.0);
        assert!(results[0].met);
        assert!(results[0].goal.contains("at 1 task"), "{}", results[0].goal);
        let redb = Goal::ratio_vs(Workload::Put, 64, BaselineKind::Redb, 64, 5.0);
        let results = redb.check(file, &rows, &[]);
        assert_eq!(results.len(), 1);
        assert!(!results[0].met);
        let figure = Figure {
            kind: "figure",
            workload: "reopen",
            keys: 10,
            target: "file",
            name: "reopen_seconds",
            label: "reopen".into(),
            value: 2.5,
            unit: "s",
            summary: String::new(),
            details: serde_json::Value::Null,
        };
        let reopen = Goal::FigureAtMost {
            figure: "reopen_seconds",
            max: 2.0,
        };
        let results = reopen.check(file, &rows, &[figure]);
        assert_eq!(results.len(), 1);
        assert!(!results[0].met);
        assert_eq!(results[0].target, "file");
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
