//! TOML configuration: choose a backend and stack layers on it from a file.
//!
//! ```toml
//! backend = "file"          # memory | file
//! namespace = "orders"      # optional namespace layer
//!
//! [file]                    # required when backend = "file"
//! dir = "./data"
//! sync = "always"           # always | never | a humantime interval such as "5ms"
//! compact_garbage_ratio = 0.5   # optional: compact when this share of the log is garbage
//!
//! [cache]                   # optional cache layer on top
//! max_capacity = 100000
//! ttl = "30s"               # optional humantime duration
//! negative_ttl = "1s"       # optional: remember NotFound this long
//! ```
//!
//! The stack is built bottom-up: backend, then the cache, then the namespace on top, so the
//! cache holds every tenant's keys and the namespace confines this service to its own.
//!
//! [`StoreConfig`] is a serde type that rejects unknown fields, so a service can embed it in
//! its own configuration (`#[serde(default)]` or as a table such as `[store]`). Every error
//! names the field, the bad value and what is accepted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use store_core::Storage;

/// A whole storage stack, as read from TOML.
///
/// ```
/// use store_compat::config::{Backend, StoreConfig};
/// let config = StoreConfig::from_toml_str(r#"
///     backend = "memory"
///     namespace = "orders"
///     [cache]
///     max_capacity = 1000
///     ttl = "30s"
/// "#).unwrap();
/// assert_eq!(config.backend, Backend::Memory);
/// assert_eq!(config.cache.unwrap().ttl, Some(std::time::Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which backend stores the data.
    pub backend: Backend,
    /// An optional namespace: every key is stored under `namespace/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Settings of the file backend; required when `backend = "file"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileConfig>,
    /// An optional cache layer on top of the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
}

/// The backends a configuration can name.
///
/// ```
/// assert_eq!("file".parse::<store_compat::config::Backend>().unwrap(),
///            store_compat::config::Backend::File);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `"memory"`: the in-memory backend (nothing survives the process).
    Memory,
    /// `"file"`: the durable file backend; needs a `[file]` section.
    File,
}

impl Backend {
    /// Every backend name a configuration accepts.
    pub const NAMES: &'static [&'static str] = &["memory", "file"];

    /// The name used in configuration files.
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::Memory.name(), "memory");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::File => "file",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "memory" => Ok(Backend::Memory),
            "file" => Ok(Backend::File),
            other => Err(format!(
                "unknown backend {other:?} in field `backend`: known backends are {}",
                Backend::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Backend {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The `[file]` section.
///
/// ```
/// let file: store_compat::config::FileConfig = toml::from_str(r#"
///     dir = "/var/lib/orders"
///     sync = "5ms"
/// "#).unwrap();
/// assert_eq!(file.sync, store_compat::config::SyncSetting::Interval(std::time::Duration::from_millis(5)));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The directory that holds the store (created with its parents if missing).
    pub dir: PathBuf,
    /// When writes reach the disk; `always` by default.
    #[serde(default)]
    pub sync: SyncSetting,
    /// Compact once this share of the log is garbage (0.5: half); above 1 turns automatic
    /// compaction off. The backend's default (0.5) if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_garbage_ratio: Option<f64>,
}

/// The `sync` setting of the `[file]` section.
///
/// ```
/// use store_compat::config::SyncSetting;
/// assert_eq!("never".parse::<SyncSetting>().unwrap(), SyncSetting::Never);
/// assert!("sometimes".parse::<SyncSetting>().unwrap_err().contains("\"sometimes\""));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncSetting {
    /// `"always"`: a write returns once it is on disk (one fsync per batch of writes).
    #[default]
    Always,
    /// `"never"`: leave flushing to the operating system.
    Never,
    /// A humantime interval such as `"5ms"`: fsync at least this often.
    Interval(Duration),
}

impl std::str::FromStr for SyncSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "always" => Ok(SyncSetting::Always),
            "never" => Ok(SyncSetting::Never),
            other => match humantime::parse_duration(other) {
                Ok(interval) if !interval.is_zero() => Ok(SyncSetting::Interval(interval)),
                Ok(_) => Err(format!(
                    "invalid sync policy {other:?} in field `file.sync`: an interval must be \
                     longer than zero (use \"always\" to sync every write)"
                )),
                Err(e) => Err(format!(
                    "invalid sync policy {other:?} in field `file.sync` ({e}): accepted are \
                     \"always\", \"never\" or a duration such as \"5ms\" or \"1s\""
                )),
            },
        }
    }
}

