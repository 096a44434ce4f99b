//! [`Record`]: go-micro's `store.Record` (key, value, metadata, expiry).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::{Error, Result};

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
    /// A value JSON cannot represent (a map with non-string keys, a failing `Serialize`) is
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) naming the key, so `?` works in
    /// code that returns the crate's [`Result`](crate::Result).
    ///
    /// ```
    /// let record = store_compat::Record::from_json("point", &[1, 2])?;
    /// assert_eq!(&record.value[..], b"[1,2]");
    ///
    /// let bad = std::collections::HashMap::from([((1, 2), "pair keys")]);
    /// let err = store_compat::Record::from_json("pairs", &bad).unwrap_err();
    /// assert!(err.to_string().contains("\"pairs\""));
    /// # Ok::<(), store_compat::Error>(())
    /// ```
    pub fn from_json<T: serde::Serialize + ?Sized>(
        key: impl Into<String>,
        value: &T,
    ) -> Result<Self> {
        let key = key.into();
        match serde_json::to_vec(value) {
            Ok(json) => Ok(Self::new(key, json)),
            Err(error) => Err(Error::InvalidValue(format!(
                "for key {key:?}: cannot be encoded as JSON: {error}"
            ))),
        }
    }

    /// Decodes the value as JSON (go-micro's `Record.Decode`).
    ///
    /// A value that is not JSON of type `T` is [`Error::InvalidValue`](crate::Error::InvalidValue)
    /// naming the key, the type and where the JSON went wrong, so `?` works in code that
    /// returns the crate's [`Result`](crate::Result).
    ///
    /// ```
    /// let record = store_compat::Record::new("point", "[1,2]");
    /// let point: Vec<i32> = record.decode()?;
    /// assert_eq!(point, [1, 2]);
    ///
    /// let err = store_compat::Record::new("point", "[1,").decode::<Vec<i32>>().unwrap_err();
    /// assert!(err.to_string().contains("\"point\""));
    /// # Ok::<(), store_compat::Error>(())
    /// ```
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value).map_err(|error| {
            Error::InvalidValue(format!(
                "for key {:?}: not JSON of type {}: {error}",
                self.key,
                std::any::type_name::<T>()
            ))
        })
    }

    /// Adds (or replaces) one metadata entry.
    ///
    /// ```
    /// use serde_json::json;
    /// let record = store_compat::Record::new("k", "v").with_metadata("n", json!(1));
    /// assert_eq!(record.metadata.get("n"), Some(&json!(1)));
    /// ```
    #[must_use]
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
    #[must_use]
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = Some(expiry);
        self
    }
}
