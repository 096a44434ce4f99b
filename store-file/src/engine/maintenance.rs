//! Work the engine does between batches (from `on_deadline`): interval fsyncs, rolling a
//! full segment, and compaction's foreground steps: start (seal the active segment, hand
//! the sealed ones to a background thread), install (rename the output into place, retire
//! the inputs) and migration (move the index entries, and the read view's value handles,
//! over to the output a chunk at a time).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use store_core::runtime::Moved;
use store_core::{Error, Result};

use super::{CompactWaiter, FileEngine};
use crate::compaction::{self, Input, Job, Output};
use crate::format::{HEADER_LEN, KIND_COMPACTED};
use crate::index::{Loc, RECLAIMED};
use crate::segment::{remove_leftover, segment_file_name, Segment, COMPACT_SUFFIX};
use crate::stats::garbage_ratio;
use crate::value::FileValue;

/// How long to wait before retrying a failed roll or automatic compaction; doubled after
/// each further failure, up to 64 times this.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Least time between two automatic compactions.
pub(super) const AUTO_SPACING: Duration = Duration::from_millis(100);
/// Index entries moved to a compaction's output per `on_deadline` call, so that installing
/// a large compaction never holds up reads and writes for long.
const MIGRATE_CHUNK: usize = 16 * 1024;

/// When a failed roll or compaction may be tried again: after `RETRY_AFTER`, doubled for
/// each further failure in a row.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
    pub(super) until: Option<Instant>,
}

impl Backoff {
    fn failed(&mut self) {
        let wait = RETRY_AFTER * 2u32.pow(self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        self.until = Instant::now().checked_add(wait);
    }

    pub(super) fn succeeded(&mut self) {
        *self = Self::default();
    }

    fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }
}

/// A compaction running on its background thread.
pub(super) struct Running {
    thread: Option<JoinHandle<()>>,
    result: mpsc::Receiver<Result<Output>>,
    cancel: Arc<AtomicBool>,
    tmp: std::path::PathBuf,
    started: Instant,
    waiters: Vec<CompactWaiter>,
    /// In-memory ids of the inputs, sorted.
    inputs: Vec<u64>,
}

impl Running {
    /// Asks the background thread to stop (without waiting for it).
    pub(super) fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The last step of installing a compaction: index entries still pointing at the (retired)
/// inputs are moved to the output, a chunk per `on_deadline`.
pub(super) struct Migration {
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

impl FileEngine {
    pub(super) fn maintenance_deadline(&self) -> Option<Instant> {
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
        } else if self.compaction.is_some() {
            // Running: the compaction thread wakes the actor when it is done (no polling).
        } else if !self.requests.is_empty() || (self.heal && self.poisoned.is_none()) {
            at(now);
        } else if let Some(t) = self.auto_compaction_at() {
            at(t);
        }
        deadline
    }

    pub(super) fn maintain(&mut self) -> Result<()> {
        let now = Instant::now();
        if self.fsync_due.is_some_and(|d| d <= now) {
            if let Err(error) = self.force() {
                tracing::error!(%error, "interval fdatasync failed; the store refuses further writes");
                self.poison(format!("an fdatasync failed ({error})"));
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
                self.shared
                    .stats
                    .failed_rolls
                    .fetch_add(1, Ordering::Relaxed);
                // A roll fails for good when the directory is gone: find out now.
                let _ = self.check_links();
                self.publish();
            }
        }
        if !self.compacting() && self.poisoned.is_none() {
            let waiters = std::mem::take(&mut self.requests);
            let automatic = waiters.is_empty() && !self.heal;
            if !waiters.is_empty() || self.heal || self.auto_compaction_due(now) {
                self.heal = false;
                self.start_compaction(waiters, automatic);
            }
        }
        if self.poisoned.is_some() {
            // Refuse compaction requests rather than leave their callers waiting.
            for waiter in std::mem::take(&mut self.requests) {
                waiter.respond(Err(self.refusal()));
            }
        }
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

    /// Counts, logs and reports a compaction that failed or could not start; checks whether
    /// the store's files are gone.
    fn compaction_failed(&mut self, error: &Error, waiters: Vec<CompactWaiter>) {
        tracing::error!(%error, "compaction failed; the store is unchanged");
        self.compact_backoff.failed();
        self.shared
            .stats
            .failed_compactions
            .fetch_add(1, Ordering::Relaxed);
        let _ = self.check_links();
        self.publish();
        for waiter in waiters {
            waiter.respond(Err(error.clone()));
        }
    }

    /// Seals the active segment and starts rewriting every sealed segment on a background
    /// thread.
    pub(super) fn start_compaction(&mut self, waiters: Vec<CompactWaiter>, automatic: bool) {
        if automatic {
            // Spaces automatic runs even when this one finds nothing to do.
            self.last_auto = Some(Instant::now());
        }
        let active_len = self.active_segment().map_or(0, |s| s.len);
        if active_len > HEADER_LEN as u64 || !self.buf.is_empty() {
            if let Err(error) = self.roll() {
                self.compaction_failed(&error, waiters);
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
            disk: self.disk.clone(),
            store_id: self.manifest.store_id,
            inputs,
            tmp: tmp.clone(),
            cutoff: SystemTime::now(),
            cancel: cancel.clone(),
            skip_corrupt: self.options.skip_corrupt_frames,
            base_version: self.last_version,
        };
        let (tx, rx) = mpsc::channel();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("store-file-compact".into())
            .spawn(move || {
                let _ = tx.send(compaction::run(&job));
                // The actor installs the result at its next maintenance step: ask for one.
                if let Some(waker) = waker {
                    waker.wake();
                }
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
                    waiters,
                    inputs: input_ids,
                });
                self.publish();
            }
            Err(e) => {
                let error = Error::io("spawning the compaction thread", e);
                self.compaction_failed(&error, waiters);
            }
        }
    }

