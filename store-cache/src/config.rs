//! [`CacheConfig`]: the `[cache]` section of a store configuration.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use store_core::config;
use store_core::Storage;

use crate::{CacheOptions, CachedStorage};

/// Most lock stripes a configuration may ask for (the layer uses at most this many).
const MAX_STRIPES: usize = 1 << 20;

/// The `[cache]` section: a cache layer on top of the backend. Every field is optional.
///
/// | field | default | accepted |
/// |-------|---------|----------|
/// | `max_capacity` | 10000 | entries held; a whole number from 1 (to turn caching off, remove the section) |
/// | `ttl` | none: entries live until evicted, overwritten or expired | a duration above zero such as `"30s"`, at most 100 years |
/// | `negative_ttl` | none: `NotFound` is not remembered | a duration above zero; never longer than `ttl` in effect |
/// | `stripes` | 1024 | lock stripes, a whole number from 1 to 1048576 (rounded up to a power of two) |
///
/// **Why `ttl = "0s"` is an error** rather than "no cache": a zero lifetime would make every
/// entry expire as it is stored, so the layer would cost a lookup on every read and never
/// hit, which is never what an operator means. Leaving `ttl` out means "no time limit";
/// removing the `[cache]` section means "no cache". The same holds for `negative_ttl`
/// (leave it out to turn negative caching off).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use store_cache::CacheConfig;
/// use store_core::{Record, Storage};
///
/// let config: CacheConfig = toml::from_str("max_capacity = 500\nttl = \"30s\"").unwrap();
/// assert_eq!(config.ttl, Some(Duration::from_secs(30)));
/// let cached = config.wrap(store_memory::MemoryStorage::new());
/// cached.put(Record::new("k", "v")).await.unwrap();
///
/// let err = toml::from_str::<CacheConfig>("ttl = \"0s\"").unwrap_err().to_string();
/// assert!(err.contains("field `cache.ttl` = \"0s\""));
/// assert!(err.contains("remove the [cache] section"));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most entries held; the least useful are evicted beyond it. Default 10000.
    #[serde(
        default = "defaults::max_capacity",
        deserialize_with = "fields::max_capacity"
    )]
    pub max_capacity: u64,
    /// Longest life of an entry: bounds how long a write by another process can go unseen.
    /// `None` (the field left out): no limit.
    #[serde(
        default,
        deserialize_with = "fields::ttl",
        serialize_with = "config::serialize_optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<Duration>,
    /// Remember `NotFound` answers this long. `None` (the field left out): not at all.
    #[serde(
        default,
        deserialize_with = "fields::negative_ttl",
        serialize_with = "config::serialize_optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub negative_ttl: Option<Duration>,
    /// Lock stripes that order cache fills against writes. Default 1024.
    #[serde(default = "defaults::stripes", deserialize_with = "fields::stripes")]
    pub stripes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        let options = CacheOptions::default();
        Self {
            max_capacity: options.max_capacity,
            ttl: options.ttl,
            negative_ttl: options.negative_ttl,
            stripes: options.stripes,
        }
    }
}

impl CacheConfig {
    /// The layer options these settings describe.
    ///
    /// ```
    /// let options = store_cache::CacheConfig::default().options();
    /// assert_eq!(options, store_cache::CacheOptions::default());
    /// ```
    pub fn options(&self) -> CacheOptions {
        CacheOptions {
            max_capacity: self.max_capacity,
            ttl: self.ttl,
            negative_ttl: self.negative_ttl,
            stripes: self.stripes,
        }
    }

    /// Puts a cache with these settings in front of `inner`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::Storage;
    /// let cached = store_cache::CacheConfig::default().wrap(store_memory::MemoryStorage::new());
    /// assert!(cached.describe().starts_with("cache (10000 entries)"));
    /// # });
    /// ```
    pub fn wrap<S: Storage>(&self, inner: S) -> CachedStorage<S> {
        CachedStorage::new(inner, self.options())
    }
}

mod defaults {
    pub(super) fn max_capacity() -> u64 {
        crate::CacheOptions::default().max_capacity
    }
    pub(super) fn stripes() -> usize {
        crate::CacheOptions::default().stripes
    }
}

