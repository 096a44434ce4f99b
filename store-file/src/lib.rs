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
//! - `options.rs`: [`FileOptions`] (and its checks) and [`SyncPolicy`].
//! - `engine/`: `FileEngine`, the `store_core::runtime::Engine` the actor drives:
//!   `mod.rs` (state, opening, reads), `writer.rs` (the write buffer, group commit and
//!   rollback, the sync policies, rolling segments, reserving versions) and
//!   `maintenance.rs` (interval syncs, and the foreground steps of compaction: start,
//!   install, moving the index and the read view over to the output).
//! - `compaction.rs`: the background half of compaction (rewriting live records).
//! - `recovery.rs`: what opening does: check the files, clean up, replay, cut a torn tail.
//! - `scan.rs`: the one frame scanner and the one damaged-frame policy, used by recovery
//!   and compaction alike.
//! - `format.rs`: the on-disk encoding (manifest, segment header, frame, record), pure
//!   functions.
//! - `manifest.rs`: reading and replacing the manifest; store identities.
//! - `segment.rs`: segment file names and creating a segment.
//! - `disk.rs`: the two small traits all file I/O goes through (`Disk`, `DiskFile`), so
//!   that tests can inject faults (`disk/faulty.rs`: failed and short writes, failed syncs,
//!   power loss).
//! - `index.rs`: the in-memory index (key to version, expiry, location, small value).
//! - `value.rs`: `FileValue`, how readers load a value without the actor.
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
//! # Reads
//!
//! `get` and `get_many` are served in the caller's task from the runtime's read view (see
//! `store_core::runtime`), not by the actor. For each key the view holds a `FileValue`:
//! the value itself when it is small enough to be kept in memory, otherwise the segment's
//! open file (reference-counted), the record's offset and its length. The reader does one
//! positioned read and checks the record's checksum, key and version before returning the
//! value, so a damaged record is [`Error::Corrupt`] for that read, never data. A handle
//! stays readable whatever happens next: when compaction replaces and deletes a segment, a
//! reader holding its handle still reads from the open file. Compaction then reports every
//! value it moved (`Engine::take_moved`), the runtime republishes those handles on the
//! output, and the replaced files are closed once the last reader lets go. So the store
//! holds **one file descriptor per live segment** (plus, for moments, replaced ones that a
//! reader still holds): a store of `N` bytes has about `N / segment_size` sealed segments
//! between compactions; raise [`FileOptions::segment_size`] if that is too many.
//!
//! # On-disk format (version 2)
//!
//! All integers are little-endian; every checksum is CRC-32 (IEEE 802.3, the `crc32fast`
//! crate). A store directory holds:
//!
//! | file | what |
//! |------|------|
//! | `LOCK` | the advisory lock; holds `pid N` of the process that has it open (informative only) |
//! | `MANIFEST` | the store's identity, its version ceiling and its newest segment (below) |
//! | `MANIFEST.tmp` | a new manifest being written; removed when found at open |
//! | `seg-XXXXXXXXXXXXXXXX.log` | segment number `XXXXXXXXXXXXXXXX` (exactly 16 digits or lowercase `a`–`f`, so names sort like numbers) |
//! | `seg-XXXXXXXXXXXXXXXX.log.compact` | the output of a compaction being written; removed when found at open if it is this store's |
//!
//! Every other file is ignored and never touched, including names that only look like
//! segments (`seg-00000000000000AB.log` in upper case, other lengths, other suffixes).
//!
//! The manifest (52 bytes) is replaced whole: written to `MANIFEST.tmp`, synced, renamed
//! over `MANIFEST`, and the directory synced.
//!
//! | offset | size | manifest field |
//! |-------:|-----:|----------------|
//! | 0 | 8 | magic `STFMAN\r\n` |
//! | 8 | 2 | format version: `2` |
//! | 10 | 6 | reserved, written as zero, ignored |
//! | 16 | 16 | store id: random, made when the store is created |
//! | 32 | 8 | *version ceiling*: no version above it was ever handed out |
//! | 40 | 8 | the newest segment number created |
//! | 48 | 4 | checksum of bytes 0..48 |
//!
//! A segment is an 84-byte header followed by frames:
//!
//! | offset | size | segment header field |
//! |-------:|-----:|----------------------|
//! | 0 | 8 | magic `STFSEG\r\n` |
//! | 8 | 2 | format version: `2` |
//! | 10 | 2 | kind: `0` log (written by appends), `1` compacted (written by compaction) |
//! | 12 | 4 | reserved, written as zero, ignored |
//! | 16 | 8 | segment number (the one in the file name) |
//! | 24 | 8 | *covers from*: for a compacted segment, the first segment number it replaces (it replaces every segment from this one to its own number); for a log segment, its own number |
//! | 32 | 8 | *base version*: the highest version assigned in the store when the segment was started |
//! | 40 | 16 | store id (the manifest's) |
//! | 56 | 8 | *previous*: the number of the segment before this one in the store (0: none) |
//! | 64 | 8 | for a log segment: the length of the previous segment when it was sealed (0 when there is none) |
//! | 72 | 8 | for a compacted segment: its own length; 0 for a log segment |
//! | 80 | 4 | checksum of bytes 0..80 |
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
//! A version above `i64::MAX` (in a record, a header or the manifest) is impossible, since
//! the counter starts at 0 and counts up by one per write: it is corruption (a forged
//! `u64::MAX` would otherwise stop every write, as no version follows it). Values are at
//! most [`MAX_VALUE_LEN`] bytes; keys at most `store_core::MAX_KEY_LEN`.
//!
//! Format 1 (no store identity, no manifest) is refused when opened, with
//! [`Error::Corrupt`] naming the file and its format version; copy such a store's data
//! out with the build that wrote it. (Format 1 was never released.)
//!
//! # Versions are never handed out twice
//!
//! The store's highest version is the largest of every header's base version, every
//! record's version and the manifest's ceiling. Before a batch that uses versions above the
//! ceiling is acknowledged, the ceiling is raised to its highest version plus 2²⁰ (one
//! small manifest write per million versions); a clean close lowers it to the highest
//! version written, so versions stay dense across clean restarts. After a crash, a power
//! loss (whatever the [`SyncPolicy`]) or lost files, the next version is above the
//! ceiling, so it was never handed out before: at most 2²⁰ versions are skipped. Only
//! when the manifest itself is lost (and the store is opened with
//! [`FileOptions::skip_corrupt_frames`]) can the ceiling not be proven; versions then skip
//! 2³² past the highest one found.
//!
//! # Detecting lost files
//!
//! Deleting a segment, or cutting one exactly at a frame boundary, leaves files that are
//! each valid. The store notices, because the segments form a chain that the files
//! themselves record:
//!
//! - every segment names the segment before it; the oldest names none (a compacted
//!   segment replaces every older one, so it is always the oldest);
//! - a new log segment records the length its predecessor was sealed with, and a compacted
//!   segment records its own length;
//! - the manifest names the newest segment created (it is updated right after a segment is
//!   created and before anything is appended to it).
//!
//! So a deleted oldest, middle or newest segment, a sealed segment shortened or extended,
//! and a deleted manifest are all found at open. Such a store refuses to open with
//! [`Error::Corrupt`] saying what is missing, changing nothing; with
//! [`FileOptions::skip_corrupt_frames`] it opens what is left, logs each finding with
//! `tracing::warn!`, counts it in [`FileStats::lost_segments`], starts a compaction that
//! rewrites the survivors into one new chain, and never reuses a version (above).
//!
//! What cannot be told from a crash: the *active* segment cut at a frame boundary looks
//! exactly like a process or machine that stopped before those writes. It opens; the
//! versions of the lost writes are still never reused. Detecting it too would take a
//! record of the length after every sync (a second write per batch, or a manifest update
//! per batch), which would halve the group-commit rate that is this store's reason to be.
//! A manifest listing every segment was the alternative to the chain: it would need an
//! update (three syncs) on every roll and compaction for the same detection, and would
//! itself be a single point of loss; the chain lives in headers that are written anyway.
//!
//! # Identity
//!
//! Every segment carries the store id of the manifest. A segment with another id (copied
//! in from another store) makes opening fail with [`Error::Corrupt`] naming the file, with
//! or without `skip_corrupt_frames`, and nothing is deleted: the store never removes a
//! file it cannot prove is its own. A leftover compaction output is removed only if its
//! header carries this store's id (or it is shorter than a header, so it holds nothing).
//!
//! # Durability
//!
//! Each `apply` from the runtime encodes its batch as one frame into a buffer and updates
//! the index; reads in the same batch see it, but no caller gets an answer yet. After the
//! batch, `sync` writes the buffer with one `pwrite` and then:
//!
//! - [`SyncPolicy::Always`] (the default): `fdatasync`, then the runtime answers every caller
//!   of the batch. A write that returned `Ok` is on disk. Concurrent writers share syncs
//!   (group commit): 64 writers cost about one `fdatasync` per 32 to 64 writes. The test
//!   `fault_tests::sync_always_keeps_every_acknowledged_write_through_power_loss` checks
//!   this against a model of a power loss that keeps only what reached a sync.
//! - [`SyncPolicy::Interval(d)`](SyncPolicy::Interval): `fdatasync` when the last one is at
//!   least `d` old, otherwise at a deadline no later than `d` after the last one. A power
//!   failure loses at most about `d` of acknowledged writes. `d` is at most
//!   [`MAX_SYNC_INTERVAL`] (one day); opening refuses more.
//! - [`SyncPolicy::Never`]: no `fdatasync`; the kernel writes the pages back.
//!
//! With every policy the bytes reach the kernel before callers are answered, so a process
//! crash (even `SIGKILL`) loses nothing acknowledged; the policies differ only on power
//! loss or a kernel crash. Sealing a segment, writing a compaction's output, the manifest
//! and [`close`](store_core::Storage::close) always sync, whatever the policy.
//!
//! If a write fails (disk full, I/O error, a short write), the failed batch is cut off the
//! file again and rolled back in the index: its callers get the error, nothing of it is
//! visible, and the store stays readable and writable. The store then *refuses writes*
//! (every write, and `compact`, fails with `Error::ReadOnly` saying why; reads go on;
//! [`FileStats::read_only`] is set; `close` returns the same error) when:
//!
//! - an `fdatasync` failed: the batch is rolled back, and after a failed `fdatasync` the
//!   kernel may have dropped the pages, so a retry could claim a durability it does not
//!   have. Reopen the store to write again;
//! - the active segment file has no name left (its link count is 0, checked after every
//!   write and at close): the file or the whole directory was deleted under the running
//!   store, and nothing written from now on could be read back after a restart;
//! - cutting a failed write off the file failed too (the failed batch may then reappear
//!   after a restart).
//!
//! A failed roll (starting a new segment) or automatic compaction is logged with
//! `tracing::error!`, counted ([`FileStats::failed_rolls`],
//! [`FileStats::failed_compactions`]), retried with a growing back-off, returned to the
//! callers of [`FileStorage::compact`], and, if the reason is that the store's files are
//! gone, turns the store read-only as above.
//!
//! # What the store assumes of the file system
//!
//! As redb's design document does, here is what the store relies on, and what happens on a
//! file system that breaks it:
//!
//! - **`fdatasync` means durable.** After it returns, the file's data written before it
//!   survives a power loss. A file system or disk that acknowledges a sync it did not do
//!   (a volatile write cache without flush, some virtual disks, `nobarrier`) can lose
//!   acknowledged writes on power loss; the store still opens (torn tails are cut off,
//!   checksums catch half-written frames) and versions are still never reused, but the
//!   acknowledged writes are gone. A failed `fdatasync` is taken at its word: the store
//!   stops writing (above), since Linux may have dropped the dirty pages.
//! - **A new file's name is durable after `fsync` of the directory.** The store syncs the
//!   directory after creating a segment, after a compaction's rename, after removing
//!   files, and after replacing the manifest. Where directory syncs are not supported
//!   (non-Unix platforms) a power loss may undo those steps.
//! - **`rename` over an existing file is atomic**: after a crash the name holds the old file
//!   or the new one, whole. Compaction and the manifest depend on it. On a file system
//!   without atomic rename (some network file systems) a crash in that instant can leave
//!   a damaged manifest (opening then fails, naming it) or a missing segment (detected, as
//!   above).
//! - **Truncation (`ftruncate`) works and is durable after `fsync`.** Cutting a torn tail
//!   or a failed write relies on it; if it fails the store refuses writes.
//! - **Writes may be torn** at any byte, and unsynced bytes may be lost or half-written in
//!   any order: frames are checksummed (header and payload separately), a record carries
//!   its own checksum, and only the end of the newest segment can be torn. A file system
//!   that returns *different* bytes than were written (no data checksums, a bad disk) is
//!   caught by the checksums: a value that fails them is [`Error::Corrupt`], never data.
//! - **Positioned reads of a deleted file keep working while it is open** (POSIX unlink
//!   semantics); readers rely on it during compaction. On Windows a segment that a reader
//!   holds cannot be deleted; compaction then logs the failure and the next open removes it.
//! - **`flock` works**: the directory lock is advisory and local; on a network file system
//!   where `flock` is not shared between machines, two machines can open the same store,
//!   which the store cannot detect.
//!
//! # Recovery
//!
//! Opening takes the lock, then:
//!
//! 1. Reads the manifest (a damaged one fails the open, naming it) and every segment
//!    header. The next segment's file, if its creation was interrupted before its header
//!    was complete (it holds at most a header, that header is cut short or unreadable,
//!    and its number is the next one the manifest allows), is removed. Any other bad header, an unknown or old format
//!    version, or a header naming another segment fails the open with [`Error::Corrupt`]
//!    naming the file. A segment of another store fails the open (see *Identity*).
//! 2. Removes this store's `*.compact` files (an unfinished compaction; its inputs are all
//!    still there) and a leftover `MANIFEST.tmp`.
//! 3. Removes the segments a compacted segment covers (leftovers of a compaction
//!    interrupted after its rename; replaying them could bring back deleted keys).
//! 4. Checks the chain of segments (see *Detecting lost files*).
//! 5. Replays every frame. At a frame that is incomplete or fails a checksum:
//!    - in the newest log segment, when no valid frame follows it, it is a torn write or
//!      garbage at the end: the file is cut there, every complete frame before it is kept,
//!      and the cut is logged with `tracing::warn!` and counted in
//!      [`FileStats::recoveries`] and [`FileStats::truncated_bytes`]. "Follows" is checked
//!      from the end the frame's header gives when that header passes its own checksum (so
//!      bytes inside its payload, such as a stored value that happens to contain a frame,
//!      are never taken for a later write), and byte by byte from the next offset when it
//!      does not;
//!    - anywhere else (valid frames follow it, or the segment is sealed, which only happens
//!      after a sync), or a frame that passes its checksums but holds a malformed record (an
//!      impossible version, say), it is damage, not a crash: the open fails with
//!      [`Error::Corrupt`] naming the file and offset, changing nothing on disk. With
//!      [`FileOptions::skip_corrupt_frames`] the damaged bytes are skipped instead
//!      (resynchronising on the next valid frame), logged and counted in
//!      [`FileStats::skipped_frames`].
//!
//! Compaction reads its inputs with the same scanner and the same policy (a damaged frame
//! fails the compaction, or is skipped, logged and counted with `skip_corrupt_frames`).
//! Nothing in the format makes recovery panic; the frame decoder and recovery are fuzzed
//! (`store-file/fuzz`). Recovery logs one `tracing::info!` line with what it replayed and
//! how long it took ([`FileStats::open_micros`]).
//!
//! # Compaction
//!
//! Overwritten, deleted and expired records are garbage. Compaction starts by itself when
//! the files hold at least [`FileOptions::compact_min_bytes`] and at least
//! [`FileOptions::compact_garbage_ratio`] of them is garbage, and on demand with
//! [`FileStorage::compact`] (a request through the actor's mailbox, answered when the
//! compaction is installed). Reads and writes go on throughout:
//!
//! 1. *Start* (on the actor): seal the active segment and start a new one, so every
//!    existing segment is immutable; hand the sealed ones, oldest first, to a background
//!    thread.
//! 2. *Rewrite* (background thread): find each key's newest record among the inputs, copy
//!    the newest puts that have not expired into `seg-L.log.compact` (`L` the newest input)
//!    in frames of about 1 MiB, with a compacted header covering the inputs, the current
//!    highest version as base version and its own final length; tombstones are dropped
//!    (every older segment is an input, so there is nothing left for them to hide); `fsync`
//!    the output. Meanwhile the actor serves the mailbox and appends to the new active
//!    segment, and readers read the inputs.
//! 3. *Install* (on the actor, when it sees the result): `rename` the output over `seg-L.log`
//!    (atomic), `fsync` the directory, remove the other inputs and `fsync` the directory
//!    again. The inputs' open handles keep serving reads while the index entries that still
//!    refer to them are pointed at their copies, 16,384 entries per step between batches of
//!    commands, so even a store of millions of keys never pauses for long (entries written
//!    since the start are left alone: versions are unique, so an entry is moved only if its
//!    version is the one copied). Each step hands the moved value handles to the runtime,
//!    which republishes them to readers. `compact()` returns after the last step's
//!    handles are published.
//!
//! Records that had expired by the compaction's cut-off are left out of the output; their
//! index entries keep their metadata until the runtime reclaims them, readers keep their
//! handle on the (replaced but still open) input until then, and no read ever gets a value
//! for them, even with a clock that steps back.
//!
//! A crash before the rename leaves the inputs and a `.compact` file (removed at open); a
//! crash after it leaves a compacted segment and perhaps some inputs it covers (removed at
//! open). Either way the store reopens exactly as it was. Right after a compaction with no
//! concurrent writes the files hold the live records plus headers: at most 1.5 times
//! [`FileStats::live_bytes`] for any store of more than a few records.
//!
//! While a compaction runs, the actor asks for a deadline every 5 ms to see whether the
//! background thread has finished: the runtime has no way for an engine's own thread to
//! wake the actor, and a poll that costs one timer every 5 ms, only while compacting, is
//! cheaper than adding one.
//!
//! # The directory lock, and how long a store stays open
//!
//! Opening takes an exclusive advisory lock (`flock`, through `File::try_lock`) on `LOCK`.
//! A second open of the same directory, from this process or another one, fails with an
//! `Error::Io` of kind `ResourceBusy` that says the directory is already open and which pid
//! holds it. [`close`](store_core::Storage::close) releases the lock before it returns;
//! dropping the last handle releases it moments later on the actor's thread; a process that
//! dies releases it with its open files, so a crash never leaves a stale lock. The lock is
//! advisory: it keeps out other `FileStorage`s, not other programs.
//!
//! A live `list_keys` stream holds a handle of its own: the store stays open (and its
//! directory locked) until the stream is dropped or has ended, even after every other
//! handle was dropped. Drop streams you stop reading, or call `close`, which ends them
//! (their next page is `Error::Closed`).
//!
//! # Read-only open
//!
//! [`FileOptions::read_only`] opens a store without changing anything in its directory
//! (for operators, and for taking a snapshot from a read-only mount): no file is created,
//! cut or removed (a torn tail is ignored in memory, leftovers are left), the lock is taken
//! shared (several read-only opens may run together, but not beside a writer) or not at
//! all when there is no `LOCK` file, and every write, `compact` included, fails with
//! `Error::ReadOnly`. Damage is handled as in a normal open.
//!
//! A path that exists and is not a directory, or a directory that cannot be created,
//! listed or written, fails the open with an `Error::Io` naming the path.

