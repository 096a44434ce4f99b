//! [`Namespaced`]: a layer that confines every key, pattern and listing to one prefix.

use async_trait::async_trait;
use futures::StreamExt;

use crate::key::{shorten, validate_key_within};
use crate::{Error, KeyStream, Layer, Pattern, Record, Result, Storage, MAX_KEY_LEN};

/// The longest namespace name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Stores every key of the wrapped storage under `name/`, so tenants sharing one backend
/// cannot see or touch each other's keys.
///
/// Names are `[A-Za-z0-9._-]+` (at most 255 bytes), so the prefix never contains a glob
/// character; a caller's pattern is appended to the escaped prefix and so can only match
/// keys inside the namespace. Keys come back without the prefix, and a caller's key may be
/// up to [`MAX_KEY_LEN`] minus the prefix length. Namespaces nest
/// (`Namespaced::new(Namespaced::new(s, "a")?, "b")?` stores under `a/b/`).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Error, Namespaced, Record, Storage};
/// # let memory = store_core::__private::doc_store();
/// let orders = Namespaced::new(memory.clone(), "orders").unwrap();
/// orders.put(Record::new("42", "paid")).await.unwrap();
/// assert_eq!(&memory.get("orders/42").await.unwrap().value[..], b"paid");
/// assert_eq!(orders.get("42").await.unwrap().key, "42");
/// assert!(matches!(Namespaced::new(memory, "a/b"), Err(Error::InvalidName(_))));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Namespaced<S> {
    inner: S,
    name: String,
    prefix: String,
}

impl<S: Storage> Namespaced<S> {
    /// Wraps `inner` so that every key lives under `name/`. A name outside
    /// `[A-Za-z0-9._-]+` (or longer than 255 bytes) is [`Error::InvalidName`].
    pub fn new(inner: S, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self {
            prefix: format!("{name}/"),
            inner,
            name,
        })
    }

    /// Wraps `inner` so that every key lives under `a/b/.../` for the names of `path`, in
    /// one layer: the same keys as nesting a `Namespaced` per name, at the cost of one.
    /// Every name must pass [`validate_name`]; an empty path is [`Error::InvalidName`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::{Namespaced, Record, Storage};
    /// # let memory = store_core::__private::doc_store();
    /// let scope = Namespaced::with_path(memory.clone(), ["micro", "users"]).unwrap();
    /// scope.put(Record::new("1", "alice")).await.unwrap();
    /// assert!(memory.get("micro/users/1").await.is_ok());
    /// assert_eq!(scope.name(), "micro/users");
    /// assert!(Namespaced::with_path(memory.clone(), Vec::<String>::new()).is_err());
    /// assert!(Namespaced::with_path(memory, ["micro", "a/b"]).is_err());
    /// # });
    /// ```
    pub fn with_path<N: Into<String>>(inner: S, path: impl IntoIterator<Item = N>) -> Result<Self> {
        let mut names = Vec::new();
        for name in path {
            let name = name.into();
            validate_name(&name)?;
            names.push(name);
        }
        if names.is_empty() {
            return Err(Error::InvalidName(
                "[]: a namespace path needs at least one name".into(),
            ));
        }
        let name = names.join("/");
        Ok(Self {
            prefix: format!("{name}/"),
            inner,
            name,
        })
    }

    /// The namespace name (for a path, its names joined with `/`).
    ///
    /// ```
    /// # struct S; // any Storage works; see the type's example
    /// # fn show(ns: &store_core::Namespaced<std::sync::Arc<dyn store_core::Storage>>) {
    /// println!("{}", ns.name());
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wrapped storage.
    ///
    /// ```
    /// # fn show(ns: &store_core::Namespaced<std::sync::Arc<dyn store_core::Storage>>) {
    /// let _inner: &std::sync::Arc<dyn store_core::Storage> = ns.inner();
    /// # }
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn outer_key(&self, key: &str) -> Result<String> {
        validate_key_within(key, MAX_KEY_LEN - self.prefix.len())?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn strip(&self, mut record: Record) -> Record {
        if record.key.starts_with(&self.prefix) {
            // In place: no new string per record.
            record.key.drain(..self.prefix.len());
        }
        record
    }

    fn strip_error(&self, error: Error) -> Error {
        match error {
            Error::AlreadyExists(record) => Error::AlreadyExists(Box::new(self.strip(*record))),
            other => other,
        }
    }
}

/// Checks a namespace (or database/table) name: `[A-Za-z0-9._-]+`, at most 255 bytes.
///
/// ```
/// assert!(store_core::validate_name("tenant-1.prod_eu").is_ok());
/// assert!(store_core::validate_name("a/b").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName(
            "\"\": names must be non-empty and use only A-Z a-z 0-9 . _ -".into(),
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidName(format!(
            "{} ({} bytes): names are at most {MAX_NAME_LEN} bytes",
            shorten(name),
            name.len()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::InvalidName(format!(
            "{}: character {bad:?} is not allowed; names use only A-Z a-z 0-9 . _ -",
            shorten(name)
        )));
    }
    Ok(())
}

#[async_trait]
impl<S: Storage> Layer for Namespaced<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn create(&self, mut record: Record) -> Result<String> {
        record.key = self.outer_key(&record.key)?;
        self.inner
            .create(record)
            .await
            .map_err(|e| self.strip_error(e))
    }

    async fn get(&self, key: &str) -> Result<Record> {
        let key = self.outer_key(key)?;
        self.inner.get(&key).await.map(|r| self.strip(r))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        let outer = keys
            .iter()
            .map(|k| self.outer_key(k))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&str> = outer.iter().map(String::as_str).collect();
        let records = self.inner.get_many(&refs).await?;
        Ok(records
            .into_iter()
            .map(|r| r.map(|r| self.strip(r)))
            .collect())
    }

    async fn put(&self, mut record: Record) -> Result<Record> {
        record.key = self.outer_key(&record.key)?;
        self.inner.put(record).await.map(|r| self.strip(r))
    }

    async fn put_many(&self, mut records: Vec<Record>) -> Result<()> {
        for record in &mut records {
            record.key = self.outer_key(&record.key)?;
        }
        self.inner.put_many(records).await
    }

    async fn cas_by_version(&self, mut record: Record) -> Result<Record> {
        record.key = self.outer_key(&record.key)?;
        self.inner
            .cas_by_version(record)
            .await
            .map(|r| self.strip(r))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.outer_key(key)?;
        self.inner.delete(&key).await
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        let key = self.outer_key(key)?;
        self.inner.wait_for_version_change(&key, version).await
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        // Compile the caller's pattern on its own first, so errors name what they wrote.
        Pattern::new(pattern)?;
        let scoped = format!("{}{pattern}", Pattern::escape(&self.prefix));
        let prefix = self.prefix.clone();
        let keys = self.inner.list_keys(&scoped).await?;
        Ok(keys
            .filter_map(move |key| {
                let key = match key {
                    Ok(mut key) if key.starts_with(&prefix) => {
                        key.drain(..prefix.len());
                        Some(Ok(key))
                    }
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                };
                std::future::ready(key)
            })
            .boxed())
    }

    fn describe(&self) -> String {
        format!("namespace {:?} > {}", self.name, self.inner.describe())
    }
}
