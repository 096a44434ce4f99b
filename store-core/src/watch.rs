//! Waiting for a key to change on a backend that learns of changes by notification: the one
//! implementation of `wait_for_version_change` for the network backends.
//!
//! A local store's actor sees every write, so its waiters live in the actor (see the
//! runtime). A shared backend (Redis, PostgreSQL) learns of other processes' writes from a
//! subscription, which may lag, drop messages while reconnecting, or say nothing about a
//! record that merely expired. So a waiter here never trusts a message: a message, a
//! reconnect or the record's expiry time only makes it *read the key again*, and the read
//! decides. The order is what makes wake-ups impossible to lose:
//!
//! 1. register interest in the key ([`Watchers::watch`]);
//! 2. read the key's version from the server;
//! 3. if it differs (or the key is gone), answer; otherwise wait for a notification that
//!    arrived *after step 1*, or for the record's expiry, and go back to step 2.
//!
//! A change made between steps 1 and 2 is seen by the read; a change after step 2 sends a
//! notification that step 1 already listens for. The backend calls [`Watchers::notify`]
//! for each change message and [`Watchers::notify_all`] after its subscription reconnects
//! (messages may have been lost meanwhile).
//!
//! A cancelled wait (a dropped future) unregisters itself, so any number of cancelled waits
//! leaves nothing behind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::{Error, Result};

/// Longest pause between re-reads when the record's expiry has passed on this machine's clock
/// but the server still shows it live (the clocks differ); the server's own reclaim
/// notifies sooner.
const SKEW_RECHECK_MAX: Duration = Duration::from_secs(1);

/// Interest in keys, shared by every waiter of one backend handle.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let watchers = store_core::watch::Watchers::default();
/// let mut watch = watchers.watch("k");
/// watchers.notify("k");
/// watch.changed().await; // resolves: "k" was notified after the watch began
/// assert_eq!(watchers.len(), 1);
/// drop(watch);
/// assert_eq!(watchers.len(), 0);
/// # });
/// ```
#[derive(Default)]
pub struct Watchers {
    keys: Mutex<HashMap<String, Arc<KeyWatch>>>,
    /// Bumped by `notify_all`; every watch compares it too.
    all: Arc<KeyWatch>,
}

impl std::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchers")
            .field("keys", &self.len())
            .finish()
    }
}

#[derive(Default)]
struct KeyWatch {
    /// Notifications so far.
    generation: AtomicU64,
    notify: Notify,
    /// Watches of this key alive now.
    watches: AtomicU64,
}

impl KeyWatch {
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

impl Watchers {
    /// Registers interest in `key`: the returned watch's [`Watch::changed`] resolves after
    /// the next [`notify`](Watchers::notify) of `key` or [`notify_all`](Watchers::notify_all).
    pub fn watch(self: &Watchers, key: &str) -> Watch<'_> {
        let entry = {
            let mut keys = self.keys();
            let entry = keys.entry(key.to_owned()).or_default().clone();
            entry.watches.fetch_add(1, Ordering::AcqRel);
            entry
        };
        Watch {
            owner: self,
            key: key.to_owned(),
            seen: entry.generation.load(Ordering::Acquire),
            seen_all: self.all.generation.load(Ordering::Acquire),
            entry,
        }
    }

    /// Wakes every watch of `key` (a change message arrived).
    pub fn notify(&self, key: &str) {
        let entry = self.keys().get(key).cloned();
        if let Some(entry) = entry {
            entry.bump();
        }
    }

    /// Wakes every watch of every key (after a reconnect, when messages may have been lost).
    pub fn notify_all(&self) {
        self.all.bump();
    }

    /// Keys watched now.
    pub fn len(&self) -> usize {
        self.keys().len()
    }

    /// Whether no key is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The watched keys. The map is changed only by single inserts and removes, which a
    /// panic cannot leave half done, so a poisoned lock's map is still right.
    fn keys(&self) -> MutexGuard<'_, HashMap<String, Arc<KeyWatch>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, key: &str, entry: &Arc<KeyWatch>) {
        let mut keys = self.keys();
        if entry.watches.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last watch of the key: forget it (unless a new one raced in).
            if keys.get(key).is_some_and(|current| {
                Arc::ptr_eq(current, entry) && entry.watches.load(Ordering::Acquire) == 0
            }) {
                keys.remove(key);
            }
        }
    }
}

