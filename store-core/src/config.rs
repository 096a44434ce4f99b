//! What every backend's configuration section shares (feature `serde`): field readers whose
//! errors name the field, the bad value and what is accepted, and [`RuntimeConfig`], the
//! actor runtime's tuning as a section.
//!
//! A backend crate owns its section (`store_memory::MemoryConfig`, `store_file::FileConfig`,
//! `store_cache::CacheConfig`, ...): a serde type with defaults, field docs and
//! `#[serde(deny_unknown_fields)]`. Each field that can be wrong reads itself through one of
//! the functions here, wrapped in a one-line function that names the field:
//!
//! ```
//! use serde::{Deserialize, Deserializer};
//! use std::time::Duration;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct PoolConfig {
//!     #[serde(default = "default_size", deserialize_with = "size")]
//!     size: u64,
//!     #[serde(default, deserialize_with = "idle")]
//!     idle: Option<Duration>,
//! }
//! fn default_size() -> u64 { 8 }
//! fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
//!     store_core::config::positive_u64(d, "pool.size", "connections")
//! }
//! fn idle<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
//!     store_core::config::duration(d, "pool.idle", "leave `idle` out to keep connections open").map(Some)
//! }
//!
//! let err = toml::from_str::<PoolConfig>("size = -5").err().unwrap().to_string();
//! assert!(err.contains("field `pool.size` = -5: accepted is a positive whole number of connections"));
//! let err = toml::from_str::<PoolConfig>("idle = \"0s\"").err().unwrap().to_string();
//! assert!(err.contains("field `pool.idle` = \"0s\""));
//! assert!(err.contains("leave `idle` out"));
//! let pool: PoolConfig = toml::from_str("idle = \"90s\"").unwrap();
//! assert_eq!((pool.size, pool.idle), (8, Some(Duration::from_secs(90))));
//! ```
//!
//! Every message has the shape ``field `section.name` = VALUE: accepted is ...``, with the
//! value written as it was in the file (`"text"` quoted, numbers and booleans bare), so the
//! TOML parser's line and column plus this text tell an operator exactly what to change.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant, SystemTime};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::runtime::RuntimeOptions;

/// The longest duration a configuration accepts: 100 years (of 365 days).
///
/// Longer durations are never what a setting means ("never" is said by leaving the field
/// out, or by a word such as `sync = "never"`), and durations without bound overflow the
/// clocks they are added to (`Instant + d` panics on some platforms).
///
/// ```
/// assert_eq!(store_core::config::MAX_DURATION.as_secs(), 100 * 365 * 24 * 3600);
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The duration examples every duration error shows.
const DURATION_EXAMPLES: &str = "\"250ms\", \"30s\", \"5m\" or \"1h 30m\"";

/// Why a duration was refused.
///
/// ```
/// use store_core::config::{parse_duration, DurationError};
/// assert_eq!(parse_duration("0s"), Err(DurationError::Zero));
/// assert_eq!(parse_duration("200years"), Err(DurationError::TooLong));
/// assert!(matches!(parse_duration("soon"), Err(DurationError::Syntax(_))));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a humantime duration; the text is the parser's reason.
    Syntax(String),
    /// Zero, where a setting needs a duration above zero.
    Zero,
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Syntax(reason) => write!(
                f,
                "not a duration ({reason}); accepted are durations such as {DURATION_EXAMPLES}"
            ),
            DurationError::Zero => f.write_str("accepted is a duration longer than zero"),
            DurationError::TooLong => write!(
                f,
                "accepted is a duration of at most {} (100 years)",
                humantime::format_duration(MAX_DURATION)
            ),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a humantime duration (`"250ms"`, `"30s"`, `"1h 30m"`) that is above zero, at most
/// [`MAX_DURATION`], and can be added to both clocks now.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(store_core::config::parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let duration =
        humantime::parse_duration(text).map_err(|e| DurationError::Syntax(e.to_string()))?;
    if duration.is_zero() {
        return Err(DurationError::Zero);
    }
    let fits = duration <= MAX_DURATION
        && Instant::now().checked_add(duration).is_some()
        && SystemTime::now().checked_add(duration).is_some();
    if !fits {
        return Err(DurationError::TooLong);
    }
    Ok(duration)
}