impl fmt::Display for SyncSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncSetting::Always => f.write_str("always"),
            SyncSetting::Never => f.write_str("never"),
            SyncSetting::Interval(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for SyncSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SyncSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The `[cache]` section.
///
/// ```
/// let cache: store_compat::config::CacheConfig = toml::from_str("ttl = \"1m\"").unwrap();
/// assert_eq!(cache.max_capacity, 10_000);
/// assert_eq!(cache.ttl, Some(std::time::Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Most entries held (10,000 if unset).
    #[serde(default = "default_capacity")]
    pub max_capacity: u64,
    /// Longest life of an entry, a humantime duration such as `"30s"`.
    #[serde(
        default,
        with = "duration_field",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<Duration>,
    /// Remember `NotFound` answers this long (off if unset).
    #[serde(
        default,
        with = "duration_field",
        skip_serializing_if = "Option::is_none"
    )]
    pub negative_ttl: Option<Duration>,
}

fn default_capacity() -> u64 {
    store_cache::CacheOptions::default().max_capacity
}

/// Optional humantime durations, with errors that say what is accepted.
mod duration_field {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.collect_str(&humantime::format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}): accepted are humantime durations such as \
                 \"250ms\", \"30s\", \"5m\" or \"1h 30m\""
            ))
        })
    }
}

/// Why a configuration could not be read or built.
///
/// ```
/// let err = store_compat::config::StoreConfig::from_toml_str("backend = \"redis\"").unwrap_err();
/// assert!(err.to_string().contains("unknown backend \"redis\""));
/// assert!(err.to_string().contains("memory, file"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML is malformed or a field has a bad value; the message gives line and column.
    #[error("invalid store configuration: {0}")]
    Parse(String),
    /// The configuration file could not be read.
    #[error("reading the store configuration {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A section the chosen backend needs is absent.
    #[error(
        "invalid store configuration: backend = {backend:?} needs a [{section}] section ({hint})"
    )]
    MissingSection {
        /// The backend that needs it.
        backend: &'static str,
        /// The missing section.
        section: &'static str,
        /// What the section must hold.
        hint: &'static str,
    },
    /// A field's value is out of range or not accepted.
    #[error("invalid store configuration: field `{field}` = {value}: {accepted}")]
    Invalid {
        /// The field, dotted (`file.compact_garbage_ratio`).
        field: &'static str,
        /// The value found.
        value: String,
        /// What is accepted.
        accepted: String,
    },
    /// Building the stack failed (for example, the file backend could not open its directory).
    #[error("building the store: {0}")]
    Build(#[from] store_core::Error),
}

