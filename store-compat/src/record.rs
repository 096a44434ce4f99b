//! [`Record`]: go-micro's `store.Record` (key, value, metadata, expiry).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// A record as go-micro's `Store` sees it: a key, a value, free-form metadata and an
/// expiry relative to now.
///
/// - `metadata` round-trips exactly through every backend: integers stay integers, floats
///   stay floats, nested objects and arrays survive (see the [`envelope`](crate::envelope)).
/// - `expiry` on a write is a time to live (`None` or zero: never expires, unless the
///   [`WriteOptions`](crate::WriteOptions) say otherwise); on a read it is the time left
///   before the record expires (`None`: never).
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use store_compat::Record;
///
/// let record = Record::new("user/42", "alice")
///     .with_metadata("age", json!(37))
///     .with_metadata("tags", json!(["admin", {"since": 2019}]))
///     .with_expiry(Duration::from_secs(60));
/// assert_eq!(record.metadata["age"], json!(37));
/// assert_eq!(record.expiry, Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// The key, unique within its database and table.
    pub key: String,
    /// The value: any bytes.
    pub value: Bytes,
    /// Free-form metadata (go-micro's `map[string]interface{}`).
    pub metadata: HashMap<String, Value>,
    /// Write: time to live. Read: time left. `None`: never expires.
    pub expiry: Option<Duration>,
}

impl Record {
    /// A record with no metadata and no expiry.
    ///
    /// ```
    /// let record = store_compat::Record::new("k", vec![1u8, 2, 3]);
    /// assert_eq!(&record.value[..], &[1, 2, 3]);
    /// assert!(record.metadata.is_empty());
    /// assert_eq!(record.expiry, None);
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            metadata: HashMap::new(),
            expiry: None,
        }
    }

    /// A record whose value is `value` encoded as JSON (go-micro's `store.NewRecord`).
    ///
    /// ```
    /// let record = store_compat::Record::from_json("point", &[1, 2]).unwrap();
    /// assert_eq!(&record.value[..], b"[1,2]");
    /// ```
    pub fn from_json<T: serde::Serialize + ?Sized>(
        key: impl Into<String>,
        value: &T,
    ) -> serde_json::Result<Self> {
        Ok(Self::new(key, serde_json::to_vec(value)?))
    }

    /// Decodes the value as JSON (go-micro's `Record.Decode`).
    ///
    /// ```
    /// let record = store_compat::Record::new("point", "[1,2]");
    /// let point: Vec<i32> = record.decode().unwrap();
    /// assert_eq!(point, [1, 2]);
    /// ```
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.value)
    }

    /// Adds (or replaces) one metadata entry.
    ///
    /// ```
    /// use serde_json::json;
    /// let record = store_compat::Record::new("k", "v").with_metadata("n", json!(1));
    /// assert_eq!(record.metadata.get("n"), Some(&json!(1)));
    /// ```
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the time to live. [`WriteOptions::ttl`](crate::WriteOptions::ttl) and
    /// [`WriteOptions::expiry`](crate::WriteOptions::expiry) win over it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let record = store_compat::Record::new("k", "v").with_expiry(Duration::from_secs(5));
    /// assert_eq!(record.expiry, Some(Duration::from_secs(5)));
    /// ```
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = Some(expiry);
        self
    }
}
