//! [`CachedStorage`]: the layer itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use store_core::{Error, KeyStream, Record, Result, Storage};

use crate::stats::Counters;
use crate::stripes::Stripes;
use crate::{CacheOptions, CacheStats};

/// What the cache remembers about a key.
#[derive(Clone, Debug)]
enum Cached {
    Present(Arc<Record>),
    /// The inner store answered `NotFound` (only with negative caching on).
    Missing,
}

/// A read-through, write-through cache in front of any [`Storage`].
///
/// - `get` and `get_many` answer hits from a [`moka`] cache in the caller's task, without a
///   round trip to the inner store; misses read through and fill the cache.
/// - Writes go to the inner store first; the cache is then updated from its answer, or the
///   key invalidated when the answer is an error (`Conflict`, `NotFound`, ...) or cannot be
///   installed safely (see the crate docs on consistency).
/// - `list_keys` and `wait_for_version_change` always go to the inner store.
/// - `close` closes the inner store; afterwards every call, hits included, is `Closed`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_cache::{CacheOptions, CachedStorage};
/// use store_core::{Record, Storage};
///
/// let cached = CachedStorage::new(store_memory::MemoryStorage::new(), CacheOptions::default());
/// cached.put(Record::new("k", "v")).await.unwrap();
/// cached.get("k").await.unwrap(); // served from the cache
/// assert_eq!(cached.stats().hits, 1);
/// # });
/// ```
pub struct CachedStorage<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for CachedStorage<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for CachedStorage<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStorage")
            .field("options", &self.shared.options)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Shared<S> {
    inner: S,
    cache: Cache<String, Cached>,
    stripes: Stripes,
    counters: Arc<Counters>,
    options: CacheOptions,
    closed: AtomicBool,
}

/// Per-entry lifetimes: never past the record's expiry, never past `ttl`, and remembered
/// `NotFound`s never past `negative_ttl`.
struct Lifetimes {
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
}

