//! Counters the actor keeps for `stats()`: what operators look at when a store is slow or
//! flaky (batch sizes, failed round trips, reconnects, reclaimed records).

use std::sync::atomic::{AtomicU64, Ordering};

/// Shared between the actor (which counts) and the handles (which report).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Pipelines sent.
    pub pipelines: AtomicU64,
    /// Calls carried by those pipelines.
    pub calls: AtomicU64,
    /// Pipelines that failed (no answer in time, connection lost, error reply).
    pub failed_pipelines: AtomicU64,
    /// Times the script had to be loaded again (the server restarted or flushed scripts).
    pub script_loads: AtomicU64,
    /// Expired records this instance's reaper reclaimed.
    pub reclaimed: AtomicU64,
    /// Pipelines whose writes too few replicas took in time (`replicas_to_ack`).
    pub unacknowledged_batches: AtomicU64,
    /// Connections replaced because they stopped answering (see `link.rs`).
    pub replaced_connections: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
