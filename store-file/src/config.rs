//! [`FileConfig`]: the `[file]` section of a store configuration, and the text form of
//! [`SyncPolicy`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use store_core::config::{self, DurationError, RuntimeConfig};
use store_core::{Error, Result};

use crate::{FileOptions, FileStorage, SyncPolicy};

/// What a `sync` setting may be, for every message about one.
const SYNC_ACCEPTED: &str = "accepted are \"always\", \"never\" or an interval above zero such \
                             as \"5ms\" or \"1s\" (at most one day)";

/// The `[file]` section: the durable file backend. `dir` is required; every other field is
/// optional and defaults to [`FileOptions::default`].
///
/// | field | default | accepted |
/// |-------|---------|----------|
/// | `dir` | required | the store's directory (created with its parents); relative to the working directory |
/// | `sync` | `"always"` | `"always"` (a write returns once on disk), `"never"` (the OS flushes), or an interval such as `"5ms"` (fsync at least that often) |
/// | `segment_size` | 67108864 (64 MiB) | bytes after which a segment is sealed; a whole number from 1 |
/// | `compact_garbage_ratio` | 0.5 | share of garbage that starts a compaction; a number above 0 (above 1: never on its own) |
/// | `compact_min_bytes` | 16777216 (16 MiB) | bytes the files must hold before compaction starts on its own; from 0 |
/// | `cache_values_up_to` | 1024 | values of at most this many bytes are kept in memory too; from 0 |
/// | `skip_corrupt_frames` | `false` | `true` opens a damaged store by skipping damaged frames (their writes are lost) |
/// | `read_only` | `false` | `true` opens the store to read only (a shared lock, nothing written: for inspecting or snapshotting a store, even on a read-only mount) |
/// | `[file.runtime]` | the runtime's defaults | the actor's tuning: `mailbox`, `max_batch`, `page_size`, `scan_budget`, `page_bytes` (see [`RuntimeConfig`]) |
///
/// Unknown fields are errors, as are values of the wrong type or out of range; each message
/// names the field, the value and what is accepted.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let tmp = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use store_core::{Record, Storage};
/// use store_file::{FileConfig, SyncPolicy};
///
/// let text = format!("dir = {:?}\nsync = \"5ms\"\nsegment_size = 1048576\n[runtime]\nmax_batch = 64", tmp.path());
/// let config: FileConfig = toml::from_str(&text).unwrap();
/// assert_eq!(config.sync, SyncPolicy::Interval(Duration::from_millis(5)));
/// assert_eq!(config.options().runtime.max_batch, 64);
/// let store = config.open().await?;
/// store.put(Record::new("k", "v")).await?;
/// store.close().await?;
///
/// let err = toml::from_str::<FileConfig>("dir = \"d\"\nsync = true").unwrap_err().to_string();
/// assert!(err.contains("field `file.sync` = true: accepted are \"always\", \"never\""));
/// # Ok::<(), store_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileConfig {
    /// The directory that holds the store (created with its parents if missing).
    #[serde(deserialize_with = "fields::dir")]
    pub dir: PathBuf,
    /// When writes reach the disk. Default [`SyncPolicy::Always`].
    #[serde(
        default,
        deserialize_with = "fields::sync",
        serialize_with = "fields::serialize_sync"
    )]
    pub sync: SyncPolicy,
    /// See [`FileOptions::segment_size`].
    #[serde(
        default = "defaults::segment_size",
        deserialize_with = "fields::segment_size"
    )]
    pub segment_size: u64,
    /// See [`FileOptions::compact_garbage_ratio`].
    #[serde(
        default = "defaults::compact_garbage_ratio",
        deserialize_with = "fields::compact_garbage_ratio"
    )]
    pub compact_garbage_ratio: f64,
    /// See [`FileOptions::compact_min_bytes`].
    #[serde(
        default = "defaults::compact_min_bytes",
        deserialize_with = "fields::compact_min_bytes"
    )]
    pub compact_min_bytes: u64,
    /// See [`FileOptions::cache_values_up_to`].
    #[serde(
        default = "defaults::cache_values_up_to",
        deserialize_with = "fields::cache_values_up_to"
    )]
    pub cache_values_up_to: usize,
    /// See [`FileOptions::skip_corrupt_frames`].
    #[serde(default, deserialize_with = "fields::skip_corrupt_frames")]
    pub skip_corrupt_frames: bool,
    /// See [`FileOptions::read_only`].
    #[serde(default, deserialize_with = "fields::read_only")]
    pub read_only: bool,
    /// The actor runtime's tuning, the `[file.runtime]` table.
    #[serde(default, skip_serializing_if = "RuntimeConfig::is_default")]
    pub runtime: RuntimeConfig,
}

