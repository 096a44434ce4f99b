//! [`FileEngine`]: the state machine the actor runtime drives. It owns the directory lock,
//! the segment files, the write buffer and the index, and runs compaction's foreground
//! steps (start, install) from `on_deadline`.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use store_core::runtime::{Engine, Entry, EntryMeta, Mutation, Responder};
use store_core::{Error, Result};

use crate::compaction::{self, Input, Job, Output};
use crate::format::{
    decode_record, encode_frame_header, encode_record, FRAME_HEADER_LEN, HEADER_LEN,
    KIND_COMPACTED, KIND_DELETE, KIND_PUT, MAX_FRAME_PAYLOAD,
};
use crate::index::{Index, IndexEntry, Loc, RECLAIMED};
use crate::lock::DirLock;
use crate::segment::{
    create_segment, remove_leftover, segment_file_name, sync_dir, write_all_at, Segment,
    COMPACT_SUFFIX,
};
use crate::stats::{garbage_ratio, StatsCell};
use crate::value::{read_record_value, FileValue};
use crate::{FileOptions, SyncPolicy};

/// How often the actor checks whether a background compaction has finished.
const COMPACTION_POLL: Duration = Duration::from_millis(5);
/// How long to wait before retrying a failed roll or automatic compaction; doubled after
/// each further failure, up to 64 times this.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Least time between two automatic compactions.
const AUTO_SPACING: Duration = Duration::from_millis(100);
/// Index entries moved to a compaction's output per `on_deadline` call, so that installing
/// a large compaction never holds up reads and writes for long.
const MIGRATE_CHUNK: usize = 16 * 1024;
/// In-memory ids of compaction outputs start here, far above any segment number, so an
/// output never shares an id with the inputs it replaces (see `FileEngine::segments`).
const FIRST_OUTPUT_ID: u64 = 1 << 62;
/// A write buffer that grew past this is given back to the allocator after use.
const BUFFER_KEEP: usize = 8 << 20;

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

/// When a failed roll or compaction may be tried again: after `RETRY_AFTER`, doubled for
/// each further failure in a row.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    fn failed(&mut self) {
        let wait = RETRY_AFTER * 2u32.pow(self.failures.min(6));
        self.failures += 1;
        self.until = Some(Instant::now() + wait);
    }

    fn succeeded(&mut self) {
        *self = Self::default();
    }

    fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }
}

/// A compaction running on its background thread.
struct Running {
    thread: Option<JoinHandle<()>>,
    result: mpsc::Receiver<Result<Output>>,
    cancel: Arc<AtomicBool>,
    tmp: PathBuf,
    started: Instant,
    /// When `on_deadline` next checks for the result (an absolute time: the runtime calls
    /// `on_deadline` only once the deadline has passed).
    next_poll: Instant,
    waiters: Vec<CompactWaiter>,
    /// In-memory ids of the inputs, sorted.
    inputs: Vec<u64>,
}

/// The last step of installing a compaction: index entries still pointing at the (retired)
/// inputs are moved to the output, a chunk per `on_deadline`.
struct Migration {
    moved: std::vec::IntoIter<compaction::Moved>,
    expired: std::vec::IntoIter<(String, u64)>,
    /// In-memory id of the output.
    target: u64,
    /// In-memory ids of the retired inputs, sorted.
    inputs: Vec<u64>,
    waiters: Vec<CompactWaiter>,
    started: Instant,
    input_bytes: u64,
    output_bytes: u64,
}

/// The file engine. See the crate docs for the format and the rules it follows.
pub(crate) struct FileEngine {
    dir: PathBuf,
    options: FileOptions,
    shared: Arc<Shared>,
    lock: Option<DirLock>,
    /// Open segments by in-memory id: the segment number for segments written by appends
    /// or found at open, a fresh id from `FIRST_OUTPUT_ID` up for compaction outputs (an
    /// output takes the file name of its newest input, but both are open while the index
    /// moves over). Index locations name these ids.
    segments: BTreeMap<u64, Segment>,
    next_output_id: u64,
    /// The active segment's id (always a segment number).
    active: u64,
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
    /// Set when an fsync failed: the kernel may have dropped the pages, so the engine
    /// refuses writes until the store is reopened.
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
}