/// Writes a duration the way [`parse_duration`] reads it back (`"1m 30s"`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(store_core::config::format_duration(Duration::from_millis(1500)), "1s 500ms");
/// ```
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Serializes a duration field as text, for `#[serde(serialize_with = ...)]`.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct S {
///     #[serde(serialize_with = "store_core::config::serialize_duration")]
///     every: std::time::Duration,
/// }
/// let text = toml::to_string(&S { every: std::time::Duration::from_secs(5) }).unwrap();
/// assert_eq!(text.trim(), "every = \"5s\"");
/// ```
pub fn serialize_duration<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

/// Serializes an optional duration field as text (skip `None` with
/// `skip_serializing_if = "Option::is_none"`).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct S {
///     #[serde(serialize_with = "store_core::config::serialize_optional_duration")]
///     ttl: Option<std::time::Duration>,
/// }
/// let text = toml::to_string(&S { ttl: Some(std::time::Duration::from_secs(60)) }).unwrap();
/// assert_eq!(text.trim(), "ttl = \"1m\"");
/// ```
pub fn serialize_optional_duration<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => serialize_duration(d, serializer),
        None => serializer.serialize_none(),
    }
}

/// The error every field reader returns: ``field `FIELD` = VALUE: ACCEPTED``.
///
/// ```
/// let e: toml::de::Error = store_core::config::invalid("file.dir", "\"\"", "accepted is a directory path");
/// assert_eq!(e.message(), "field `file.dir` = \"\": accepted is a directory path");
/// ```
pub fn invalid<E: de::Error>(
    field: &str,
    value: impl fmt::Display,
    accepted: impl fmt::Display,
) -> E {
    E::custom(format_args!("field `{field}` = {value}: {accepted}"))
}

/// Reads a duration written as humantime text (see [`parse_duration`]). `when_zero` is
/// added to the message when the value is zero, to say what to write instead.
///
/// ```
/// use serde::de::IntoDeserializer;
/// use store_core::config::duration;
/// let d: Result<_, serde::de::value::Error> = duration("30s".into_deserializer(), "cache.ttl", "");
/// assert_eq!(d.unwrap(), std::time::Duration::from_secs(30));
/// let e: Result<_, serde::de::value::Error> = duration(30.into_deserializer(), "cache.ttl", "");
/// assert!(e.unwrap_err().to_string().contains("field `cache.ttl` = 30: accepted are durations"));
/// ```
pub fn duration<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    when_zero: &str,
) -> Result<Duration, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Str(text) => parse_duration(&text).map_err(|error| {
            let value = Scalar::Str(text);
            match error {
                DurationError::Zero if !when_zero.is_empty() => {
                    invalid(field, value, format_args!("{error}; {when_zero}"))
                }
                error => invalid(field, value, error),
            }
        }),
        other => Err(invalid(
            field,
            other,
            format_args!("accepted are durations in quotes, such as {DURATION_EXAMPLES}"),
        )),
    }
}

/// Reads a whole number within `range`; `unit` says what it counts (`"entries"`, `"bytes"`).
///
/// ```
/// use serde::de::IntoDeserializer;
/// use store_core::config::whole_number;
/// let n: Result<u64, serde::de::value::Error> =
///     whole_number(4096i64.into_deserializer(), "memory.mailbox", 1..=1 << 20, "commands");
/// assert_eq!(n.unwrap(), 4096);
/// let e: Result<u64, serde::de::value::Error> =
///     whole_number(1.5f64.into_deserializer(), "memory.mailbox", 1..=1 << 20, "commands");
/// assert!(e.unwrap_err().to_string().contains("= 1.5: accepted is a positive whole number of commands, at most 1048576"));
/// ```
pub fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    range: RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, D::Error> {
    let value = Scalar::deserialize(deserializer)?;
    check_whole_number(&value, range, unit).map_err(|accepted| invalid(field, value, accepted))
}