impl FileConfig {
    /// Settings for a store in `dir`, every other field at its default.
    ///
    /// ```
    /// let config = store_file::FileConfig::new("/var/lib/orders");
    /// assert_eq!(config.sync, store_file::SyncPolicy::Always);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::from_options(dir, &FileOptions::default())
    }

    /// Settings for a store in `dir` with `options`.
    ///
    /// ```
    /// use store_file::{FileConfig, FileOptions, SyncPolicy};
    /// let options = FileOptions { sync: SyncPolicy::Never, ..Default::default() };
    /// let config = FileConfig::from_options("data", &options);
    /// assert_eq!(config.sync, SyncPolicy::Never);
    /// ```
    pub fn from_options(dir: impl Into<PathBuf>, options: &FileOptions) -> Self {
        Self {
            dir: dir.into(),
            sync: options.sync,
            segment_size: options.segment_size,
            compact_garbage_ratio: options.compact_garbage_ratio,
            compact_min_bytes: options.compact_min_bytes,
            cache_values_up_to: options.cache_values_up_to,
            skip_corrupt_frames: options.skip_corrupt_frames,
            read_only: options.read_only,
            runtime: RuntimeConfig::from(&options.runtime),
        }
    }

    /// The open options these settings describe (everything but `dir`).
    ///
    /// ```
    /// let options = store_file::FileConfig::new("data").options();
    /// assert_eq!(options.segment_size, store_file::FileOptions::default().segment_size);
    /// ```
    pub fn options(&self) -> FileOptions {
        // Start from the defaults, so an option this section does not know yet keeps its
        // default rather than failing to compile here.
        let mut options = FileOptions::default();
        options.sync = self.sync;
        options.segment_size = self.segment_size;
        options.compact_garbage_ratio = self.compact_garbage_ratio;
        options.compact_min_bytes = self.compact_min_bytes;
        options.cache_values_up_to = self.cache_values_up_to;
        options.skip_corrupt_frames = self.skip_corrupt_frames;
        options.read_only = self.read_only;
        options.runtime = self.runtime.options();
        options
    }

    /// Opens the store these settings describe (see [`FileStorage::open_with`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use store_core::Storage;
    /// let store = store_file::FileConfig::new(tmp.path().join("orders")).open().await?;
    /// store.close().await?;
    /// # Ok::<(), store_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(&self) -> Result<FileStorage> {
        FileStorage::open_with(&self.dir, self.options()).await
    }
}

/// `"always"`, `"never"` or a humantime interval such as `"5ms"`, as in a `[file]` section.
///
/// ```
/// use std::time::Duration;
/// use store_file::SyncPolicy;
/// assert_eq!("never".parse::<SyncPolicy>().unwrap(), SyncPolicy::Never);
/// assert_eq!("5ms".parse::<SyncPolicy>().unwrap(), SyncPolicy::Interval(Duration::from_millis(5)));
/// let err = "sometimes".parse::<SyncPolicy>().unwrap_err().to_string();
/// assert!(err.contains("\"sometimes\"") && err.contains("\"always\""));
/// ```
impl FromStr for SyncPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        parse_sync(text)
            .map_err(|accepted| Error::InvalidValue(format!("sync policy {text:?}: {accepted}")))
    }
}

/// The text [`FromStr`] reads back: `always`, `never` or a humantime interval.
///
/// ```
/// use std::time::Duration;
/// use store_file::SyncPolicy;
/// assert_eq!(SyncPolicy::Interval(Duration::from_millis(1500)).to_string(), "1s 500ms");
/// assert_eq!(SyncPolicy::Always.to_string(), "always");
/// ```
impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Never => f.write_str("never"),
            SyncPolicy::Interval(d) => f.write_str(&config::format_duration(*d)),
        }
    }
}

/// Reads a sync setting; the error says what is accepted.
fn parse_sync(text: &str) -> Result<SyncPolicy, String> {
    match text {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        other => match config::parse_duration(other) {
            // The store checks this too (FileOptions::validate); here the message names the field.
            Ok(interval) if interval > crate::MAX_SYNC_INTERVAL => Err(
                "an interval of at most one day is accepted (use \"never\" to leave it to the OS)"
                    .to_owned(),
            ),
            other => other
                .map(SyncPolicy::Interval)
                .map_err(|error| match error {
                    DurationError::Zero => "an interval must be longer than zero (use \"always\" \
                                        to sync every write)"
                        .to_owned(),
                    DurationError::TooLong => {
                        format!("{error} (use \"never\" to leave it to the OS)")
                    }
                    _ => SYNC_ACCEPTED.to_owned(),
                }),
        },
    }
}

mod defaults {
    use crate::FileOptions;

