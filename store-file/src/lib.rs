//! A durable, crash-safe file backend for the `store-core` contract: the single-machine
//! store a service keeps its state in.
//!
//! [`FileStorage`] is a handle to an actor (see `store_core::runtime`) that owns a
//! `FileEngine` on a dedicated OS thread, so blocking file I/O never runs on the async
//! workers. The engine keeps an append-only log of checksummed records on disk and an
//! ordered index of every key in memory; the runtime's batching turns `fdatasync` into a
//! group commit: one sync for every batch of queued writes, however many callers wrote.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path().join("orders");
//! use store_core::{Record, Storage};
//! use store_file::{FileOptions, FileStorage, SyncPolicy};
//!
//! let store = FileStorage::open(&dir).await?; // SyncPolicy::Always: a write returns once on disk
//! let stored = store.put(Record::new("orders/1", "paid")).await?;
//! store.close().await?; // flushes, syncs, releases the directory lock
//!
//! let store = FileStorage::open_with(&dir, FileOptions { sync: SyncPolicy::Never, ..Default::default() }).await?;
//! let record = store.get("orders/1").await?;
//! assert_eq!((&record.value[..], &record.version), (&b"paid"[..], &stored.version));
//! # store.close().await?;
//! # Ok::<(), store_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Layout of this crate
//!
//! - `lib.rs`: [`FileStorage`] (the `Clone + Storage` handle, [`FileStorage::stats`],
//!   [`FileStorage::compact`]) and these docs.
//! - `options.rs`: [`FileOptions`] and [`SyncPolicy`].
//! - `engine.rs`: `FileEngine`, the `store_core::runtime::Engine` the actor drives: the
//!   write buffer, group commit and rollback, the sync policies, segment rolling, and the
//!   foreground steps of compaction (start, install).
//! - `format.rs`: the on-disk encoding (segment header, frame, record), pure functions.
//! - `segment.rs`: segment file names, positional I/O, the frame scanner.
//! - `recovery.rs`: what opening does: clean up, replay, cut off a torn tail.
//! - `compaction.rs`: the background half of compaction (rewriting live records).
//! - `index.rs`: the in-memory index (key to version, expiry, location, small value).
//! - `lock.rs`: the advisory directory lock.
//! - `stats.rs`: [`FileStats`].
//!
//! # Design
//!
//! The store is a directory of *segments*, append-only files numbered upwards. Writes go to
//! the newest one (the *active* segment); once it reaches [`FileOptions::segment_size`] it
//! is sealed (synced, never written again) and a new one is started. Every key's newest
//! record is found through an in-memory `BTreeMap` from key to version, expiry, location
//! and, for values up to [`FileOptions::cache_values_up_to`] bytes, the value itself. The
//! ordered map makes `list_keys` a range scan; keeping small values in memory makes a `get`
//! as cheap as in the memory backend. The price is memory: every key (and every small
//! value) lives in RAM, with about 120 bytes of overhead per key, as in Bitcask.
//!
//! Why a log and not a B-tree (bbolt, redb): appends make group commit natural (a batch of
//! any size costs one sequential write and one `fdatasync`), recovery is a linear scan
//! with a checksum per frame, and a torn write can only ever be at the end of the newest
//! file. The cost, garbage from overwritten and deleted records, is paid back by
//! compaction in the background.
//!
//! # On-disk format (version 1)
//!
//! All integers are little-endian; every checksum is CRC-32 (IEEE 802.3, the `crc32fast`
//! crate). A store directory holds:
//!
//! | file | what |
//! |------|------|
//! | `LOCK` | the advisory lock; holds `pid N` of the process that has it open (informative only) |
//! | `seg-XXXXXXXXXXXXXXXX.log` | segment number `XXXXXXXXXXXXXXXX` (16 lowercase hex digits, so names sort like numbers) |
//! | `seg-XXXXXXXXXXXXXXXX.log.compact` | the output of a compaction being written; removed when found at open |
//!
//! Other files are ignored. A segment is a 44-byte header followed by frames:
//!
//! | offset | size | segment header field |
//! |-------:|-----:|----------------------|
//! | 0 | 8 | magic `STFSEG\r\n` |
//! | 8 | 2 | format version: `1` |
//! | 10 | 2 | kind: `0` log (written by appends), `1` compacted (written by compaction) |
//! | 12 | 4 | reserved, written as zero, ignored |
//! | 16 | 8 | segment number (the one in the file name) |
//! | 24 | 8 | *covers from*: for a compacted segment, the first segment number it replaces (it replaces every segment from this one to its own number); for a log segment, its own number |
//! | 32 | 8 | *base version*: the highest version assigned in the store when the segment was started |
//! | 40 | 4 | checksum of bytes 0..40 |
//!
//! A *frame* holds the records of one atomic batch (one `put`, one `delete`, a whole
//! `put_many`); recovery applies all of a frame or none of it.
//!
//! | offset | size | frame field |
//! |-------:|-----:|-------------|
//! | 0 | 4 | magic `STFR` |
//! | 4 | 4 | payload length in bytes (`u32`) |
//! | 8 | 4 | number of records (`u32`) |
//! | 12 | 4 | checksum of the payload |
//! | 16 | 4 | checksum of bytes 0..16 (so a damaged length is never trusted) |
//! | 20 | length | payload: the records, back to back, nothing after the last |
//!
//! | offset | size | record field |
//! |-------:|-----:|--------------|
//! | 0 | 4 | checksum of the rest of the record (bytes 4 to its end), so one record can be checked on its own when it is read back |
//! | 4 | 1 | kind: `1` put, `2` delete (a tombstone) |
//! | 5 | 1 | flags: bit 0 set when the record has an expiry; other bits zero |
//! | 6 | 2 | reserved, written as zero, ignored |
//! | 8 | 4 | key length `k` (`u32`) |
//! | 12 | 4 | value length `v` (`u32`; 0 for a delete) |
//! | 16 | 8 | version: a put's version; for a delete, the highest version assigned so far |
//! | 24 | 8 | expiry: seconds since the Unix epoch (`i64`, negative before it) |
//! | 32 | 4 | expiry: nanoseconds (`u32`, below 10⁹) |
//! | 36 | k | key, UTF-8 |
//! | 36 + k | v | value |
//!
//! Reading a directory: list the segments, drop those a compacted segment covers (see
//! below), then apply every record of every frame in segment order, later ones winning. The
//! store's highest version is the largest of every header's base version and every
//! record's version; the base version keeps it even when compaction has dropped the records
//! that carried it, so **versions survive restarts and compaction and are never handed out
//! twice** (with [`SyncPolicy::Always`]; see below for the others). Values are at most
//! [`MAX_VALUE_LEN`] bytes; keys at most `store_core::MAX_KEY_LEN`.
//!
//! # Durability
//!
//! Each `apply` from the runtime encodes its batch as one frame into a buffer and updates
//! the index; reads in the same batch see it, but no caller gets an answer yet. After the
//! batch, `sync` writes the buffer with one `pwrite` and then:
//!
//! - [`SyncPolicy::Always`] (the default): `fdatasync`, then the runtime answers every caller
//!   of the batch. A write that returned `Ok` is on disk. Concurrent writers share syncs
//!   (group commit): 64 writers cost about one `fdatasync` per 64 writes.
//! - [`SyncPolicy::Interval(d)`](SyncPolicy::Interval): `fdatasync` when the last one is at
//!   least `d` old, otherwise at a deadline no later than `d` after the last one. A power
//!   failure loses at most about `d` of acknowledged writes.
//! - [`SyncPolicy::Never`]: no `fdatasync`; the kernel writes the pages back.
//!
//! With every policy the bytes reach the kernel before callers are answered, so a process
//! crash (even `SIGKILL`) loses nothing acknowledged; the policies differ only on power
//! loss or a kernel crash. After such a crash with `Never` or `Interval`, lost writes' versions
//! can be handed out again. Sealing a segment, writing a compaction's output and
//! [`close`](store_core::Storage::close) always sync, whatever the policy.
//!
//! If a write fails (disk full, I/O error), the failed batch is cut off the file again and
//! rolled back in the index: its callers get the error, nothing of it is visible, and the
//! store stays readable and writable. If an `fdatasync` fails, the batch is rolled back the
//! same way and the store then refuses further writes until it is reopened (after a failed
//! `fdatasync` the kernel may have dropped the pages, and a retry could claim a durability it
//! does not have); reads go on. If even cutting the failed bytes off fails, the store also
//! refuses writes, and the failed batch may reappear after a restart.
//!
//! # Recovery
//!
//! Opening takes the lock, then:
//!
//! 1. Removes `*.compact` files (an unfinished compaction; its inputs are all still there).
//! 2. Reads every segment header. A newest segment whose header is incomplete or invalid
//!    and that is no longer than a header was being created when the process stopped: it is
//!    removed. Any other bad header, or an unknown format version, fails the open with
//!    [`Error::Corrupt`] naming the file.
//! 3. Removes the segments a compacted segment covers (leftovers of a compaction interrupted
//!    after its rename; replaying them could bring back deleted keys).
//! 4. Replays every frame. At a frame that is incomplete or fails a checksum:
//!    - in the newest log segment, when no valid frame follows it, it is a torn write or
//!      garbage at the end: the file is cut there, every complete frame before it is kept,
//!      and the cut is logged with `tracing::warn!` and counted in
//!      [`FileStats::recoveries`] and [`FileStats::truncated_bytes`]. "Follows" is checked
//!      from the end the frame's header gives when that header passes its own checksum (so
//!      bytes inside its payload, such as a stored value that happens to contain a frame,
//!      are never taken for a later write), and byte by byte from the next offset when it
//!      does not;
//!    - anywhere else (valid frames follow it, or the segment is sealed, which only happens
//!      after a sync) it is damage, not a crash: the open fails with
//!      [`Error::Corrupt`] naming the file and offset, changing
//!      nothing on disk. With [`FileOptions::skip_corrupt_frames`] the damaged bytes are
//!      skipped instead (resynchronising on the next valid frame), logged and counted in
//!      [`FileStats::skipped_frames`].
//!
//! A checksum mismatch is never returned as data: frames are checked when replayed, and a
//! value read from disk later is checked against its record's own checksum (a mismatch is
//! [`Error::Corrupt`] for that read). Nothing in the format
//! makes recovery panic. Recovery logs one `tracing::info!` line with what it replayed and
//! how long it took ([`FileStats::open_micros`]).
//!
//! # Compaction
//!
//! Overwritten, deleted and expired records are garbage. Compaction starts by itself when
//! the files hold at least [`FileOptions::compact_min_bytes`] and at least
//! [`FileOptions::compact_garbage_ratio`] of them is garbage, and on demand with
//! [`FileStorage::compact`]. Reads and writes go on throughout:
//!
//! 1. *Start* (on the actor): seal the active segment and start a new one, so every
//!    existing segment is immutable; hand the sealed ones, oldest first, to a background
//!    thread.
//! 2. *Rewrite* (background thread): find each key's newest record among the inputs, copy
//!    the newest puts that have not expired into `seg-L.log.compact` (`L` the newest input)
//!    in frames of about 1 MiB, with a compacted header covering the inputs and the current
//!    highest version as base version; tombstones are dropped (every older segment is an
//!    input, so there is nothing left for them to hide); `fsync` the output. Meanwhile the
//!    actor serves reads from the inputs and appends to the new active segment.
//! 3. *Install* (on the actor, when it sees the result): `rename` the output over `seg-L.log`
//!    (atomic), `fsync` the directory, remove the other inputs and `fsync` the directory
//!    again. The inputs' open handles keep serving reads while the index entries that still
//!    refer to them are pointed at their copies, 16,384 entries per step between batches of
//!    commands, so even a store of millions of keys never pauses for long (entries written
//!    since the start are left alone: versions are unique, so an entry is moved only if its
//!    version is the one copied). `compact()` returns when the last step is done.
//!
//! A crash before the rename leaves the inputs and a `.compact` file (removed at open); a
//! crash after it leaves a compacted segment and perhaps some inputs it covers (removed at
//! open). Either way the store reopens exactly as it was. Right after a compaction with no
//! concurrent writes the files hold the live records plus headers: at most 1.5 times
//! [`FileStats::live_bytes`] for any store of more than a few records.
//!
//! [`FileStorage::compact`] sets a flag and wakes the engine through the runtime
//! (`ActorHandle::wake_engine`); while a compaction runs, the engine asks for a deadline
//! every 5 ms to see whether its background thread has finished.
//!
//! # The directory lock
//!
//! Opening takes an exclusive advisory lock (`flock`, through `File::try_lock`) on `LOCK`.
//! A second open of the same directory, from this process or another one, fails with an
//! `Error::Io` of kind `ResourceBusy` that says the directory is already open and which pid
//! holds it. [`close`](store_core::Storage::close) releases the lock before it returns;
//! dropping the last handle releases it moments later on the actor's thread; a process that
//! dies releases it with its open files, so a crash never leaves a stale lock. The lock is
//! advisory: it keeps out other `FileStorage`s, not other programs.
//!
//! A path that exists and is not a directory, or a directory that cannot be created,
//! listed or written, fails the open with an `Error::Io` naming the path.

