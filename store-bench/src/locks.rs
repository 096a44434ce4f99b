//! The lock workloads, `lock` and `handover`: `store_sync::Lock` on the target's store
//! against the raw record operations of the same store doing the same job.
//!
//! A [`LockSubject`] takes and gives back a named lock; the workloads are generic over it, so
//! the target and the baseline run the same loop:
//!
//! - [`SyncLocks`] (the target): `store_sync::Lock` with default options (10 s lease):
//!   `acquire` claims the lock record with a TTL on a task of its own and starts the guard's
//!   renewal task; `release` stops it and rewrites the record as expired with a CAS on the
//!   version it holds.
//! - [`RawLocks`] (the baseline `raw-records`): the least a lock on the versioned contract
//!   costs on the same store, without renewal, lost-lease reporting or a guarded release:
//!   `create` the record (same TTL), and while it exists `wait_for_version_change` on the
//!   holder's version; release is `delete`.
//!
//! Workloads:
//!
//! - `lock`: uncontended acquire + release. Each task has a lock of its own, so nobody waits;
//!   an operation is one acquire followed by one release, and its latency is both.
//! - `handover`: `tasks` waiters queue behind a holder on one lock; once they all wait, the
//!   holder releases. An operation is one handover; its latency runs from the holder's call
//!   to release to the moment the next holder's acquire returns. The one who released does
//!   not compete again until somebody else holds the lock, so every measured acquisition is
//!   a real handover to a waiter. Nothing polls: the waiters are woken by the store. A run
//!   measures at least `MIN_HANDOVERS` (5) handovers, even if that takes longer than
//!   `--duration`.
//!
//! "All waiting" is observed by [`Watched`], a layer that counts the
//! `wait_for_version_change` calls in progress (a call counts once its first poll has sent
//! the request, as in the `wait` workload); the holder waits for the count, untimed.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use store_core::{Error, Record, Result, Storage};
use store_sync::{Lock, LockGuard, LockOptions};
use tokio::sync::watch;

use crate::catalog::Workload;
use crate::harness::{run_tasks, Measurement, Recorder, TaskStats};
use crate::BoxError;

/// The lease of the target's locks and the TTL of the baseline's records.
const LEASE: Duration = Duration::from_secs(10);
/// How long a holder waits for the others to queue before the run is declared stuck.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handovers a `handover` run measures at least, however short its duration (a `--quick`
/// run's 40 ms hold less than one on PostgreSQL with many waiters).
const MIN_HANDOVERS: u64 = 5;

/// Takes and gives back named locks (see the module docs).
pub trait LockSubject: Send + Sync + 'static {
    /// A lock, made once per task.
    type Lock: Send + Sync + 'static;
    /// Proof of holding it.
    type Held: Send + 'static;

    /// The lock called `name`.
    fn lock(&self, name: &str) -> Self::Lock;

    /// Waits until `lock` is ours.
    fn acquire(lock: &Self::Lock) -> impl Future<Output = Result<Self::Held>> + Send;

    /// Gives `lock` back.
    fn release(lock: &Self::Lock, held: Self::Held) -> impl Future<Output = Result<()>> + Send;
}

/// The target: `store_sync::Lock` on a store.
pub struct SyncLocks {
    storage: Arc<dyn Storage>,
}

impl SyncLocks {
    /// Locks in `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }
}

impl LockSubject for SyncLocks {
    type Lock = Lock;
    type Held = LockGuard;

    fn lock(&self, name: &str) -> Lock {
        let options = LockOptions {
            lease: LEASE,
            ..LockOptions::default()
        };
        Lock::new(Arc::clone(&self.storage), name, options)
    }

    async fn acquire(lock: &Lock) -> Result<LockGuard> {
        lock.acquire().await
    }

    async fn release(_: &Lock, held: LockGuard) -> Result<()> {
        held.release().await
    }
}

/// The baseline: a record created while free, waited on while held, deleted on release.
pub struct RawLocks {
    storage: Arc<dyn Storage>,
}

impl RawLocks {
    /// Raw locks in `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }
}

/// A [`RawLocks`] lock: its store and key.
pub struct RawLock {
    storage: Arc<dyn Storage>,
    key: String,
}

impl LockSubject for RawLocks {
    type Lock = RawLock;
    type Held = ();

    fn lock(&self, name: &str) -> RawLock {
        RawLock {
            storage: Arc::clone(&self.storage),
            key: format!("raw/{name}"),
        }
    }

    async fn acquire(lock: &RawLock) -> Result<()> {
        loop {
            let record = Record::new(lock.key.as_str(), "held").with_ttl(LEASE);
            match lock.storage.create(record).await {
                Ok(_) => return Ok(()),
                Err(Error::AlreadyExists(holder)) => {
                    match lock
                        .storage
                        .wait_for_version_change(&lock.key, &holder.version)
                        .await
                    {
                        Ok(()) | Err(Error::NotFound) => {}
                        Err(error) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn release(lock: &RawLock, (): ()) -> Result<()> {
        lock.storage.delete(&lock.key).await
    }
}

/// A layer that counts the `wait_for_version_change` calls in progress.
pub struct Watched {
    inner: Arc<dyn Storage>,
    waiting: watch::Sender<usize>,
}

impl Watched {
    /// Counts the waits on `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            waiting: watch::Sender::new(0),
        }
    }

    /// The number of waits in progress, as it changes.
    pub fn waiting(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }
}

/// One wait in progress; uncounted when dropped (finished or cancelled).
struct Waiting<'a>(&'a watch::Sender<usize>);

impl<'a> Waiting<'a> {
    fn start(waiting: &'a watch::Sender<usize>) -> Self {
        waiting.send_modify(|n| *n += 1);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl store_core::Layer for Watched {
    type Inner = dyn Storage;

    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }

    fn wait_for_version_change<'s: 'a, 'k: 'a, 'v: 'a, 'a>(
        &'s self,
        key: &'k str,
        version: &'v str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut wait = pin!(self.inner.wait_for_version_change(key, version));
            // The first poll sends the request; only a wait that is still pending counts.
            if let Poll::Ready(outcome) = futures::poll!(wait.as_mut()) {
                return outcome;
            }
            let _counted = Waiting::start(&self.waiting);
            wait.await
        })
    }
}

