//! [`Lock`]: mutual exclusion with a lease and a fencing token.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use store_core::{validate_key, Result, Storage};

use crate::lease::{self, Claim, Hold, Terms};

/// How a [`Lock`] behaves. Start from `Default` and set what you need:
///
/// ```
/// use std::time::Duration;
/// let options = store_sync::LockOptions { lease: Duration::from_secs(5), ..Default::default() };
/// assert_eq!(options.renew_every, None); // a third of the lease
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOptions {
    /// How long a holder keeps the lock without renewing it: a holder that crashes or is
    /// cut off loses the lock this long after its last renewal. Default 10 s.
    pub lease: Duration,
    /// How often the guard renews the lease; `None` means a third of `lease`.
    pub renew_every: Option<Duration>,
    /// How much earlier than the lease's end the holder considers the lock lost, to allow
    /// for the store's clock running ahead of the holder's; `None` means a tenth of
    /// `lease`. See the crate docs on clocks.
    pub clock_margin: Option<Duration>,
    /// Where the lock's record lives: the key is this prefix followed by the lock's name.
    /// Default `"lock/"`.
    pub key_prefix: String,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            renew_every: None,
            clock_margin: None,
            key_prefix: "lock/".to_owned(),
        }
    }
}

impl LockOptions {
    pub(crate) fn terms(&self) -> Terms {
        Terms {
            lease: self.lease,
            renew_every: self.renew_every.unwrap_or(self.lease / 3),
            margin: self.clock_margin.unwrap_or(self.lease / 10),
        }
    }
}

/// A named lock in a [`Storage`], shared by every process that uses the same store and name.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use store_sync::{Lock, LockOptions};
///
/// let storage: Arc<dyn store_core::Storage> = Arc::new(store_memory::MemoryStorage::new());
/// let lock = Lock::new(storage, "nightly-report", LockOptions::default());
/// let guard = lock.acquire().await?;           // waits for the holder, without polling
/// assert!(lock.try_acquire().await?.is_none()); // held: try_acquire never waits
/// println!("fencing token {}", guard.token());
/// guard.release().await?;
/// assert!(lock.try_acquire().await?.is_some());
/// # Ok::<(), store_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Lock {
    storage: Arc<dyn Storage>,
    key: String,
    options: LockOptions,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("options", &self.options)
            .finish()
    }
}

impl Lock {
    /// A lock called `name` in `storage`. Nothing is written until it is acquired.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "jobs/42", Default::default());
    /// assert_eq!(lock.key(), "lock/jobs/42");
    /// # });
    /// ```
    pub fn new(storage: Arc<dyn Storage>, name: &str, options: LockOptions) -> Self {
        Self {
            key: format!("{}{name}", options.key_prefix),
            storage,
            options,
        }
    }

    /// The key of the lock's record.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn check(&self) -> Result<Terms> {
        validate_key(&self.key)?;
        let terms = self.options.terms();
        terms.check(&format!("lock {:?}", self.key))?;
        Ok(terms)
    }

    /// Waits until the lock is ours: woken by the store when the holder releases or its
    /// lease expires, never polling. Cancel by dropping the future; nothing is left behind
    /// (a claim won at that moment is released).
    ///
    /// # Errors
    ///
    /// The store's errors (`Unavailable`, `Closed`, ...), and `InvalidKey`/`InvalidValue` for
    /// a bad name or options.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "l", Default::default());
    /// let guard = lock.acquire().await.unwrap();
    /// guard.release().await.unwrap();
    /// # });
    /// ```
    pub async fn acquire(&self) -> Result<LockGuard> {
        let terms = self.check()?;
        let value = Bytes::from(lease::claim_id());
        let hold = lease::claim_waiting(&self.storage, &self.key, value, &terms).await?;
        tracing::debug!(key = self.key, token = hold.token(), "lock acquired");
        Ok(LockGuard { hold })
    }

    /// Takes the lock if it is free; `None` if somebody holds it. Never waits for a holder.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "l", Default::default());
    /// let first = lock.try_acquire().await.unwrap();
    /// assert!(first.is_some());
    /// assert!(lock.try_acquire().await.unwrap().is_none());
    /// # });
    /// ```
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        let terms = self.check()?;
        let value = Bytes::from(lease::claim_id());
        match lease::claim(&self.storage, &self.key, value, &terms).await? {
            Claim::Won(hold) => Ok(Some(LockGuard { hold })),
            Claim::Taken(_) => Ok(None),
        }
    }
}

/// Proof of holding a [`Lock`]; renews the lease in the background until released.
///
/// Dropping the guard without [`release`](LockGuard::release) stops renewing and releases
/// in the background (or, outside a tokio runtime, lets the lease run out).
pub struct LockGuard {
    hold: Hold,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.hold.key())
            .field("token", &self.hold.token())
            .field("lost", &self.hold.is_lost())
            .finish()
    }
}

impl LockGuard {
    /// The fencing token of this acquisition: the version of the lock record it created.
    /// It is different for every acquisition ever made of any lock in the store (versions
    /// are never reused), so a resource that remembers the token of the holder that last
    /// wrote it can tell a stale holder from the current one (see the crate docs).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "l", Default::default());
    /// let a = lock.acquire().await.unwrap();
    /// let token_a = a.token().to_owned();
    /// a.release().await.unwrap();
    /// let b = lock.acquire().await.unwrap();
    /// assert_ne!(b.token(), token_a);
    /// # });
    /// ```
    pub fn token(&self) -> &str {
        self.hold.token()
    }

    /// Resolves the moment the lock is lost: a renewal was refused (the record is no longer
    /// ours) or none succeeded before the lease (less the clock margin) ran out. Resolves
    /// at once if it is already lost. The guard can be used meanwhile (the future does not
    /// borrow it), for example in a `tokio::select!` against the work the lock protects.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "l", Default::default());
    /// let guard = lock.acquire().await.unwrap();
    /// tokio::select! {
    ///     () = guard.lost() => println!("lost the lock: stop and do not commit"),
    ///     () = async { /* the protected work */ } => {}
    /// }
    /// guard.release().await.unwrap();
    /// # });
    /// ```
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.hold.lost()
    }

    /// Whether the lock has been lost (see [`lost`](LockGuard::lost)), judged by the time
    /// when it is called: true as soon as the holder's lease (less the clock margin) has run
    /// out, even if the renewal task has not had a turn to notice (a loaded or paused
    /// process), and true for good from then on.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let lock = store_sync::Lock::new(storage, "l", Default::default());
    /// let guard = lock.acquire().await.unwrap();
    /// if !guard.is_lost() {
    ///     // Last check before acting; fencing covers what can happen after it.
    /// }
    /// guard.release().await.unwrap();
    /// # });
    /// ```
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Stops renewing and releases the lock, if it is still ours: a holder whose lease
    /// lapsed never removes the next holder's lock.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](store_core::Error::Conflict) if the lock was no longer ours (lost;
    /// another holder's record is untouched), or the store's error.
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}