/// Checks that `value` is a whole number within `range`; the error is what is accepted, for
/// callers that add a hint of their own to [`invalid`].
///
/// ```
/// use store_core::config::{check_whole_number, Scalar};
/// assert_eq!(check_whole_number(&Scalar::Int(5), 1..=10, "entries"), Ok(5));
/// assert_eq!(
///     check_whole_number(&Scalar::Int(0), 1..=10, "entries").unwrap_err(),
///     "accepted is a positive whole number of entries, at most 10"
/// );
/// assert_eq!(
///     check_whole_number(&Scalar::Int(-1), 0..=10, "").unwrap_err(),
///     "accepted is a whole number from 0 to 10"
/// );
/// ```
pub fn check_whole_number(
    value: &Scalar,
    range: RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, String> {
    if let Scalar::Int(n) = value {
        if let Ok(n) = u64::try_from(*n) {
            if range.contains(&n) {
                return Ok(n);
            }
        }
    }
    let of = if unit.is_empty() {
        String::new()
    } else {
        format!(" of {unit}")
    };
    Err(if *range.start() == 1 {
        format!(
            "accepted is a positive whole number{of}, at most {}",
            range.end()
        )
    } else {
        format!(
            "accepted is a whole number{of} from {} to {}",
            range.start(),
            range.end()
        )
    })
}

/// Reads a whole number of at least 1 that fits a `u64`.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let e: Result<u64, serde::de::value::Error> =
///     store_core::config::positive_u64(0i64.into_deserializer(), "cache.max_capacity", "entries");
/// assert!(e.unwrap_err().to_string().contains("field `cache.max_capacity` = 0"));
/// ```
pub fn positive_u64<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    unit: &str,
) -> Result<u64, D::Error> {
    whole_number(deserializer, field, 1..=u64::MAX, unit)
}

/// Reads a whole number of at least 1 that fits a `usize`.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let n: Result<usize, serde::de::value::Error> =
///     store_core::config::positive_usize(3i64.into_deserializer(), "memory.page_size", "keys");
/// assert_eq!(n.unwrap(), 3);
/// ```
pub fn positive_usize<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    unit: &str,
) -> Result<usize, D::Error> {
    bounded_usize(deserializer, field, 1..=usize::MAX, unit)
}

/// Reads a whole number within `range` that fits a `usize`.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let n: Result<usize, serde::de::value::Error> =
///     store_core::config::bounded_usize(0i64.into_deserializer(), "file.cache_values_up_to", 0..=1 << 20, "bytes");
/// assert_eq!(n.unwrap(), 0);
/// ```
pub fn bounded_usize<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    range: RangeInclusive<usize>,
    unit: &str,
) -> Result<usize, D::Error> {
    let wide = (*range.start() as u64)..=(*range.end() as u64);
    let n = whole_number(deserializer, field, wide, unit)?;
    // In range, so it fits.
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Reads `true` or `false`.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let e: Result<bool, serde::de::value::Error> =
///     store_core::config::boolean("yes".into_deserializer(), "file.skip_corrupt_frames");
/// assert!(e.unwrap_err().to_string().contains("= \"yes\": accepted are true and false (without quotes)"));
/// ```
pub fn boolean<'de, D: Deserializer<'de>>(deserializer: D, field: &str) -> Result<bool, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Bool(b) => Ok(b),
        other => Err(invalid(
            field,
            other,
            "accepted are true and false (without quotes)",
        )),
    }
}

/// Reads a number (whole or not) that is finite; the caller checks its range.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let n: Result<f64, serde::de::value::Error> =
///     store_core::config::number(2i64.into_deserializer(), "file.compact_garbage_ratio", "accepted is a number above 0");
/// assert_eq!(n.unwrap(), 2.0);
/// ```
pub fn number<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    accepted: &str,
) -> Result<f64, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Int(n) => Ok(n as f64),
        Scalar::Float(x) if x.is_finite() => Ok(x),
        other => Err(invalid(field, other, accepted)),
    }
}