    pub(super) fn segment_size() -> u64 {
        FileOptions::default().segment_size
    }
    pub(super) fn compact_garbage_ratio() -> f64 {
        FileOptions::default().compact_garbage_ratio
    }
    pub(super) fn compact_min_bytes() -> u64 {
        FileOptions::default().compact_min_bytes
    }
    pub(super) fn cache_values_up_to() -> usize {
        FileOptions::default().cache_values_up_to
    }
}

/// One reader per field, naming it.
mod fields {
    use store_core::config::Scalar;

    use super::*;

    pub(super) fn dir<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        const ACCEPTED: &str = "accepted is the store's directory, a non-empty path in quotes";
        let dir = config::text(d, "file.dir", ACCEPTED)?;
        if dir.is_empty() {
            return Err(config::invalid("file.dir", "\"\"", ACCEPTED));
        }
        Ok(PathBuf::from(dir))
    }

    pub(super) fn sync<'de, D: Deserializer<'de>>(d: D) -> Result<SyncPolicy, D::Error> {
        let text = config::text(d, "file.sync", SYNC_ACCEPTED)?;
        parse_sync(&text)
            .map_err(|accepted| config::invalid("file.sync", Scalar::Str(text), accepted))
    }

    pub(super) fn serialize_sync<S: Serializer>(
        sync: &SyncPolicy,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(sync)
    }

    pub(super) fn segment_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        config::positive_u64(d, "file.segment_size", "bytes")
    }

    pub(super) fn compact_garbage_ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        const ACCEPTED: &str = "accepted is a number above 0 (0.5: compact when half of the \
                                files is garbage; above 1: never compact on its own)";
        let ratio = config::number(d, "file.compact_garbage_ratio", ACCEPTED)?;
        if ratio > 0.0 {
            Ok(ratio)
        } else {
            Err(config::invalid(
                "file.compact_garbage_ratio",
                Scalar::Float(ratio),
                ACCEPTED,
            ))
        }
    }

    pub(super) fn compact_min_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        config::whole_number(d, "file.compact_min_bytes", 0..=u64::MAX, "bytes")
    }

    pub(super) fn cache_values_up_to<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "file.cache_values_up_to", 0..=usize::MAX, "bytes")
    }

    pub(super) fn skip_corrupt_frames<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        config::boolean(d, "file.skip_corrupt_frames")
    }

    pub(super) fn read_only<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        config::boolean(d, "file.read_only")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> std::result::Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn assert_mentions(message: &str, needles: &[&str]) {
        for needle in needles {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
    }

    #[test]
    fn a_sync_interval_longer_than_a_day_names_the_field() {
        let err = parse("dir = \"d\"\nsync = \"2days\"").unwrap_err();
        assert_mentions(
            &err,
            &["file.sync", "\"2days\"", "at most one day", "\"never\""],
        );
        assert_eq!(
            parse("dir = \"d\"\nsync = \"1day\"").unwrap().sync,
            SyncPolicy::Interval(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn every_option_is_reachable() {
        let config = parse(
            "dir = \"data\"\nsync = \"never\"\nsegment_size = 4096\ncompact_garbage_ratio = 2\n\
             compact_min_bytes = 0\ncache_values_up_to = 0\nskip_corrupt_frames = true\nread_only = true\n\
             [runtime]\nmailbox = 2\nmax_batch = 3\npage_size = 4\nscan_budget = 5\npage_bytes = 6\n",
        )
        .unwrap();
        let options = config.options();
        assert_eq!(config.dir, PathBuf::from("data"));
        assert_eq!(options.sync, SyncPolicy::Never);
        assert_eq!(options.segment_size, 4096);
        assert!(options.read_only);
        assert_eq!(options.compact_garbage_ratio, 2.0);
        assert_eq!(options.compact_min_bytes, 0);
        assert_eq!(options.cache_values_up_to, 0);
        assert!(options.skip_corrupt_frames);
        let runtime = options.runtime;
        assert_eq!(
            (
                runtime.mailbox,
                runtime.max_batch,
                runtime.page_size,
                runtime.scan_budget,
                runtime.page_bytes
            ),
            (2, 3, 4, 5, 6)
        );
        assert_eq!(FileConfig::from_options("data", &config.options()), config);
    }

    #[test]
    fn defaults_are_the_backends() {
        let config = parse("dir = \"d\"").unwrap();
        assert_eq!(config, FileConfig::new("d"));
        let (options, defaults) = (config.options(), FileOptions::default());
        assert_eq!(options.sync, defaults.sync);
        assert_eq!(options.segment_size, defaults.segment_size);
        assert_eq!(
            options.compact_garbage_ratio,
            defaults.compact_garbage_ratio
        );
        assert_eq!(options.compact_min_bytes, defaults.compact_min_bytes);
        assert_eq!(options.cache_values_up_to, defaults.cache_values_up_to);
        assert_eq!(options.skip_corrupt_frames, defaults.skip_corrupt_frames);
        assert_eq!(options.runtime.mailbox, defaults.runtime.mailbox);
    }

    #[test]
    fn sync_errors_name_the_field_and_the_accepted_values() {
        for bad in [
            "sync = true",
            "sync = \"sometimes\"",
            "sync = 5",
            "sync = [\"always\"]",
        ] {
            let err = parse(&format!("dir = \"d\"\n{bad}")).unwrap_err();
            assert_mentions(
                &err,
                &[
                    "field `file.sync` = ",
                    "\"always\"",
                    "\"never\"",
                    "\"5ms\"",
                    "line 2",
                ],
            );
        }
        let err = parse("dir = \"d\"\nsync = \"sometimes\"").unwrap_err();
        assert_mentions(&err, &["= \"sometimes\""]);
        let err = parse("dir = \"d\"\nsync = \"0s\"").unwrap_err();
        assert_mentions(
            &err,
            &[
                "field `file.sync` = \"0s\"",
                "longer than zero",
                "\"always\"",
            ],
        );
        let err = parse("dir = \"d\"\nsync = \"200 years\"").unwrap_err();
        assert_mentions(&err, &["100 years", "\"never\""]);
    }

    #[test]
    fn other_fields_name_themselves() {
        let cases = [
            ("dir = \"\"", "field `file.dir` = \"\""),
            ("dir = 3", "field `file.dir` = 3"),
            (
                "dir = \"d\"\nsegment_size = 0",
                "field `file.segment_size` = 0",
            ),
            (
                "dir = \"d\"\nsegment_size = -1",
                "field `file.segment_size` = -1",
            ),
            (
                "dir = \"d\"\ncompact_garbage_ratio = -1.0",
                "field `file.compact_garbage_ratio` = -1.0",
            ),
            (
                "dir = \"d\"\ncompact_garbage_ratio = 0",
                "field `file.compact_garbage_ratio` = 0.0",
            ),
            (
                "dir = \"d\"\ncompact_garbage_ratio = \"half\"",
                "field `file.compact_garbage_ratio` = \"half\"",
            ),
            (
                "dir = \"d\"\ncompact_min_bytes = -1",
                "field `file.compact_min_bytes` = -1",
            ),
            (
                "dir = \"d\"\ncache_values_up_to = 1.5",
                "field `file.cache_values_up_to` = 1.5",
            ),
            (
                "dir = \"d\"\nskip_corrupt_frames = \"yes\"",
                "field `file.skip_corrupt_frames` = \"yes\"",
            ),
            ("dir = \"d\"\n[runtime]\nmailbox = 0", "field `mailbox` = 0"),
            ("dir = \"d\"\nsegement_size = 1", "segement_size"),
            ("sync = \"never\"", "dir"),
        ];
        for (text, needle) in cases {
            assert_mentions(&parse(text).unwrap_err(), &[needle]);
        }
    }

    #[test]
    fn it_round_trips_through_toml() {
        for text in [
            "dir = \"d\"",
            "dir = \"d\"\nsync = \"1m 5s\"\ncompact_garbage_ratio = 0.25\n[runtime]\npage_size = 9",
        ] {
            let config = parse(text).unwrap();
            let written = toml::to_string(&config).unwrap();
            assert_eq!(parse(&written).unwrap(), config, "{written}");
        }
        assert_eq!(
            parse("dir = \"d\"\nsync = \"1m 5s\"").unwrap().sync,
            SyncPolicy::Interval(Duration::from_secs(65))
        );
    }

    #[test]
    fn sync_policies_print_as_they_parse() {
        for policy in [
            SyncPolicy::Always,
            SyncPolicy::Never,
            SyncPolicy::Interval(Duration::from_micros(1500)),
        ] {
            assert_eq!(policy.to_string().parse::<SyncPolicy>().unwrap(), policy);
        }
        assert!(matches!(
            "".parse::<SyncPolicy>(),
            Err(Error::InvalidValue(_))
        ));
    }

    #[tokio::test]
    async fn open_uses_the_settings() {
        use store_core::{Record, Storage};
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "dir = {:?}\nsegment_size = 200\nsync = \"never\"",
            tmp.path().join("s")
        );
        let store = parse(&text).unwrap().open().await.unwrap();
        for i in 0..10 {
            store
                .put(Record::new(format!("k{i}"), vec![b'x'; 64]))
                .await
                .unwrap();
        }
        // Small segments roll over: more than one segment file.
        assert!(store.stats().segments > 1);
        store.close().await.unwrap();
    }
}
