//! The [`Store`] trait: go-micro's `store.Store` as an async, object-safe Rust trait.

use std::sync::Arc;

use store_core::{BoxFuture, Error, Stats, Storage};

use crate::{DeleteOptions, ListOptions, Options, ReadOptions, Record, Result, WriteOptions};

/// go-micro's `store.Store`: read, write, delete and list records by key within a database
/// and table, with prefix/suffix reads, pagination, expiry and metadata.
///
/// | go-micro                     | here                                       |
/// |------------------------------|--------------------------------------------|
/// | `Init(...Option) error`      | [`init`](Store::init)                      |
/// | (setup in `Init`)            | [`connect`](Store::connect)                |
/// | `Options() Options`          | [`options`](Store::options)                |
/// | `Read(key, ...ReadOption)`   | [`read`](Store::read)                      |
/// | `Write(*Record, ...WriteOption)` | [`write`](Store::write)                |
/// | `Delete(key, ...DeleteOption)` | [`delete`](Store::delete)                |
/// | `List(...ListOption)`        | [`list`](Store::list)                      |
/// | `Close() error`              | [`disconnect`](Store::disconnect)          |
/// | `String() string`            | [`name`](Store::name)                      |
///
/// Beyond go-micro, three provided methods reach below the facade: [`versioned`](Store::versioned)
/// (the versioned API of one database and table: `create`, `cas_by_version`,
/// `wait_for_version_change` on the facade's own keys), [`stats`](Store::stats) (what each
/// layer of the stack reports) and [`describe`](Store::describe) (the stack in one line).
///
/// The trait is object safe; services usually hold an `Arc<dyn Store>`.
/// [`StoreAdapter`](crate::StoreAdapter) implements it over any
/// [`Storage`](store_core::Storage); the crate docs list the semantics.
///
/// The async calls return a [`BoxFuture`]`<'a, _>`, read as in
/// [`Storage`](store_core::Storage#reading-the-signatures): `'s: 'a` and `'k: 'a` say that
/// the borrows of the store and of the key outlive the future. Implement the trait with
/// `async fn`s in an `#[async_trait]` impl block, or write a signature out and return
/// `Box::pin(async move { .. })`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_compat::{Error, ReadOptions, Record, Store, StoreAdapter, WriteOptions};
///
/// let store: Arc<dyn Store> = Arc::new(StoreAdapter::new(store_memory::MemoryStorage::new()));
/// store.write(Record::new("greeting", "hello"), WriteOptions::default()).await?;
/// let records = store.read("greeting", ReadOptions::default()).await?;
/// assert_eq!(&records[0].value[..], b"hello");
/// assert!(matches!(store.read("nope", ReadOptions::default()).await, Err(Error::NotFound)));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub trait Store: Send + Sync + 'static {
    /// Replaces the default database and table used by calls that do not name their own.
    /// Takes effect for calls that start afterwards. A name outside `[A-Za-z0-9._-]+` is
    /// [`Error::InvalidName`](crate::Error::InvalidName) naming it, and changes nothing.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Options, Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// store.init(Options::default().table("sessions")).await.unwrap();
    /// assert_eq!(store.options().table, "sessions");
    /// assert!(store.init(Options::default().database("a/b")).await.is_err());
    /// # });
    /// ```
    fn init<'s: 'a, 'a>(&'s self, options: Options) -> BoxFuture<'a, Result<()>>;

    /// Checks that the backing storage is ready for use: `Ok`, or the storage's error
    /// ([`Error::Closed`](crate::Error::Closed) after [`disconnect`](Store::disconnect)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// store.connect().await.unwrap();
    /// # });
    /// ```
    fn connect<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>>;

    /// The current default database and table.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert_eq!(store.options().database, "micro");
    /// # });
    /// ```
    fn options(&self) -> Options;

    /// Reads the record under `key`: `Ok(vec![record])` or
    /// [`Error::NotFound`](crate::Error::NotFound). With
    /// [`ReadOptions::prefix`]/[`ReadOptions::suffix`], `key` is the prefix/suffix and the
    /// result holds every matching live record, ordered, offset, then limited (possibly none).
    /// Each record's `expiry` is the time it has left.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{ReadOptions, Record, Store, StoreAdapter, WriteOptions};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// for key in ["a1", "a2", "b1"] {
    ///     store.write(Record::new(key, "v"), WriteOptions::default()).await.unwrap();
    /// }
    /// let records = store.read("a", ReadOptions::default().prefix()).await.unwrap();
    /// let keys: Vec<_> = records.iter().map(|r| r.key.as_str()).collect();
    /// assert_eq!(keys, ["a1", "a2"]);
    /// # });
    /// ```
    fn read<'s: 'a, 'k: 'a, 'a>(
        &'s self,
        key: &'k str,
        opts: ReadOptions,
    ) -> BoxFuture<'a, Result<Vec<Record>>>;

    /// Writes `record` (value, metadata and expiry), replacing any record under its key.
    /// Expiry precedence: [`WriteOptions::ttl`], then [`WriteOptions::expiry`], then
    /// [`Record::expiry`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use store_compat::{ReadOptions, Record, Store, StoreAdapter, WriteOptions};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// let options = WriteOptions::default().ttl(Duration::from_secs(60));
    /// store.write(Record::new("session", "token"), options).await.unwrap();
    /// let left = store.read("session", ReadOptions::default()).await.unwrap()[0].expiry;
    /// assert!(left.unwrap() <= Duration::from_secs(60));
    /// # });
    /// ```
    fn write<'s: 'a, 'a>(&'s self, record: Record, opts: WriteOptions)
        -> BoxFuture<'a, Result<()>>;

    /// Deletes the record under `key`. Deleting a missing key is `Ok`, as in go-micro.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{DeleteOptions, Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// store.delete("never-written", DeleteOptions::default()).await.unwrap();
    /// # });
    /// ```
    fn delete<'s: 'a, 'k: 'a, 'a>(
        &'s self,
        key: &'k str,
        opts: DeleteOptions,
    ) -> BoxFuture<'a, Result<()>>;

    /// Lists the live keys matching the options' prefix and suffix, ordered, offset, then
    /// limited. No match is `Ok(vec![])`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{ListOptions, Record, Store, StoreAdapter, WriteOptions};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// for i in 0..5 {
    ///     store.write(Record::new(format!("item{i}"), "v"), WriteOptions::default()).await.unwrap();
    /// }
    /// let page = store.list(ListOptions::default().prefix("item").offset(1).limit(2)).await.unwrap();
    /// assert_eq!(page, ["item1", "item2"]);
    /// # });
    /// ```
    fn list<'s: 'a, 'a>(&'s self, opts: ListOptions) -> BoxFuture<'a, Result<Vec<String>>>;

    /// Closes the backing storage (the whole stack beneath it); afterwards every call except
    /// `disconnect` itself and [`options`](Store::options)/[`name`](Store::name) fails with
    /// [`Error::Closed`](crate::Error::Closed). Disconnecting twice is `Ok`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Error, ListOptions, Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// store.disconnect().await.unwrap();
    /// assert!(matches!(store.list(ListOptions::default()).await, Err(Error::Closed)));
    /// # });
    /// ```
    fn disconnect<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>>;

    /// The implementation's name (go-micro's `String()`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert_eq!(store.name(), "memory");
    /// # });
    /// ```
    fn name(&self) -> String;

    /// The versioned API ([`Storage`]) of one database and table of this store: the same
    /// keys the facade reads and writes there, without the `database/table/` prefix. An
    /// empty `database` or `table` means this store's default, as in per-call options.
    ///
    /// Use it where go-micro code checked and then wrote (a race): `create` writes only if
    /// the key is absent, `cas_by_version` only if nobody wrote since the read. Records
    /// written through it read back through the facade with empty metadata. Closing it
    /// closes the whole stack, as [`disconnect`](Store::disconnect) does.
    ///
    /// A name outside `[A-Za-z0-9._-]+` is [`Error::InvalidName`]; a store with no
    /// versioned storage beneath it (the provided method) answers [`Error::Unsupported`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_compat::{Error, ReadOptions, Store, StoreAdapter};
    ///
    /// let store: Arc<dyn Store> = Arc::new(StoreAdapter::new(store_memory::MemoryStorage::new()));
    /// let jobs = store.versioned("", "jobs")?;
    /// // Exactly one worker claims the job, however many try at once.
    /// jobs.create(store_core::Record::new("job-7", "worker-a")).await?;
    /// let second = jobs.create(store_core::Record::new("job-7", "worker-b")).await;
    /// assert!(matches!(second, Err(Error::AlreadyExists(_))));
    /// let owner = store.read("job-7", ReadOptions::default().table("jobs")).await?;
    /// assert_eq!(&owner[0].value[..], b"worker-a");
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    fn versioned(&self, database: &str, table: &str) -> Result<Arc<dyn Storage>> {
        let _ = (database, table);
        Err(Error::Unsupported(format!(
            "versioned: the store {:?} has no versioned storage beneath it",
            self.name()
        )))
    }

    /// What each layer of the stack beneath the facade reports (cache hits, file segments,
    /// ...), top first; see [`Storage::stats`]. The provided method reports nothing.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// println!("{}", store.stats().await.unwrap());
    /// # });
    /// ```
    fn stats<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<Stats>> {
        Box::pin(async { Ok(Stats::default()) })
    }

    /// The stack beneath the facade in one line, top first (see [`Storage::describe`]); the
    /// provided method gives [`name`](Store::name).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert_eq!(store.describe(), "memory");
    /// # });
    /// ```
    fn describe(&self) -> String {
        self.name()
    }
}