impl Lifetimes {
    fn lifetime(&self, value: &Cached) -> Option<Duration> {
        let own = match value {
            Cached::Present(record) => record.expires_at.map(|at| {
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }),
            Cached::Missing => self.negative_ttl,
        };
        match (own, self.ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Expiry<String, Cached> for Lifetimes {
    fn expire_after_create(&self, _: &String, value: &Cached, _: Instant) -> Option<Duration> {
        self.lifetime(value)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Cached,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.lifetime(value)
    }
}

impl<S: Storage> CachedStorage<S> {
    /// Puts a cache with `options` in front of `inner`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use store_cache::{CacheOptions, CachedStorage};
    /// let options = CacheOptions { max_capacity: 1_000, ttl: Some(Duration::from_secs(5)), ..Default::default() };
    /// let cached = CachedStorage::new(store_memory::MemoryStorage::new(), options);
    /// # let _ = cached;
    /// # });
    /// ```
    pub fn new(inner: S, options: CacheOptions) -> Self {
        let counters = Arc::new(Counters::default());
        let listener_counters = counters.clone();
        let cache = Cache::builder()
            .max_capacity(options.max_capacity)
            .expire_after(Lifetimes {
                ttl: options.ttl,
                negative_ttl: options
                    .negative_ttl
                    .map(|n| options.ttl.map_or(n, |t| n.min(t))),
            })
            .eviction_listener(move |_key, _value, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    listener_counters.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            shared: Arc::new(Shared {
                inner,
                cache,
                stripes: Stripes::new(options.stripes),
                counters,
                options,
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl<S> CachedStorage<S> {
    /// The inner storage.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use store_cache::{CacheOptions, CachedStorage};
    /// let cached = CachedStorage::new(store_memory::MemoryStorage::new(), CacheOptions::default());
    /// let _memory: &store_memory::MemoryStorage = cached.inner();
    /// # });
    /// ```
    pub fn inner(&self) -> &S {
        &self.shared.inner
    }

    /// The cache's counters now.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use store_cache::{CacheOptions, CachedStorage};
    /// let cached = CachedStorage::new(store_memory::MemoryStorage::new(), CacheOptions::default());
    /// assert_eq!(cached.stats().entries, 0);
    /// # });
    /// ```
    pub fn stats(&self) -> CacheStats {
        let counters = &self.shared.counters;
        CacheStats {
            hits: counters.hits.load(Ordering::Relaxed),
            misses: counters.misses.load(Ordering::Relaxed),
            evictions: counters.evictions.load(Ordering::Relaxed),
            entries: self.shared.cache.entry_count(),
        }
    }
}

impl<S: Storage> Shared<S> {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Notes a `Closed` answer from below: the stack is closed, so hits must stop too.
    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::Closed)) && !self.closed.swap(true, Ordering::AcqRel) {
            self.cache.invalidate_all();
        }
        result
    }

    /// A cached answer for `key`, if there is a fresh one.
    async fn lookup(&self, key: &str) -> Option<Result<Record>> {
        match self.cache.get(key).await? {
            // Only records with an expiry pay for a clock read.
            Cached::Present(record)
                if record.expires_at.is_none() || !record.is_expired_at(SystemTime::now()) =>
            {
                Some(Ok((*record).clone()))
            }
            Cached::Present(_) => None, // expired since it was cached; moka will drop it
            Cached::Missing => Some(Err(Error::NotFound)),
        }
    }

    /// Installs what a miss read, unless a writer touched the key's stripe since `generation`.
    async fn fill(&self, key: &str, generation: u64, answer: &Result<Record>) {
        let value = match answer {
            Ok(record) => Cached::Present(Arc::new(record.clone())),
            Err(Error::NotFound) if self.options.negative_ttl.is_some() => Cached::Missing,
            Err(_) => return,
        };
        let locked = self.stripes.lock(key).await;
        if locked.fill_allowed(generation) && !self.closed.load(Ordering::Acquire) {
            self.cache.insert(key.to_owned(), value).await;
        }
    }

    /// Records a finished write of `key`: installs `record` if this writer ran alone on its
    /// stripe, otherwise (or with no record to install) invalidates.
    async fn finish_write(&self, key: &str, record: Option<Record>) {
        let mut locked = self.stripes.lock(key).await;
        let alone = locked.finish_write();
        match record {
            Some(record) if alone && !record.is_expired_at(SystemTime::now()) => {
                self.cache
                    .insert(key.to_owned(), Cached::Present(Arc::new(record)))
                    .await;
            }
            _ => self.cache.invalidate(key).await,
        }
    }
}

impl<S: Storage> CachedStorage<S> {
    /// Runs a write on its own task: the inner call and the cache update then always happen
    /// together, even if the caller drops the future half-way.
    async fn write<T, F, Fut>(&self, keys: Vec<String>, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared<S>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = (Result<T>, Vec<Option<Record>>)> + Send + 'static,
    {
        self.shared.check_open()?;
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            for key in &keys {
                shared.stripes.start_write(key).await;
            }
            let (result, installs) = call(shared.clone()).await;
            let result = shared.observe(result);
            for (i, key) in keys.iter().enumerate() {
                let install = installs.get(i).cloned().flatten();
                shared.finish_write(key, install).await;
            }
            result
        });
        match task.await {
            Ok(result) => result,
            // The inner store panicked inside our task: report it as a backend failure.
            Err(join) => Err(Error::Backend(format!("cache write task failed: {join}"))),
        }
    }
}

#[async_trait]
impl<S: Storage> Storage for CachedStorage<S> {
    async fn create(&self, record: Record) -> Result<String> {
        let keys = vec![record.key.clone()];
        self.write(keys, move |shared| async move {
            let template = Record {
                version: String::new(),
                ..record.clone()
            };
            match shared.inner.create(record).await {
                Ok(version) => {
                    let stored = Record {
                        version: version.clone(),
                        ..template
                    };
                    (Ok(version), vec![Some(stored)])
                }
                Err(error) => (Err(error), vec![None]),
            }
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Record> {
        let shared = &self.shared;
        shared.check_open()?;
        if let Some(answer) = shared.lookup(key).await {
            shared.counters.hit();
            return answer;
        }
        shared.counters.miss(1);
        let generation = shared.stripes.generation(key);
        let answer = shared.observe(shared.inner.get(key).await);
        shared.fill(key, generation, &answer).await;
        answer
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        let shared = &self.shared;
        shared.check_open()?;
        let mut answers: Vec<Option<Record>> = Vec::with_capacity(keys.len());
        let mut missing: Vec<usize> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match shared.lookup(key).await {
                Some(Ok(record)) => answers.push(Some(record)),
                Some(Err(_)) => answers.push(None),
                None => {
                    answers.push(None);
                    missing.push(i);
                }
            }
        }
        let hits = (keys.len() - missing.len()) as u64;
        shared.counters.hits.fetch_add(hits, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(answers);
        }
        shared.counters.miss(missing.len() as u64);
        let miss_keys: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let generations: Vec<u64> = miss_keys
            .iter()
            .map(|k| shared.stripes.generation(k))
            .collect();
        let fetched = shared.observe(shared.inner.get_many(&miss_keys).await)?;
        for ((&i, generation), record) in missing.iter().zip(generations).zip(fetched) {
            let answer = record.clone().ok_or(Error::NotFound);
            shared.fill(keys[i], generation, &answer).await;
            answers[i] = record;
        }
        Ok(answers)
    }

    async fn put(&self, record: Record) -> Result<Record> {
        let keys = vec![record.key.clone()];
        self.write(keys, move |shared| async move {
            match shared.inner.put(record).await {
                Ok(stored) => (Ok(stored.clone()), vec![Some(stored)]),
                Err(error) => (Err(error), vec![None]),
            }
        })
        .await
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        // put_many answers no versions, so its keys are invalidated rather than installed.
        let keys = records.iter().map(|r| r.key.clone()).collect();
        self.write(keys, move |shared| async move {
            (shared.inner.put_many(records).await, Vec::new())
        })
        .await
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        let keys = vec![record.key.clone()];
        self.write(keys, move |shared| async move {
            match shared.inner.cas_by_version(record).await {
                Ok(stored) => (Ok(stored.clone()), vec![Some(stored)]),
                Err(error) => (Err(error), vec![None]),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let owned = key.to_owned();
        self.write(vec![owned.clone()], move |shared| async move {
            (shared.inner.delete(&owned).await, vec![None])
        })
        .await
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.shared.check_open()?;
        let answer = self
            .shared
            .inner
            .wait_for_version_change(key, version)
            .await;
        self.shared.observe(answer)
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        self.shared.check_open()?;
        let answer = self.shared.inner.list_keys(pattern).await;
        self.shared.observe(answer)
    }

    async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        shared.cache.invalidate_all();
        tracing::debug!("cache layer closing its inner store");
        shared.inner.close().await
    }
}