/// Reads a text value; `accepted` says what the text should be when the value is not text.
///
/// ```
/// use serde::de::IntoDeserializer;
/// let e: Result<String, serde::de::value::Error> =
///     store_core::config::text(true.into_deserializer(), "file.dir", "accepted is a directory path in quotes");
/// assert!(e.unwrap_err().to_string().contains("field `file.dir` = true"));
/// ```
pub fn text<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    accepted: &str,
) -> Result<String, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Str(text) => Ok(text),
        other => Err(invalid(field, other, accepted)),
    }
}

/// Reads a text value that `check` accepts (a name, a table, ...). Either way the error
/// quotes the value and says what is `accepted`.
///
/// ```
/// use serde::de::IntoDeserializer;
/// use store_core::config::checked_text;
/// const ACCEPTED: &str = "accepted is a name of A-Z a-z 0-9 . _ -";
/// let valid = |name: &str| store_core::validate_name(name).is_ok();
/// let e: Result<String, serde::de::value::Error> =
///     checked_text("a/b".into_deserializer(), "redis.prefix", ACCEPTED, valid);
/// assert_eq!(e.unwrap_err().to_string(), format!("field `redis.prefix` = \"a/b\": {ACCEPTED}"));
/// let ok: Result<String, serde::de::value::Error> =
///     checked_text("orders".into_deserializer(), "redis.prefix", ACCEPTED, valid);
/// assert_eq!(ok.unwrap(), "orders");
/// ```
pub fn checked_text<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    accepted: &str,
    check: impl FnOnce(&str) -> bool,
) -> Result<String, D::Error> {
    let value = text(deserializer, field, accepted)?;
    if check(&value) {
        Ok(value)
    } else {
        Err(invalid(field, Scalar::Str(value), accepted))
    }
}

/// A value as an operator wrote it, whatever its type, so that messages can quote it.
///
/// ```
/// use store_core::config::Scalar;
/// let value: Scalar = toml::from_str::<toml::Table>("v = -5").unwrap()["v"].clone().try_into().unwrap();
/// assert_eq!(value.to_string(), "-5");
/// assert_eq!(Scalar::Str("a\"b".into()).to_string(), "\"a\\\"b\"");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// Text.
    Str(String),
    /// A table, an array or anything else, by kind (`"a table"`).
    Other(&'static str),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
            Scalar::Str(text) => write!(f, "{text:?}"),
            Scalar::Other(kind) => f.write_str(kind),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("nothing"))
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("nothing"))
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("a table"))
    }
}

/// The actor runtime's tuning ([`RuntimeOptions`]) as a configuration section: every field
/// optional, defaulting to [`RuntimeOptions::default`], each a whole number of at least 1.
///
/// The memory backend's `[memory]` section is this; the file backend's is `[file.runtime]`.
///
/// ```
/// use store_core::config::RuntimeConfig;
/// let config: RuntimeConfig = toml::from_str("mailbox = 4096\npage_size = 64").unwrap();
/// let options = config.options();
/// assert_eq!((options.mailbox, options.page_size), (4096, 64));
/// assert_eq!(options.max_batch, store_core::runtime::RuntimeOptions::default().max_batch);
///
/// let err = toml::from_str::<RuntimeConfig>("max_batch = 0").err().unwrap().to_string();
/// assert!(err.contains("field `max_batch` = 0: accepted is a positive whole number of commands"));
/// assert!(toml::from_str::<RuntimeConfig>("mailbx = 1").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Commands that may wait in the actor's mailbox; callers wait when it is full. Default 1024.
    #[serde(default = "defaults::mailbox", deserialize_with = "fields::mailbox")]
    pub mailbox: usize,
    /// Most commands applied per batch, and so per sync of a durable backend. Default 512.
    #[serde(
        default = "defaults::max_batch",
        deserialize_with = "fields::max_batch"
    )]
    pub max_batch: usize,
    /// Most keys per `list_keys` page. Default 256.
    #[serde(
        default = "defaults::page_size",
        deserialize_with = "fields::page_size"
    )]
    pub page_size: usize,
    /// Most entries scanned per `list_keys` page, live or not. Default 4096.
    #[serde(
        default = "defaults::scan_budget",
        deserialize_with = "fields::scan_budget"
    )]
    pub scan_budget: usize,
    /// Most bytes of keys per `list_keys` page. Default 262144 (256 KiB).
    #[serde(
        default = "defaults::page_bytes",
        deserialize_with = "fields::page_bytes"
    )]
    pub page_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self::from(&RuntimeOptions::default())
    }
}

