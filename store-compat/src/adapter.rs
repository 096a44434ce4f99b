//! [`StoreAdapter`]: the go-micro [`Store`] over any versioned [`Storage`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::TryStreamExt;
use store_core::{
    validate_key_within, validate_name, Error, Namespaced, Pattern, Stats, Storage, MAX_KEY_LEN,
};

use crate::{
    envelope, DeleteOptions, ListOptions, Options, Order, ReadOptions, Record, Result, Store,
    WriteOptions,
};

/// Most keys fetched by one `get_many` while reading with a prefix or suffix.
const READ_BATCH: usize = 512;

/// Most database/table scopes kept built between calls; past it the cache starts over, so
/// names chosen by callers cannot grow it without bound.
const CACHED_SCOPES: usize = 256;

/// The key `connect` reads to see that the stack answers: any answer but an error will do,
/// and no facade or versioned user has a reason to store a value under a lone NUL.
const CONNECT_PROBE: &str = "\u{0}";

/// The storage of one database and table: the caller's storage under one namespace layer
/// with the path database, table, so a key `k` lives at `database/table/k` below.
type ScopeStorage<S> = Namespaced<Arc<S>>;

/// Implements [`Store`] over any [`Storage`] (a backend, a layer, or an `Arc<dyn Storage>`).
///
/// A record with key `k` in database `d` and table `t` is stored under the storage key
/// `d/t/k` (a [`Namespaced`] layer with the path `d`, `t`), its value wrapped in the
/// metadata [`envelope`] when it has metadata. The facade and the versioned API share a
/// store: [`versioned`](Store::versioned) gives the versioned API of any database and table
/// (`create`, `cas_by_version`, `wait_for_version_change` on the facade's own keys), and a
/// value written there reads back through the facade with empty metadata.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use serde_json::json;
/// use store_compat::{ReadOptions, Record, Store, StoreAdapter, WriteOptions};
/// use store_core::{Error, Storage};
///
/// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
/// let record = Record::new("user/1", "alice").with_metadata("visits", json!(3));
/// store.write(record, WriteOptions::default().table("users")).await?;
///
/// let read = store.read("user/1", ReadOptions::default().table("users")).await?;
/// assert_eq!(read[0].metadata["visits"], json!(3));
///
/// // Go's racy "read, then write if missing" becomes one create on the same keys.
/// let users = store.versioned("", "users")?;
/// let claim = store_core::Record::new("user/2", "bob");
/// users.create(claim.clone()).await?;
/// assert!(matches!(users.create(claim).await, Err(Error::AlreadyExists(_))));
/// assert_eq!(store.read("user/2", ReadOptions::default().table("users")).await?.len(), 1);
/// assert!(store.storage().get("micro/users/user/1").await.is_ok()); // where it lives below
/// # Ok::<(), store_compat::Error>(())
/// # }).unwrap();
/// ```
pub struct StoreAdapter<S> {
    storage: Arc<S>,
    state: RwLock<State<S>>,
    name: String,
}

/// The default database and table, and the scopes built so far (by database, then table),
/// so that a call does not rebuild its two namespace layers.
struct State<S> {
    options: Options,
    scopes: HashMap<String, HashMap<String, Scope<S>>>,
    cached: usize,
}

impl<S> State<S> {
    fn cached(&self, database: &str, table: &str) -> Option<Scope<S>> {
        self.scopes.get(database)?.get(table).cloned()
    }

    fn remember(&mut self, database: &str, table: &str, scope: Scope<S>) {
        if self.cached >= CACHED_SCOPES {
            self.scopes.clear();
            self.cached = 0;
        }
        let tables = self.scopes.entry(database.to_owned()).or_default();
        if tables.insert(table.to_owned(), scope).is_none() {
            self.cached += 1;
        }
    }
}

/// One database and table of the adapter's storage.
struct Scope<S> {
    storage: Arc<ScopeStorage<S>>,
    /// The longest caller key that fits [`MAX_KEY_LEN`] below the scope's prefix.
    key_limit: usize,
}

impl<S> Clone for Scope<S> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            key_limit: self.key_limit,
        }
    }
}

impl<S: Storage> Scope<S> {
    fn open(storage: &Arc<S>, database: &str, table: &str) -> Result<Self> {
        check_name("database", database)?;
        check_name("table", table)?;
        let storage = Namespaced::with_path(storage.clone(), [database, table])?;
        Ok(Self {
            storage: Arc::new(storage),
            key_limit: MAX_KEY_LEN - database.len() - table.len() - 2,
        })
    }