fn io_context(what: &str, path: &Path) -> String {
    format!("{what} {}", path.display())
}

impl FileEngine {
    /// Opens (creating if needed), locks and recovers the store in `dir`. Runs on the
    /// actor's thread.
    pub(crate) fn open(dir: PathBuf, options: FileOptions, shared: Arc<Shared>) -> Result<Self> {
        let started = Instant::now();
        prepare_dir(&dir)?;
        let lock = DirLock::acquire(&dir)?;
        let recovered = crate::recovery::recover(&dir, &options).inspect_err(|error| {
            tracing::error!(dir = %dir.display(), %error, "opening the store failed");
        })?;
        let file_bytes = recovered.segments.values().map(|s| s.len).sum();
        debug_assert!(recovered.segments.keys().all(|id| *id < FIRST_OUTPUT_ID));
        let engine = Self {
            dir,
            options,
            shared,
            lock: Some(lock),
            segments: recovered.segments,
            next_output_id: FIRST_OUTPUT_ID,
            active: recovered.active,
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
            unsynced: true,
            fsync_due: None,
            poisoned: None,
            roll_due: false,
            roll_backoff: Backoff::default(),
            compact_backoff: Backoff::default(),
            last_auto: None,
            opened: started,
            compaction: None,
            migration: None,
            requests: Vec::new(),
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
    }

    /// A compaction is running or being installed.
    fn compacting(&self) -> bool {
        self.compaction.is_some() || self.migration.is_some()
    }

    fn active_segment(&self) -> &Segment {
        &self.segments[&self.active]
    }

    /// The error every write gets once an fsync has failed.
    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(reason) => Err(Error::io(
                format!(
                    "writing to the store in {}: refused because {reason}; the data already \
                     acknowledged is still readable, reopen the store to write again",
                    self.dir.display()
                ),
                io::Error::other("store is read-only after a failed fsync"),
            )),
        }
    }

    /// Reads the value of `entry` (stored under `key`) from memory, the write buffer or
    /// its segment, checking the record's checksum.
    fn read_value(&self, key: &str, entry: &IndexEntry) -> Result<Bytes> {
        if let Some(value) = &entry.value {
            return Ok(value.clone());
        }
        if entry.loc.seg == RECLAIMED {
            // Expired and dropped by compaction; the runtime never shows an expired value.
            return Ok(Bytes::new());
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
        read_record_value(&segment.file, &place, offset, len, key, entry.version)
    }

    /// How readers will find the value of `entry` once its batch is durable.
    fn published_value(&self, entry: &IndexEntry) -> FileValue {
        if let Some(value) = &entry.value {
            return FileValue::Inline(value.clone());
        }
        match self.segments.get(&entry.loc.seg) {
            Some(segment) if entry.loc.seg != RECLAIMED => FileValue::OnDisk {
                file: segment.file.clone(),
                segment: segment.id,
                offset: entry.loc.offset,
                len: entry.loc.len,
            },
            // A reclaimed (expired) record: readers skip it by its expiry.
            _ => FileValue::Inline(Bytes::new()),
        }
    }

    /// Undoes every frame applied since the last successful write: the index goes back to
    /// what it was and the active segment back to `len` bytes.
    fn rollback(&mut self, len: u64, poison: Option<String>) {
        let active = self.active;
        // Without an active segment (an invariant broken elsewhere) there are no bytes to cut,
        // but the index must still go back.
        if let Some(segment) = self.segments.get_mut(&active) {
            if let Err(e) = segment.file.set_len(len) {
                tracing::error!(file = %segment.path.display(), error = %e, "could not cut a failed write off the segment");
                self.poisoned.get_or_insert_with(|| {
                    format!(
                        "a failed write could not be cut off {}",
                        segment.path.display()
                    )
                });
            }
            self.file_bytes -= segment.len - len;
            segment.len = len;
        }
        while let Some((key, old)) = self.undo.pop() {
            let restored = old.as_ref().map_or(0, IndexEntry::live_len);
            let current = match old {
                Some(old) => self.index.insert(key, old),
                None => self.index.remove(&key),
            };
            self.live_bytes =
                self.live_bytes + restored - current.as_ref().map_or(0, IndexEntry::live_len);
        }
        self.buf.clear();
        self.buf_frames = 0;
        self.buf_records = 0;
        if let Some(reason) = poison {
            self.poisoned.get_or_insert(reason);
        }
        self.publish();
    }

    /// fdatasync on the active segment.
    fn force(&mut self) -> Result<()> {
        let segment = self.active_segment();
        segment
            .file
            .sync_data()
            .map_err(|e| Error::io(io_context("fdatasync", &segment.path), e))?;
        self.last_fsync = Instant::now();
        self.unsynced = false;
        self.fsync_due = None;
        self.shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the buffered frames to the active segment and applies the sync policy; on
    /// failure the frames are rolled back.
    fn write_out(&mut self, force: bool) -> Result<()> {
        if self.buf.is_empty() {
            self.undo.clear();
            return if force && self.unsynced {
                self.force()
            } else {
                Ok(())
            };
        }
        let Some(segment) = self.segments.get_mut(&self.active) else {
            let reason = format!("active segment {} is missing", self.active);
            tracing::error!(reason, "write refused; the batch is rolled back");
            self.rollback(0, Some(reason.clone()));
            return Err(Error::Backend(reason));
        };
        let start = segment.len;
        if let Err(e) = write_all_at(&segment.file, &self.buf, start) {
            let error = Error::io(io_context("appending to", &segment.path), e);
            tracing::error!(%error, "write failed; the batch is rolled back and the store stays readable");
            self.rollback(start, None);
            return Err(error);
        }
        segment.len += self.buf.len() as u64;
        self.file_bytes += self.buf.len() as u64;
        self.unsynced = true;
        let force = force
            || match self.options.sync {
                SyncPolicy::Always => true,
                SyncPolicy::Never => false,
                SyncPolicy::Interval(d) => self.last_fsync.elapsed() >= d,
            };
        if force {
            if let Err(error) = self.force() {
                tracing::error!(%error, "fdatasync failed; the batch is rolled back and the store refuses further writes");
                self.rollback(start, Some(format!("an fdatasync failed ({error})")));
                return Err(error);
            }
        } else if let SyncPolicy::Interval(d) = self.options.sync {
            self.fsync_due.get_or_insert(self.last_fsync + d);
        }
        let stats = &self.shared.stats;
        stats
            .frames_written
            .fetch_add(self.buf_frames, Ordering::Relaxed);
        stats
            .records_written
            .fetch_add(self.buf_records, Ordering::Relaxed);
        self.buf_frames = 0;
        self.buf_records = 0;
        self.buf.clear();
        if self.buf.capacity() > BUFFER_KEEP {
            self.buf = Vec::new();
        }
        self.undo.clear();
        if self.active_segment().len >= self.options.segment_size {
            self.roll_due = true;
        }
        self.publish();
        Ok(())
    }

    /// Seals the active segment (made durable whatever the policy) and starts a new one.
    fn roll(&mut self) -> Result<()> {
        self.write_out(true)?;
        let id = self.active + 1;
        let segment = create_segment(&self.dir, id, self.last_version).map_err(|e| {
            Error::io(
                io_context("creating segment", &self.dir.join(segment_file_name(id))),
                e,
            )
        })?;
        tracing::debug!(sealed = self.active, active = id, "segment rolled");
        self.roll_backoff.succeeded();
        self.file_bytes += segment.len;
        self.segments.insert(id, segment);
        self.active = id;
        self.roll_due = false;
        self.publish();
        Ok(())
    }

    /// When automatic compaction may start, if the files call for it: at once, or when the
    /// spacing between runs or the back-off after a failure has passed.
    fn auto_compaction_at(&self) -> Option<Instant> {
        let ratio = self.options.compact_garbage_ratio;
        let wanted = self.poisoned.is_none()
            && ratio <= 1.0
            && self.file_bytes >= self.options.compact_min_bytes
            && garbage_ratio(self.live_bytes, self.file_bytes) >= ratio;
        if !wanted {
            return None;
        }
        // Never "now": a caller compares against a `now` taken before this call.
        let spaced = self.last_auto.map_or(self.opened, |t| t + AUTO_SPACING);
        Some(self.compact_backoff.until.map_or(spaced, |r| r.max(spaced)))
    }

    fn auto_compaction_due(&self, now: Instant) -> bool {
        self.auto_compaction_at().is_some_and(|t| t <= now)
    }

    fn take_requests(&mut self) -> Vec<CompactWaiter> {
        std::mem::take(&mut self.requests)
    }

    /// Seals the active segment and starts rewriting every sealed segment on a background
    /// thread.
    fn start_compaction(&mut self, waiters: Vec<CompactWaiter>, automatic: bool) {
        if automatic {
            // Spaces automatic runs even when this one finds nothing to do.
            self.last_auto = Some(Instant::now());
        }
        if self.active_segment().len > HEADER_LEN as u64 || !self.buf.is_empty() {
            if let Err(error) = self.roll() {
                tracing::error!(%error, "compaction could not seal the active segment");
                self.compact_backoff.failed();
                self.shared
                    .stats
                    .failed_compactions
                    .fetch_add(1, Ordering::Relaxed);
                for waiter in waiters {
                    waiter.respond(Err(error.clone()));
                }
                return;
            }
        }
        let mut inputs: Vec<Input> = self
            .segments
            .iter()
            .filter(|(id, s)| **id != self.active && !s.retired)
            .map(|(id, s)| Input {
                id: *id,
                disk_id: s.id,
                path: s.path.clone(),
                file: s.file.clone(),
                len: s.len,
            })
            .collect();
        inputs.sort_by_key(|i| i.disk_id);
        let mut input_ids: Vec<u64> = inputs.iter().map(|i| i.id).collect();
        input_ids.sort_unstable();
        if inputs.is_empty() {
            for waiter in waiters {
                waiter.respond(Ok(()));
            }
            return;
        }
        let last = inputs[inputs.len() - 1].disk_id;
        let tmp = self
            .dir
            .join(format!("{}{COMPACT_SUFFIX}", segment_file_name(last)));
        let cancel = Arc::new(AtomicBool::new(false));
        let before_bytes: u64 = inputs.iter().map(|i| i.len).sum();
        let job = Job {
            inputs,
            tmp: tmp.clone(),
            cutoff: SystemTime::now(),
            cancel: cancel.clone(),
            skip_corrupt: self.options.skip_corrupt_frames,
            base_version: self.last_version,
        };
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("store-file-compact".into())
            .spawn(move || {
                let _ = tx.send(compaction::run(&job));
            });
        match spawned {
            Ok(thread) => {
                tracing::debug!(bytes = before_bytes, "compaction started");
                self.compaction = Some(Running {
                    thread: Some(thread),
                    result: rx,
                    cancel,
                    tmp,
                    started: Instant::now(),
                    next_poll: Instant::now() + COMPACTION_POLL,
                    waiters,
                    inputs: input_ids,
                });
                self.publish();
            }
            Err(e) => {
                let error = Error::io("spawning the compaction thread", e);
                tracing::error!(%error, "compaction not started");
                self.compact_backoff.failed();
                for waiter in waiters {
                    waiter.respond(Err(error.clone()));
                }
            }
        }
    }

    /// Starts installing a finished compaction, if there is one.
    fn poll_compaction(&mut self) {
        let Some(running) = &mut self.compaction else {
            return;
        };
        let result = match running.result.try_recv() {
            Ok(result) => result,
            Err(mpsc::TryRecvError::Empty) => {
                running.next_poll = Instant::now() + COMPACTION_POLL;
                return;
            }
            Err(mpsc::TryRecvError::Disconnected) => Err(Error::Backend(
                "the compaction thread stopped without a result".into(),
            )),
        };
        let mut running = self.compaction.take().expect("running compaction");
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        let error = match result.and_then(|output| self.install(output, &mut running)) {
            Ok(()) => return,
            Err(error) => error,
        };
        remove_leftover(&running.tmp);
        tracing::error!(%error, "compaction failed; the store is unchanged");
        self.compact_backoff.failed();
        self.shared
            .stats
            .failed_compactions
            .fetch_add(1, Ordering::Relaxed);
        self.publish();
        for waiter in running.waiters.drain(..) {
            waiter.respond(Err(error.clone()));
        }
    }

    /// The foreground end of compaction: rename the output over the newest input, open it
    /// under a new in-memory id, retire the inputs and delete their files, then let
    /// [`migrate_step`](Self::migrate_step) move the index over. Each step on disk leaves a
    /// state recovery understands; the index moves only in memory.
    fn install(&mut self, output: Output, running: &mut Running) -> Result<()> {
        let Output {
            first,
            last,
            tmp,
            file,
            len,
            moved,
            expired,
            input_bytes,
        } = output;
        let path = self.dir.join(segment_file_name(last));
        std::fs::rename(&tmp, &path).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })?;
        // From here on the output is in place; recovery drops the inputs it covers.
        let renamed_durably = match sync_dir(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "syncing the directory after compaction failed; the replaced segments are kept until the next open");
                false
            }
        };
        let target = self.next_output_id;
        self.next_output_id += 1;
        self.segments.insert(
            target,
            Segment {
                id: last,
                path,
                file: Arc::new(file),
                len,
                kind: KIND_COMPACTED,
                retired: false,
            },
        );
        let inputs = std::mem::take(&mut running.inputs);
        let mut removed = false;
        for id in &inputs {
            let Some(segment) = self.segments.get_mut(id) else {
                continue;
            };
            segment.retired = true;
            // Open handles keep serving reads until the index has moved; the newest
            // input's name now belongs to the output.
            if renamed_durably && segment.id != last {
                match std::fs::remove_file(&segment.path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(file = %segment.path.display(), error = %e, "removing a compacted segment failed; it is removed at the next open")
                    }
                }
            }
        }
        if removed {
            if let Err(e) = sync_dir(&self.dir) {
                tracing::warn!(error = %e, "syncing the directory after removing compacted segments failed");
            }
        }
        self.file_bytes = self
            .segments
            .values()
            .filter(|s| !s.retired)
            .map(|s| s.len)
            .sum();
        tracing::debug!(
            first,
            last,
            "compaction output in place; moving the index over"
        );
        self.migration = Some(Migration {
            moved: moved.into_iter(),
            expired: expired.into_iter(),
            target,
            inputs,
            waiters: std::mem::take(&mut running.waiters),
            started: running.started,
            input_bytes,
            output_bytes: len,
        });
        self.publish();
        Ok(())
    }

    /// Moves the next chunk of index entries from the retired inputs to the output; once
    /// all are moved, closes the inputs and answers the callers of `compact`.
    fn migrate_step(&mut self) {
        let Some(migration) = &mut self.migration else {
            return;
        };
        let retired = |seg: &u64| migration.inputs.binary_search(seg).is_ok();
        let mut budget = MIGRATE_CHUNK;
        for m in migration.moved.by_ref() {
            if let Some(entry) = self.index.get_mut(m.key.as_str()) {
                // Versions are unique: an entry still naming the copied version still
                // points at the copied record.
                if entry.version == m.version && retired(&entry.loc.seg) {
                    entry.loc = Loc {
                        seg: migration.target,
                        offset: m.offset,
                        len: m.len,
                    };
                }
            }
            budget -= 1;
            if budget == 0 {
                return;
            }
        }
        for (key, version) in migration.expired.by_ref() {
            if let Some(entry) = self.index.get_mut(key.as_str()) {
                if entry.version == version && retired(&entry.loc.seg) {
                    self.live_bytes -= entry.live_len();
                    entry.loc.seg = RECLAIMED;
                }
            }
            budget -= 1;
            if budget == 0 {
                return;
            }
        }
        let migration = self.migration.take().expect("migration");
        for id in &migration.inputs {
            self.segments.remove(id);
        }
        debug_assert!(
            self.index
                .values()
                .all(|e| e.loc.seg == RECLAIMED || self.segments.contains_key(&e.loc.seg)),
            "an index entry points at a segment compaction removed"
        );
        self.shared
            .stats
            .compactions
            .fetch_add(1, Ordering::Relaxed);
        self.compact_backoff.succeeded();
        tracing::info!(
            dir = %self.dir.display(),
            segments_in = migration.inputs.len(),
            bytes_before = migration.input_bytes,
            bytes_after = migration.output_bytes,
            live_bytes = self.live_bytes,
            file_bytes = self.file_bytes,
            elapsed = ?migration.started.elapsed(),
            "compaction installed"
        );
        // Publish first: a caller woken below reads the stats of the installed result.
        self.publish();
        for waiter in migration.waiters {
            waiter.respond(Ok(()));
        }
    }

    /// Stops a running compaction and removes its output. An install in progress is
    /// complete on disk already; only the in-memory move is dropped.
    fn cancel_compaction(&mut self) {
        if let Some(migration) = self.migration.take() {
            for waiter in migration.waiters {
                waiter.respond(Err(Error::Closed));
            }
        }
        if let Some(mut running) = self.compaction.take() {
            running.cancel.store(true, Ordering::Relaxed);
            if let Some(thread) = running.thread.take() {
                let _ = thread.join();
            }
            remove_leftover(&running.tmp);
            for waiter in running.waiters.drain(..) {
                waiter.respond(Err(Error::Closed));
            }
        }
    }
}

