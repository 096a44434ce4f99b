//! [`Stack`]: a built storage stack with everything a service asks of it.

use std::fmt;
use std::sync::Arc;

use store_core::{Stats, Storage};

use crate::{Result, Store, StoreAdapter};

/// A storage stack (backend and layers) with the go-micro facade over it: what
/// [`StoreConfig::build_stack`](crate::config::StoreConfig::build_stack) returns, or what
/// [`Stack::new`] makes of a stack assembled in code.
///
/// - [`store`](Stack::store): the facade, one shared [`Store`] (so `init` on it is seen by
///   every holder);
/// - [`versioned`](Stack::versioned): the versioned API of one database and table, on the
///   facade's own keys, for `create` and `cas_by_version` where go-micro code raced;
/// - [`storage`](Stack::storage): the whole stack, unscoped;
/// - [`stats`](Stack::stats) and [`describe`](Stack::describe): what each layer reports.
///
/// Cloning is cheap and shares everything; [`close`](Stack::close) closes the whole stack.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_compat::{ReadOptions, Stack, Store};
/// use store_core::{Record, Storage};
///
/// let stack = Stack::new(Arc::new(store_memory::MemoryStorage::new()));
/// let sessions = stack.versioned("auth", "sessions")?;
/// let version = sessions.create(Record::new("s1", "alice")).await?;
/// let read = stack.store().read("s1", ReadOptions::default().database("auth").table("sessions")).await?;
/// assert_eq!(&read[0].value[..], b"alice");
/// assert!(stack.storage().get("auth/sessions/s1").await.is_ok());
/// assert_eq!(stack.describe(), "memory");
/// # let _ = version;
/// # Ok::<(), store_compat::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Stack {
    storage: Arc<dyn Storage>,
    store: Arc<StoreAdapter<Arc<dyn Storage>>>,
}

impl Stack {
    /// Wraps a stack assembled in code. The facade's name is the backend's (see
    /// [`StoreAdapter::new`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_compat::{Stack, Store};
    /// let stack = Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// assert_eq!(stack.store().name(), "memory");
    /// # });
    /// ```
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            store: Arc::new(StoreAdapter::new(storage.clone())),
            storage,
        }
    }

    /// The go-micro facade over the stack (shared: every call returns the same store).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_compat::{Options, Stack, Store};
    /// let stack = Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// stack.store().init(Options::default().table("t")).await.unwrap();
    /// assert_eq!(stack.store().options().table, "t");
    /// # });
    /// ```
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The whole stack, unscoped: facade records live under `database/table/key`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_core::{Record, Storage};
    /// let stack = store_compat::Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// stack.storage().put(Record::new("raw", "v")).await.unwrap();
    /// # });
    /// ```
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// The versioned API of one database and table (empty: the facade's current default),
    /// on the same keys the facade reads and writes there; see [`Store::versioned`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_core::{Error, Record};
    /// let stack = store_compat::Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// let table = stack.versioned("", "")?; // micro/micro, the go-micro defaults
    /// let stored = table.put(Record::new("k", "v1")).await?;
    /// table.cas_by_version(Record::new("k", "v2").with_version(stored.version.clone())).await?;
    /// let stale = table.cas_by_version(Record::new("k", "v3").with_version(stored.version)).await;
    /// assert!(matches!(stale, Err(Error::Conflict)));
    /// assert!(stack.versioned("a/b", "t").is_err());
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub fn versioned(&self, database: &str, table: &str) -> Result<Arc<dyn Storage>> {
        self.store.versioned(database, table)
    }

    /// What each layer of the stack reports, top first (see [`Storage::stats`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// let stack = store_compat::Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// let stats = stack.stats().await.unwrap();
    /// println!("{stats}");
    /// # });
    /// ```
    pub async fn stats(&self) -> Result<Stats> {
        self.storage.stats().await
    }

    /// The stack in one line, top first (see [`Storage::describe`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// let memory: Arc<dyn store_core::Storage> = Arc::new(store_memory::MemoryStorage::new());
    /// let tenant = store_core::Namespaced::new(memory, "acme").unwrap();
    /// let stack = store_compat::Stack::new(Arc::new(tenant));
    /// assert_eq!(stack.describe(), "namespace \"acme\" > memory");
    /// # });
    /// ```
    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// Closes the whole stack (flushes, stops, releases files); later calls through the
    /// facade, the versioned handles or the storage answer
    /// [`Error::Closed`](crate::Error::Closed).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use store_compat::{Error, ListOptions, Store};
    /// let stack = store_compat::Stack::new(Arc::new(store_memory::MemoryStorage::new()));
    /// stack.close().await.unwrap();
    /// assert!(matches!(stack.store().list(ListOptions::default()).await, Err(Error::Closed)));
    /// # });
    /// ```
    pub async fn close(&self) -> Result<()> {
        self.storage.close().await
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("stack", &self.storage.describe())
            .field("store", &self.store)
            .finish()
    }
}