#![forbid(unsafe_code)]

mod compaction;
mod config;
mod disk;
mod engine;
#[cfg(test)]
mod fault_tests;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod lock;
mod manifest;
mod options;
mod recovery;
mod scan;
mod segment;
mod stats;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_core::runtime::{self, ActorHandle};
use store_core::{BoxFuture, Error, Layer, Result, Stats};

pub use config::FileConfig;
pub use format::MAX_VALUE_LEN;
pub use options::{FileOptions, SyncPolicy, MAX_SYNC_INTERVAL};
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
        Self::open_on(Arc::new(disk::OsDisk), dir.as_ref(), options).await
    }

    /// Opens with the engine's file I/O going through `disk` (tests pass a fault-injecting
    /// one).
    async fn open_on(disk: Arc<dyn disk::Disk>, dir: &Path, options: FileOptions) -> Result<Self> {
        let dir = dir.to_path_buf();
        let shared = Arc::new(Shared::default());
        let runtime_options = options.runtime.clone();
        let engine_shared = shared.clone();
        let engine_dir = dir.clone();
        let handle = runtime::spawn_on_thread("store-file", runtime_options, move || {
            FileEngine::open_on(disk, engine_dir, options, engine_shared)
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
    /// assert!(stats.file_bytes < 300); // one record and two segment headers
    /// # store.close().await.unwrap();
    /// # });
    /// ```
    pub async fn compact(&self) -> Result<()> {
        // The engine keeps the request and answers once the compaction is installed.
        self.handle.request(engine::Compact).await
    }
}

/// Every call goes to the actor's handle; `compact` and `stats` are the file store's own.
impl Layer for FileStorage {
    type Inner = ActorHandle;

    fn inner(&self) -> &ActorHandle {
        &self.handle
    }

    fn compact<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>> {
        Box::pin(FileStorage::compact(self))
    }

    fn stats<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<Stats>> {
        Box::pin(async move {
            if self.handle.is_closed() {
                return Err(Error::Closed);
            }
            let mut stats = Stats::default();
            let dir = self.dir().display().to_string();
            stats.push_front(FileStorage::stats(self).component(&dir));
            Ok(stats)
        })
    }
}
