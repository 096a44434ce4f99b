//! [`PostgresConfig`]: the `[postgres]` section of a store configuration.
//!
//! A serde type with defaults and `deny_unknown_fields`, so a stack builder (store-compat's
//! `backend = "postgres"`) or a service's own configuration can embed it:
//!
//! ```toml
//! [postgres]
//! url = "postgres://postgres@127.0.0.1:5432/test"
//! table = "orders"              # created if missing
//! schema = "public"             # optional
//! pool_size = 8                 # optional
//! connect_timeout = "5s"        # optional, humantime
//! operation_timeout = "5s"      # optional, humantime
//! reaper_interval = "1s"        # optional, humantime
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{PostgresOptions, PostgresStorage};

/// The `[postgres]` section: where the server is and which table holds the store.
///
/// ```
/// let config: store_postgres::PostgresConfig = toml::from_str(r#"
///     url = "postgres://postgres@127.0.0.1:5432/test"
///     table = "orders"
///     operation_timeout = "2s"
/// "#).unwrap();
/// assert_eq!(config.pool_size, 8);
/// assert_eq!(config.options().operation_timeout, std::time::Duration::from_secs(2));
/// assert!(toml::from_str::<store_postgres::PostgresConfig>("url = \"x\"\ntable = \"t\"\npool = 3")
///     .unwrap_err().to_string().contains("unknown field `pool`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The server: `postgres://user[:password]@host[:port]/database` or a libpq key/value
    /// string. Required.
    pub url: String,
    /// The table that holds the store (`[A-Za-z0-9._-]+`, at most 48 bytes); created if
    /// missing. Required.
    pub table: String,
    /// The schema of the table; created if missing. Default `public`.
    #[serde(default = "defaults::schema")]
    pub schema: String,
    /// Pooled connections for reads and writes (at least 2). Default 8.
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    /// How long connecting may take. Default `5s`.
    #[serde(default = "defaults::timeout", with = "duration_text")]
    pub connect_timeout: Duration,
    /// How long one round of statements may take before callers get `Unavailable`.
    /// Default `5s`.
    #[serde(default = "defaults::timeout", with = "duration_text")]
    pub operation_timeout: Duration,
    /// How often expired rows are deleted. Default `1s`.
    #[serde(default = "defaults::reaper_interval", with = "duration_text")]
    pub reaper_interval: Duration,
}

mod defaults {
    use std::time::Duration;

    pub fn schema() -> String {
        crate::PostgresOptions::default().schema
    }
    pub fn pool_size() -> usize {
        crate::PostgresOptions::default().pool_size
    }
    pub fn timeout() -> Duration {
        crate::PostgresOptions::default().operation_timeout
    }
    pub fn reaper_interval() -> Duration {
        crate::PostgresOptions::default().reaper_interval
    }
}

impl PostgresConfig {
    /// A section with `url` and `table` and every other field at its default.
    ///
    /// ```
    /// let config = store_postgres::PostgresConfig::new("postgres://db/app", "orders");
    /// assert_eq!(config.schema, "public");
    /// ```
    pub fn new(url: impl Into<String>, table: impl Into<String>) -> Self {
        let defaults = PostgresOptions::default();
        Self {
            url: url.into(),
            table: table.into(),
            schema: defaults.schema,
            pool_size: defaults.pool_size,
            connect_timeout: defaults.connect_timeout,
            operation_timeout: defaults.operation_timeout,
            reaper_interval: defaults.reaper_interval,
        }
    }

    /// The options this section describes.
    ///
    /// ```
    /// let config = store_postgres::PostgresConfig::new("postgres://db/app", "orders");
    /// assert_eq!(config.options().table, "orders");
    /// ```
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            url: self.url.clone(),
            table: self.table.clone(),
            schema: self.schema.clone(),
            pool_size: self.pool_size,
            connect_timeout: self.connect_timeout,
            operation_timeout: self.operation_timeout,
            reaper_interval: self.reaper_interval,
        }
    }

    /// Connects and opens the store this section describes.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let config = store_postgres::PostgresConfig::new("postgres://postgres@127.0.0.1/test", "orders");
    /// let store = config.connect().await?;
    /// # Ok::<(), store_core::Error>(())
    /// # });
    /// ```
    pub async fn connect(&self) -> store_core::Result<PostgresStorage> {
        PostgresStorage::connect_with(self.options()).await
    }
}

/// Durations as humantime text (`"5s"`, `"250ms"`), with an error that names the value.
mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = humantime::parse_duration(&text).map_err(|error| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({error}): use a humantime duration such as \"5s\" \
                 or \"250ms\""
            ))
        })?;
        if duration.is_zero() {
            return Err(serde::de::Error::custom(format!(
                "invalid duration {text:?}: must be longer than zero"
            )));
        }
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let config: PostgresConfig =
            toml::from_str("url = \"postgres://db/app\"\ntable = \"orders\"").unwrap();
        assert_eq!(config, PostgresConfig::new("postgres://db/app", "orders"));
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<PostgresConfig>(&text).unwrap(), config);
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let missing = toml::from_str::<PostgresConfig>("url = \"x\"").unwrap_err();
        assert!(missing.to_string().contains("table"), "{missing}");
        let bad = toml::from_str::<PostgresConfig>(
            "url = \"x\"\ntable = \"t\"\nreaper_interval = \"soon\"",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("\"soon\""), "{bad}");
        let zero = toml::from_str::<PostgresConfig>(
            "url = \"x\"\ntable = \"t\"\nconnect_timeout = \"0s\"",
        )
        .unwrap_err();
        assert!(zero.to_string().contains("longer than zero"), "{zero}");
    }
}
