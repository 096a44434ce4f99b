//! [`Record`]: the unit every backend stores.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// A key, its value, the version the storage assigned to it, and an optional expiry time.
///
/// `version` is managed by the storage: `create`, `put` and `put_many` ignore it, and
/// `cas_by_version` reads it as the version the caller expects to replace. Every record a
/// storage hands back carries the version it holds now.
///
/// ```
/// use std::time::Duration;
/// use store_core::Record;
///
/// let record = Record::new("jobs/42", "queued").with_ttl(Duration::from_secs(30));
/// assert_eq!(record.key, "jobs/42");
/// assert_eq!(&record.value[..], b"queued");
/// assert!(record.expires_at.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Record {
    /// The key: any non-empty UTF-8 string of at most [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes.
    pub key: String,
    /// The value: any bytes, empty included.
    pub value: Bytes,
    /// The opaque version string assigned by the storage on every successful write.
    pub version: String,
    /// When the record stops being visible; `None` means never.
    pub expires_at: Option<SystemTime>,
}

impl Record {
    /// A record with no version and no expiry.
    ///
    /// ```
    /// let r = store_core::Record::new("k", vec![1u8, 2, 3]);
    /// assert_eq!(r.version, "");
    /// assert_eq!(r.expires_at, None);
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            version: String::new(),
            expires_at: None,
        }
    }

    /// Sets the absolute time at which the record expires.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let at = SystemTime::now() + Duration::from_secs(60);
    /// let r = store_core::Record::new("k", "v").with_expires_at(at);
    /// assert_eq!(r.expires_at, Some(at));
    /// ```
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the expiry to `ttl` from now. A TTL too large to represent means "never expires".
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = store_core::Record::new("k", "v").with_ttl(Duration::from_secs(5));
    /// assert!(r.ttl().unwrap() <= Duration::from_secs(5));
    /// ```
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.expires_at = SystemTime::now().checked_add(ttl);
        self
    }

    /// Sets the version; only `cas_by_version` reads it (as the version it expects to replace).
    ///
    /// ```
    /// let r = store_core::Record::new("k", "v").with_version("7");
    /// assert_eq!(r.version, "7");
    /// ```
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Whether the record is expired at `now` (a record expiring exactly at `now` is expired).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let now = SystemTime::now();
    /// let r = store_core::Record::new("k", "v").with_expires_at(now);
    /// assert!(r.is_expired_at(now));
    /// assert!(!r.is_expired_at(now - Duration::from_secs(1)));
    /// ```
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        is_expired(self.expires_at, now)
    }

    /// Time left before the record expires, measured now; `None` when it never expires.
    /// An already expired record reports `Some(Duration::ZERO)`.
    ///
    /// ```
    /// let r = store_core::Record::new("k", "v");
    /// assert_eq!(r.ttl(), None);
    /// ```
    pub fn ttl(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// The one rule for expiry, used by the runtime, the layers and the engines alike.
pub(crate) fn is_expired(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    matches!(expires_at, Some(at) if at <= now)
}
