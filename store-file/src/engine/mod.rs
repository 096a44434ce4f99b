//! [`FileEngine`]: the state machine the actor runtime drives. It owns the directory lock,
//! the segment files, the write buffer and the index.
//!
//! - this module: the engine's state, opening, reads, and the `Engine` implementation that
//!   ties the parts together;
//! - `writer`: applying a batch to the write buffer and the index, writing it out under the
//!   sync policy, rolling back a failed write, rolling segments, reserving versions;
//! - `maintenance`: the foreground steps of compaction (start, install, moving the index
//!   over to the output) and the retry back-off of background work.

mod maintenance;
mod writer;

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use store_core::runtime::{Engine, Entry, EntryMeta, Moved, Mutation, Responder, Waker};
use store_core::{Error, Result};

use crate::disk::Disk;
use crate::format::{decode_record, Manifest};
use crate::index::{Index, IndexEntry, Loc, RECLAIMED};
use crate::lock::DirLock;
use crate::segment::Segment;
use crate::stats::StatsCell;
use crate::value::{read_record_value, FileValue};
use crate::FileOptions;

use maintenance::{Backoff, Migration, Running};

/// In-memory ids of compaction outputs start here, far above any segment number, so an
/// output never shares an id with the inputs it replaces (see `FileEngine::segments`).
const FIRST_OUTPUT_ID: u64 = 1 << 62;

/// A caller of `FileStorage::compact`, answered when a compaction that started after the
/// request has been installed (or has failed).
pub(crate) type CompactWaiter = Responder;

/// The engine's request type: compact now (`FileStorage::compact`).
pub(crate) struct Compact;

/// What the engine shares with the `FileStorage` handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stats: StatsCell,
}

/// The file engine. See the crate docs for the format and the rules it follows.
pub(crate) struct FileEngine {
    dir: PathBuf,
    options: FileOptions,
    disk: Arc<dyn Disk>,
    shared: Arc<Shared>,
    lock: Option<DirLock>,
    /// Open segments by in-memory id: the segment number for segments written by appends
    /// or found at open, a fresh id from `FIRST_OUTPUT_ID` up for compaction outputs (an
    /// output takes the file name of its newest input, but both are open while the index
    /// moves over). Index locations name these ids.
    segments: BTreeMap<u64, Segment>,
    next_output_id: u64,
    /// The active segment's id (always a segment number; 0 in a read-only store without
    /// segments).
    active: u64,
    /// The manifest as it is on disk.
    manifest: Manifest,
    /// Sum of the segments' lengths.
    file_bytes: u64,
    index: Index,
    live_bytes: u64,
    last_version: u64,
    /// Frames applied but not yet written to the active segment.
    buf: Vec<u8>,
    buf_frames: u64,
    buf_records: u64,
    /// What each key held before the unwritten frames, newest last, to roll them back.
    undo: Vec<(String, Option<IndexEntry>)>,
    last_fsync: Instant,
    /// Bytes were written since the last fsync.
    unsynced: bool,
    /// Interval policy: when the bytes written since the last fsync must be forced.
    fsync_due: Option<Instant>,
    /// Why the store refuses writes: opened read-only, an fsync failed (the kernel may have
    /// dropped the pages), or its files were deleted under it. Reads go on.
    poisoned: Option<String>,
    roll_due: bool,
    roll_backoff: Backoff,
    compact_backoff: Backoff,
    last_auto: Option<Instant>,
    /// When the store was opened (a time known to be in the past).
    opened: Instant,
    compaction: Option<Running>,
    migration: Option<Migration>,
    /// `FileStorage::compact` callers waiting for a compaction to start.
    requests: Vec<CompactWaiter>,
    /// Wakes the actor when a background compaction is done (from the runtime, at start).
    waker: Option<Waker>,
    /// Value handles that compaction moved, for the runtime to republish.
    moved: Vec<Moved<FileValue>>,
    /// Opening accepted lost files (`skip_corrupt_frames`): a compaction is due, which
    /// rewrites the survivors into one segment and so mends the chain of segments.
    heal: bool,
}

fn io_context(what: &str, path: &Path) -> String {
    format!("{what} {}", path.display())
}

impl FileEngine {
    /// Opens (creating if needed), locks and recovers the store in `dir`.
    #[cfg(test)]
    pub(crate) fn open(dir: PathBuf, options: FileOptions, shared: Arc<Shared>) -> Result<Self> {
        Self::open_on(Arc::new(crate::disk::OsDisk), dir, options, shared)
    }

