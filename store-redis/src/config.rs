//! [`RedisConfig`]: the `[redis]` section of a store configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use store_core::Result;

use crate::{RedisOptions, RedisStorage};

/// The `[redis]` section: a store on a Redis server. `prefix` is required; every other field
/// is optional and defaults to [`RedisOptions::default`].
///
/// | field | default | accepted |
/// |-------|---------|----------|
/// | `url` | `"redis://127.0.0.1:6379/0"` | `redis://[user:password@]host[:port][/db]` (or `redis+unix:///path`) |
/// | `prefix` | required | the store's name, `[A-Za-z0-9._-]+` (1 to 255 bytes); stores with different prefixes share a server safely |
/// | `connect_timeout` | `"5s"` | a duration above zero: connecting, and each reconnect attempt |
/// | `request_timeout` | `"5s"` | a duration above zero: the longest any call waits (waits for a change excepted) |
/// | `reconnect_min` | `"50ms"` | a duration above zero: the first delay between reconnect attempts |
/// | `reconnect_max` | `"2s"` | a duration above zero: the longest delay between reconnect attempts |
/// | `reaper_interval` | `"1s"` | a duration above zero, or `"off"` (other instances reclaim expired records) |
/// | `connections` | 1 | connections the actor spreads its pipelines over, 1 to 64 |
/// | `pipelines_per_connection` | 2 | pipelines in flight per connection, 1 to 64 |
/// | `max_batch` | 512 | most calls in one pipeline, 1 to 65536 |
/// | `mailbox` | 1024 | calls that may wait for the actor, 1 to 1048576 |
/// | `page_size` | 256 | keys per `list_keys` page, 1 to 4096 |
/// | `replicas_to_ack` | 0 | replicas that must have each write before it is acknowledged (`WAIT`), 0 to 64 |
/// | `replica_ack_timeout` | `"1s"` | a duration above zero: how long each `WAIT` waits for them |
///
/// Unknown fields are errors, as are values of the wrong type or out of range; each message
/// names the field, the value and what is accepted.
///
/// ```
/// use std::time::Duration;
/// use store_redis::RedisConfig;
///
/// let config: RedisConfig = toml::from_str(r#"
///     url = "redis://127.0.0.1:6379/2"
///     prefix = "orders"
///     request_timeout = "2s"
///     reaper_interval = "off"
/// "#).unwrap();
/// let options = config.options();
/// assert_eq!(options.request_timeout, Duration::from_secs(2));
/// assert_eq!(options.reaper_interval, None);
/// assert_eq!(options.page_size, 256);
///
/// let err = toml::from_str::<RedisConfig>("prefix = \"a/b\"").unwrap_err().to_string();
/// assert!(err.contains("field `redis.prefix` = \"a/b\""), "{err}");
/// let err = toml::from_str::<RedisConfig>("url = \"redis://x\"").unwrap_err().to_string();
/// assert!(err.contains("prefix"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server's URL. See [`RedisOptions::url`].
    #[serde(default = "defaults::url", deserialize_with = "fields::url")]
    pub url: String,
    /// The store's prefix (required). See [`RedisOptions::prefix`].
    #[serde(deserialize_with = "fields::prefix")]
    pub prefix: String,
    /// See [`RedisOptions::connect_timeout`].
    #[serde(
        default = "defaults::connect_timeout",
        deserialize_with = "fields::connect_timeout",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub connect_timeout: Duration,
    /// See [`RedisOptions::request_timeout`].
    #[serde(
        default = "defaults::request_timeout",
        deserialize_with = "fields::request_timeout",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub request_timeout: Duration,
    /// See [`RedisOptions::reconnect_min`].
    #[serde(
        default = "defaults::reconnect_min",
        deserialize_with = "fields::reconnect_min",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub reconnect_min: Duration,
    /// See [`RedisOptions::reconnect_max`].
    #[serde(
        default = "defaults::reconnect_max",
        deserialize_with = "fields::reconnect_max",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub reconnect_max: Duration,
    /// See [`RedisOptions::reaper_interval`]; `"off"` is `None`.
    #[serde(
        default = "defaults::reaper_interval",
        deserialize_with = "fields::reaper_interval",
        serialize_with = "fields::serialize_reaper_interval"
    )]
    pub reaper_interval: Option<Duration>,
    /// See [`RedisOptions::connections`].
    #[serde(
        default = "defaults::connections",
        deserialize_with = "fields::connections"
    )]
    pub connections: usize,
    /// See [`RedisOptions::pipelines_per_connection`].
    #[serde(
        default = "defaults::pipelines_per_connection",
        deserialize_with = "fields::pipelines_per_connection"
    )]
    pub pipelines_per_connection: usize,
    /// See [`RedisOptions::max_batch`].
    #[serde(
        default = "defaults::max_batch",
        deserialize_with = "fields::max_batch"
    )]
    pub max_batch: usize,
    /// See [`RedisOptions::mailbox`].
    #[serde(default = "defaults::mailbox", deserialize_with = "fields::mailbox")]
    pub mailbox: usize,
    /// See [`RedisOptions::page_size`].
    #[serde(
        default = "defaults::page_size",
        deserialize_with = "fields::page_size"
    )]
    pub page_size: usize,
    /// See [`RedisOptions::replicas_to_ack`].
    #[serde(
        default = "defaults::replicas_to_ack",
        deserialize_with = "fields::replicas_to_ack"
    )]
    pub replicas_to_ack: usize,
    /// See [`RedisOptions::replica_ack_timeout`].
    #[serde(
        default = "defaults::replica_ack_timeout",
        deserialize_with = "fields::replica_ack_timeout",
        serialize_with = "store_core::config::serialize_duration"
    )]
    pub replica_ack_timeout: Duration,
}

