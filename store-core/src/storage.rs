//! The [`Storage`] trait: the versioned contract every backend and layer implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Error, Record, Result, Stats};

/// The future every [`Storage`] call returns: boxed, `Send`, and living as long as `'a`,
/// the shortest of the call's borrows (of the storage and of its arguments).
///
/// It is the same type as `futures::future::BoxFuture` and as what `#[async_trait]` makes
/// of an `async fn`, so an implementation may return either, or write `async fn`s in an
/// `#[async_trait]` impl block (see [`Storage`]).
///
/// ```
/// use store_core::{BoxFuture, Record, Result, Storage};
///
/// // A helper in the shape of a `Storage` call: it borrows the store and the key.
/// fn read_twice<'a>(store: &'a dyn Storage, key: &'a str) -> BoxFuture<'a, Result<Record>> {
///     Box::pin(async move {
///         store.get(key).await?;
///         store.get(key).await
///     })
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let store = store_core::__private::doc_store();
/// store.put(Record::new("k", "v")).await.unwrap();
/// assert_eq!(&read_twice(&store, "k").await.unwrap().value[..], b"v");
/// # });
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of keys in ascending byte order, fetched lazily in pages.
pub type KeyStream = futures::stream::BoxStream<'static, crate::Result<String>>;

/// A versioned key-value store.
///
/// Every backend (memory, file, Redis, PostgreSQL) and every layer (namespace, cache)
/// implements it, so stacks are built from `Arc<dyn Storage>`. The semantics below hold for
/// all of them; the conformance kit (crate `store-testkit`) checks each one.
///
/// - Versions are opaque, non-empty strings assigned on every successful write, never reused
///   for a key (not after delete and re-create, not after a restart).
/// - A record is visible while `expires_at` is `None` or in the future. Expired records are
///   invisible to every operation and are reclaimed by a timer.
/// - Keys are non-empty UTF-8 strings of at most [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes;
///   other keys get [`Error::InvalidKey`](crate::Error::InvalidKey).
/// - **Linearizable**: once a call has returned, every call that starts afterwards (in any
///   task, and for shared backends in any process) observes it; a woken waiter observes
///   the change that woke it; `get_many` never observes part of a `put_many`.
///
/// A layer that wraps another storage implements [`Layer`](crate::Layer) instead and
/// overrides only what it changes; every other call, `close` included, is forwarded.
///
/// # Reading the signatures
///
/// Every async call returns a [`BoxFuture`]`<'a, _>`, a boxed `Send` future, so the trait
/// works as `dyn Storage`. `'s: 'a` and `'k: 'a` say that the borrows of the storage and
/// of each argument outlive the future. They are separate lifetimes because they are the
/// ones `#[async_trait]` gives an `async fn`: implement the trait with `async fn`s in an
/// `#[async_trait]` impl block (as most implementations in this workspace do), or copy a
/// signature and return `Box::pin(async move { .. })`.
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
pub trait Storage: Send + Sync + 'static {
    /// Stores `record` if its key has no live record and returns the new version;
    /// otherwise fails with [`Error::AlreadyExists`](crate::Error::AlreadyExists) carrying
    /// the live record, and changes nothing.
    fn create<'s: 'a, 'a>(&'s self, record: Record) -> BoxFuture<'a, Result<String>>;

    /// The live record under `key`, or [`Error::NotFound`](crate::Error::NotFound).
    fn get<'s: 'a, 'k: 'a, 'a>(&'s self, key: &'k str) -> BoxFuture<'a, Result<Record>>;

    /// The live records under `keys`, position by position: `None` where a key is missing
    /// or expired. The answer is one snapshot: it never shows part of a `put_many`.
    fn get_many<'s: 'a, 'k: 'a, 'l: 'a, 'a>(
        &'s self,
        keys: &'k [&'l str],
    ) -> BoxFuture<'a, Result<Vec<Option<Record>>>>;

    /// Stores `record` (value and expiry; `None` removes an expiry) whether or not the key
    /// exists, and returns the stored record with its new version.
    fn put<'s: 'a, 'a>(&'s self, record: Record) -> BoxFuture<'a, Result<Record>>;

    /// Stores all `records`; when a key repeats, the later record wins. Atomic per call on
    /// backends that can be (every backend in this workspace): either all are stored or none.
    fn put_many<'s: 'a, 'a>(&'s self, records: Vec<Record>) -> BoxFuture<'a, Result<()>>;

    /// Replaces the live record under `record.key` if its version equals `record.version`.
    /// Missing or expired: [`Error::NotFound`](crate::Error::NotFound); different version
    /// (the empty one included): [`Error::Conflict`](crate::Error::Conflict). Of several
    /// concurrent calls that expect the same version, exactly one succeeds.
    fn cas_by_version<'s: 'a, 'a>(&'s self, record: Record) -> BoxFuture<'a, Result<Record>>;

    /// Removes the live record under `key`; [`Error::NotFound`](crate::Error::NotFound) when
    /// there is none.
    fn delete<'s: 'a, 'k: 'a, 'a>(&'s self, key: &'k str) -> BoxFuture<'a, Result<()>>;

    /// Waits until the record under `key` no longer has version `version`.
    ///
    /// Returns at once with `NotFound` when the key is missing and with `Ok` when its live
    /// version already differs. Otherwise waits for a write (`Ok`) or for a delete or expiry
    /// (`NotFound`). To give up, drop the future (for example with `tokio::time::timeout`);
    /// a dropped wait leaves nothing behind.
    fn wait_for_version_change<'s: 'a, 'k: 'a, 'v: 'a, 'a>(
        &'s self,
        key: &'k str,
        version: &'v str,
    ) -> BoxFuture<'a, Result<()>>;

    /// The live keys matching the glob `pattern` (see [`Pattern`](crate::Pattern)), in
    /// ascending byte order, streamed in pages. A bad pattern is
    /// [`Error::InvalidPattern`](crate::Error::InvalidPattern).
    fn list_keys<'s: 'a, 'p: 'a, 'a>(
        &'s self,
        pattern: &'p str,
    ) -> BoxFuture<'a, Result<KeyStream>>;

    /// Makes every acknowledged write durable and stops the storage; every later call,
    /// `close` included, returns [`Error::Closed`](crate::Error::Closed). Layers close what
    /// they wrap.
    fn close<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// One line naming the stack from the top down, for logs and operators, for example
    /// `namespace "orders" > cache (10000 entries) > file "/var/lib/orders"`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::Storage;
    /// # let store = store_core::__private::doc_store();
    /// let ns = store_core::Namespaced::new(store, "orders").unwrap();
    /// assert_eq!(ns.describe(), "namespace \"orders\" > memory");
    /// # });
    /// ```
    fn describe(&self) -> String {
        "storage".to_owned()
    }

    /// What each component of the stack reports about itself (hits, bytes, segments, ...),
    /// from the top down. Components with nothing to report are left out.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::Storage;
    /// # let store = store_core::__private::doc_store();
    /// for component in store.stats().await.unwrap().components {
    ///     println!("{}: {:?}", component.name, component.figures);
    /// }
    /// # });
    /// ```
    fn stats<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<Stats>> {
        Box::pin(async { Ok(Stats::default()) })
    }

    /// Reclaims the space of overwritten, deleted and expired records now, where the
    /// backend keeps such garbage (the file backend), and returns when done. Backends with
    /// nothing to compact answer [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::{Error, Storage};
    /// # let store = store_core::__private::doc_store();
    /// assert!(matches!(store.compact().await, Err(Error::Unsupported(_))));
    /// # });
    /// ```
    fn compact<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            Err(Error::Unsupported(format!(
                "compact: {} keeps no garbage to reclaim",
                self.describe()
            )))
        })
    }
}

