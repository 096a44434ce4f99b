//! TOML configuration: choose a backend and stack layers on it from a file.
//!
//! ```toml
//! backend = "file"          # memory | file | redis | postgres
//! namespace = "orders"      # optional namespace layer
//!
//! [file]                    # required when backend = "file"
//! dir = "./data"
//! sync = "always"           # always | never | a humantime interval such as "5ms"
//!
//! [cache]                   # optional cache layer on top
//! max_capacity = 100000
//! ttl = "30s"
//! ```
//!
//! The stack is built bottom-up: backend, then the cache, then the namespace on top, so the
//! cache holds every tenant's keys and the namespace confines this service to its own.
//! [`StoreConfig::build_stack`] returns it as a [`Stack`]: the storage, the
//! go-micro facade over it, the versioned API of any database/table, and the layers' stats.
//!
//! # Sections and features
//!
//! Each backend crate owns its section, with its defaults, its field docs and its checks:
//!
//! | section | type | backend or layer | cargo feature of store-compat |
//! |---------|------|------------------|-------------------------------|
//! | `[memory]` (optional) | `store_memory::MemoryConfig` | `backend = "memory"` | `memory` (default) |
//! | `[file]` (required for file) | `store_file::FileConfig` | `backend = "file"` | `file` (default) |
//! | `[cache]` (optional) | `store_cache::CacheConfig` | the cache layer | `cache` (default) |
//! | `[redis]` | `store_redis::RedisConfig` | `backend = "redis"` | `redis` (with store-redis) |
//! | `[postgres]` (required for postgres) | `store_postgres::PostgresConfig` | `backend = "postgres"` | `postgres` |
//!
//! A service compiles in only the backends whose features it turns on
//! (`store-compat = { default-features = false, features = ["memory"] }` builds no file
//! engine and no moka). A configuration that names a backend or a section this build does
//! not have is an error that names the feature; a section for a backend other than the
//! chosen one (`[file]` under `backend = "memory"`) is an error naming the section, since its
//! settings would be silently ignored.
//!
//! [`StoreConfig`] is a serde type that rejects unknown fields, so a service can embed it in
//! its own configuration (as a table such as `[store]`). Every error names the field, the
//! bad value and what is accepted; errors found while parsing also give line and column.

mod backend;
mod error;
mod feature_off;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use store_core::{Namespaced, Storage};

pub use backend::Backend;
pub use error::ConfigError;
#[cfg(feature = "cache")]
pub use store_cache::CacheConfig;
#[cfg(feature = "file")]
pub use store_file::{FileConfig, SyncPolicy, SyncPolicy as SyncSetting};
#[cfg(feature = "memory")]
pub use store_memory::MemoryConfig;
#[cfg(feature = "postgres")]
pub use store_postgres::PostgresConfig;
#[cfg(feature = "redis")]
pub use store_redis::RedisConfig;

#[allow(unused_imports)] // used by the sections whose feature is off
use feature_off::Never;

use crate::Stack;

/// What a namespace may be, for messages.
const NAMESPACE_ACCEPTED: &str = "accepted is a name of 1 to 255 bytes from A-Z a-z 0-9 . _ -";

/// A whole storage stack, as read from TOML.
///
/// ```
/// # #[cfg(all(feature = "memory", feature = "cache"))] {
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
/// # }
/// ```
///
/// Fields of backends and layers whose feature is off are private placeholders: such a
/// section in a file is an error naming the feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Which backend stores the data (required).
    pub backend: Backend,
    /// An optional namespace: every key is stored under `namespace/`.
    #[serde(
        default,
        deserialize_with = "namespace",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<String>,

    /// Settings of the memory backend (optional; only with `backend = "memory"`).
    #[cfg(feature = "memory")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryConfig>,
    #[cfg(not(feature = "memory"))]
    #[serde(default, skip_serializing, deserialize_with = "feature_off::memory")]
    memory: Option<Never>,

    /// Settings of the file backend (required with `backend = "file"`, and only then).
    #[cfg(feature = "file")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileConfig>,
    #[cfg(not(feature = "file"))]
    #[serde(default, skip_serializing, deserialize_with = "feature_off::file")]
    file: Option<Never>,

    /// Settings of the Redis backend (required with `backend = "redis"`, and only then).
    #[cfg(feature = "redis")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfig>,
    #[cfg(not(feature = "redis"))]
    #[serde(default, skip_serializing, deserialize_with = "feature_off::redis")]
    redis: Option<Never>,

    /// Settings of the PostgreSQL backend (required with `backend = "postgres"`, and only
    /// then).
    #[cfg(feature = "postgres")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresConfig>,
    #[cfg(not(feature = "postgres"))]
    #[serde(default, skip_serializing, deserialize_with = "feature_off::postgres")]
    postgres: Option<Never>,

    /// An optional cache layer on top of the backend.
    #[cfg(feature = "cache")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
    #[cfg(not(feature = "cache"))]
    #[serde(default, skip_serializing, deserialize_with = "feature_off::cache")]
    cache: Option<Never>,
}

