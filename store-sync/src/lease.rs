//! A leased record: the one mechanism under both [`Lock`](crate::Lock) and
//! [`Election`](crate::Election).
//!
//! - **Claim**: `create` the record with a TTL of one lease. Its version is the holder's
//!   fencing token. The create runs on a task of its own, so a claimant that gives up (drops
//!   its future) while the create is in flight cannot leave a claim nobody holds: the task
//!   releases what it won for nobody.
//! - **Queue**: when the record exists, `wait_for_version_change` on the holder's version:
//!   the store wakes the waiter when the holder renews (try again later), releases or its
//!   lease expires (`NotFound`: try now). No polling.
//! - **Hold**: a renewal task extends the lease with `cas_by_version` on the version it wrote
//!   last, every third of a lease. The holder's own deadline is the start of its last
//!   successful claim or renewal plus the lease minus a safety margin; if no renewal
//!   succeeds before it, or one is refused (`Conflict`, `NotFound`: the record is no longer
//!   ours), the hold is *lost*, which `lost()` reports at once.
//! - **Release**: stop renewing, wait for a renewal in flight, then `cas_by_version` the
//!   record we wrote last into one that is already expired: if somebody else holds the
//!   record now, the CAS fails and their record is untouched. A woken queue sees the record
//!   gone and claims it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use store_core::{Error, Record, Result, Storage};
use tokio::sync::{oneshot, watch, Mutex};

/// How a hold behaves; built by the lock's and the election's options.
#[derive(Clone, Debug)]
pub(crate) struct Terms {
    pub(crate) lease: Duration,
    pub(crate) renew_every: Duration,
    pub(crate) margin: Duration,
}

impl Terms {
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if self.lease.is_zero() {
            return Err(Error::InvalidValue(format!(
                "{what}: the lease must be longer than zero"
            )));
        }
        if self.renew_every.is_zero() || self.renew_every >= self.lease {
            return Err(Error::InvalidValue(format!(
                "{what}: renew_every ({:?}) must be above zero and below the lease ({:?})",
                self.renew_every, self.lease
            )));
        }
        if self.margin >= self.lease {
            return Err(Error::InvalidValue(format!(
                "{what}: the clock margin ({:?}) must be below the lease ({:?})",
                self.margin, self.lease
            )));
        }
        Ok(())
    }
}

/// A value unique to this claim (process, time, counter), so two claims never write the
/// same bytes and a holder can be told apart in the store.
pub(crate) fn claim_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The outcome of one claim attempt.
pub(crate) enum Claim {
    Won(Hold),
    /// Held by somebody else: their record.
    Taken(Record),
}

/// A claim won by the task that made it, on its way to the claimant. If it is dropped before
/// the claimant takes it (the claimant gave up: its receiver was dropped, with or without
/// this inside), it releases the record, so that no lock is left that nobody renews.
struct Won {
    storage: Arc<dyn Storage>,
    record: Option<Record>,
}

impl Won {
    /// The claimant takes the claim: from now on the hold owns the record.
    fn take(mut self) -> String {
        self.record
            .take()
            .map(|record| record.version)
            .unwrap_or_default()
    }
}

impl Drop for Won {
    fn drop(&mut self) {
        let Some(abandoned) = self.record.take() else {
            return;
        };
        let storage = self.storage.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = expire(&*storage, abandoned).await {
                    tracing::debug!(%error, "releasing an abandoned claim failed; its lease will expire");
                }
            });
        }
    }
}

/// Tries once to create `key` with `value`; never waits for a holder.
pub(crate) async fn claim(
    storage: &Arc<dyn Storage>,
    key: &str,
    value: Bytes,
    terms: &Terms,
) -> Result<Claim> {
    let (tx, rx) = oneshot::channel();
    let started = Instant::now();
    let task_storage = storage.clone();
    let record = Record::new(key, value.clone()).with_ttl(terms.lease);
    // The create runs on its own task, so a claimant that gives up mid-call cannot leave a
    // claim behind: what the task wins travels as a `Won`, released unless taken.
    tokio::spawn(async move {
        let outcome = match task_storage.create(record.clone()).await {
            Ok(version) => Ok(Won {
                storage: task_storage,
                record: Some(record.with_version(version)),
            }),
            Err(error) => Err(error),
        };
        let _ = tx.send(outcome);
    });
    match rx.await {
        Ok(Ok(won)) => Ok(Claim::Won(Hold::start(
            storage.clone(),
            key.to_owned(),
            value,
            won.take(),
            started,
            terms.clone(),
        ))),
        Ok(Err(Error::AlreadyExists(holder))) => Ok(Claim::Taken(*holder)),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::Backend(
            "the task claiming the lease stopped without an answer".to_owned(),
        )),
    }
}

