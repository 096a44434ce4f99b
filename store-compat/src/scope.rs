//! [`Scoped`]: go-micro's `store.Scope`, a handle confined to one database and table.

use std::sync::Arc;

use async_trait::async_trait;
use store_core::{Stats, Storage};

use crate::adapter::check_name;
use crate::{
    DeleteOptions, ListOptions, Options, ReadOptions, Record, Result, Store, WriteOptions,
};

/// A [`Store`] that sends every call to one database and table of another store, without
/// changing that store's defaults (go-micro's `store.Scope(s, database, table)`).
///
/// It is the safe way to give each component its own table over a shared store: unlike
/// [`Store::init`], which changes the defaults for everybody, a scoped handle fills in its
/// database and table on each call. A call that names its own database or table still
/// wins; an empty `database` or `table` given to [`Scoped::new`] falls through to the
/// wrapped store's default for that field.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_compat::{ListOptions, Record, Scoped, Store, StoreAdapter, WriteOptions};
///
/// let shared: Arc<dyn Store> = Arc::new(StoreAdapter::new(store_memory::MemoryStorage::new()));
/// let one = Scoped::new(shared.clone(), "agent", "one")?;
/// let two = Scoped::new(shared.clone(), "agent", "two")?;
/// one.write(Record::new("history", "A"), WriteOptions::default()).await?;
/// assert!(two.list(ListOptions::default()).await?.is_empty());
/// # Ok::<(), store_compat::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Scoped<T> {
    inner: T,
    database: String,
    table: String,
}

impl<T: Store> Scoped<T> {
    /// Confines `inner` to `database` and `table` (empty: the wrapped store's default).
    /// A non-empty name outside `[A-Za-z0-9._-]+` is
    /// [`Error::InvalidName`](crate::Error::InvalidName).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Scoped, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert!(Scoped::new(store, "bad/name", "t").is_err());
    /// # });
    /// ```
    pub fn new(inner: T, database: impl Into<String>, table: impl Into<String>) -> Result<Self> {
        let (database, table) = (database.into(), table.into());
        if !database.is_empty() {
            check_name("database", &database)?;
        }
        if !table.is_empty() {
            check_name("table", &table)?;
        }
        Ok(Self {
            inner,
            database,
            table,
        })
    }

    /// The wrapped store.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Scoped, Store, StoreAdapter};
    /// let scoped = Scoped::new(StoreAdapter::new(store_memory::MemoryStorage::new()), "a", "b").unwrap();
    /// assert_eq!(scoped.inner().options().database, "micro"); // untouched
    /// # });
    /// ```
    pub fn inner(&self) -> &T {
        &self.inner
    }

    fn fill(&self, database: &mut String, table: &mut String) {
        if database.is_empty() {
            database.clone_from(&self.database);
        }
        if table.is_empty() {
            table.clone_from(&self.table);
        }
    }
}

#[async_trait]
impl<T: Store> Store for Scoped<T> {
    /// Forwards to the wrapped store (as go-micro's scoped store does): it changes the
    /// wrapped store's defaults, which this handle's own database and table still override.
    async fn init(&self, options: Options) -> Result<()> {
        self.inner.init(options).await
    }

    async fn connect(&self) -> Result<()> {
        self.inner.connect().await
    }

    /// The database and table this handle uses.
    fn options(&self) -> Options {
        let mut options = self.inner.options();
        if !self.database.is_empty() {
            options.database.clone_from(&self.database);
        }
        if !self.table.is_empty() {
            options.table.clone_from(&self.table);
        }
        options
    }

    async fn read(&self, key: &str, mut opts: ReadOptions) -> Result<Vec<Record>> {
        self.fill(&mut opts.database, &mut opts.table);
        self.inner.read(key, opts).await
    }

    async fn write(&self, record: Record, mut opts: WriteOptions) -> Result<()> {
        self.fill(&mut opts.database, &mut opts.table);
        self.inner.write(record, opts).await
    }

    async fn delete(&self, key: &str, mut opts: DeleteOptions) -> Result<()> {
        self.fill(&mut opts.database, &mut opts.table);
        self.inner.delete(key, opts).await
    }

    async fn list(&self, mut opts: ListOptions) -> Result<Vec<String>> {
        self.fill(&mut opts.database, &mut opts.table);
        self.inner.list(opts).await
    }

    async fn disconnect(&self) -> Result<()> {
        self.inner.disconnect().await
    }

    fn name(&self) -> String {
        self.inner.name()
    }

    /// The versioned API of this handle's database and table (or of those given).
    fn versioned(&self, database: &str, table: &str) -> Result<Arc<dyn Storage>> {
        let database = if database.is_empty() {
            &self.database
        } else {
            database
        };
        let table = if table.is_empty() { &self.table } else { table };
        self.inner.versioned(database, table)
    }

    async fn stats(&self) -> Result<Stats> {
        self.inner.stats().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