/// Writes out every [`Storage`] call as a method that hands back `$via::call($to, ..)`'s
/// future as it is (no boxed future of its own), with the signatures of `Storage` itself,
/// so it serves both an `impl Storage` block and the provided methods of
/// [`Layer`](crate::Layer), whose implementers override them (with `async fn`s in an
/// `#[async_trait]` impl, or with these signatures).
///
/// The one list of forwarded calls: the `Layer` defaults (to the inner store), the blanket
/// `impl Storage for L: Layer` (to the layer's methods) and the smart pointers below (to the
/// pointee) all use it, so a call added to `Storage` is added here once. `$this` is the
/// caller's `self`, passed in so that `$to` may use it.
macro_rules! forward_storage {
    ($this:ident, $via:ident, $to:expr) => {
        #[doc = "See [`Storage::create`](crate::Storage::create)."]
        fn create<'s: 'a, 'a>(&'s $this, record: $crate::Record) -> $crate::BoxFuture<'a, $crate::Result<String>> {
            $via::create($to, record)
        }
        #[doc = "See [`Storage::get`](crate::Storage::get)."]
        fn get<'s: 'a, 'k: 'a, 'a>(&'s $this, key: &'k str) -> $crate::BoxFuture<'a, $crate::Result<$crate::Record>> {
            $via::get($to, key)
        }
        #[doc = "See [`Storage::get_many`](crate::Storage::get_many)."]
        fn get_many<'s: 'a, 'k: 'a, 'l: 'a, 'a>(
            &'s $this,
            keys: &'k [&'l str],
        ) -> $crate::BoxFuture<'a, $crate::Result<Vec<Option<$crate::Record>>>> {
            $via::get_many($to, keys)
        }
        #[doc = "See [`Storage::put`](crate::Storage::put)."]
        fn put<'s: 'a, 'a>(&'s $this, record: $crate::Record) -> $crate::BoxFuture<'a, $crate::Result<$crate::Record>> {
            $via::put($to, record)
        }
        #[doc = "See [`Storage::put_many`](crate::Storage::put_many)."]
        fn put_many<'s: 'a, 'a>(&'s $this, records: Vec<$crate::Record>) -> $crate::BoxFuture<'a, $crate::Result<()>> {
            $via::put_many($to, records)
        }
        #[doc = "See [`Storage::cas_by_version`](crate::Storage::cas_by_version)."]
        fn cas_by_version<'s: 'a, 'a>(&'s $this, record: $crate::Record) -> $crate::BoxFuture<'a, $crate::Result<$crate::Record>> {
            $via::cas_by_version($to, record)
        }
        #[doc = "See [`Storage::delete`](crate::Storage::delete)."]
        fn delete<'s: 'a, 'k: 'a, 'a>(&'s $this, key: &'k str) -> $crate::BoxFuture<'a, $crate::Result<()>> {
            $via::delete($to, key)
        }
        #[doc = "See [`Storage::wait_for_version_change`](crate::Storage::wait_for_version_change)."]
        fn wait_for_version_change<'s: 'a, 'k: 'a, 'v: 'a, 'a>(
            &'s $this,
            key: &'k str,
            version: &'v str,
        ) -> $crate::BoxFuture<'a, $crate::Result<()>> {
            $via::wait_for_version_change($to, key, version)
        }
        #[doc = "See [`Storage::list_keys`](crate::Storage::list_keys)."]
        fn list_keys<'s: 'a, 'p: 'a, 'a>(&'s $this, pattern: &'p str) -> $crate::BoxFuture<'a, $crate::Result<$crate::KeyStream>> {
            $via::list_keys($to, pattern)
        }
        #[doc = "See [`Storage::close`](crate::Storage::close)."]
        fn close<'s: 'a, 'a>(&'s $this) -> $crate::BoxFuture<'a, $crate::Result<()>> {
            $via::close($to)
        }
        #[doc = "See [`Storage::describe`](crate::Storage::describe)."]
        fn describe(&$this) -> String {
            $via::describe($to)
        }
        #[doc = "See [`Storage::stats`](crate::Storage::stats)."]
        fn stats<'s: 'a, 'a>(&'s $this) -> $crate::BoxFuture<'a, $crate::Result<$crate::Stats>> {
            $via::stats($to)
        }
        #[doc = "See [`Storage::compact`](crate::Storage::compact)."]
        fn compact<'s: 'a, 'a>(&'s $this) -> $crate::BoxFuture<'a, $crate::Result<()>> {
            $via::compact($to)
        }
    };
}
pub(crate) use forward_storage;

// Smart pointers implement `Storage` directly rather than through [`Layer`](crate::Layer):
// inside a layer's `impl Layer` block the `Layer` trait is in scope, so calling a method on
// an inner `Arc<dyn Storage>` that implemented both traits would be ambiguous.
impl<S: Storage + ?Sized> Storage for Arc<S> {
    forward_storage!(self, Storage, &**self);
}

impl Storage for Box<dyn Storage> {
    forward_storage!(self, Storage, &**self);
}