/// One reader per field, naming it.
mod fields {
    use super::*;

    pub(super) fn max_capacity<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let value = config::Scalar::deserialize(d)?;
        config::check_whole_number(&value, 1..=u64::MAX, "entries").map_err(|accepted| {
            config::invalid(
                "cache.max_capacity",
                value,
                format_args!("{accepted} (remove the [cache] section to turn caching off)"),
            )
        })
    }

    pub(super) fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        config::duration(
            d,
            "cache.ttl",
            "a zero lifetime would expire every entry as it is stored, so every read would \
             miss; leave `ttl` out for entries without a time limit, or remove the [cache] \
             section to turn caching off",
        )
        .map(Some)
    }

    pub(super) fn negative_ttl<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        config::duration(
            d,
            "cache.negative_ttl",
            "leave `negative_ttl` out to turn negative caching off",
        )
        .map(Some)
    }

    pub(super) fn stripes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        config::bounded_usize(d, "cache.stripes", 1..=MAX_STRIPES, "lock stripes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CacheConfig, String> {
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
    fn every_option_is_reachable() {
        let config =
            parse("max_capacity = 5\nttl = \"1m\"\nnegative_ttl = \"2s\"\nstripes = 16").unwrap();
        assert_eq!(
            config.options(),
            CacheOptions {
                max_capacity: 5,
                ttl: Some(Duration::from_secs(60)),
                negative_ttl: Some(Duration::from_secs(2)),
                stripes: 16,
            }
        );
        assert_eq!(parse("").unwrap(), CacheConfig::default());
    }

    #[test]
    fn zero_durations_explain_themselves() {
        let err = parse("ttl = \"0s\"").unwrap_err();
        assert_mentions(
            &err,
            &[
                "field `cache.ttl` = \"0s\"",
                "longer than zero",
                "every read would miss",
                "leave `ttl` out",
                "remove the [cache] section",
                "line 1",
            ],
        );
        let err = parse("negative_ttl = \"0ms\"").unwrap_err();
        assert_mentions(
            &err,
            &[
                "field `cache.negative_ttl` = \"0ms\"",
                "leave `negative_ttl` out",
            ],
        );
    }

    #[test]
    fn bad_numbers_name_the_field_and_the_range() {
        let err = parse("max_capacity = -5").unwrap_err();
        assert_mentions(
            &err,
            &[
                "field `cache.max_capacity` = -5",
                "a positive whole number of entries, at most 18446744073709551615",
                "remove the [cache] section",
            ],
        );
        let err = parse("max_capacity = 0").unwrap_err();
        assert_mentions(&err, &["field `cache.max_capacity` = 0"]);
        let err = parse("max_capacity = \"lots\"").unwrap_err();
        assert_mentions(&err, &["field `cache.max_capacity` = \"lots\""]);
        let err = parse("stripes = 2000000").unwrap_err();
        assert_mentions(
            &err,
            &["field `cache.stripes` = 2000000", "at most 1048576"],
        );
        let err = parse("stripes = 0").unwrap_err();
        assert_mentions(&err, &["field `cache.stripes` = 0"]);
    }

    #[test]
    fn bad_durations_name_the_field() {
        let err = parse("ttl = \"soon\"").unwrap_err();
        assert_mentions(&err, &["field `cache.ttl` = \"soon\"", "\"30s\""]);
        let err = parse("ttl = 30").unwrap_err();
        assert_mentions(&err, &["field `cache.ttl` = 30", "in quotes"]);
        let err = parse("ttl = \"500 years\"").unwrap_err();
        assert_mentions(&err, &["field `cache.ttl` = \"500 years\"", "100 years"]);
        let err = parse("ttl_seconds = 5").unwrap_err();
        assert_mentions(&err, &["ttl_seconds", "max_capacity"]);
    }

    #[test]
    fn it_round_trips_through_toml() {
        let config = parse("max_capacity = 7\nttl = \"1h 30m\"\nnegative_ttl = \"250ms\"").unwrap();
        let text = toml::to_string(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config);
    }
}