    /// Checks a caller's key at the edge, so that an error names the key the caller gave
    /// (the namespace layers below would name it with the table in front).
    fn check_key(&self, key: &str) -> Result<()> {
        validate_key_within(key, self.key_limit)
    }
}

impl<S: Storage> StoreAdapter<S> {
    /// Wraps `storage` with the default database and table (`micro`/`micro`). The name
    /// ([`Store::name`]) is the backend's, as go-micro's `String()` gives it (`"memory"`,
    /// `"file"`): the bottom component of [`Storage::describe`], whatever layers are above
    /// it. [`with_name`](Self::with_name) sets another.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert_eq!(store.name(), "memory");
    /// assert_eq!(store.to_string(), "memory");
    /// # });
    /// ```
    pub fn new(storage: S) -> Self {
        let storage = Arc::new(storage);
        let name = backend_name(&storage.describe());
        Self {
            storage,
            state: RwLock::new(State {
                options: Options::default(),
                scopes: HashMap::new(),
                cached: 0,
            }),
            name,
        }
    }

    /// Wraps `storage` with the given default database and table
    /// ([`Error::InvalidName`] when one is not a valid name).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Options, Store, StoreAdapter};
    /// let memory = store_memory::MemoryStorage::new();
    /// let store = StoreAdapter::with_options(memory, Options::default().database("shop")).unwrap();
    /// assert_eq!(store.options().database, "shop");
    /// # });
    /// ```
    pub fn with_options(storage: S, options: Options) -> Result<Self> {
        let adapter = Self::new(storage);
        adapter.set_defaults(options)?;
        Ok(adapter)
    }

    /// Sets the name that [`Store::name`] and `Display` report (go-micro's `String()`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new()).with_name("sessions");
    /// assert_eq!(store.name(), "sessions");
    /// # });
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The whole storage beneath the facade, unscoped (keys are `database/table/key`). For
    /// the versioned API of one database and table, use [`versioned`](Store::versioned).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::StoreAdapter;
    /// use store_core::{Record, Storage};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// store.storage().put(Record::new("micro/micro/k", "v")).await.unwrap();
    /// # });
    /// ```
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage beneath the facade, shared with any [`versioned`](Store::versioned)
    /// handles still alive.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::StoreAdapter;
    /// let memory: std::sync::Arc<store_memory::MemoryStorage> =
    ///     StoreAdapter::new(store_memory::MemoryStorage::new()).into_inner();
    /// # let _ = memory;
    /// # });
    /// ```
    pub fn into_inner(self) -> Arc<S> {
        self.storage
    }

    fn set_defaults(&self, options: Options) -> Result<()> {
        let scope = Scope::open(&self.storage, &options.database, &options.table)?;
        let mut state = self.state_mut();
        state.remember(&options.database, &options.table, scope);
        state.options = options;
        Ok(())
    }

    /// The scope a call addresses: its own database/table where given, else the defaults.
    fn scope(&self, database: &str, table: &str) -> Result<Scope<S>> {
        let (database, table) = {
            let state = self.state();
            let database = if database.is_empty() {
                state.options.database.as_str()
            } else {
                database
            };
            let table = if table.is_empty() {
                state.options.table.as_str()
            } else {
                table
            };
            if let Some(scope) = state.cached(database, table) {
                return Ok(scope);
            }
            (database.to_owned(), table.to_owned())
        };
        let scope = Scope::open(&self.storage, &database, &table)?;
        self.state_mut().remember(&database, &table, scope.clone());
        Ok(scope)
    }

