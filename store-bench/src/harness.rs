//! The harness: starts N tasks together, gives each a [`Recorder`], and merges what they
//! measured into one [`Measurement`].
//!
//! The harness is identical for the target and its baseline (the workloads are generic over
//! [`Subject`](crate::subject::Subject)), so whatever it costs per operation (two clock reads,
//! a histogram update, a random key, a cooperative-scheduling check) is paid by both.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Barrier;
use tokio::task::coop::consume_budget;

use crate::BoxError;

/// Longest latency a histogram tracks exactly; longer ones are recorded as this.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one run measured, over all its tasks.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Operations completed (for `cas`, successful increments; for `wait`, wake-ups).
    pub ops: u64,
    /// Attempts that had to be retried (for `cas`: conflicts).
    pub retries: u64,
    /// Wall-clock time from the common start until the last task finished.
    pub elapsed: Duration,
    /// Per-operation latency in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Measurement {
    /// Operations per second of wall-clock time.
    pub fn ops_per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ops as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0.5 for the median) in nanoseconds.
    pub fn latency_ns(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }

    /// Adds `other`, a later slice of the same run: operations, retries, time and latencies.
    pub fn absorb(&mut self, other: &Measurement) -> Result<(), BoxError> {
        self.ops += other.ops;
        self.retries += other.retries;
        self.elapsed += other.elapsed;
        self.latency.add(&other.latency)?;
        Ok(())
    }

    /// Merges what the tasks of one run recorded.
    pub fn merge(tasks: Vec<TaskStats>, elapsed: Duration) -> Result<Self, BoxError> {
        let mut merged = Measurement {
            ops: 0,
            retries: 0,
            elapsed,
            latency: new_histogram(),
        };
        for task in tasks {
            merged.ops += task.ops;
            merged.retries += task.retries;
            merged.latency.add(&task.latency)?;
        }
        Ok(merged)
    }
}

/// What one task recorded.
#[derive(Clone, Debug)]
pub struct TaskStats {
    ops: u64,
    retries: u64,
    latency: Histogram<u64>,
}

/// A task's clock and tally: records latencies and says when the run is over.
pub struct Recorder {
    stats: TaskStats,
    deadline: Instant,
}

impl Recorder {
    /// A recorder for a task that runs until `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self {
            stats: TaskStats {
                ops: 0,
                retries: 0,
                latency: new_histogram(),
            },
            deadline,
        }
    }

    /// Counts one operation that took from `start` to `end`.
    pub fn record(&mut self, start: Instant, end: Instant) {
        self.record_latency(end.saturating_duration_since(start));
    }

    /// Counts one operation that took `latency`.
    pub fn record_latency(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.stats.latency.saturating_record(nanos.max(1));
        self.stats.ops += 1;
    }

    /// Counts `count` operations done by one call that took from `start` to `end` (a
    /// `put_many` of `count` records): the latency is the call's.
    pub fn record_many(&mut self, start: Instant, end: Instant, count: u64) {
        self.record(start, end);
        self.stats.ops += count.saturating_sub(1);
    }

    /// Ends one pass of a timed loop: counts the `count` operations of a call that took
    /// from `start` to `end` (see [`Recorder::record_many`]) and returns whether the run is
    /// over. If it is not, lets the other tasks on this worker run now and then first, as
    /// tokio's own resources do, so that N tasks really run concurrently.
    pub async fn lap(&mut self, start: Instant, end: Instant, count: u64) -> bool {
        self.record_many(start, end, count);
        if self.expired(end) {
            return true;
        }
        consume_budget().await;
        false
    }

    /// Counts one retried attempt.
    pub fn retry(&mut self) {
        self.stats.retries += 1;
    }

    /// Whether the run is over at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// What the task recorded.
    pub fn finish(self) -> TaskStats {
        self.stats
    }
}

fn new_histogram() -> Histogram<u64> {
    // Three significant digits from 1 ns to a minute; the bounds are constants that
    // `new_with_bounds` accepts, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap_or_else(|_| {
        unreachable!("1 ns .. 60 s at 3 significant digits are valid histogram bounds")
    })
}

/// Runs `tasks` copies of `body` on the current runtime, released together, each with its
/// index and a [`Recorder`] whose deadline is `duration` after the release, and merges
/// their statistics. Elapsed time runs from the release to the end of the last task.
pub async fn run_tasks<F, Fut>(
    tasks: usize,
    duration: Duration,
    body: F,
) -> Result<Measurement, BoxError>
where
    F: Fn(usize, Recorder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = store_core::Result<TaskStats>> + Send + 'static,
{
    let body = Arc::new(body);
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for index in 0..tasks {
        let (body, barrier) = (Arc::clone(&body), Arc::clone(&barrier));
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            body(index, Recorder::new(Instant::now() + duration)).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut stats = Vec::with_capacity(tasks);
    for handle in handles {
        stats.push(handle.await??);
    }
    Measurement::merge(stats, start.elapsed())
}
