//! The write path: a batch is encoded as one frame into the write buffer and applied to
//! the index; after the batch the buffer is written with one `pwrite` and synced under the
//! policy (group commit). A failed write is cut off the file and rolled back in the index.

use std::sync::atomic::Ordering;
use std::time::Instant;

use store_core::runtime::Mutation;
use store_core::{Error, Result};

use super::{io_context, FileEngine};
use crate::format::{
    encode_frame_header, encode_record, Manifest, FRAME_HEADER_LEN, KIND_DELETE, KIND_PUT,
    MAX_FRAME_PAYLOAD, MAX_VERSION,
};
use crate::index::{IndexEntry, Loc};
use crate::manifest::{self, VERSION_BLOCK};
use crate::segment::{create_segment, remove_leftover, segment_file_name, Link};
use crate::value::FileValue;
use crate::SyncPolicy;

/// A write buffer that grew past this is given back to the allocator after use.
const BUFFER_KEEP: usize = 8 << 20;

impl FileEngine {
    /// Encodes `batch` as one frame into the write buffer and applies it to the index.
    pub(super) fn apply_batch(
        &mut self,
        batch: &[Mutation],
        published: &mut Vec<FileValue>,
    ) -> Result<()> {
        self.check_writable()?;
        // Encode the whole batch as one frame first; the index changes only once it fits.
        let frame_start = self.buf.len();
        let frame_offset = self.active_segment()?.len + frame_start as u64;
        self.buf.resize(frame_start + FRAME_HEADER_LEN, 0);
        let mut placed: Vec<Option<(usize, u32)>> = Vec::with_capacity(batch.len());
        let mut count = 0u32;
        for mutation in batch {
            let at = self.buf.len();
            let encoded = match mutation {
                Mutation::Put { entry, .. } if entry.version > MAX_VERSION => {
                    Err(Error::Corrupt(format!(
                        "version {} is above the highest one a store may hold ({MAX_VERSION})",
                        entry.version
                    )))
                }
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
        if count == 0 {
            self.buf.truncate(frame_start);
            return Ok(());
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
        let active = self.active_segment()?;
        let (active_id, active_file, active_number) = (self.active, active.file.clone(), active.id);
        for (mutation, place) in batch.iter().zip(placed) {
            let Some((at, len)) = place else { continue };
            match mutation {
                Mutation::Put { key, entry } => {
                    self.last_version = self.last_version.max(entry.version);
                    let offset = frame_offset + at as u64;
                    let value = (entry.value.len() <= cache).then(|| entry.value.clone());
                    published.push(match &value {
                        Some(value) => FileValue::Inline(value.clone()),
                        None => FileValue::OnDisk {
                            file: active_file.clone(),
                            segment: active_number,
                            offset,
                            len,
                        },
                    });
                    let new = IndexEntry {
                        version: entry.version,
                        expires_at: entry.expires_at,
                        loc: Loc {
                            seg: active_id,
                            offset,
                            len,
                        },
                        value,
                    };
                    self.live_bytes += new.live_len();
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
                    self.undo.push((key.clone(), old));
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
        Ok(())
    }

    /// Undoes every frame applied since the last successful write: the index goes back to
    /// what it was and the active segment back to `len` bytes.
    pub(super) fn rollback(&mut self, len: u64, poison: Option<String>) {
        let active = self.active;
        // Without an active segment there are no bytes to cut, but the index must still go
        // back.
        let mut cut_failed = None;
        if let Some(segment) = self.segments.get_mut(&active) {
            // Always cut: a failed (short) write may have extended the file without
            // `segment.len` knowing.
            if let Err(e) = segment.file.set_len(len) {
                tracing::error!(file = %segment.path.display(), error = %e, "could not cut a failed write off the segment");
                cut_failed = Some(format!(
                    "a failed write could not be cut off {}",
                    segment.path.display()
                ));
            }
            self.file_bytes -= segment.len.saturating_sub(len);
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
        if let Some(reason) = cut_failed.or(poison) {
            self.poison(reason);
        }
        self.publish();
    }

    /// fdatasync on the active segment.
    pub(super) fn force(&mut self) -> Result<()> {
        let segment = self.active_segment()?;
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

    /// Fails (and makes the store refuse writes) when the active segment file has no name
    /// left: it, or the whole directory, was deleted while the store was open, and whatever
    /// is written from now on would vanish with the last open handle.
    pub(super) fn check_links(&mut self) -> Result<()> {
        let Some(segment) = self.segments.get(&self.active) else {
            return Ok(());
        };
        match segment.file.links() {
            Ok(0) => {
                let reason = format!(
                    "its segment file {} was deleted while the store was open (was the \
                     directory removed?); nothing written from now on could be read back after \
                     a restart",
                    segment.path.display()
                );
                self.poison(reason);
                Err(self.refusal())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(Error::io(
                io_context("checking the links of", &segment.path),
                e,
            )),
        }
    }

    /// Raises the version ceiling in the manifest when the buffered writes use versions
    /// above it, so a lost segment can never make a version be handed out twice.
    fn reserve_versions(&mut self) -> Result<()> {
        if self.last_version <= self.manifest.ceiling {
            return Ok(());
        }
        let manifest = Manifest {
            ceiling: self
                .last_version
                .saturating_add(VERSION_BLOCK)
                .min(MAX_VERSION),
            ..self.manifest
        };
        manifest::write(&*self.disk, &self.dir, &manifest).map_err(|e| {
            Error::io(
                io_context("reserving versions in the manifest of", &self.dir),
                e,
            )
        })?;
        self.manifest = manifest;
        Ok(())
    }

    /// At a clean close, lowers the ceiling to the highest version written, so a store
    /// that is closed and reopened keeps its versions dense (every write is durable now).
    pub(super) fn lower_ceiling(&mut self) -> Result<()> {
        if self.poisoned.is_some() || self.manifest.ceiling <= self.last_version {
            return Ok(());
        }
        let manifest = Manifest {
            ceiling: self.last_version,
            ..self.manifest
        };
        manifest::write(&*self.disk, &self.dir, &manifest)
            .map_err(|e| Error::io(io_context("writing the manifest of", &self.dir), e))?;
        self.manifest = manifest;
        Ok(())
    }

    /// Writes the buffered frames to the active segment and applies the sync policy; on
    /// failure the frames are rolled back.
    pub(super) fn write_out(&mut self, force: bool) -> Result<()> {
        if self.buf.is_empty() {
            self.undo.clear();
            return if force && self.unsynced {
                self.force()
            } else {
                Ok(())
            };
        }
        let start = match self.active_segment() {
            Ok(segment) => segment.len,
            Err(error) => {
                tracing::error!(%error, "write refused; the batch is rolled back");
                self.rollback(0, None);
                return Err(error);
            }
        };
        if let Err(error) = self.reserve_versions() {
            tracing::error!(%error, "reserving versions failed; the batch is rolled back");
            self.rollback(start, None);
            return Err(error);
        }
        let segment = &self.segments[&self.active];
        if let Err(e) = segment.file.write_all_at(&self.buf, start) {
            let error = Error::io(io_context("appending to", &segment.path), e);
            tracing::error!(%error, "write failed; the batch is rolled back and the store stays readable");
            self.rollback(start, None);
            return Err(error);
        }
        let written = self.buf.len() as u64;
        if let Some(segment) = self.segments.get_mut(&self.active) {
            segment.len += written;
        }
        self.file_bytes += written;
        self.unsynced = true;
        if let Err(error) = self.check_links() {
            tracing::error!(%error, "write failed; the batch is rolled back");
            self.rollback(start, None);
            return Err(error);
        }
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
            // `FileOptions::validate` bounds `d`, so this cannot overflow; if it did, the
            // next batch would force instead.
            if let Some(due) = self.last_fsync.checked_add(d) {
                self.fsync_due.get_or_insert(due);
            }
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
        if self.segments[&self.active].len >= self.options.segment_size {
            self.roll_due = true;
        }
        self.publish();
        Ok(())
    }

    /// Seals the active segment (made durable whatever the policy) and starts a new one,
    /// linked to it, then records it in the manifest.
    pub(super) fn roll(&mut self) -> Result<()> {
        self.write_out(true)?;
        let sealed = self.active_segment()?;
        let (prev, prev_len) = (sealed.id, sealed.len);
        let id = prev + 1;
        let path = self.dir.join(segment_file_name(id));
        let link = Link {
            store_id: self.manifest.store_id,
            prev,
            prev_len,
        };
        let segment = create_segment(&*self.disk, &self.dir, id, self.last_version, link)
            .map_err(|e| Error::io(io_context("creating segment", &path), e))?;
        let manifest = Manifest {
            last_segment: id,
            ..self.manifest
        };
        if let Err(e) = manifest::write(&*self.disk, &self.dir, &manifest) {
            drop(segment);
            remove_leftover(&*self.disk, &path);
            return Err(Error::io(
                io_context("recording a new segment in the manifest of", &self.dir),
                e,
            ));
        }
        self.manifest = manifest;
        tracing::debug!(sealed = self.active, active = id, "segment rolled");
        self.roll_backoff.succeeded();
        self.file_bytes += segment.len;
        self.segments.insert(id, segment);
        self.active = id;
        self.roll_due = false;
        self.publish();
        Ok(())
    }
}