impl RedisConfig {
    /// Settings for the store `prefix` at `url`, every other field at its default.
    ///
    /// ```
    /// let config = store_redis::RedisConfig::new("redis://127.0.0.1:6379/0", "orders");
    /// assert_eq!(config.options().connections, 1);
    /// ```
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self::from_options(&RedisOptions {
            url: url.into(),
            prefix: prefix.into(),
            ..RedisOptions::default()
        })
    }

    /// The settings that `options` describe.
    ///
    /// ```
    /// use store_redis::{RedisConfig, RedisOptions};
    /// let options = RedisOptions { prefix: "orders".into(), page_size: 64, ..Default::default() };
    /// assert_eq!(RedisConfig::from_options(&options).page_size, 64);
    /// ```
    pub fn from_options(options: &RedisOptions) -> Self {
        Self {
            url: options.url.clone(),
            prefix: options.prefix.clone(),
            connect_timeout: options.connect_timeout,
            request_timeout: options.request_timeout,
            reconnect_min: options.reconnect_min,
            reconnect_max: options.reconnect_max,
            reaper_interval: options.reaper_interval,
            connections: options.connections,
            pipelines_per_connection: options.pipelines_per_connection,
            max_batch: options.max_batch,
            mailbox: options.mailbox,
            page_size: options.page_size,
            replicas_to_ack: options.replicas_to_ack,
            replica_ack_timeout: options.replica_ack_timeout,
        }
    }

    /// The connect options these settings describe.
    ///
    /// ```
    /// let options = store_redis::RedisConfig::new("redis://h:1/0", "p").options();
    /// assert_eq!(options.url, "redis://h:1/0");
    /// ```
    pub fn options(&self) -> RedisOptions {
        RedisOptions {
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            reaper_interval: self.reaper_interval,
            connections: self.connections,
            pipelines_per_connection: self.pipelines_per_connection,
            max_batch: self.max_batch,
            mailbox: self.mailbox,
            page_size: self.page_size,
            replicas_to_ack: self.replicas_to_ack,
            replica_ack_timeout: self.replica_ack_timeout,
        }
    }

    /// Connects to the store these settings describe (see [`RedisStorage::connect_with`]).
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_redis::RedisConfig::new("redis://127.0.0.1:6379/0", "orders").connect().await?;
    /// # Ok::<(), store_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(&self) -> Result<RedisStorage> {
        RedisStorage::connect_with(self.options()).await
    }
}

mod defaults {
    use std::time::Duration;

    use crate::RedisOptions;

    pub fn url() -> String {
        RedisOptions::default().url
    }
    pub fn connect_timeout() -> Duration {
        RedisOptions::default().connect_timeout
    }
    pub fn request_timeout() -> Duration {
        RedisOptions::default().request_timeout
    }
    pub fn reconnect_min() -> Duration {
        RedisOptions::default().reconnect_min
    }
    pub fn reconnect_max() -> Duration {
        RedisOptions::default().reconnect_max
    }
    pub fn reaper_interval() -> Option<Duration> {
        RedisOptions::default().reaper_interval
    }
    pub fn connections() -> usize {
        RedisOptions::default().connections
    }
    pub fn pipelines_per_connection() -> usize {
        RedisOptions::default().pipelines_per_connection
    }
    pub fn max_batch() -> usize {
        RedisOptions::default().max_batch
    }
    pub fn mailbox() -> usize {
        RedisOptions::default().mailbox
    }
    pub fn page_size() -> usize {
        RedisOptions::default().page_size
    }
    pub fn replicas_to_ack() -> usize {
        RedisOptions::default().replicas_to_ack
    }
    pub fn replica_ack_timeout() -> Duration {
        RedisOptions::default().replica_ack_timeout
    }
}