impl RuntimeConfig {
    /// The runtime options these settings describe.
    ///
    /// ```
    /// let options = store_core::config::RuntimeConfig::default().options();
    /// assert_eq!(options.mailbox, 1024);
    /// ```
    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions::default()
            .mailbox(self.mailbox)
            .max_batch(self.max_batch)
            .page_size(self.page_size)
            .scan_budget(self.scan_budget)
            .page_bytes(self.page_bytes)
    }

    /// Whether every field has its default value (used to leave the section out when
    /// serializing).
    ///
    /// ```
    /// assert!(store_core::config::RuntimeConfig::default().is_default());
    /// ```
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl From<&RuntimeOptions> for RuntimeConfig {
    fn from(options: &RuntimeOptions) -> Self {
        Self {
            mailbox: options.mailbox,
            max_batch: options.max_batch,
            page_size: options.page_size,
            scan_budget: options.scan_budget,
            page_bytes: options.page_bytes,
        }
    }
}

mod defaults {
    use crate::runtime::RuntimeOptions;

    pub(super) fn mailbox() -> usize {
        RuntimeOptions::default().mailbox
    }
    pub(super) fn max_batch() -> usize {
        RuntimeOptions::default().max_batch
    }
    pub(super) fn page_size() -> usize {
        RuntimeOptions::default().page_size
    }
    pub(super) fn scan_budget() -> usize {
        RuntimeOptions::default().scan_budget
    }
    pub(super) fn page_bytes() -> usize {
        RuntimeOptions::default().page_bytes
    }
}

/// One reader per field, naming it. The section's own name is not known here (the same
/// fields appear under `[memory]` and `[file.runtime]`); the parser's line and column say
/// where.
mod fields {
    use serde::Deserializer;

    use super::positive_usize;

