//! [`StoreAdapter`]: the go-micro [`Store`] over any versioned [`Storage`].

use std::fmt;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::TryStreamExt;
use store_core::{validate_key_within, validate_name, Error, Pattern, Storage, MAX_KEY_LEN};

use crate::{
    envelope, DeleteOptions, ListOptions, Options, Order, ReadOptions, Record, Result, Store,
    WriteOptions,
};

/// Most keys fetched by one `get_many` while reading with a prefix or suffix.
const READ_BATCH: usize = 512;

/// Implements [`Store`] over any [`Storage`] (a backend, a layer, or an `Arc<dyn Storage>`).
///
/// A record with key `k` in database `d` and table `t` is stored under the storage key
/// `d/t/k`, its value wrapped in the metadata [`envelope`] when it has metadata. So the
/// facade and the versioned API can share a store: `storage.get("micro/micro/k")` sees what
/// `store.write(Record::new("k", ..))` wrote, and a value `storage.put` wrote under
/// `micro/micro/k` reads back through the facade with empty metadata.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use serde_json::json;
/// use store_compat::{ReadOptions, Record, Store, StoreAdapter, WriteOptions};
/// use store_core::Storage;
///
/// let memory = store_memory::MemoryStorage::new();
/// let store = StoreAdapter::new(memory.clone());
/// let record = Record::new("user/1", "alice").with_metadata("visits", json!(3));
/// store.write(record, WriteOptions::default().table("users")).await?;
///
/// let read = store.read("user/1", ReadOptions::default().table("users")).await?;
/// assert_eq!(read[0].metadata["visits"], json!(3));
/// assert!(memory.get("micro/users/user/1").await.is_ok()); // where it lives below
/// # Ok::<(), store_compat::Error>(())
/// # }).unwrap();
/// ```
pub struct StoreAdapter<S> {
    storage: S,
    defaults: RwLock<Options>,
    name: String,
}

impl<S: Storage> StoreAdapter<S> {
    /// Wraps `storage` with the default database and table (`micro`/`micro`). The name
    /// ([`Store::name`]) is the storage's type name without module paths, for example
    /// `MemoryStorage` or `CachedStorage<FileStorage>`; see [`with_name`](Self::with_name).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new());
    /// assert_eq!(store.name(), "MemoryStorage");
    /// assert_eq!(store.to_string(), "MemoryStorage");
    /// # });
    /// ```
    pub fn new(storage: S) -> Self {
        Self {
            storage,
            defaults: RwLock::new(Options::default()),
            name: short_type_name(std::any::type_name::<S>()),
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
        validate_options(&options)?;
        let adapter = Self::new(storage);
        *adapter.defaults.write().unwrap_or_else(|e| e.into_inner()) = options;
        Ok(adapter)
    }

    /// Sets the name that [`Store::name`] and `Display` report (go-micro's `String()`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::{Store, StoreAdapter};
    /// let store = StoreAdapter::new(store_memory::MemoryStorage::new()).with_name("memory");
    /// assert_eq!(store.name(), "memory");
    /// # });
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The wrapped storage, for versioned calls next to the facade.
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

    /// Unwraps the storage.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_compat::StoreAdapter;
    /// let memory: store_memory::MemoryStorage =
    ///     StoreAdapter::new(store_memory::MemoryStorage::new()).into_inner();
    /// # let _ = memory;
    /// # });
    /// ```
    pub fn into_inner(self) -> S {
        self.storage
    }

    /// The scope a call addresses: its own database/table where given, else the defaults.
    fn scope(&self, database: &str, table: &str) -> Result<Scope> {
        let (database, table) = {
            let defaults = self.defaults.read().unwrap_or_else(|e| e.into_inner());
            let pick = |given: &str, default: &String| {
                if given.is_empty() {
                    default.clone()
                } else {
                    given.to_owned()
                }
            };
            (
                pick(database, &defaults.database),
                pick(table, &defaults.table),
            )
        };
        check_name("database", &database)?;
        check_name("table", &table)?;
        Ok(Scope {
            prefix: format!("{database}/{table}/"),
        })
    }

    /// The keys of `scope` that start with `prefix` and end with `suffix`, ordered, offset,
    /// limited (0: no limit), without the scope prefix.
    async fn matching_keys(
        &self,
        scope: &Scope,
        prefix: &str,
        suffix: &str,
        order: Order,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>> {
        // The escaped scope and prefix form the pattern's literal prefix, so the backend only
        // scans keys under them. Without a prefix the backend can match the suffix too; with
        // both, the suffix is checked here, because a key may be shorter than prefix and
        // suffix together (with prefix and suffix "foo", "foo" itself matches, as in Go).
        let mut pattern = Pattern::escape(&scope.prefix);
        pattern.push_str(&Pattern::escape(prefix));
        pattern.push('*');
        if prefix.is_empty() {
            pattern.push_str(&Pattern::escape(suffix));
        }
        // Ascending with a limit: stop reading once the page is complete.
        let enough = match order {
            Order::Ascending if limit > 0 => offset.saturating_add(limit),
            _ => usize::MAX,
        };
        let mut stream = self.storage.list_keys(&pattern).await?;
        let mut keys = Vec::new();
        while keys.len() < enough {
            let Some(key) = stream.try_next().await? else {
                break;
            };
            let Some(key) = key.strip_prefix(&scope.prefix) else {
                continue;
            };
            if key.starts_with(prefix) && key.ends_with(suffix) {
                keys.push(key.to_owned());
            }
        }
        drop(stream);
        if order == Order::Descending {
            keys.reverse();
        }
        Ok(page(keys, offset, limit))
    }
}

impl<S> fmt::Debug for StoreAdapter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreAdapter")
            .field("name", &self.name)
            .field(
                "options",
                &*self.defaults.read().unwrap_or_else(|e| e.into_inner()),
            )
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
        validate_options(&options)?;
        *self.defaults.write().unwrap_or_else(|e| e.into_inner()) = options;
        Ok(())
    }