    /// Opens (creating if needed), locks and recovers the store in `dir`, with the file I/O
    /// going through `disk`. Runs on the actor's thread.
    pub(crate) fn open_on(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        options: FileOptions,
        shared: Arc<Shared>,
    ) -> Result<Self> {
        let started = Instant::now();
        options.validate()?;
        prepare_dir(&dir, options.read_only)?;
        let lock = if options.read_only {
            DirLock::acquire_shared(&dir)?
        } else {
            Some(DirLock::acquire(&dir)?)
        };
        let recovered = crate::recovery::recover(&*disk, &dir, &options).inspect_err(|error| {
            tracing::error!(dir = %dir.display(), %error, "opening the store failed");
        })?;
        let file_bytes = recovered.segments.values().map(|s| s.len).sum();
        debug_assert!(recovered.segments.keys().all(|id| *id < FIRST_OUTPUT_ID));
        let poisoned = options
            .read_only
            .then(|| "it was opened with FileOptions::read_only".to_owned());
        let engine = Self {
            dir,
            disk,
            shared,
            lock,
            segments: recovered.segments,
            next_output_id: FIRST_OUTPUT_ID,
            active: recovered.active,
            manifest: recovered.manifest,
            file_bytes,
            index: recovered.state.index,
            live_bytes: recovered.state.live_bytes,
            last_version: recovered.state.last_version,
            buf: Vec::new(),
            buf_frames: 0,
            buf_records: 0,
            undo: Vec::new(),
            last_fsync: Instant::now(),
            // Recovered bytes may still be only in the page cache (a previous process with
            // `SyncPolicy::Never`): the first forced sync covers them too.
            unsynced: !options.read_only,
            fsync_due: None,
            poisoned,
            roll_due: false,
            roll_backoff: Backoff::default(),
            compact_backoff: Backoff::default(),
            last_auto: None,
            opened: started,
            compaction: None,
            migration: None,
            requests: Vec::new(),
            waker: None,
            moved: Vec::new(),
            heal: recovered.report.lost_segments > 0 && !options.read_only,
            options,
        };
        let report = &recovered.report;
        let elapsed = started.elapsed();
        let stats = &engine.shared.stats;
        stats.recoveries.store(report.repairs, Ordering::Relaxed);
        stats
            .truncated_bytes
            .store(report.truncated_bytes, Ordering::Relaxed);
        stats
            .skipped_frames
            .store(report.skipped_frames, Ordering::Relaxed);
        stats
            .lost_segments
            .store(report.lost_segments, Ordering::Relaxed);
        stats
            .recovered_records
            .store(report.records, Ordering::Relaxed);
        stats
            .open_micros
            .store(elapsed.as_micros() as u64, Ordering::Relaxed);
        engine.publish();
        tracing::info!(
            dir = %engine.dir.display(),
            keys = engine.index.len(),
            records_replayed = report.records,
            segments = engine.segments.len(),
            file_bytes = engine.file_bytes,
            last_version = engine.last_version,
            repairs = report.repairs,
            truncated_bytes = report.truncated_bytes,
            lost_segments = report.lost_segments,
            read_only = engine.options.read_only,
            ?elapsed,
            "file store opened"
        );
        Ok(engine)
    }

    fn publish(&self) {
        let s = &self.shared.stats;
        s.records.store(self.index.len() as u64, Ordering::Relaxed);
        s.live_bytes.store(self.live_bytes, Ordering::Relaxed);
        s.file_bytes.store(self.file_bytes, Ordering::Relaxed);
        let segments = self.segments.values().filter(|s| !s.retired).count();
        s.segments.store(segments as u64, Ordering::Relaxed);
        s.last_version.store(self.last_version, Ordering::Relaxed);
        s.compacting.store(self.compacting(), Ordering::Relaxed);
        s.read_only
            .store(self.poisoned.is_some(), Ordering::Relaxed);
    }

    /// A compaction is running or being installed.
    fn compacting(&self) -> bool {
        self.compaction.is_some() || self.migration.is_some()
    }

    /// The segment appends go to.
    fn active_segment(&self) -> Result<&Segment> {
        self.segments
            .get(&self.active)
            .ok_or_else(|| self.no_active_segment())
    }

    fn no_active_segment(&self) -> Error {
        match &self.poisoned {
            Some(_) => self.refusal(),
            None => Error::Backend(format!(
                "the store in {}: its active segment {:#x} is not open (an internal invariant \
                 is broken; reopen the store)",
                self.dir.display(),
                self.active
            )),
        }
    }

