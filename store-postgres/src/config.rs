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

use serde::{Deserialize, Serialize};

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
/// assert!(toml::from_str::<store_postgres::PostgresConfig>("url = \"postgres://db/app\"\ntable = \"t\"\npool = 3")
///     .unwrap_err().to_string().contains("unknown field `pool`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The server: `postgres://user[:password]@host[:port]/database` or a libpq key/value
    /// string. Required.
    #[serde(deserialize_with = "fields::url")]
    pub url: String,
    /// The table that holds the store (`[A-Za-z0-9._-]+`, at most 48 bytes); created if
    /// missing. Required.
    #[serde(deserialize_with = "fields::table")]
    pub table: String,
    /// The schema of the table (named like the table, at most 63 bytes); created if
    /// missing. Default `public`.
    #[serde(default = "defaults::schema", deserialize_with = "fields::schema")]
    pub schema: String,
    /// Pooled connections for reads and writes (at least 2). Default 8.
    #[serde(
        default = "defaults::pool_size",
        deserialize_with = "fields::pool_size"
    )]
    pub pool_size: usize,
    /// How long connecting may take. Default `5s`.
    #[serde(
        default = "defaults::timeout",
        deserialize_with = "fields::connect_timeout",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub connect_timeout: Duration,
    /// How long one round of statements may take before callers get `Unavailable`.
    /// Default `5s`.
    #[serde(
        default = "defaults::timeout",
        deserialize_with = "fields::operation_timeout",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub operation_timeout: Duration,
    /// How often expired rows are deleted. Default `1s`.
    #[serde(
        default = "defaults::reaper_interval",
        deserialize_with = "fields::reaper_interval",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub reaper_interval: Duration,
}

/// Each field reads itself through `store_core::config`, so a bad value is reported as
/// ``field `postgres.NAME` = VALUE: accepted is ...``, like every other section's.
mod fields {
    use std::time::Duration;

    use serde::Deserializer;
    use store_core::config;

    const URL: &str = "accepted is a PostgreSQL URL in quotes, such as \
                       \"postgres://user@127.0.0.1:5432/database\"";
    const TABLE: &str = "accepted is a table name of 1 to 48 bytes of A-Z a-z 0-9 . _ -";
    const SCHEMA: &str = "accepted is a schema name of 1 to 63 bytes of A-Z a-z 0-9 . _ -";

    pub(super) fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let url = config::text(d, "postgres.url", URL)?;
        if url.parse::<tokio_postgres::Config>().is_err() {
            return Err(config::invalid(
                "postgres.url",
                format_args!("{:?}", crate::names::redact(&url)),
                URL,
            ));
        }
        Ok(url)
    }

    pub(super) fn table<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        config::checked_text(d, "postgres.table", TABLE, |table| {
            crate::validate_table(table).is_ok()
        })
    }

    pub(super) fn schema<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        config::checked_text(d, "postgres.schema", SCHEMA, |schema| {
            crate::names::validate_schema(schema).is_ok()
        })
    }

    pub(super) fn pool_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "postgres.pool_size", 2..=1024, "connections")
    }

    pub(super) fn connect_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "postgres.connect_timeout", "")
    }

    pub(super) fn operation_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "postgres.operation_timeout", "")
    }

    pub(super) fn reaper_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "postgres.reaper_interval", "")
    }
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
        let missing = toml::from_str::<PostgresConfig>("url = \"postgres://db/app\"").unwrap_err();
        assert!(missing.to_string().contains("table"), "{missing}");
        let bad = toml::from_str::<PostgresConfig>(
            "url = \"postgres://db/app\"\ntable = \"t\"\nreaper_interval = \"soon\"",
        )
        .unwrap_err();
        assert!(
            bad.to_string()
                .contains("field `postgres.reaper_interval` = \"soon\""),
            "{bad}"
        );
        let zero = toml::from_str::<PostgresConfig>(
            "url = \"postgres://db/app\"\ntable = \"t\"\nconnect_timeout = \"0s\"",
        )
        .unwrap_err();
        assert!(
            zero.to_string().contains("postgres.connect_timeout"),
            "{zero}"
        );
        let table =
            toml::from_str::<PostgresConfig>("url = \"postgres://db/app\"\ntable = \"a;b\"")
                .unwrap_err();
        assert!(
            table
                .to_string()
                .contains("field `postgres.table` = \"a;b\""),
            "{table}"
        );
        let pool = toml::from_str::<PostgresConfig>(
            "url = \"postgres://db/app\"\ntable = \"t\"\npool_size = 1",
        )
        .unwrap_err();
        assert!(
            pool.to_string().contains("field `postgres.pool_size` = 1"),
            "{pool}"
        );
    }
}