impl StoreConfig {
    /// Parses and checks a standalone TOML document.
    ///
    /// ```
    /// let config = store_compat::config::StoreConfig::from_toml_str("backend = \"memory\"").unwrap();
    /// assert!(config.cache.is_none());
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: StoreConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and checks a TOML file.
    ///
    /// ```
    /// let err = store_compat::config::StoreConfig::from_path("/no/such/store.toml").unwrap_err();
    /// assert!(err.to_string().contains("/no/such/store.toml"));
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse(message) => {
                ConfigError::Parse(format!("in {}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// Checks what serde cannot: required sections, names and ranges. [`from_toml_str`]
    /// calls it; call it yourself when the config was embedded in your own.
    ///
    /// [`from_toml_str`]: StoreConfig::from_toml_str
    ///
    /// ```
    /// use store_compat::config::{Backend, StoreConfig};
    /// let config = StoreConfig { backend: Backend::File, namespace: None, file: None, cache: None };
    /// assert!(config.validate().unwrap_err().to_string().contains("[file]"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(namespace) = &self.namespace {
            store_core::validate_name(namespace).map_err(|e| ConfigError::Invalid {
                field: "namespace",
                value: format!("{namespace:?}"),
                accepted: e.to_string(),
            })?;
        }
        match (self.backend, &self.file) {
            (Backend::File, None) => {
                return Err(ConfigError::MissingSection {
                    backend: "file",
                    section: "file",
                    hint: "at least `dir = \"path/to/data\"`",
                })
            }
            (Backend::Memory, Some(_)) => {
                tracing::warn!("the [file] section is ignored because backend = \"memory\"");
            }
            _ => {}
        }
        if let Some(file) = &self.file {
            if file.dir.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    field: "file.dir",
                    value: "\"\"".into(),
                    accepted: "a directory path is required".into(),
                });
            }
            if let Some(ratio) = file.compact_garbage_ratio {
                if !(ratio.is_finite() && ratio > 0.0) {
                    return Err(ConfigError::Invalid {
                        field: "file.compact_garbage_ratio",
                        value: ratio.to_string(),
                        accepted: "a number above 0 (0.5: compact when half of the log is \
                                   garbage; above 1: never compact on its own)"
                            .into(),
                    });
                }
            }
        }
        if let Some(cache) = &self.cache {
            if cache.max_capacity == 0 {
                return Err(ConfigError::Invalid {
                    field: "cache.max_capacity",
                    value: "0".into(),
                    accepted: "a positive number of entries (remove [cache] to disable caching)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Builds the stack: backend, then cache, then namespace. Call inside a tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::{Record, Storage};
    /// let config = store_compat::config::StoreConfig::from_toml_str("backend = \"memory\"").unwrap();
    /// let storage = config.build().await.unwrap();
    /// storage.put(Record::new("k", "v")).await.unwrap();
    /// # });
    /// ```
    pub async fn build(&self) -> Result<Arc<dyn Storage>, ConfigError> {
        self.validate()?;
        let backend: Arc<dyn Storage> = match self.backend {
            Backend::Memory => Arc::new(store_memory::MemoryStorage::new()),
            Backend::File => {
                let file = self.file.as_ref().ok_or(ConfigError::MissingSection {
                    backend: "file",
                    section: "file",
                    hint: "at least `dir = \"path/to/data\"`",
                })?;
                Arc::new(open_file_backend(file).await?)
            }
        };
        let cached: Arc<dyn Storage> = match &self.cache {
            Some(cache) => Arc::new(store_cache::CachedStorage::new(
                backend,
                store_cache::CacheOptions {
                    max_capacity: cache.max_capacity,
                    ttl: cache.ttl,
                    negative_ttl: cache.negative_ttl,
                    ..Default::default()
                },
            )),
            None => backend,
        };
        let stack: Arc<dyn Storage> = match &self.namespace {
            Some(namespace) => Arc::new(store_core::Namespaced::new(cached, namespace.clone())?),
            None => cached,
        };
        tracing::info!(
            backend = %self.backend,
            cache = self.cache.is_some(),
            namespace = self.namespace.as_deref().unwrap_or(""),
            "store stack built"
        );
        Ok(stack)
    }

    /// Builds the stack and wraps it in the go-micro facade.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{ReadOptions, Record, Store, WriteOptions};
    /// let config = store_compat::config::StoreConfig::from_toml_str("backend = \"memory\"").unwrap();
    /// let store = config.build_store().await.unwrap();
    /// store.write(Record::new("k", "v"), WriteOptions::default()).await.unwrap();
    /// assert_eq!(store.read("k", ReadOptions::default()).await.unwrap().len(), 1);
    /// # });
    /// ```
    pub async fn build_store(&self) -> Result<Arc<dyn crate::Store>, ConfigError> {
        let storage = self.build().await?;
        let name = if self.cache.is_some() {
            format!("{} (cached)", self.backend)
        } else {
            self.backend.to_string()
        };
        Ok(Arc::new(crate::StoreAdapter::new(storage).with_name(name)))
    }
}

/// Opens the file backend with the options of a `[file]` section.
async fn open_file_backend(file: &FileConfig) -> Result<store_file::FileStorage, ConfigError> {
    let defaults = store_file::FileOptions::default();
    let options = store_file::FileOptions {
        sync: match file.sync {
            SyncSetting::Always => store_file::SyncPolicy::Always,
            SyncSetting::Never => store_file::SyncPolicy::Never,
            SyncSetting::Interval(d) => store_file::SyncPolicy::Interval(d),
        },
        compact_garbage_ratio: file
            .compact_garbage_ratio
            .unwrap_or(defaults.compact_garbage_ratio),
        ..defaults
    };
    Ok(store_file::FileStorage::open_with(&file.dir, options).await?)
}