fn namespace<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    store_core::config::checked_text(d, "namespace", NAMESPACE_ACCEPTED, |name| {
        store_core::validate_name(name).is_ok()
    })
    .map(Some)
}

impl StoreConfig {
    /// A configuration for `backend` with no namespace, no cache and no sections; set the
    /// public fields to add them.
    ///
    /// ```
    /// use store_compat::config::{Backend, StoreConfig};
    /// let mut config = StoreConfig::new(Backend::Memory);
    /// config.namespace = Some("orders".into());
    /// config.validate().unwrap();
    /// ```
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            namespace: None,
            memory: None,
            file: None,
            redis: None,
            postgres: None,
            cache: None,
        }
    }

    /// Parses and checks a standalone TOML document.
    ///
    /// ```
    /// let config = store_compat::config::StoreConfig::from_toml_str("backend = \"memory\"").unwrap();
    /// assert_eq!(config.namespace, None);
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

    /// Checks what one field alone cannot: that the backend is in this build, that the
    /// sections fit the backend (its required section is there, no other backend's
    /// section is), and the namespace. [`from_toml_str`](StoreConfig::from_toml_str) and
    /// the builders call it; call it yourself when the configuration was embedded in yours.
    ///
    /// ```
    /// use store_compat::config::{Backend, StoreConfig};
    /// let err = StoreConfig::new(Backend::File).validate().unwrap_err();
    /// # #[cfg(feature = "file")]
    /// assert!(err.to_string().contains("[file]"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backend
            .check_compiled()
            .map_err(ConfigError::FeatureOff)?;
        if let Some(namespace) = &self.namespace {
            if store_core::validate_name(namespace).is_err() {
                return Err(ConfigError::Invalid {
                    field: "namespace",
                    value: format!("{namespace:?}"),
                    accepted: NAMESPACE_ACCEPTED.into(),
                });
            }
        }
        for (section, present) in self.backend_sections() {
            if present && section != self.backend {
                return Err(ConfigError::UnusedSection {
                    section: section.section(),
                    backend: self.backend,
                });
            }
        }
        if let Some(hint) = self.required_section_hint() {
            let present = self
                .backend_sections()
                .into_iter()
                .any(|(section, present)| present && section == self.backend);
            if !present {
                return Err(ConfigError::MissingSection {
                    backend: self.backend.name(),
                    section: self.backend.section(),
                    hint,
                });
            }
        }
        Ok(())
    }

    /// Which backends' sections the configuration holds.
    fn backend_sections(&self) -> [(Backend, bool); 4] {
        [
            (Backend::Memory, self.memory.is_some()),
            (Backend::File, self.file.is_some()),
            (Backend::Redis, self.redis.is_some()),
            (Backend::Postgres, self.postgres.is_some()),
        ]
    }

    /// What the chosen backend's section must hold, when the backend cannot do without one.
    fn required_section_hint(&self) -> Option<&'static str> {
        match self.backend {
            Backend::Memory => None,
            Backend::File => Some("at least `dir = \"path/to/data\"`"),
            Backend::Redis => Some("at least `url = \"redis://host:6379/0\"` and `prefix`"),
            Backend::Postgres => Some("at least `url = \"postgres://user@host/db\"` and `table`"),
        }
    }

    /// Builds the stack (backend, then cache, then namespace) and returns it with the go-micro
    /// facade over it, the versioned API of any scope and the layers' stats. Call inside a
    /// tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Record, Store, WriteOptions};
    /// use store_core::Error;
    /// let stack = store_compat::config::StoreConfig::from_toml_str("backend = \"memory\"")
    ///     .unwrap()
    ///     .build_stack()
    ///     .await
    ///     .unwrap();
    /// stack.store().write(Record::new("k", "v"), WriteOptions::default()).await.unwrap();
    /// // The same record through the versioned API of the facade's default scope:
    /// let orders = stack.versioned("", "").unwrap();
    /// let live = orders.get("k").await.unwrap();
    /// assert!(matches!(orders.create(store_core::Record::new("k", "w")).await, Err(Error::AlreadyExists(_))));
    /// assert_eq!(stack.store().name(), "memory");
    /// # let _ = live;
    /// # });
    /// ```
    pub async fn build_stack(&self) -> Result<Stack, ConfigError> {
        self.validate()?;
        let backend = self.open_backend().await?;
        let cached = self.add_cache(backend);
        let storage: Arc<dyn Storage> = match &self.namespace {
            Some(namespace) => Arc::new(Namespaced::new(cached, namespace.clone())?),
            None => cached,
        };
        tracing::info!(stack = %storage.describe(), "store stack built");
        Ok(Stack::new(storage))
    }

    /// Builds the stack and returns its storage (see [`build_stack`](StoreConfig::build_stack)).
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
        Ok(self.build_stack().await?.storage())
    }

    /// Builds the stack and returns the go-micro facade over it (see
    /// [`build_stack`](StoreConfig::build_stack) for the versioned API and stats, also
    /// reachable from the facade through [`Store::versioned`](crate::Store::versioned) and
    /// [`Store::stats`](crate::Store::stats)).
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
        Ok(self.build_stack().await?.store())
    }

    /// Opens the chosen backend from its section.
    async fn open_backend(&self) -> Result<Arc<dyn Storage>, ConfigError> {
        // With every backend compiled in, the last arm cannot be reached.
        #[allow(unreachable_patterns)]
        match self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory => Ok(Arc::new(
                self.memory
                    .as_ref()
                    .map_or_else(store_memory::MemoryStorage::new, MemoryConfig::build),
            )),
            #[cfg(feature = "file")]
            Backend::File => {
                let file = self.file.as_ref().ok_or(ConfigError::MissingSection {
                    backend: "file",
                    section: "file",
                    hint: "at least `dir = \"path/to/data\"`",
                })?;
                Ok(Arc::new(file.open().await?))
            }
            #[cfg(feature = "redis")]
            Backend::Redis => {
                let redis = self.redis.as_ref().ok_or(ConfigError::MissingSection {
                    backend: "redis",
                    section: "redis",
                    hint: "at least `url = \"redis://host:6379/0\"` and `prefix`",
                })?;
                Ok(Arc::new(redis.connect().await?))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let postgres = self.postgres.as_ref().ok_or(ConfigError::MissingSection {
                    backend: "postgres",
                    section: "postgres",
                    hint: "at least `url = \"postgres://user@host/db\"` and `table`",
                })?;
                Ok(Arc::new(postgres.connect().await?))
            }
            other => Err(ConfigError::FeatureOff(
                other.check_compiled().err().unwrap_or_default(),
            )),
        }
    }

    /// Puts the cache layer on `backend` when the configuration has one.
    #[cfg(feature = "cache")]
    fn add_cache(&self, backend: Arc<dyn Storage>) -> Arc<dyn Storage> {
        match &self.cache {
            Some(cache) => Arc::new(cache.wrap(backend)),
            None => backend,
        }
    }

    /// Without the `cache` feature no configuration has a cache: the section is refused
    /// while parsing, and code cannot set the private placeholder.
    #[cfg(not(feature = "cache"))]
    fn add_cache(&self, backend: Arc<dyn Storage>) -> Arc<dyn Storage> {
        debug_assert!(self.cache.is_none());
        backend
    }
}