    /// The keys of `scope` that start with `prefix` and end with `suffix`, ordered, offset,
    /// limited (0: no limit).
    async fn matching_keys(
        &self,
        scope: &Scope<S>,
        prefix: &str,
        suffix: &str,
        order: Order,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>> {
        // The escaped prefix is the pattern's literal prefix, so the backend only scans keys
        // under it (and under the scope's own prefix, which the namespace layers add).
        // Without a prefix the backend can match the suffix too; with both, the suffix is
        // checked here, because a key may be shorter than prefix and suffix together (with
        // prefix and suffix "foo", "foo" itself matches, as in Go).
        let mut pattern = Pattern::escape(prefix);
        pattern.push('*');
        if prefix.is_empty() {
            pattern.push_str(&Pattern::escape(suffix));
        }
        // Ascending with a limit: stop reading once the page is complete.
        let enough = match order {
            Order::Ascending if limit > 0 => offset.saturating_add(limit),
            _ => usize::MAX,
        };
        let mut stream = scope.storage.list_keys(&pattern).await?;
        let mut keys = Vec::new();
        while keys.len() < enough {
            let Some(key) = stream.try_next().await? else {
                break;
            };
            if key.starts_with(prefix) && key.ends_with(suffix) {
                keys.push(key);
            }
        }
        drop(stream);
        if order == Order::Descending {
            keys.reverse();
        }
        Ok(page(keys, offset, limit))
    }
}

impl<S> StoreAdapter<S> {
    // A panic while the lock was held cannot leave the state wrong in a way that matters:
    // the options are replaced whole, and the scopes are a cache that a miss rebuilds (at
    // worst its count is off by one). So a poisoned lock's state is used as it is.
    fn state(&self) -> RwLockReadGuard<'_, State<S>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State<S>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> fmt::Debug for StoreAdapter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreAdapter")
            .field("name", &self.name)
            .field("options", &self.state().options)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Display for StoreAdapter<S> {
    /// The adapter's name, like go-micro's `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[async_trait]
impl<S: Storage> Store for StoreAdapter<S> {
    async fn init(&self, options: Options) -> Result<()> {
        self.set_defaults(options)
    }

    async fn connect(&self) -> Result<()> {
        let scope = self.scope("", "")?;
        match scope.storage.get(CONNECT_PROBE).await {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn options(&self) -> Options {
        self.state().options.clone()
    }

    async fn read(&self, key: &str, opts: ReadOptions) -> Result<Vec<Record>> {
        let scope = self.scope(&opts.database, &opts.table)?;
        if !opts.prefix && !opts.suffix {
            scope.check_key(key)?;
            let stored = scope.storage.get(key).await?;
            return Ok(vec![to_facade(key.to_owned(), stored)]);
        }
        let prefix = if opts.prefix { key } else { "" };
        let suffix = if opts.suffix { key } else { "" };
        let keys = self
            .matching_keys(&scope, prefix, suffix, opts.order, opts.offset, opts.limit)
            .await?;
        let mut records = Vec::with_capacity(keys.len());
        for batch in keys.chunks(READ_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let stored = scope.storage.get_many(&refs).await?;
            // A record that expired or was deleted since the listing is left out.
            records.extend(
                batch
                    .iter()
                    .zip(stored)
                    .filter_map(|(key, stored)| Some(to_facade(key.clone(), stored?))),
            );
        }
        Ok(records)
    }

    async fn write(&self, record: Record, opts: WriteOptions) -> Result<()> {
        let scope = self.scope(&opts.database, &opts.table)?;
        scope.check_key(&record.key)?;
        let now = SystemTime::now();
        let expires_at = resolve_expiry(&record, &opts, now);
        if expires_at.is_some_and(|at| at <= now) {
            // Born expired: the key reads as missing from now on.
            return match scope.storage.delete(&record.key).await {
                Ok(()) | Err(Error::NotFound) => Ok(()),
                Err(error) => Err(error),
            };
        }
        let value = envelope::encode(&record.metadata, record.value)?;
        let mut stored = store_core::Record::new(record.key, value);
        stored.expires_at = expires_at;
        scope.storage.put(stored).await?;
        Ok(())
    }

    async fn delete(&self, key: &str, opts: DeleteOptions) -> Result<()> {
        let scope = self.scope(&opts.database, &opts.table)?;
        scope.check_key(key)?;
        match scope.storage.delete(key).await {
            Ok(()) | Err(Error::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn list(&self, opts: ListOptions) -> Result<Vec<String>> {
        let scope = self.scope(&opts.database, &opts.table)?;
        self.matching_keys(
            &scope,
            &opts.prefix,
            &opts.suffix,
            opts.order,
            opts.offset,
            opts.limit,
        )
        .await
    }

    async fn disconnect(&self) -> Result<()> {
        match self.storage.close().await {
            Ok(()) | Err(Error::Closed) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn versioned(&self, database: &str, table: &str) -> Result<Arc<dyn Storage>> {
        Ok(self.scope(database, table)?.storage)
    }

    async fn stats(&self) -> Result<Stats> {
        self.storage.stats().await
    }

    fn describe(&self) -> String {
        self.storage.describe()
    }
}

/// Applies offset (past the end: nothing) then limit (0: no limit).
fn page(keys: Vec<String>, offset: usize, limit: usize) -> Vec<String> {
    let rest = keys.into_iter().skip(offset);
    if limit == 0 {
        rest.collect()
    } else {
        rest.take(limit).collect()
    }
}

/// When the record expires: the `ttl` option, else the `expiry` option, else the record's
/// own expiry; zero durations mean "not set". A TTL too large to represent never expires.
fn resolve_expiry(record: &Record, opts: &WriteOptions, now: SystemTime) -> Option<SystemTime> {
    let nonzero = |d: &Duration| !d.is_zero();
    if let Some(ttl) = opts.ttl.filter(nonzero) {
        return now.checked_add(ttl);
    }
    if let Some(at) = opts.expiry {
        return Some(at);
    }
    record
        .expiry
        .filter(nonzero)
        .and_then(|ttl| now.checked_add(ttl))
}

/// A stored record as the facade returns it: the caller's key, metadata unwrapped, and the
/// time left before it expires.
fn to_facade(key: String, stored: store_core::Record) -> Record {
    let expiry = stored.ttl();
    let (metadata, value) = envelope::decode(stored.value);
    Record {
        key,
        value,
        metadata,
        expiry,
    }
}

/// Validates a database or table name, saying which one is wrong.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    validate_name(name).map_err(|error| match error {
        Error::InvalidName(detail) => Error::InvalidName(format!("for {what} {detail}")),
        other => other,
    })
}

/// The backend's name from a stack's description (`namespace "a" > cache (..) > file "/d"`
/// gives `file`): the first word of its bottom component, as go-micro's `String()` names a
/// store by its kind.
fn backend_name(describe: &str) -> String {
    let bottom = describe.rsplit(" > ").next().unwrap_or(describe);
    let name = bottom
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or(bottom);
    if name.is_empty() {
        "storage".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_come_from_the_bottom_of_the_stack() {
        assert_eq!(backend_name("memory"), "memory");
        assert_eq!(backend_name("file \"/var/lib/x\""), "file");
        assert_eq!(
            backend_name("namespace \"orders\" > cache (10000 entries, ttl 30s) > file \"/d\""),
            "file"
        );
        assert_eq!(backend_name("cache (5 entries) > memory"), "memory");
        assert_eq!(backend_name(""), "storage");
        assert_eq!(backend_name("redis(127.0.0.1:6379)"), "redis");
    }

    #[tokio::test]
    async fn built_scopes_are_kept_but_bounded() {
        let store = StoreAdapter::new(store_memory::MemoryStorage::new());
        let cached = |store: &StoreAdapter<_>| store.state.read().unwrap().cached;
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        assert_eq!(cached(&store), 1);
        store.read("k", ReadOptions::default()).await.unwrap();
        assert_eq!(cached(&store), 1, "the default scope is reused");
        for i in 0..CACHED_SCOPES + 10 {
            let table = format!("t{i}");
            store
                .write(Record::new("k", "v"), WriteOptions::default().table(&table))
                .await
                .unwrap();
            assert!(cached(&store) <= CACHED_SCOPES);
        }
        // Scopes rebuilt after the cache started over still address the same keys.
        for i in [0, CACHED_SCOPES + 9] {
            let options = ReadOptions::default().table(format!("t{i}"));
            assert_eq!(store.read("k", options).await.unwrap().len(), 1);
        }
        store.read("k", ReadOptions::default()).await.unwrap();
    }

    #[test]
    fn paging() {
        let keys = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(page(keys(5), 0, 0), keys(5));
        assert_eq!(page(keys(5), 5, 0), Vec::<String>::new());
        assert_eq!(page(keys(5), 9, 2), Vec::<String>::new());
        assert_eq!(page(keys(5), 3, 9), ["3", "4"]);
        assert_eq!(page(keys(5), 1, 2), ["1", "2"]);
    }

    #[test]
    fn expiry_precedence() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let record = Record::new("k", "v").with_expiry(hour * 3);
        let both = WriteOptions::default().ttl(hour).expiry(now + hour * 2);
        assert_eq!(resolve_expiry(&record, &both, now), Some(now + hour));
        let expiry = WriteOptions::default().expiry(now + hour * 2);
        assert_eq!(resolve_expiry(&record, &expiry, now), Some(now + hour * 2));
        let zero_ttl = WriteOptions::default().ttl(Duration::ZERO);
        assert_eq!(
            resolve_expiry(&record, &zero_ttl, now),
            Some(now + hour * 3)
        );
        let plain = Record::new("k", "v").with_expiry(Duration::ZERO);
        assert_eq!(resolve_expiry(&plain, &WriteOptions::default(), now), None);
    }
}