/// A lock subject ready to be measured, with its store's count of waits.
pub struct LockContender<L> {
    subject: Arc<L>,
    waiting: watch::Receiver<usize>,
    storage: Arc<Watched>,
}

impl<L: LockSubject> LockContender<L> {
    /// `make` builds the subject over a [`Watched`] layer on `storage`.
    pub fn new(storage: Arc<dyn Storage>, make: impl FnOnce(Arc<dyn Storage>) -> L) -> Self {
        let watched = Arc::new(Watched::new(storage));
        Self {
            subject: Arc::new(make(Arc::clone(&watched) as Arc<dyn Storage>)),
            waiting: watched.waiting(),
            storage: watched,
        }
    }

    /// One run of `workload` (`lock` or `handover`) with `tasks` tasks for `duration`.
    pub fn measure(
        &self,
        workload: Workload,
        tasks: usize,
        duration: Duration,
    ) -> BoxFuture<'static, Result<Measurement, BoxError>> {
        let subject = Arc::clone(&self.subject);
        let waiting = self.waiting.clone();
        Box::pin(async move {
            match workload {
                Workload::Lock => uncontended(subject, tasks, duration).await,
                Workload::Handover => handovers(subject, waiting, tasks, duration).await,
                other => Err(format!("{other} is not a lock workload").into()),
            }
        })
    }

    /// Closes the store (the target's stack; the baseline's is the same one).
    pub fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.storage.close().await })
    }
}

/// lock: each task acquires and releases a lock of its own.
async fn uncontended<L: LockSubject>(
    subject: Arc<L>,
    tasks: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    run_tasks(tasks, duration, move |index, mut recorder: Recorder| {
        let lock = subject.lock(&format!("bench/lock/{index}"));
        async move {
            loop {
                let start = Instant::now();
                let held = L::acquire(&lock).await?;
                L::release(&lock, held).await?;
                let end = Instant::now();
                if recorder.lap(start, end, 1).await {
                    return Ok(recorder.finish());
                }
            }
        }
    })
    .await
}

/// What the contenders of a `handover` run share.
struct Handover {
    /// When the holder called release; taken by the next holder.
    released_at: Mutex<Option<Instant>>,
    /// Acquisitions so far: one who released waits for it to grow before competing again.
    acquisitions: watch::Sender<u64>,
    /// Set by the first holder that finds the run over (the tasks' deadlines differ by the
    /// moments they started), so that every later holder stops too instead of waiting for
    /// contenders that have left.
    over: AtomicBool,
    /// Handovers measured so far, by all contenders.
    measured: AtomicU64,
}

/// handover: `waiters + 1` contenders on one lock, each releasing only once all the others
/// wait.
async fn handovers<L: LockSubject>(
    subject: Arc<L>,
    waiting: watch::Receiver<usize>,
    waiters: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    let shared = Arc::new(Handover {
        released_at: Mutex::new(None),
        acquisitions: watch::Sender::new(0),
        over: AtomicBool::new(false),
        measured: AtomicU64::new(0),
    });
    let contenders = waiters + 1;
    run_tasks(contenders, duration, move |_, recorder: Recorder| {
        let lock = subject.lock("bench/handover");
        let (shared, waiting) = (Arc::clone(&shared), waiting.clone());
        contend::<L>(lock, shared, waiting, waiters, recorder)
    })
    .await
}

async fn contend<L: LockSubject>(
    lock: L::Lock,
    shared: Arc<Handover>,
    mut waiting: watch::Receiver<usize>,
    others: usize,
    mut recorder: Recorder,
) -> Result<TaskStats> {
    let mut acquisitions = shared.acquisitions.subscribe();
    loop {
        let held = L::acquire(&lock).await?;
        let acquired = Instant::now();
        let released_at = shared
            .released_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        shared.acquisitions.send_modify(|n| *n += 1);
        let enough = shared.measured.load(Ordering::Acquire) >= MIN_HANDOVERS;
        if (enough && recorder.expired(acquired)) || shared.over.load(Ordering::Acquire) {
            // The run is over: pass the lock on, unmeasured, so the others can stop too.
            shared.over.store(true, Ordering::Release);
            L::release(&lock, held).await?;
            return Ok(recorder.finish());
        }
        if let Some(released_at) = released_at {
            recorder.record(released_at, acquired);
            shared.measured.fetch_add(1, Ordering::AcqRel);
        }
        // Release only once every other contender waits for the lock.
        let queued = waiting.wait_for(|n| *n >= others);
        match tokio::time::timeout(QUEUE_TIMEOUT, queued).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => {
                return Err(Error::Backend(format!(
                    "handover: {others} waiters did not queue within {QUEUE_TIMEOUT:?}"
                )))
            }
        }
        let seen = *acquisitions.borrow_and_update();
        *shared
            .released_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        L::release(&lock, held).await?;
        // Compete again only once the lock has gone to somebody else.
        acquisitions
            .wait_for(|n| *n > seen)
            .await
            .map_err(|_| Error::Closed)?;
    }
}
