//! [`FileOptions`] and [`SyncPolicy`]: how a store is opened.

use std::time::Duration;

use store_core::runtime::RuntimeOptions;

/// When written bytes are forced to the disk (`fdatasync`).
///
/// Whatever the policy, every batch of writes is handed to the operating system (`write`)
/// before its callers get their answers, so a process crash (even `SIGKILL`) loses nothing
/// that was acknowledged; the policy decides what a power failure or kernel crash can take.
///
/// ```
/// use std::time::Duration;
/// use store_file::SyncPolicy;
/// assert_eq!(SyncPolicy::default(), SyncPolicy::Always);
/// let relaxed = SyncPolicy::Interval(Duration::from_millis(5));
/// # let _ = relaxed;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// A write returns only after its bytes are on disk. The actor runtime's batching
    /// makes this a group commit: one `fdatasync` for every batch of queued writes.
    #[default]
    Always,
    /// Never force; the operating system writes the pages back when it wants to. A power
    /// failure can lose recent acknowledged writes (and their versions may be handed out
    /// again after the restart).
    Never,
    /// Force at least every `d`: a write is on disk at most `d` after it was acknowledged
    /// (while the store is open). A power failure can lose up to `d` of writes.
    Interval(Duration),
}

/// How [`FileStorage::open_with`](crate::FileStorage::open_with) opens a store.
///
/// A plain struct with public fields; start from [`Default`] and change what you need.
///
/// ```
/// use store_file::{FileOptions, SyncPolicy};
/// let options = FileOptions {
///     sync: SyncPolicy::Never,
///     compact_garbage_ratio: 0.3,
///     ..Default::default()
/// };
/// assert_eq!(options.segment_size, 64 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// When written bytes are forced to disk. Default [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// The active segment is sealed and a new one started once it holds this many bytes.
    /// Default 64 MiB. Smaller segments mean more files; compaction works on sealed ones.
    pub segment_size: u64,
    /// Compaction starts on its own when at least this fraction of the files' bytes is
    /// garbage (overwritten, deleted or expired records and tombstones), provided the files
    /// hold at least [`compact_min_bytes`](FileOptions::compact_min_bytes). Default 0.5.
    /// A value above 1.0 turns automatic compaction off
    /// ([`FileStorage::compact`](crate::FileStorage::compact) still works).
    pub compact_garbage_ratio: f64,
    /// Below this many bytes in the files, compaction never starts by itself. Default
    /// 16 MiB, so small stores are not rewritten over and over.
    pub compact_min_bytes: u64,
    /// Values of at most this many bytes are also kept in memory, so reading them costs no
    /// disk access; larger ones are read from their segment (and checksummed) on every
    /// `get`. Default 1024. `0` keeps no value in memory (only empty ones).
    pub cache_values_up_to: usize,
    /// What opening does with a damaged frame that is not the torn tail of the newest
    /// segment. `false` (the default): opening fails with
    /// [`Error::Corrupt`](store_core::Error::Corrupt) naming the file and offset, and
    /// nothing is changed on disk. `true`: the frame is skipped (resynchronising on the
    /// next valid frame), logged and counted in [`FileStats::skipped_frames`](crate::FileStats);
    /// the writes it held are lost, and keys it overwrote or deleted may show an older
    /// value. Use it to get a damaged store running again.
    pub skip_corrupt_frames: bool,
    /// The actor runtime's tuning (mailbox size, most commands per batch and so per
    /// fsync, list paging).
    pub runtime: RuntimeOptions,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            segment_size: 64 << 20,
            compact_garbage_ratio: 0.5,
            compact_min_bytes: 16 << 20,
            cache_values_up_to: 1024,
            skip_corrupt_frames: false,
            runtime: RuntimeOptions::default(),
        }
    }
}
