//! [`FileOptions`] and [`SyncPolicy`]: how a store is opened.

use std::time::Duration;

use store_core::runtime::RuntimeOptions;
use store_core::{Error, Result};

/// The longest accepted [`SyncPolicy::Interval`]: one day. Anything longer is not a sync
/// policy (use [`SyncPolicy::Never`]), and durations without bound overflow the clock.
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// (while the store is open). A power failure can lose up to `d` of writes. `d` may be
    /// at most [`MAX_SYNC_INTERVAL`] (one day); opening refuses a longer one.
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
    ///
    /// The same switch governs lost files (a deleted or shortened segment, a missing
    /// manifest): `false` refuses to open, `true` opens what is left, logs each finding and
    /// counts it in [`FileStats::lost_segments`](crate::FileStats::lost_segments).
    /// Versions are never handed out twice either way. It never makes the store accept a
    /// segment of another store.
    pub skip_corrupt_frames: bool,
    /// Opens the store for reading only: nothing in the directory is created, changed or
    /// removed (a torn tail is ignored rather than cut off, leftovers are left), the
    /// directory lock is taken shared (so several read-only opens may run together, but
    /// not beside a writer) or not at all when there is no `LOCK` file (a read-only
    /// mount), and every write, `compact` included, fails with
    /// [`Error::ReadOnly`](store_core::Error::ReadOnly). Default `false`.
    pub read_only: bool,
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
            read_only: false,
            runtime: RuntimeOptions::default(),
        }
    }
}

impl FileOptions {
    /// Checks every field; [`FileStorage::open_with`](crate::FileStorage::open_with) calls
    /// it before touching the directory.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] naming the field, the value and what is accepted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use store_file::{FileOptions, SyncPolicy};
    /// assert!(FileOptions::default().validate().is_ok());
    /// let forever = FileOptions { sync: SyncPolicy::Interval(Duration::MAX), ..Default::default() };
    /// assert!(forever.validate().unwrap_err().to_string().contains("FileOptions::sync"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if let SyncPolicy::Interval(d) = self.sync {
            if d > MAX_SYNC_INTERVAL {
                return Err(Error::InvalidValue(format!(
                    "FileOptions::sync: Interval({d:?}) is too long; accepted: at most                      {MAX_SYNC_INTERVAL:?} (one day), or SyncPolicy::Never"
                )));
            }
        }
        if self.segment_size == 0 {
            return Err(Error::InvalidValue(
                "FileOptions::segment_size: 0; accepted: at least 1 byte (64 MiB by default)"
                    .to_owned(),
            ));
        }
        let ratio = self.compact_garbage_ratio;
        if ratio.is_nan() || ratio < 0.0 {
            return Err(Error::InvalidValue(format!(
                "FileOptions::compact_garbage_ratio: {ratio}; accepted: a number from 0.0 \
                 (above 1.0 turns automatic compaction off)"
            )));
        }
        Ok(())
    }
}