    pub(super) fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        positive_usize(d, "mailbox", "commands")
    }
    pub(super) fn max_batch<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        positive_usize(d, "max_batch", "commands")
    }
    pub(super) fn page_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        positive_usize(d, "page_size", "keys")
    }
    pub(super) fn scan_budget<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        positive_usize(d, "scan_budget", "entries")
    }
    pub(super) fn page_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        positive_usize(d, "page_bytes", "bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(text: &str) -> Result<RuntimeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_are_bounded_above_and_below() {
        assert_eq!(parse_duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_duration("0ms"), Err(DurationError::Zero));
        assert_eq!(parse_duration("100years"), Err(DurationError::TooLong));
        // Too large for humantime itself.
        assert!(matches!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::Syntax(_))
        ));
        assert!(matches!(parse_duration(""), Err(DurationError::Syntax(_))));
        assert!(parse_duration("36500days").is_ok());
        assert_eq!(parse_duration("36501days"), Err(DurationError::TooLong));
    }

    #[test]
    fn duration_errors_say_what_is_accepted() {
        assert!(DurationError::Zero.to_string().contains("longer than zero"));
        assert!(DurationError::TooLong.to_string().contains("100 years"));
        let syntax = parse_duration("soon").unwrap_err().to_string();
        assert!(syntax.contains("\"30s\""), "{syntax}");
    }

    #[test]
    fn runtime_fields_reject_zero_negative_and_wrong_types() {
        let err = runtime("mailbox = 0").unwrap_err();
        assert!(err.contains("field `mailbox` = 0"), "{err}");
        assert!(
            err.contains("a positive whole number of commands, at most"),
            "{err}"
        );
        let err = runtime("page_size = -3").unwrap_err();
        assert!(err.contains("field `page_size` = -3"), "{err}");
        let err = runtime("page_bytes = \"1MiB\"").unwrap_err();
        assert!(err.contains("field `page_bytes` = \"1MiB\""), "{err}");
        let err = runtime("scan_budget = true").unwrap_err();
        assert!(err.contains("field `scan_budget` = true"), "{err}");
        let err = runtime("max_batch = [1]").unwrap_err();
        assert!(err.contains("field `max_batch` = an array"), "{err}");
        let err = runtime("max_batch = { a = 1 }").unwrap_err();
        assert!(err.contains("field `max_batch` = a table"), "{err}");
        let err = runtime("page_size = 2.5").unwrap_err();
        assert!(err.contains("field `page_size` = 2.5"), "{err}");
    }

    #[test]
    fn runtime_config_round_trips_and_converts() {
        let config = runtime(
            "mailbox = 8\nmax_batch = 4\npage_size = 2\nscan_budget = 16\npage_bytes = 1024",
        )
        .unwrap();
        let options = config.options();
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
        assert_eq!(RuntimeConfig::from(&options), config);
        let text = toml::to_string(&config).unwrap();
        assert_eq!(runtime(&text).unwrap(), config);
        assert!(!config.is_default());
        assert!(runtime("").unwrap().is_default());
    }

    #[test]
    fn scalars_quote_values_as_written() {
        assert_eq!(Scalar::Int(-5).to_string(), "-5");
        assert_eq!(Scalar::Float(0.5).to_string(), "0.5");
        assert_eq!(Scalar::Float(2.0).to_string(), "2.0");
        assert_eq!(Scalar::Bool(true).to_string(), "true");
        assert_eq!(Scalar::Str("x".into()).to_string(), "\"x\"");
        assert_eq!(Scalar::Other("a table").to_string(), "a table");
    }

    #[test]
    fn numbers_and_text_and_booleans() {
        use serde::de::value::Error as E;
        use serde::de::IntoDeserializer;
        let n: Result<f64, E> = number(f64::NAN.into_deserializer(), "f", "finite");
        assert!(n
            .unwrap_err()
            .to_string()
            .contains("field `f` = NaN: finite"));
        let t: Result<String, E> = text("dir".into_deserializer(), "f", "");
        assert_eq!(t.unwrap(), "dir");
        let b: Result<bool, E> = boolean(false.into_deserializer(), "f");
        assert!(!b.unwrap());
        let big: Result<usize, E> = bounded_usize(2_000i64.into_deserializer(), "f", 0..=1000, "");
        assert!(big
            .unwrap_err()
            .to_string()
            .contains("field `f` = 2000: accepted is a whole number from 0 to 1000"));
        let max: Result<u64, E> = positive_u64(u64::MAX.into_deserializer(), "f", "x");
        assert_eq!(max.unwrap(), u64::MAX);
    }

    #[test]
    fn durations_read_from_toml_name_the_field() {
        #[derive(Debug, Deserialize)]
        struct S {
            #[serde(deserialize_with = "ttl")]
            #[allow(dead_code)]
            ttl: Duration,
        }
        fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            duration(d, "cache.ttl", "leave `ttl` out")
        }
        let err = toml::from_str::<S>("ttl = \"0s\"").unwrap_err().to_string();
        assert!(err.contains("field `cache.ttl` = \"0s\": accepted is a duration longer than zero; leave `ttl` out"), "{err}");
        let err = toml::from_str::<S>("ttl = \"1000 years\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("100 years"), "{err}");
        let err = toml::from_str::<S>("ttl = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `cache.ttl` = \"soon\": not a duration"),
            "{err}"
        );
        let err = toml::from_str::<S>("ttl = 5").unwrap_err().to_string();
        assert!(
            err.contains("field `cache.ttl` = 5: accepted are durations in quotes"),
            "{err}"
        );
    }
}