/// Claims `key`, waiting (without polling) for each holder to release or lapse.
pub(crate) async fn claim_waiting(
    storage: &Arc<dyn Storage>,
    key: &str,
    value: Bytes,
    terms: &Terms,
) -> Result<Hold> {
    loop {
        match claim(storage, key, value.clone(), terms).await? {
            Claim::Won(hold) => return Ok(hold),
            Claim::Taken(holder) => {
                match storage.wait_for_version_change(key, &holder.version).await {
                    // Renewed (try again, and wait on the new version) or gone (claim now).
                    Ok(()) | Err(Error::NotFound) => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
}

/// Rewrites the record `record.version` names into an already expired one: the release.
/// `Conflict`/`NotFound` mean the record is no longer the one we wrote.
async fn expire(storage: &dyn Storage, record: Record) -> Result<Record> {
    let expired = Record::new(record.key, Bytes::new())
        .with_expires_at(SystemTime::UNIX_EPOCH)
        .with_version(record.version);
    storage.cas_by_version(expired).await
}

/// How the holder stands: held until `until` (its own view of the lease: the start of its
/// last successful claim or renewal, plus the lease, less the clock margin), unless `lost`.
///
/// Judged by time whenever it is read, so a holder whose renewal task has not run (a loaded
/// or paused process) still sees the loss the moment its lease runs out, and once lost it
/// stays lost: a renewal extends `until` only if it lands before `until` has passed
/// (checked under the channel's lock, against which readers compare the time too).
#[derive(Clone, Copy, Debug)]
struct Standing {
    until: Instant,
    lost: bool,
}

impl Standing {
    fn lost_at(&self, now: Instant) -> bool {
        self.lost || now >= self.until
    }
}

/// What the renewal task and the holder share.
struct State {
    /// The version we wrote last.
    version: String,
    /// Set by a release; the renewal task stops when it sees it.
    released: bool,
}

/// A record we hold, kept alive by a renewal task until released or lost.
pub(crate) struct Hold {
    storage: Arc<dyn Storage>,
    key: String,
    token: String,
    state: Arc<Mutex<State>>,
    standing: watch::Receiver<Standing>,
    stop: Option<oneshot::Sender<()>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Hold {
    fn start(
        storage: Arc<dyn Storage>,
        key: String,
        value: Bytes,
        version: String,
        started: Instant,
        terms: Terms,
    ) -> Self {
        let state = Arc::new(Mutex::new(State {
            version: version.clone(),
            released: false,
        }));
        let (standing_tx, standing) = watch::channel(Standing {
            until: started + terms.lease - terms.margin,
            lost: false,
        });
        let (stop, stopped) = oneshot::channel();
        let renewer = tokio::spawn(renew(
            storage.clone(),
            key.clone(),
            value,
            state.clone(),
            started,
            terms,
            standing_tx,
            stopped,
        ));
        Self {
            storage,
            key,
            token: version,
            state,
            standing,
            stop: Some(stop),
            renewer: Some(renewer),
        }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Whether the hold is lost now: refused, or out of time (see [`Standing`]).
    pub(crate) fn is_lost(&self) -> bool {
        // The time is read while the standing is borrowed, so a renewal cannot extend it
        // between the two: what one reader saw lost stays lost for every later one.
        let standing = self.standing.borrow();
        standing.lost_at(Instant::now())
    }

    /// Resolves once the hold is lost (at once if it already is): when a renewal is
    /// refused, or when its time runs out, whether or not the renewal task has run.
    pub(crate) fn lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut standing = self.standing.clone();
        async move {
            loop {
                let until = {
                    let now = standing.borrow_and_update();
                    if now.lost_at(Instant::now()) {
                        return;
                    }
                    now.until
                };
                tokio::select! {
                    changed = standing.changed() => {
                        // The renewal task is gone: it only stops once the hold is over.
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tokio::time::sleep_until(until.into()) => {}
                }
            }
        }
    }

    /// Stops renewing and releases the record if it is still ours. `Conflict` when it was
    /// not (lost, and maybe held by somebody else now, whose record stays untouched).
    pub(crate) async fn release(mut self) -> Result<()> {
        let (stop, renewer) = (self.stop.take(), self.renewer.take());
        release(&*self.storage, &self.key, &self.state, stop, renewer).await
    }
}

/// Stops the renewal task and expires the record if it is still the one we wrote.
///
/// The state lock is what orders the two: a renewal holds it for its whole CAS, so once the
/// release has it no renewal is in flight and the version it reads is the last one written;
/// and `released`, set under it, keeps the renewal task from starting another. Waiting for
/// that task to finish instead would put the release behind every task ready to run (on a
/// busy runtime, all the woken waiters of the lock it is releasing).
async fn release(
    storage: &dyn Storage,
    key: &str,
    state: &Mutex<State>,
    stop: Option<oneshot::Sender<()>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
) -> Result<()> {
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
    // The task ends on its own once it sees `stop` or `released`.
    drop(renewer);
    let mut current = state.lock().await;
    current.released = true;
    let ours = Record::new(key, Bytes::new()).with_version(current.version.clone());
    match expire(storage, ours).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound) => Err(Error::Conflict),
        Err(error) => Err(error),
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let (stop, renewer) = (self.stop.take(), self.renewer.take());
        let Some(renewer) = renewer else {
            return; // released
        };
        // Dropped without release: stop renewing and release in the background if we can;
        // without a runtime (or in one shutting down) the lease simply runs out.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            renewer.abort();
            return;
        };
        let (storage, key, state) = (self.storage.clone(), self.key.clone(), self.state.clone());
        runtime.spawn(async move {
            if let Err(error) = release(&*storage, &key, &state, stop, Some(renewer)).await {
                tracing::debug!(key, %error, "background release of a dropped hold failed");
            }
        });
    }
}

/// The renewal task: extends the lease until stopped, refused, or out of time.
///
/// A renewal in flight when the hold runs out of time is finished, not abandoned (a dropped
/// CAS might still land, leaving a record nobody knows the version of, which nobody could
/// release and everybody would wait a lease for). If it lands late, the hold is lost all the
/// same (its holder may already have been told), so the task releases the record at once.
#[allow(clippy::too_many_arguments)]
async fn renew(
    storage: Arc<dyn Storage>,
    key: String,
    value: Bytes,
    state: Arc<Mutex<State>>,
    started: Instant,
    terms: Terms,
    standing: watch::Sender<Standing>,
    mut stopped: oneshot::Receiver<()>,
) {
    let lose = |why: &str| {
        tracing::warn!(key, "{why}");
        standing.send_modify(|s| s.lost = true);
    };
    let mut next = started + terms.renew_every;
    loop {
        let until = standing.borrow().until;
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep_until(until.into()) => {
                lose("lease lapsed: no renewal succeeded in time");
                return;
            }
            () = tokio::time::sleep_until(next.into()) => {}
        }
        let attempt = Instant::now();
        let mut current = state.lock().await;
        if current.released {
            return;
        }
        let renewal = Record::new(key.clone(), value.clone())
            .with_ttl(terms.lease)
            .with_version(current.version.clone());
        match storage.cas_by_version(renewal).await {
            Ok(stored) => {
                current.version = stored.version;
                standing.send_modify(|s| {
                    if s.lost_at(Instant::now()) {
                        s.lost = true;
                    } else {
                        s.until = attempt + terms.lease - terms.margin;
                    }
                });
                if standing.borrow().lost {
                    // Renewed after the hold ran out: give the record back now.
                    tracing::warn!(key, "lease lapsed while a renewal was in flight; releasing");
                    current.released = true;
                    let ours = Record::new(key.clone(), Bytes::new())
                        .with_version(current.version.clone());
                    if let Err(error) = expire(&*storage, ours).await {
                        tracing::debug!(key, %error, "releasing a late renewal failed; it will expire");
                    }
                    return;
                }
                next = attempt + terms.renew_every;
            }
            Err(Error::Conflict | Error::NotFound) => {
                lose("lease lost: the record is no longer ours");
                return;
            }
            Err(error) if error.is_retryable() => {
                // Try again soon; the hold's time decides when to give up.
                tracing::debug!(key, %error, "renewal failed; retrying");
                next = Instant::now() + terms.renew_every / 4;
            }
            Err(error) => {
                lose(&format!("lease lost: renewal failed: {error}"));
                return;
            }
        }
    }
}