    /// Starts installing a finished compaction, if there is one.
    pub(super) fn poll_compaction(&mut self) {
        let Some(running) = &mut self.compaction else {
            return;
        };
        let result = match running.result.try_recv() {
            Ok(result) => result,
            // Not done yet; the thread wakes the actor when it is.
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => Err(Error::Backend(
                "the compaction thread stopped without a result".into(),
            )),
        };
        let Some(mut running) = self.compaction.take() else {
            return;
        };
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        let error = match result.and_then(|output| self.install(output, &mut running)) {
            Ok(()) => return,
            Err(error) => error,
        };
        remove_leftover(&*self.disk, &running.tmp);
        let waiters = std::mem::take(&mut running.waiters);
        self.compaction_failed(&error, waiters);
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
            skipped_frames,
        } = output;
        if skipped_frames > 0 {
            self.shared
                .stats
                .skipped_frames
                .fetch_add(skipped_frames, Ordering::Relaxed);
        }
        let path = self.dir.join(segment_file_name(last));
        self.disk.rename(&tmp, &path).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })?;
        // From here on the output is in place; recovery drops the inputs it covers.
        let renamed_durably = match self.disk.sync_dir(&self.dir) {
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
                file,
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
                match self.disk.remove(&segment.path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(file = %segment.path.display(), error = %e, "removing a compacted segment failed; it is removed at the next open")
                    }
                }
            }
        }
        if removed {
            if let Err(e) = self.disk.sync_dir(&self.dir) {
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

    /// Moves the next chunk of index entries from the retired inputs to the output, and
    /// notes the moved value handles for the read view (so that it lets go of the inputs'
    /// files); once all are moved, closes the inputs and answers the callers of `compact`.
    pub(super) fn migrate_step(&mut self) {
        let Some(migration) = &mut self.migration else {
            return;
        };
        let Some(output) = self.segments.get(&migration.target) else {
            return;
        };
        let (output_file, output_number) = (output.file.clone(), output.id);
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
                    if entry.value.is_none() {
                        // Readers hold a handle on the input; give them the output's.
                        self.moved.push(Moved {
                            key: m.key,
                            version: m.version,
                            value: FileValue::OnDisk {
                                file: output_file.clone(),
                                segment: output_number,
                                offset: m.offset,
                                len: m.len,
                            },
                        });
                    }
                }
            }
            budget -= 1;
            if budget == 0 {
                return;
            }
        }
        for (key, version) in migration.expired.by_ref() {
            if let Some(entry) = self.index.get_mut(key.as_str()) {
                // Readers keep their handle on the input until the runtime reclaims the
                // key (moments from now: it has expired); they never see a dropped value.
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
        let Some(migration) = self.migration.take() else {
            return;
        };
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
        self.publish();
        // The runtime delivers these after it has published the handles moved with this
        // step: a caller of `compact` then finds the replaced files let go.
        for waiter in migration.waiters {
            waiter.respond(Ok(()));
        }
    }

    /// Stops a running compaction and removes its output. An install in progress is
    /// complete on disk already; only the in-memory move is dropped.
    pub(super) fn cancel_compaction(&mut self) {
        if let Some(migration) = self.migration.take() {
            for waiter in migration.waiters {
                waiter.respond(Err(Error::Closed));
            }
        }
        if let Some(mut running) = self.compaction.take() {
            running.cancel();
            if let Some(thread) = running.thread.take() {
                let _ = thread.join();
            }
            remove_leftover(&*self.disk, &running.tmp);
            for waiter in running.waiters.drain(..) {
                waiter.respond(Err(Error::Closed));
            }
        }
    }
}
