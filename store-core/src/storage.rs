//! The [`Storage`] trait: the versioned contract every backend and layer implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Record, Result};

/// A stream of keys in ascending byte order, fetched lazily in pages.
pub type KeyStream = futures::stream::BoxStream<'static, Result<String>>;

/// A versioned key-value store.
///
/// Every backend (memory, file, Redis) and every layer (namespace, cache) implements it, so
/// stacks are built from `Arc<dyn Storage>`. The semantics below hold for all of them; the
/// conformance kit (feature `testkit`) checks each one.
///
/// - Versions are opaque, non-empty strings assigned on every successful write, never reused
///   for a key (not after delete and re-create, not after a restart).
/// - A record is visible while `expires_at` is `None` or in the future. Expired records are
///   invisible to every operation and are reclaimed by a timer.
/// - Keys are non-empty UTF-8 strings of at most [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes;
///   other keys get [`Error::InvalidKey`](crate::Error::InvalidKey).
///
/// ```
/// use store_core::{Error, Record, Storage};
///
/// async fn bump(store: &dyn Storage, key: &str) -> store_core::Result<Record> {
///     loop {
///         let current = store.get(key).await?;
///         let n: u64 = std::str::from_utf8(&current.value).unwrap_or("0").parse().unwrap_or(0);
///         let next = Record::new(key, (n + 1).to_string()).with_version(current.version);
///         match store.cas_by_version(next).await {
///             Err(Error::Conflict) => continue, // somebody else won; read again
///             other => return other,
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores `record` if its key has no live record and returns the new version;
    /// otherwise fails with [`Error::AlreadyExists`](crate::Error::AlreadyExists) carrying
    /// the live record, and changes nothing.
    async fn create(&self, record: Record) -> Result<String>;

    /// The live record under `key`, or [`Error::NotFound`](crate::Error::NotFound).
    async fn get(&self, key: &str) -> Result<Record>;

    /// The live records under `keys`, position by position: `None` where a key is missing
    /// or expired.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>>;

    /// Stores `record` (value and expiry; `None` removes an expiry) whether or not the key
    /// exists, and returns the stored record with its new version.
    async fn put(&self, record: Record) -> Result<Record>;

    /// Stores all `records`; when a key repeats, the later record wins. Atomic per call on
    /// backends that can be (memory, file): either all are stored or none.
    async fn put_many(&self, records: Vec<Record>) -> Result<()>;

    /// Replaces the live record under `record.key` if its version equals `record.version`.
    /// Missing or expired: [`Error::NotFound`](crate::Error::NotFound); different version
    /// (the empty one included): [`Error::Conflict`](crate::Error::Conflict). Of several
    /// concurrent calls that expect the same version, exactly one succeeds.
    async fn cas_by_version(&self, record: Record) -> Result<Record>;

    /// Removes the live record under `key`; [`Error::NotFound`](crate::Error::NotFound) when
    /// there is none.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Waits until the record under `key` no longer has version `version`.
    ///
    /// Returns at once with `NotFound` when the key is missing and with `Ok` when its live
    /// version already differs. Otherwise waits for a write (`Ok`) or for a delete or expiry
    /// (`NotFound`). To give up, drop the future (for example with `tokio::time::timeout`);
    /// a dropped wait leaves nothing behind.
    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()>;

    /// The live keys matching the glob `pattern` (see [`Pattern`](crate::Pattern)), in
    /// ascending byte order, streamed in pages. A bad pattern is
    /// [`Error::InvalidPattern`](crate::Error::InvalidPattern).
    async fn list_keys(&self, pattern: &str) -> Result<KeyStream>;

    /// Makes every acknowledged write durable and stops the storage; every later call,
    /// `close` included, returns [`Error::Closed`](crate::Error::Closed). Layers close what
    /// they wrap.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// Implements `Storage` for a smart pointer by forwarding every call, `close` included.
macro_rules! forward_pointer {
    ($pointer:ty) => {
        #[async_trait]
        impl<S: Storage + ?Sized> Storage for $pointer {
            async fn create(&self, record: Record) -> Result<String> {
                (**self).create(record).await
            }
            async fn get(&self, key: &str) -> Result<Record> {
                (**self).get(key).await
            }
            async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
                (**self).get_many(keys).await
            }
            async fn put(&self, record: Record) -> Result<Record> {
                (**self).put(record).await
            }
            async fn put_many(&self, records: Vec<Record>) -> Result<()> {
                (**self).put_many(records).await
            }
            async fn cas_by_version(&self, record: Record) -> Result<Record> {
                (**self).cas_by_version(record).await
            }
            async fn delete(&self, key: &str) -> Result<()> {
                (**self).delete(key).await
            }
            async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
                (**self).wait_for_version_change(key, version).await
            }
            async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
                (**self).list_keys(pattern).await
            }
            async fn close(&self) -> Result<()> {
                (**self).close().await
            }
        }
    };
}

forward_pointer!(Arc<S>);
forward_pointer!(Box<S>);

/// Implements [`Storage`] for a wrapper type by forwarding every call, `close` included, to
/// one of its fields. Backends use it to put a named type around an
/// [`ActorHandle`](crate::runtime::ActorHandle); tests use it for fixtures that hold a
/// store together with what must outlive it (a temporary directory).
///
/// ```
/// use store_core::runtime::ActorHandle;
///
/// /// A backend's public handle.
/// #[derive(Clone)]
/// pub struct MyStorage {
///     handle: ActorHandle,
/// }
///
/// store_core::forward_storage!(MyStorage => handle);
/// ```
#[macro_export]
macro_rules! forward_storage {
    ($wrapper:ty => $field:ident) => {
        #[$crate::__private::async_trait]
        impl $crate::Storage for $wrapper {
            async fn create(&self, record: $crate::Record) -> $crate::Result<String> {
                $crate::Storage::create(&self.$field, record).await
            }
            async fn get(&self, key: &str) -> $crate::Result<$crate::Record> {
                $crate::Storage::get(&self.$field, key).await
            }
            async fn get_many(&self, keys: &[&str]) -> $crate::Result<Vec<Option<$crate::Record>>> {
                $crate::Storage::get_many(&self.$field, keys).await
            }
            async fn put(&self, record: $crate::Record) -> $crate::Result<$crate::Record> {
                $crate::Storage::put(&self.$field, record).await
            }
            async fn put_many(&self, records: Vec<$crate::Record>) -> $crate::Result<()> {
                $crate::Storage::put_many(&self.$field, records).await
            }
            async fn cas_by_version(
                &self,
                record: $crate::Record,
            ) -> $crate::Result<$crate::Record> {
                $crate::Storage::cas_by_version(&self.$field, record).await
            }
            async fn delete(&self, key: &str) -> $crate::Result<()> {
                $crate::Storage::delete(&self.$field, key).await
            }
            async fn wait_for_version_change(
                &self,
                key: &str,
                version: &str,
            ) -> $crate::Result<()> {
                $crate::Storage::wait_for_version_change(&self.$field, key, version).await
            }
            async fn list_keys(&self, pattern: &str) -> $crate::Result<$crate::KeyStream> {
                $crate::Storage::list_keys(&self.$field, pattern).await
            }
            async fn close(&self) -> $crate::Result<()> {
                $crate::Storage::close(&self.$field).await
            }
        }
    };
}