    async fn connect(&self) -> Result<()> {
        // A read of a key the facade never writes (keys are non-empty) proves the stack
        // answers; NotFound is the expected answer.
        let scope = self.scope("", "")?;
        match self.storage.get(&scope.prefix).await {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn options(&self) -> Options {
        self.defaults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn read(&self, key: &str, opts: ReadOptions) -> Result<Vec<Record>> {
        let scope = self.scope(&opts.database, &opts.table)?;
        if !opts.prefix && !opts.suffix {
            let stored = self.storage.get(&scope.key(key)?).await?;
            return Ok(vec![to_facade(key.to_owned(), stored)]);
        }
        let prefix = if opts.prefix { key } else { "" };
        let suffix = if opts.suffix { key } else { "" };
        let keys = self
            .matching_keys(&scope, prefix, suffix, opts.order, opts.offset, opts.limit)
            .await?;
        let mut records = Vec::with_capacity(keys.len());
        for batch in keys.chunks(READ_BATCH) {
            let full: Vec<String> = batch.iter().map(|k| scope.join(k)).collect();
            let refs: Vec<&str> = full.iter().map(String::as_str).collect();
            let stored = self.storage.get_many(&refs).await?;
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
        let key = scope.key(&record.key)?;
        let now = SystemTime::now();
        let expires_at = resolve_expiry(&record, &opts, now);
        if expires_at.is_some_and(|at| at <= now) {
            // Born expired: the key reads as missing from now on.
            return match self.storage.delete(&key).await {
                Ok(()) | Err(Error::NotFound) => Ok(()),
                Err(error) => Err(error),
            };
        }
        let value = envelope::encode(&record.metadata, record.value)?;
        let mut stored = store_core::Record::new(key, value);
        stored.expires_at = expires_at;
        self.storage.put(stored).await?;
        Ok(())
    }

    async fn delete(&self, key: &str, opts: DeleteOptions) -> Result<()> {
        let scope = self.scope(&opts.database, &opts.table)?;
        match self.storage.delete(&scope.key(key)?).await {
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
}

/// A database and table: the storage-key prefix `database/table/`.
struct Scope {
    prefix: String,
}

impl Scope {
    /// The storage key for a caller's key, checked: non-empty, and short enough that the
    /// storage key fits [`MAX_KEY_LEN`].
    fn key(&self, key: &str) -> Result<String> {
        validate_key_within(key, MAX_KEY_LEN - self.prefix.len())?;
        Ok(self.join(key))
    }

    fn join(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
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

fn validate_options(options: &Options) -> Result<()> {
    check_name("database", &options.database)?;
    check_name("table", &options.table)
}

/// Validates a database or table name, saying which one is wrong.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    validate_name(name).map_err(|error| match error {
        Error::InvalidName(detail) => Error::InvalidName(format!("for {what} {detail}")),
        other => other,
    })
}

/// `alloc::sync::Arc<dyn store_core::storage::Storage>` becomes `Arc<dyn Storage>`.
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            short_type_name("store_memory::MemoryStorage"),
            "MemoryStorage"
        );
        assert_eq!(
            short_type_name("alloc::sync::Arc<dyn store_core::storage::Storage>"),
            "Arc<dyn Storage>"
        );
        assert_eq!(
            short_type_name("store_cache::layer::CachedStorage<store_file::FileStorage>"),
            "CachedStorage<FileStorage>"
        );
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
