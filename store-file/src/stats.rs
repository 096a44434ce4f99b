//! [`FileStats`]: counters the engine publishes for monitoring and benchmarks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use store_core::{ComponentStats, Figure};

/// A snapshot of a store's counters, read without a round trip to its actor
/// ([`FileStorage::stats`](crate::FileStorage::stats)).
///
/// Sizes and counts describe the store now; `recoveries`, `truncated_bytes` and
/// `lost_segments` describe what opening it found and repaired; the rest count events since
/// it was opened. The engine publishes them after every batch, so they can lag a running batch.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// use store_core::{Record, Storage};
/// let store = store_file::FileStorage::open(dir.path()).await.unwrap();
/// store.put(Record::new("k", "v")).await.unwrap();
/// let stats = store.stats();
/// assert_eq!(stats.records, 1);
/// assert!(stats.file_bytes >= stats.live_bytes);
/// # store.close().await.unwrap();
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FileStats {
    /// Entries in the index (live ones, plus expired ones the runtime has not reclaimed yet).
    pub records: u64,
    /// Bytes of the records those entries point to (record header, key and value): what a
    /// perfect compaction would keep.
    pub live_bytes: u64,
    /// Bytes in all segment files (headers, frames, live records and garbage).
    pub file_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// The highest version ever assigned in this store.
    pub last_version: u64,
    /// Repairs made when the store was opened: a torn or garbage tail cut off, leftovers of
    /// an interrupted compaction or segment creation removed, damaged frames skipped.
    pub recoveries: u64,
    /// Bytes cut off the end of the newest segment when the store was opened.
    pub truncated_bytes: u64,
    /// Damaged frames skipped when the store was opened or by a compaction since (only with
    /// [`FileOptions::skip_corrupt_frames`](crate::FileOptions::skip_corrupt_frames); each
    /// one is logged with `tracing::warn!`).
    pub skipped_frames: u64,
    /// Segments found missing or shortened when the store was opened (a deleted segment,
    /// a sealed one cut at a frame boundary, a missing manifest). Opening fails on such
    /// damage unless [`FileOptions::skip_corrupt_frames`](crate::FileOptions::skip_corrupt_frames)
    /// is set; then each finding is logged with `tracing::warn!` and counted here.
    pub lost_segments: u64,
    /// Records replayed when the store was opened.
    pub recovered_records: u64,
    /// How long opening took (recovery included), in microseconds.
    pub open_micros: u64,
    /// Compactions completed since the store was opened.
    pub compactions: u64,
    /// Compactions that failed (each one is logged with `tracing::error!`, and its error is
    /// returned to the callers of [`FileStorage::compact`](crate::FileStorage::compact)
    /// waiting for it).
    pub failed_compactions: u64,
    /// Attempts to start a new segment that failed (logged with `tracing::error!`; retried
    /// with a growing back-off, meanwhile the active segment grows past `segment_size`).
    pub failed_rolls: u64,
    /// Whether the store refuses writes: it was opened read-only, an `fdatasync` failed, or
    /// its files were deleted under it. Writes then fail with `Error::ReadOnly` saying why.
    pub read_only: bool,
    /// Whether a compaction is running now.
    pub compacting: bool,
    /// `fdatasync` calls on segment files.
    pub fsyncs: u64,
    /// Frames written: one per atomic batch of mutations.
    pub frames_written: u64,
    /// Records (puts and tombstones) written.
    pub records_written: u64,
    /// Garbage fraction of the files: `1 - live_bytes / file_bytes` (0 when empty).
    pub garbage_ratio: f64,
}

impl FileStats {
    /// These figures as one component of a stack's [`Stats`](store_core::Stats), named
    /// `file` with `detail` (the directory).
    ///
    /// ```
    /// let stats = store_file::FileStats::default().component("/data");
    /// assert_eq!(stats.name, "file");
    /// assert!(stats.figures.iter().any(|(name, _)| name == "segments"));
    /// ```
    pub fn component(&self, detail: &str) -> ComponentStats {
        ComponentStats::new("file", detail)
            .with("records", Figure::Count(self.records))
            .with("live_bytes", Figure::Bytes(self.live_bytes))
            .with("file_bytes", Figure::Bytes(self.file_bytes))
            .with("garbage_ratio", Figure::Ratio(self.garbage_ratio))
            .with("segments", Figure::Count(self.segments))
            .with("last_version", Figure::Count(self.last_version))
            .with("recoveries", Figure::Count(self.recoveries))
            .with("truncated_bytes", Figure::Bytes(self.truncated_bytes))
            .with("skipped_frames", Figure::Count(self.skipped_frames))
            .with("lost_segments", Figure::Count(self.lost_segments))
            .with("recovered_records", Figure::Count(self.recovered_records))
            .with("open_micros", Figure::Micros(self.open_micros))
            .with("compactions", Figure::Count(self.compactions))
            .with("failed_compactions", Figure::Count(self.failed_compactions))
            .with("failed_rolls", Figure::Count(self.failed_rolls))
            .with("read_only", Figure::Count(u64::from(self.read_only)))
            .with("compacting", Figure::Count(u64::from(self.compacting)))
            .with("fsyncs", Figure::Count(self.fsyncs))
            .with("frames_written", Figure::Count(self.frames_written))
            .with("records_written", Figure::Count(self.records_written))
    }
}

/// The atomics behind [`FileStats`], shared by the engine (writer) and the handles.
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) records: AtomicU64,
    pub(crate) live_bytes: AtomicU64,
    pub(crate) file_bytes: AtomicU64,
    pub(crate) segments: AtomicU64,
    pub(crate) last_version: AtomicU64,
    pub(crate) recoveries: AtomicU64,
    pub(crate) truncated_bytes: AtomicU64,
    pub(crate) skipped_frames: AtomicU64,
    pub(crate) lost_segments: AtomicU64,
    pub(crate) recovered_records: AtomicU64,
    pub(crate) open_micros: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) failed_compactions: AtomicU64,
    pub(crate) failed_rolls: AtomicU64,
    pub(crate) read_only: AtomicBool,
    pub(crate) compacting: AtomicBool,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) frames_written: AtomicU64,
    pub(crate) records_written: AtomicU64,
}

impl StatsCell {
    pub(crate) fn snapshot(&self) -> FileStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let live_bytes = r(&self.live_bytes);
        let file_bytes = r(&self.file_bytes);
        FileStats {
            records: r(&self.records),
            live_bytes,
            file_bytes,
            segments: r(&self.segments),
            last_version: r(&self.last_version),
            recoveries: r(&self.recoveries),
            truncated_bytes: r(&self.truncated_bytes),
            skipped_frames: r(&self.skipped_frames),
            lost_segments: r(&self.lost_segments),
            recovered_records: r(&self.recovered_records),
            open_micros: r(&self.open_micros),
            compactions: r(&self.compactions),
            failed_compactions: r(&self.failed_compactions),
            failed_rolls: r(&self.failed_rolls),
            read_only: self.read_only.load(Ordering::Relaxed),
            compacting: self.compacting.load(Ordering::Relaxed),
            fsyncs: r(&self.fsyncs),
            frames_written: r(&self.frames_written),
            records_written: r(&self.records_written),
            garbage_ratio: garbage_ratio(live_bytes, file_bytes),
        }
    }
}

pub(crate) fn garbage_ratio(live_bytes: u64, file_bytes: u64) -> f64 {
    if file_bytes == 0 {
        0.0
    } else {
        1.0 - (live_bytes.min(file_bytes) as f64 / file_bytes as f64)
    }
}