/// One reader per field, so that every message names the field.
mod fields {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};
    use store_core::config::{self, Scalar};

    const URL_ACCEPTED: &str =
        "accepted is a Redis URL such as \"redis://127.0.0.1:6379/0\" (redis://[user:password@]host[:port][/db])";
    const PREFIX_ACCEPTED: &str = "accepted is a name of 1 to 255 bytes from A-Z a-z 0-9 . _ -";

    pub fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let url = config::text(d, "redis.url", URL_ACCEPTED)?;
        match redis::Client::open(url.as_str()) {
            Ok(_) => Ok(url),
            Err(error) => Err(config::invalid(
                "redis.url",
                Scalar::Str(crate::server::redact(&url)),
                format_args!("{URL_ACCEPTED}; the redis crate says: {error}"),
            )),
        }
    }

    pub fn prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        config::checked_text(d, "redis.prefix", PREFIX_ACCEPTED, |prefix| {
            store_core::validate_name(prefix).is_ok()
        })
    }

    pub fn connect_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "redis.connect_timeout", "")
    }
    pub fn request_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "redis.request_timeout", "")
    }
    pub fn reconnect_min<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "redis.reconnect_min", "")
    }
    pub fn reconnect_max<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "redis.reconnect_max", "")
    }

    pub fn reaper_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let accepted = "accepted is a duration above zero such as \"1s\" or \"250ms\", or \"off\" \
                        (this instance never reaps; others must)";
        let text = config::text(d, "redis.reaper_interval", accepted)?;
        if text == "off" {
            return Ok(None);
        }
        config::parse_duration(&text).map(Some).map_err(|error| {
            config::invalid(
                "redis.reaper_interval",
                Scalar::Str(text),
                format_args!("{error}; or \"off\""),
            )
        })
    }

    pub fn serialize_reaper_interval<S: Serializer>(
        interval: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match interval {
            Some(every) => config::serialize_duration(every, serializer),
            None => serializer.serialize_str("off"),
        }
    }

    pub fn connections<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.connections", 1..=64, "connections")
    }
    pub fn pipelines_per_connection<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.pipelines_per_connection", 1..=64, "pipelines")
    }
    pub fn max_batch<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.max_batch", 1..=65536, "calls")
    }
    pub fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.mailbox", 1..=1 << 20, "calls")
    }
    pub fn page_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.page_size", 1..=4096, "keys")
    }
    pub fn replicas_to_ack<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "redis.replicas_to_ack", 0..=64, "replicas")
    }
    pub fn replica_ack_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        config::duration(d, "redis.replica_ack_timeout", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_through_toml() {
        let config = RedisConfig {
            reaper_interval: None,
            page_size: 64,
            replicas_to_ack: 2,
            replica_ack_timeout: Duration::from_millis(250),
            ..RedisConfig::new("redis://127.0.0.1:6379/3", "orders")
        };
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("reaper_interval = \"off\""), "{text}");
        assert_eq!(toml::from_str::<RedisConfig>(&text).unwrap(), config);
        let defaults: RedisConfig = toml::from_str("prefix = \"p\"").unwrap();
        assert_eq!(
            defaults.options(),
            RedisOptions {
                prefix: "p".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn bad_values_name_the_field_and_what_is_accepted() {
        let cases = [
            (
                "prefix = \"p\"\nurl = \"http://x\"",
                "field `redis.url` = \"http://x\"",
            ),
            ("prefix = \"p\"\nurl = 6379", "field `redis.url` = 6379"),
            ("prefix = \"\"", "field `redis.prefix` = \"\""),
            (
                "prefix = \"p\"\nrequest_timeout = \"0s\"",
                "field `redis.request_timeout` = \"0s\"",
            ),
            (
                "prefix = \"p\"\nconnect_timeout = 5",
                "field `redis.connect_timeout` = 5",
            ),
            ("prefix = \"p\"\nreaper_interval = \"never\"", "or \"off\""),
            (
                "prefix = \"p\"\nconnections = 0",
                "field `redis.connections` = 0",
            ),
            (
                "prefix = \"p\"\npage_size = 5000",
                "field `redis.page_size` = 5000",
            ),
            (
                "prefix = \"p\"\nreplicas_to_ack = 65",
                "field `redis.replicas_to_ack` = 65",
            ),
            (
                "prefix = \"p\"\ntimeout = \"1s\"",
                "unknown field `timeout`",
            ),
        ];
        for (text, expected) in cases {
            let err = toml::from_str::<RedisConfig>(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        // Our message never repeats a password (TOML's own error shows the line it read).
        let err = toml::from_str::<RedisConfig>("prefix = \"p\"\nurl = \"redis://u:secret@[x\"")
            .unwrap_err();
        assert!(
            err.message().contains("redis://u:***@[x"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("secret"), "{}", err.message());
    }
}
