//! [`CachedStorage`]: the layer itself.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;
use store_core::{ComponentStats, Error, Figure, KeyStream, Record, Result, Stats, Storage};
use tokio::sync::Notify;

use crate::stats::Counters;
use crate::stripes::Stripes;
use crate::{CacheOptions, CacheStats};

/// What the cache remembers about a key.
#[derive(Clone, Debug)]
enum Cached {
    /// Held by value: moka clones what `get` returns, so a hit is one clone of the record
    /// (behind an `Arc` it was that clone plus the `Arc`'s count going up and down, on a
    /// cache line that both cores write).
    Present(Record),
    /// The inner store answered `NotFound` (only with negative caching on).
    Missing,
}

/// A read-through, write-through cache in front of any [`Storage`], linearizable within
/// the process (see the [crate docs](crate) for how and what it costs).
///
/// - `get` and `get_many` answer hits from a [`moka`] cache in the caller's task, without a
///   round trip to the inner store; misses read through and fill the cache.
/// - A write removes its keys from the cache and holds fills off them, calls the inner
///   store, then installs the stored record if no other write of the key overlapped it.
/// - `list_keys` and `wait_for_version_change` always go to the inner store.
/// - `close` waits for writes in flight, closes the inner store; afterwards every call,
///   hits included, is `Closed`.
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
    /// Writes whose task has not finished (their callers may have given up).
    writing: AtomicUsize,
    idle: Notify,
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
        if options.ttl == Some(Duration::ZERO) {
            tracing::warn!("cache ttl is zero: every entry expires at once and every read misses");
        }
        Self {
            shared: Arc::new(Shared {
                inner,
                cache,
                stripes: Stripes::new(options.stripes),
                counters,
                options,
                closed: AtomicBool::new(false),
                writing: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// Waits until every write started through this cache has finished, including writes
    /// whose callers gave up (dropped the future): each one runs to its end on a task of
    /// its own, so that the inner store and the cache never disagree about it. Useful before
    /// comparing the cache with its inner store in a test; `close` waits for them too.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use store_cache::{CacheOptions, CachedStorage};
    /// use store_core::{Record, Storage};
    /// let cached = CachedStorage::new(store_memory::MemoryStorage::new(), CacheOptions::default());
    /// // A caller that gives up at once; its write finishes (or not) in the background.
    /// let _ = tokio::time::timeout(Duration::ZERO, cached.put(Record::new("k", "v"))).await;
    /// cached.settled().await;
    /// assert_eq!(cached.get("k").await.ok(), cached.inner().get("k").await.ok());
    /// # });
    /// ```
    pub async fn settled(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.writing.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
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
            hits: counters.hits(),
            misses: counters.misses(),
            evictions: counters.evictions.load(Ordering::Relaxed),
            entries: self.shared.cache.entry_count(),
            refused_fills: counters.refused_fills.load(Ordering::Relaxed),
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

    /// Notes a closed or stopped store below: the stack is closed, so hits must stop too.
    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            if error.is_closed() && !self.closed.swap(true, Ordering::AcqRel) {
                self.cache.invalidate_all();
            }
        }
        result
    }

    /// A cached answer for `key`, if there is a live one.
    fn lookup(&self, key: &str) -> Option<Result<Record>> {
        match self.cache.get(key)? {
            // Only records with an expiry pay for a clock read.
            Cached::Present(record)
                if record.expires_at.is_none() || !record.is_expired_at(SystemTime::now()) =>
            {
                Some(Ok(record))
            }
            Cached::Present(_) => None, // expired since it was cached; moka will drop it
            Cached::Missing => Some(Err(Error::NotFound)),
        }
    }

    /// Installs what a miss read, unless a write of the key's stripe started or finished
    /// since `generation` was noted, or is in flight.
    fn fill(&self, key: &str, generation: u64, answer: &Result<Record>) {
        let value = match answer {
            Ok(record) => Cached::Present(record.clone()),
            Err(Error::NotFound) if self.options.negative_ttl.is_some() => Cached::Missing,
            Err(_) => return,
        };
        let installed = self.stripes.fill(key, generation, || {
            if !self.closed.load(Ordering::Acquire) {
                self.cache.insert(key.to_owned(), value);
            }
        });
        if !installed {
            self.counters.refused_fills.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A write in progress: its keys are out of the cache and held from fills until it is
/// finished, by [`WriteGuard::finish`] with the stored records or, if the write is torn down
/// (a panic below, a runtime dropping its task), by `Drop`, which removes the keys.
struct WriteGuard<S: Storage> {
    shared: Arc<Shared<S>>,
    keys: Vec<String>,
    done: bool,
}

impl<S: Storage> WriteGuard<S> {
    fn start(shared: Arc<Shared<S>>, mut keys: Vec<String>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        shared.writing.fetch_add(1, Ordering::AcqRel);
        for key in &keys {
            shared
                .stripes
                .start_write(key, || shared.cache.invalidate(key));
        }
        Self {
            shared,
            keys,
            done: false,
        }
    }

    /// Finishes the write; `stored` holds the records to install (the inner store's answer,
    /// for the keys that have one), installed only where the write ran alone.
    fn finish(mut self, stored: Vec<Record>) {
        self.done = true;
        let shared = &self.shared;
        let now = SystemTime::now();
        for key in &self.keys {
            let record = stored.iter().find(|r| &r.key == key);
            shared.stripes.finish_write(key, |alone| match record {
                Some(record)
                    if alone
                        && !record.is_expired_at(now)
                        && !shared.closed.load(Ordering::Acquire) =>
                {
                    shared
                        .cache
                        .insert(key.clone(), Cached::Present(record.clone()));
                }
                _ => shared.cache.invalidate(key),
            });
        }
    }
}

impl<S: Storage> Drop for WriteGuard<S> {
    fn drop(&mut self) {
        if !self.done {
            for key in &self.keys {
                self.shared
                    .stripes
                    .finish_write(key, |_| self.shared.cache.invalidate(key));
            }
        }
        if self.shared.writing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}

impl<S: Storage> CachedStorage<S> {
    /// Runs a write on a task of its own, so that the inner call and the cache update always
    /// happen together, even if the caller drops the future half-way. `call` returns the
    /// answer and the records to install.
    async fn write<T, F, Fut>(&self, keys: Vec<String>, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared<S>>) -> Fut + Send + 'static,
        Fut: Future<Output = (Result<T>, Vec<Record>)> + Send + 'static,
    {
        self.shared.check_open()?;
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let guard = WriteGuard::start(shared.clone(), keys);
            let (result, stored) = call(shared.clone()).await;
            let result = shared.observe(result);
            guard.finish(stored);
            result
        });
        match task.await {
            Ok(result) => result,
            // The inner store panicked inside our task (the guard has removed the keys).
            Err(join) => Err(Error::Backend(format!(
                "the inner store failed during a write through the cache: {join}"
            ))),
        }
    }
}

#[async_trait]
impl<S: Storage> store_core::Layer for CachedStorage<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.shared.inner
    }

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
                    (Ok(version), vec![stored])
                }
                Err(error) => (Err(error), Vec::new()),
            }
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Record> {
        let shared = &self.shared;
        shared.check_open()?;
        // A hit never waits: spend a unit of tokio's cooperative budget, as tokio's own
        // resources do, so that a task reading in a loop still lets other tasks run.
        tokio::task::coop::consume_budget().await;
        if let Some(answer) = shared.lookup(key) {
            shared.counters.hit(1);
            return answer;
        }
        shared.counters.miss(1);
        let generation = shared.stripes.generation(key);
        let answer = shared.observe(shared.inner.get(key).await);
        shared.fill(key, generation, &answer);
        answer
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        let shared = &self.shared;
        shared.check_open()?;
        // As in `get`: hits never wait.
        tokio::task::coop::consume_budget().await;
        // Hits come from different moments; they form one snapshot only if no write of any
        // of the keys started in between or is still in flight at the end, which the
        // stripes tell.
        let generations: Vec<u64> = keys.iter().map(|k| shared.stripes.generation(k)).collect();
        let mut answers: Vec<Option<Record>> = Vec::with_capacity(keys.len());
        let mut missing: Vec<usize> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match shared.lookup(key) {
                Some(Ok(record)) => answers.push(Some(record)),
                Some(Err(_)) => answers.push(None),
                None => {
                    answers.push(None);
                    missing.push(i);
                }
            }
        }
        let unchanged = |shared: &Shared<S>| {
            keys.iter()
                .zip(&generations)
                .all(|(key, g)| shared.stripes.quiet_since(key, *g))
        };
        if missing.is_empty() && unchanged(shared) {
            shared.counters.hit(keys.len() as u64);
            return Ok(answers);
        }
        let miss_keys: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let fetched = shared.observe(shared.inner.get_many(&miss_keys).await)?;
        if unchanged(shared) {
            // Every hit was still current when the inner store answered for the misses.
            shared.counters.hit((keys.len() - missing.len()) as u64);
            shared.counters.miss(missing.len() as u64);
            for (&i, record) in missing.iter().zip(fetched) {
                shared.fill(
                    keys[i],
                    generations[i],
                    &record.clone().ok_or(Error::NotFound),
                );
                answers[i] = record;
            }
            return Ok(answers);
        }
        // A write overlapped: ask the inner store for all of them, which answers from one
        // moment, and fill nothing (the generations are stale).
        shared.counters.miss(keys.len() as u64);
        shared.observe(shared.inner.get_many(keys).await)
    }

    async fn put(&self, record: Record) -> Result<Record> {
        let keys = vec![record.key.clone()];
        self.write(keys, move |shared| async move {
            match shared.inner.put(record).await {
                Ok(stored) => (Ok(stored.clone()), vec![stored]),
                Err(error) => (Err(error), Vec::new()),
            }
        })
        .await
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        // put_many answers no versions, so its keys are left out rather than installed.
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
                Ok(stored) => (Ok(stored.clone()), vec![stored]),
                Err(error) => (Err(error), Vec::new()),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let owned = key.to_owned();
        self.write(vec![owned.clone()], move |shared| async move {
            (shared.inner.delete(&owned).await, Vec::new())
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
        if matches!(answer, Ok(()) | Err(Error::NotFound)) {
            // The key changed below; over a shared store the change may be another
            // process's write, which this cache never saw. Forget the entry, so that the
            // woken waiter reads the change that woke it (or a later one).
            let shared = &self.shared;
            shared.stripes.forget(key, || shared.cache.invalidate(key));
        }
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
        // Writes already under way finish first, so the inner store sees them before it closes.
        self.settled().await;
        tracing::debug!("cache layer closing its inner store");
        shared.inner.close().await
    }

    fn describe(&self) -> String {
        let options = &self.shared.options;
        let ttl = options
            .ttl
            .map(|t| format!(", ttl {}", humantime_like(t)))
            .unwrap_or_default();
        format!(
            "cache ({} entries{ttl}) > {}",
            options.max_capacity,
            self.shared.inner.describe()
        )
    }

    async fn stats(&self) -> Result<Stats> {
        let mut stats = self.shared.inner.stats().await?;
        let mine = self.stats();
        stats.push_front(
            ComponentStats::new("cache", "")
                .with("hits", Figure::Count(mine.hits))
                .with("misses", Figure::Count(mine.misses))
                .with("hit_ratio", Figure::Ratio(mine.hit_ratio()))
                .with("entries", Figure::Count(mine.entries))
                .with("evictions", Figure::Count(mine.evictions))
                .with("refused_fills", Figure::Count(mine.refused_fills)),
        );
        Ok(stats)
    }
}

/// A duration for `describe`, in the largest whole unit.
fn humantime_like(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => format!("{}us", duration.as_micros()),
        ms if ms % 1000 != 0 => format!("{ms}ms"),
        ms => format!("{}s", ms / 1000),
    }
}