mod compaction;
mod config;
mod engine;
mod format;
mod index;
mod lock;
mod options;
mod recovery;
mod segment;
mod stats;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_core::runtime::{self, ActorHandle};
use store_core::{Error, Layer, Result, Stats};

pub use config::FileConfig;
pub use format::MAX_VALUE_LEN;
pub use options::{FileOptions, SyncPolicy};
pub use stats::FileStats;

use engine::{FileEngine, Shared};

/// A durable [`Storage`](store_core::Storage) kept in a directory: cheap to clone, `Send + Sync`, every clone
/// talks to the same actor.
///
/// Open it inside a tokio runtime. It closes when [`Storage::close`](store_core::Storage::close) is called (which
/// syncs and releases the directory lock before returning) or shortly after the last clone
/// is dropped.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let tmp = tempfile::tempdir().unwrap();
/// use store_core::{Error, Record, Storage};
/// use store_file::FileStorage;
///
/// let store = FileStorage::open(tmp.path()).await.unwrap();
/// let version = store.create(Record::new("leader", "node-a")).await.unwrap();
/// let other = store.clone();
/// assert!(matches!(other.create(Record::new("leader", "node-b")).await, Err(Error::AlreadyExists(_))));
/// assert_eq!(store.get("leader").await.unwrap().version, version);
/// store.close().await.unwrap();
/// assert!(matches!(other.get("leader").await, Err(Error::Closed)));
/// # });
/// ```
#[derive(Clone)]
pub struct FileStorage {
    handle: ActorHandle,
    shared: Arc<Shared>,
    dir: Arc<PathBuf>,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl FileStorage {
    /// Opens the store in `dir` with [`FileOptions::default`] (fsync on every batch),
    /// creating the directory and its parents if needed.
    ///
    /// Recovery (see the crate docs) runs on the store's own thread before this returns.
    ///
    /// # Errors
    ///
    /// `Error::Io` naming the path when `dir` is not a usable directory or is already open
    /// (kind `ResourceBusy`); `Error::Corrupt` naming the file and offset when the files
    /// are damaged other than by a crash.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dir = tmp.path().join("data/orders");
    /// let store = store_file::FileStorage::open(&dir).await.unwrap();
    /// assert!(store_file::FileStorage::open(&dir).await.is_err()); // locked
    /// # store_core::Storage::close(&store).await.unwrap();
    /// # });
    /// ```
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, FileOptions::default()).await
    }

    /// Opens the store in `dir` with `options`, creating the directory and its parents if
    /// needed. Errors as for [`open`](FileStorage::open).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use std::time::Duration;
    /// use store_file::{FileOptions, FileStorage, SyncPolicy};
    /// let store = FileStorage::open_with(
    ///     tmp.path(),
    ///     FileOptions { sync: SyncPolicy::Interval(Duration::from_millis(10)), ..Default::default() },
    /// )
    /// .await
    /// .unwrap();
    /// # store_core::Storage::close(&store).await.unwrap();
    /// # });
    /// ```
    pub async fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let shared = Arc::new(Shared::default());
        let runtime_options = options.runtime.clone();
        let engine_shared = shared.clone();
        let engine_dir = dir.clone();
        let handle = runtime::spawn_on_thread("store-file", runtime_options, move || {
            FileEngine::open(engine_dir, options, engine_shared)
        })
        .await?;
        Ok(Self {
            handle,
            shared,
            dir: Arc::new(dir),
        })
    }

    /// The directory the store lives in.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let store = store_file::FileStorage::open(tmp.path()).await.unwrap();
    /// assert_eq!(store.dir(), tmp.path());
    /// # store_core::Storage::close(&store).await.unwrap();
    /// # });
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's counters (records, live and file bytes, repairs, compactions, fsyncs...),
    /// read from memory shared with the engine: no round trip to the actor.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use store_core::{Record, Storage};
    /// let store = store_file::FileStorage::open(tmp.path()).await.unwrap();
    /// store.put_many(vec![Record::new("a", "1"), Record::new("b", "2")]).await.unwrap();
    /// let stats = store.stats();
    /// assert_eq!((stats.records, stats.frames_written, stats.last_version), (2, 1, 2));
    /// # store.close().await.unwrap();
    /// # });
    /// ```
    pub fn stats(&self) -> FileStats {
        self.shared.stats.snapshot()
    }

    /// Compacts now: seals the active segment, rewrites the live records of every sealed
    /// segment into one file in the background, and returns once that file is installed.
    /// Reads and writes go on meanwhile. If a compaction is already running, this waits for
    /// it and then runs another one, so everything written before the call is compacted.
    ///
    /// # Errors
    ///
    /// The compaction's error (the store is then unchanged), or `Error::Closed`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use store_core::{Record, Storage};
    /// let store = store_file::FileStorage::open(tmp.path()).await.unwrap();
    /// for i in 0..100 {
    ///     store.put(Record::new("counter", i.to_string())).await.unwrap();
    /// }
    /// store.compact().await.unwrap();
    /// let stats = store.stats();
    /// assert_eq!(stats.compactions, 1);
    /// assert!(stats.file_bytes < 200); // one record and two segment headers
    /// # store.close().await.unwrap();
    /// # });
    /// ```
    pub async fn compact(&self) -> Result<()> {
        // The engine keeps the request and answers once the compaction is installed.
        self.handle.request(engine::Compact).await
    }
}

/// Every call goes to the actor's handle; `compact` and `stats` are the file store's own.
#[async_trait::async_trait]
impl Layer for FileStorage {
    type Inner = ActorHandle;

    fn inner(&self) -> &ActorHandle {
        &self.handle
    }

    async fn compact(&self) -> Result<()> {
        FileStorage::compact(self).await
    }

    async fn stats(&self) -> Result<Stats> {
        if self.handle.is_closed() {
            return Err(Error::Closed);
        }
        let mut stats = Stats::default();
        let dir = self.dir().display().to_string();
        stats.push_front(FileStorage::stats(self).component(&dir));
        Ok(stats)
    }
}