    /// The error every write gets once the store refuses writes.
    fn refusal(&self) -> Error {
        Error::ReadOnly(format!(
            "the store in {} refuses writes because {}; the data already acknowledged is \
             still readable{}",
            self.dir.display(),
            self.poisoned.as_deref().unwrap_or("of an earlier failure"),
            if self.options.read_only {
                ""
            } else {
                ", reopen the store to write again"
            }
        ))
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(_) => Err(self.refusal()),
        }
    }

    /// Refuses writes from now on, for `reason`.
    fn poison(&mut self, reason: String) {
        if self.poisoned.is_none() {
            tracing::error!(dir = %self.dir.display(), reason, "the store refuses writes from now on");
            self.poisoned = Some(reason);
        }
    }

    /// Reads the value of `entry` (stored under `key`) from memory, the write buffer or
    /// its segment, checking the record's checksum.
    fn read_value(&self, key: &str, entry: &IndexEntry) -> Result<Bytes> {
        if let Some(value) = &entry.value {
            return Ok(value.clone());
        }
        let Loc { seg, offset, len } = entry.loc;
        let Some(segment) = self.segments.get(&seg) else {
            return Err(Error::Corrupt(format!(
                "key {key:?}: the index points at segment {seg:#x}, which is gone"
            )));
        };
        if seg == self.active && offset >= segment.len {
            // Still in the write buffer (read by the actor within the batch that wrote it).
            let start = (offset - segment.len) as usize;
            let bytes = Bytes::copy_from_slice(&self.buf[start..start + len as usize]);
            let record = decode_record(&bytes).map_err(|problem| {
                Error::Corrupt(format!("key {key:?} in the write buffer: {problem}"))
            })?;
            return Ok(bytes.slice(record.value_offset..record.len));
        }
        let place = segment.path.display().to_string();
        read_record_value(&*segment.file, &place, offset, len, key, entry.version)
    }

    /// How readers will find the value of `entry` once its batch is durable; `None` for a
    /// record whose value compaction dropped because it had expired (readers must not see
    /// it, and the view leaves it out).
    fn published_value(&self, entry: &IndexEntry) -> Option<FileValue> {
        if let Some(value) = &entry.value {
            return Some(FileValue::Inline(value.clone()));
        }
        let segment = self.segments.get(&entry.loc.seg)?;
        Some(FileValue::OnDisk {
            file: segment.file.clone(),
            segment: segment.id,
            offset: entry.loc.offset,
            len: entry.loc.len,
        })
    }
}

/// Creates `dir` (and its parents) and checks that it is a directory. A read-only open
/// creates nothing.
fn prepare_dir(dir: &Path, read_only: bool) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::io(
                format!("opening store directory {}", dir.display()),
                io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "the path exists and is not a directory",
                ),
            ))
        }
        Err(e) if read_only => {
            return Err(Error::io(
                io_context(
                    "opening store directory (read-only, so it is not created)",
                    dir,
                ),
                e,
            ))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        let error = Error::io(io_context("creating store directory", dir), e);
        tracing::error!(%error, "opening the store failed");
        error
    })
}

impl Engine for FileEngine {
    type Value = FileValue;
    type Request = Compact;

    fn last_version(&self) -> u64 {
        self.last_version
    }

    fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, FileValue)) -> Result<()> {
        for (key, entry) in &self.index {
            if let Some(value) = self.published_value(entry) {
                visit(key, entry.meta(), value);
            }
        }
        Ok(())
    }

    fn take_moved(&mut self) -> Vec<Moved<FileValue>> {
        std::mem::take(&mut self.moved)
    }

    fn attach(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    fn request(&mut self, Compact: Compact, responder: Responder) {
        match self.check_writable() {
            Ok(()) => self.requests.push(responder),
            Err(error) => responder.respond(Err(error)),
        }
    }

    fn describe(&self) -> String {
        format!("file {:?}", self.dir.display().to_string())
    }

    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        let Some(entry) = self.index.get(key) else {
            return Ok(None);
        };
        if entry.loc.seg == RECLAIMED {
            // Expired, and its value dropped by compaction: gone for every reader (the
            // runtime hides it by its expiry anyway; this holds even if the clock stepped
            // back).
            return Ok(None);
        }
        let value = self.read_value(key, entry)?;
        Ok(Some(Entry {
            value,
            version: entry.version,
            expires_at: entry.expires_at,
        }))
    }

    fn meta(&mut self, key: &str) -> Option<EntryMeta> {
        self.index.get(key).map(IndexEntry::meta)
    }

    fn apply(&mut self, batch: &[Mutation], published: &mut Vec<FileValue>) -> Result<()> {
        self.apply_batch(batch, published)
    }

    fn sync(&mut self) -> Result<()> {
        self.write_out(false)
    }

    fn scan(
        &mut self,
        from: Bound<&str>,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &EntryMeta) -> bool,
    ) -> Result<()> {
        for (key, entry) in self.index.range::<str, _>((from, Bound::Unbounded)) {
            if !key.starts_with(prefix) || !visit(key, &entry.meta()) {
                break;
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.maintenance_deadline()
    }

    fn on_deadline(&mut self) -> Result<()> {
        self.maintain()
    }

    fn close(&mut self) -> Result<()> {
        self.cancel_compaction();
        let mut result = self.write_out(true);
        if result.is_ok() {
            result = self.check_links().and_then(|()| self.lower_ceiling());
        }
        if result.is_ok() && self.poisoned.is_some() && !self.options.read_only {
            // Writes were refused: say so to whoever closes, not only to those writers.
            result = Err(self.refusal());
        }
        for waiter in std::mem::take(&mut self.requests) {
            waiter.respond(Err(Error::Closed));
        }
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
        self.publish();
        tracing::debug!(dir = %self.dir.display(), "file store closed");
        result
    }
}

impl Drop for FileEngine {
    fn drop(&mut self) {
        // Only reached without `close` if the actor stopped abnormally; do not block.
        if let Some(running) = &self.compaction {
            running.cancel();
        }
    }
}

#[cfg(test)]
mod tests;
