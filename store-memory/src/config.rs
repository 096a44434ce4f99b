//! [`MemoryConfig`]: the `[memory]` section of a store configuration.

use serde::{Deserialize, Serialize};
use store_core::config::RuntimeConfig;

use crate::MemoryStorage;

/// The `[memory]` section: the actor runtime's tuning for the in-memory backend. The
/// section is optional; every field defaults to the runtime's default.
///
/// | field | default | accepted |
/// |-------|---------|----------|
/// | `mailbox` | 1024 | commands that may wait for the actor (callers wait beyond it); a whole number from 1 |
/// | `max_batch` | 512 | commands applied per batch; from 1 |
/// | `page_size` | 256 | keys per `list_keys` page; from 1 |
/// | `scan_budget` | 4096 | entries scanned per `list_keys` page; from 1 |
/// | `page_bytes` | 262144 | bytes of keys per `list_keys` page; from 1 |
///
/// Unknown fields are errors, as are zeros, negative numbers and other types; each message
/// names the field, the value and what is accepted.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// use store_memory::MemoryConfig;
///
/// let config: MemoryConfig = toml::from_str("mailbox = 4096\npage_size = 64").unwrap();
/// assert_eq!(config.runtime.mailbox, 4096);
/// let store = config.build();
/// store.put(Record::new("k", "v")).await.unwrap();
///
/// let err = toml::from_str::<MemoryConfig>("mailbox = -1").unwrap_err().to_string();
/// assert!(err.contains("field `mailbox` = -1: accepted is a positive whole number of commands"));
/// # });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
// The runtime's fields are the section's fields; `RuntimeConfig` rejects unknown ones.
#[serde(transparent)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// The actor runtime's tuning.
    pub runtime: RuntimeConfig,
}

impl MemoryConfig {
    /// Settings with the given runtime tuning.
    ///
    /// ```
    /// use store_core::config::RuntimeConfig;
    /// let config = store_memory::MemoryConfig::new(RuntimeConfig::default());
    /// assert!(config.runtime.is_default());
    /// ```
    pub fn new(runtime: RuntimeConfig) -> Self {
        Self { runtime }
    }

    /// Starts an empty in-memory store with these settings (see [`MemoryStorage::new`] for
    /// where its actor runs).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_memory::MemoryConfig::default().build();
    /// # let _ = store;
    /// # });
    /// ```
    pub fn build(&self) -> MemoryStorage {
        MemoryStorage::with_options(self.runtime.options())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MemoryConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn every_runtime_field_is_reachable() {
        let config =
            parse("mailbox = 8\nmax_batch = 4\npage_size = 2\nscan_budget = 16\npage_bytes = 1024")
                .unwrap();
        let options = config.runtime.options();
        assert_eq!(
            (
                options.mailbox,
                options.max_batch,
                options.page_size,
                options.scan_budget,
                options.page_bytes
            ),
            (8, 4, 2, 16, 1024)
        );
        assert_eq!(parse("").unwrap(), MemoryConfig::default());
    }

    #[test]
    fn bad_fields_are_named() {
        let err = parse("mailbx = 1").unwrap_err();
        assert!(err.contains("mailbx") && err.contains("mailbox"), "{err}");
        let err = parse("page_size = 0").unwrap_err();
        assert!(err.contains("field `page_size` = 0"), "{err}");
        let err = parse("max_batch = \"many\"").unwrap_err();
        assert!(err.contains("field `max_batch` = \"many\""), "{err}");
    }

    #[test]
    fn it_round_trips_through_toml() {
        let config = parse("scan_budget = 10").unwrap();
        let text = toml::to_string(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config);
    }

    #[tokio::test]
    async fn a_built_store_pages_as_configured() {
        use futures::TryStreamExt;
        use store_core::{Record, Storage};
        let store = parse("page_size = 1").unwrap().build();
        for key in ["a", "b", "c"] {
            store.put(Record::new(key, "v")).await.unwrap();
        }
        let keys: Vec<String> = store
            .list_keys("*")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(keys, ["a", "b", "c"]);
        store.close().await.unwrap();
    }
}