impl Drop for FileEngine {
    fn drop(&mut self) {
        // Only reached without `close` if the actor stopped abnormally; do not block.
        if let Some(running) = &self.compaction {
            running.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// Creates `dir` (and its parents) and checks that it is a directory.
fn prepare_dir(dir: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(dir) {
        if !meta.is_dir() {
            return Err(Error::io(
                format!("opening store directory {}", dir.display()),
                io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "the path exists and is not a directory",
                ),
            ));
        }
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
            visit(key, entry.meta(), self.published_value(entry));
        }
        Ok(())
    }

    fn request(&mut self, Compact: Compact, responder: Responder) {
        self.requests.push(responder);
    }

    fn describe(&self) -> String {
        format!("file {:?}", self.dir.display().to_string())
    }

    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        let Some(entry) = self.index.get(key) else {
            return Ok(None);
        };
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

    fn apply(&mut self, batch: Vec<Mutation>) -> Result<Vec<FileValue>> {
        self.check_writable()?;
        // Encode the whole batch as one frame first; the index changes only once it fits.
        let frame_start = self.buf.len();
        let frame_offset = self.active_segment().len + frame_start as u64;
        self.buf.resize(frame_start + FRAME_HEADER_LEN, 0);
        let mut placed: Vec<Option<(usize, u32)>> = Vec::with_capacity(batch.len());
        let mut count = 0u32;
        for mutation in &batch {
            let at = self.buf.len();
            let encoded = match mutation {
                Mutation::Put { key, entry } => encode_record(
                    &mut self.buf,
                    KIND_PUT,
                    entry.version,
                    entry.expires_at,
                    key,
                    &entry.value,
                ),
                other => {
                    let key = other.key();
                    if !self.index.contains_key(key) {
                        placed.push(None);
                        continue;
                    }
                    encode_record(
                        &mut self.buf,
                        KIND_DELETE,
                        self.last_version,
                        None,
                        key,
                        b"",
                    )
                }
            };
            match encoded {
                Ok(len) => {
                    placed.push(Some((at - frame_start, len as u32)));
                    count += 1;
                }
                Err(error) => {
                    self.buf.truncate(frame_start);
                    return Err(error);
                }
            }
        }
        let payload_len = self.buf.len() - frame_start - FRAME_HEADER_LEN;
        let mut published = Vec::new();
        if count == 0 {
            self.buf.truncate(frame_start);
            return Ok(published);
        }
        if payload_len > MAX_FRAME_PAYLOAD {
            self.buf.truncate(frame_start);
            return Err(Error::InvalidValue(format!(
                "a batch of {count} records takes {payload_len} bytes; one atomic write holds at most {MAX_FRAME_PAYLOAD}"
            )));
        }
        let (head, payload) = self.buf[frame_start..].split_at_mut(FRAME_HEADER_LEN);
        encode_frame_header(head, payload, count);
        self.buf_frames += 1;
        self.buf_records += u64::from(count);

        let cache = self.options.cache_values_up_to;
        for (mutation, place) in batch.into_iter().zip(placed) {
            let Some((at, len)) = place else { continue };
            match mutation {
                Mutation::Put { key, entry } => {
                    self.last_version = self.last_version.max(entry.version);
                    let new = IndexEntry {
                        version: entry.version,
                        expires_at: entry.expires_at,
                        loc: Loc {
                            seg: self.active,
                            offset: frame_offset + at as u64,
                            len,
                        },
                        value: (entry.value.len() <= cache).then_some(entry.value),
                    };
                    self.live_bytes += new.live_len();
                    published.push(self.published_value(&new));
                    let old = match self.index.get_mut(key.as_str()) {
                        Some(slot) => Some(std::mem::replace(slot, new)),
                        None => {
                            self.index.insert(key.clone(), new);
                            None
                        }
                    };
                    if let Some(old) = &old {
                        self.live_bytes -= old.live_len();
                    }
                    self.undo.push((key, old));
                }
                other => {
                    let key = other.key().to_owned();
                    if let Some(old) = self.index.remove(key.as_str()) {
                        self.live_bytes -= old.live_len();
                        self.undo.push((key, Some(old)));
                    }
                }
            }
        }
        Ok(published)
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
        let now = Instant::now();
        let mut deadline = self.fsync_due;
        let mut at = |t: Instant| {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        };
        if self.roll_due && self.poisoned.is_none() {
            at(self.roll_backoff.until.unwrap_or(now));
        }
        if self.migration.is_some() {
            at(now);
        } else if let Some(running) = &self.compaction {
            at(running.next_poll);
        } else if !self.requests.is_empty() {
            at(now);
        } else if let Some(t) = self.auto_compaction_at() {
            at(t);
        }
        deadline
    }

    fn on_deadline(&mut self) -> Result<()> {
        let now = Instant::now();
        if self.fsync_due.is_some_and(|d| d <= now) {
            if let Err(error) = self.force() {
                tracing::error!(%error, "interval fdatasync failed; the store refuses further writes");
                self.poisoned
                    .get_or_insert_with(|| format!("an fdatasync failed ({error})"));
                self.fsync_due = None;
                return Err(error);
            }
        }
        self.poll_compaction();
        self.migrate_step();
        if self.roll_due && self.poisoned.is_none() && self.roll_backoff.ready(now) {
            if let Err(error) = self.roll() {
                tracing::error!(%error, "starting a new segment failed; retrying later");
                self.roll_backoff.failed();
            }
        }
        if !self.compacting() && self.poisoned.is_none() {
            let waiters = self.take_requests();
            let automatic = waiters.is_empty();
            if !waiters.is_empty() || self.auto_compaction_due(now) {
                self.start_compaction(waiters, automatic);
            }
        }
        if self.poisoned.is_some() {
            // Refuse compaction requests rather than leave their callers waiting.
            for waiter in self.take_requests() {
                waiter.respond(self.check_writable());
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.cancel_compaction();
        let result = self.write_out(true);
        for waiter in self.take_requests() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, cache: usize) -> FileEngine {
        let options = FileOptions {
            sync: SyncPolicy::Never,
            cache_values_up_to: cache,
            ..Default::default()
        };
        FileEngine::open(dir.to_path_buf(), options, Arc::default()).unwrap()
    }

    fn put(key: &str, value: &str, version: u64, expires_at: Option<SystemTime>) -> Mutation {
        Mutation::Put {
            key: key.into(),
            entry: Entry {
                value: Bytes::copy_from_slice(value.as_bytes()),
                version,
                expires_at,
            },
        }
    }

    fn compact(engine: &mut FileEngine) {
        engine.start_compaction(Vec::new(), false);
        while engine.compacting() {
            std::thread::sleep(Duration::from_millis(1));
            engine.poll_compaction();
            engine.migrate_step();
        }
    }

    #[test]
    fn compaction_reclaims_expired_records_the_runtime_has_not_removed_yet() {
        let dir = tempfile::tempdir().unwrap();
        let past = SystemTime::now() - Duration::from_secs(1);
        let mut engine = open(dir.path(), 0);
        engine
            .apply(vec![
                put("live", "kept", 1, None),
                put("dead", "gone", 2, Some(past)),
            ])
            .unwrap();
        engine.sync().unwrap();
        compact(&mut engine);
        assert_eq!(engine.shared.stats.compactions.load(Ordering::Relaxed), 1);
        // The runtime still sees the expired entry's metadata (and hides it); its bytes are
        // gone from the files and from the live count.
        let dead = engine.get("dead").unwrap().unwrap();
        assert_eq!((dead.version, dead.expires_at), (2, Some(past)));
        assert!(dead.value.is_empty());
        assert_eq!(engine.index["dead"].loc.seg, RECLAIMED);
        assert_eq!(engine.live_bytes, engine.index["live"].live_len());
        assert_eq!(&engine.get("live").unwrap().unwrap().value[..], b"kept");
        // The runtime's timer then removes it.
        engine
            .apply(vec![Mutation::Expire { key: "dead".into() }])
            .unwrap();
        engine.close().unwrap();
        drop(engine);
        let mut engine = open(dir.path(), 0);
        assert!(engine.get("dead").unwrap().is_none());
        assert_eq!(&engine.get("live").unwrap().unwrap().value[..], b"kept");
        assert_eq!(engine.last_version(), 2);
        engine.close().unwrap();
    }

    #[test]
    fn deadlines_never_stay_due_when_there_is_nothing_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileOptions {
            sync: SyncPolicy::Never,
            compact_garbage_ratio: 0.0,
            compact_min_bytes: 0,
            ..Default::default()
        };
        let mut engine = FileEngine::open(dir.path().into(), options, Arc::default()).unwrap();
        // Eager compaction of an empty store: due once, then spaced out.
        assert!(engine.next_deadline().is_some_and(|d| d <= Instant::now()));
        engine.on_deadline().unwrap();
        assert!(engine.compaction.is_none());
        let soon = Instant::now() + AUTO_SPACING / 2;
        assert!(engine.next_deadline().is_none_or(|d| d > soon));
        // A store that refuses writes asks for no maintenance.
        engine.poisoned = Some("test".into());
        engine.roll_due = true;
        engine.last_auto = None;
        assert_eq!(engine.next_deadline(), None);
        engine.close().unwrap();
    }

    #[test]
    fn reads_see_unwritten_frames_and_a_failed_apply_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = open(dir.path(), 0);
        engine.apply(vec![put("a", "1", 1, None)]).unwrap();
        // Not written yet: served from the buffer.
        assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
        let before = (engine.buf.len(), engine.live_bytes, engine.index.len());
        let huge = Bytes::from(vec![0u8; crate::MAX_VALUE_LEN + 1]);
        let batch = vec![
            put("b", "2", 2, None),
            Mutation::Put {
                key: "c".into(),
                entry: Entry {
                    value: huge,
                    version: 3,
                    expires_at: None,
                },
            },
        ];
        assert!(matches!(engine.apply(batch), Err(Error::InvalidValue(_))));
        assert_eq!(
            before,
            (engine.buf.len(), engine.live_bytes, engine.index.len())
        );
        assert!(engine.get("b").unwrap().is_none());
        engine.sync().unwrap();
        assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
        engine.close().unwrap();
    }

    #[test]
    fn a_failed_write_rolls_the_index_and_the_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = open(dir.path(), 1024);
        engine.apply(vec![put("a", "1", 1, None)]).unwrap();
        engine.sync().unwrap();
        let len = engine.active_segment().len;
        let live = engine.live_bytes;
        engine
            .apply(vec![put("a", "2", 2, None), put("b", "3", 3, None)])
            .unwrap();
        engine
            .apply(vec![Mutation::Delete { key: "a".into() }])
            .unwrap();
        // Swap the active segment's file for a read-only handle: the write fails.
        let path = engine.active_segment().path.clone();
        let read_only = std::fs::File::open(&path).unwrap();
        engine.segments.get_mut(&engine.active).unwrap().file = Arc::new(read_only);
        assert!(matches!(engine.sync(), Err(Error::Io { .. })));
        assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
        assert!(engine.get("b").unwrap().is_none());
        assert_eq!(
            (engine.active_segment().len, engine.live_bytes),
            (len, live)
        );
        assert!(engine.buf.is_empty() && engine.undo.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }
}