/// Implements `Store` for a smart pointer by handing back the pointee's futures as they
/// are (no boxed future of its own).
macro_rules! forward_store {
    ($pointer:ty) => {
        impl<S: Store + ?Sized> Store for $pointer {
            fn init<'s: 'a, 'a>(&'s self, options: Options) -> BoxFuture<'a, Result<()>> {
                (**self).init(options)
            }
            fn connect<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>> {
                (**self).connect()
            }
            fn options(&self) -> Options {
                (**self).options()
            }
            fn read<'s: 'a, 'k: 'a, 'a>(
                &'s self,
                key: &'k str,
                opts: ReadOptions,
            ) -> BoxFuture<'a, Result<Vec<Record>>> {
                (**self).read(key, opts)
            }
            fn write<'s: 'a, 'a>(
                &'s self,
                record: Record,
                opts: WriteOptions,
            ) -> BoxFuture<'a, Result<()>> {
                (**self).write(record, opts)
            }
            fn delete<'s: 'a, 'k: 'a, 'a>(
                &'s self,
                key: &'k str,
                opts: DeleteOptions,
            ) -> BoxFuture<'a, Result<()>> {
                (**self).delete(key, opts)
            }
            fn list<'s: 'a, 'a>(&'s self, opts: ListOptions) -> BoxFuture<'a, Result<Vec<String>>> {
                (**self).list(opts)
            }
            fn disconnect<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<()>> {
                (**self).disconnect()
            }
            fn name(&self) -> String {
                (**self).name()
            }
            fn versioned(&self, database: &str, table: &str) -> Result<Arc<dyn Storage>> {
                (**self).versioned(database, table)
            }
            fn stats<'s: 'a, 'a>(&'s self) -> BoxFuture<'a, Result<Stats>> {
                (**self).stats()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    };
}

forward_store!(Arc<S>);
forward_store!(Box<S>);