/// One waiter's interest in a key; dropping it unregisters.
pub struct Watch<'a> {
    owner: &'a Watchers,
    key: String,
    entry: Arc<KeyWatch>,
    seen: u64,
    seen_all: u64,
}

impl Watch<'_> {
    /// Resolves once the key (or every key) has been notified since the watch began or since
    /// the last time this returned.
    pub async fn changed(&mut self) {
        loop {
            let mine = self.entry.notify.notified();
            let all = self.owner.all.notify.notified();
            tokio::pin!(mine, all);
            // Register before checking, so a notification between the check and the await
            // is not missed.
            mine.as_mut().enable();
            all.as_mut().enable();
            let generation = self.entry.generation.load(Ordering::Acquire);
            let generation_all = self.owner.all.generation.load(Ordering::Acquire);
            if generation != self.seen || generation_all != self.seen_all {
                self.seen = generation;
                self.seen_all = generation_all;
                return;
            }
            tokio::select! {
                () = mine => {}
                () = all => {}
            }
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.owner.release(&self.key, &self.entry);
    }
}

/// What a backend reads to decide a wait: the key's live version and expiry, or `None` when
/// the key is missing or expired (by the server's clock).
pub type Current = Option<(String, Option<SystemTime>)>;

/// `wait_for_version_change` for a backend that learns of changes through `watchers`:
/// registers, reads with `read`, and re-reads after every notification, reconnect or expiry
/// until the version is no longer `version` (`Ok`) or the key is gone (`NotFound`). Errors
/// from `read` are returned.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use store_core::watch::{wait_for_version_change, Watchers};
///
/// // A pretend server: one key whose version a "writer" changes and then announces.
/// let server = Arc::new(Mutex::new(Some(("1".to_owned(), None))));
/// let watchers = Arc::new(Watchers::default());
/// let writer = tokio::spawn({
///     let (server, watchers) = (server.clone(), watchers.clone());
///     async move {
///         tokio::task::yield_now().await;
///         *server.lock().unwrap() = Some(("2".to_owned(), None));
///         watchers.notify("k");
///     }
/// });
/// let read = || {
///     let server = server.clone();
///     async move { Ok(server.lock().unwrap().clone()) }
/// };
/// wait_for_version_change(&watchers, "k", "1", read).await.unwrap();
/// writer.await.unwrap();
/// # });
/// ```
pub async fn wait_for_version_change<F, Fut>(
    watchers: &Watchers,
    key: &str,
    version: &str,
    mut read: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Current>>,
{
    let mut watch = watchers.watch(key);
    let mut skew_pause = Duration::from_millis(10);
    loop {
        let (live, expires_at) = match read().await? {
            None => return Err(Error::NotFound),
            Some((live, _)) if live != version => return Ok(()),
            Some(current) => current,
        };
        match expires_at {
            None => watch.changed().await,
            Some(at) => {
                let wait = match at.duration_since(SystemTime::now()) {
                    Ok(left) => left,
                    Err(_) => {
                        // Expired here, live on the server: our clocks differ. Read again
                        // soon, less and less often; the server's reclaim notifies anyway.
                        let pause = skew_pause;
                        skew_pause = (skew_pause * 2).min(SKEW_RECHECK_MAX);
                        pause
                    }
                };
                tokio::select! {
                    () = watch.changed() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        let _ = live;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelled_watches_leave_nothing_behind() {
        let watchers = Watchers::default();
        for i in 0..100_000 {
            let mut watch = watchers.watch(if i % 2 == 0 { "a" } else { "b" });
            // Polled once, registered, then dropped: a waiter that gave up.
            assert!(futures::FutureExt::now_or_never(watch.changed()).is_none());
        }
        assert_eq!(watchers.len(), 0);
    }

    #[tokio::test]
    async fn a_notification_before_the_wait_is_not_lost() {
        let watchers = Watchers::default();
        let mut watch = watchers.watch("k");
        watchers.notify("k"); // between "read" and "await" in the algorithm
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the notification was lost");
        // And a notification of another key does not wake it.
        watchers.notify("other");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), watch.changed())
                .await
                .is_err()
        );
        watchers.notify_all();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("notify_all wakes every watch");
    }
}
