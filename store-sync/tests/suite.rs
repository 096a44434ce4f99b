//! Locks and elections on every backend: mutual exclusion under contention from two handles,
//! unique tokens, `try_acquire` never waiting, leases lost by cut-off holders and taken over,
//! stale releases refused, leaders replaced, cancellation leaving nothing behind.
//!
//! Each backend module gives `fresh()`: two independent handles on one fresh, empty store
//! (on Redis, two connections to one fresh prefix, and on PostgreSQL, two connections to one
//! fresh table, as two processes would have). On Redis and PostgreSQL a lease is judged by
//! the server's clock, on memory and file by the process's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use store_core::{Error, KeyStream, Record, Result, Storage};
use store_sync::{Election, ElectionOptions, Lock, LockOptions};
use store_testkit::{Progress, Watched};

/// Awaits `future`, failing the case, with `what` named, when nothing in the case makes
/// progress (no store call finishes) for the kit's stall limit, however slow the machine.
async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    Progress::current().watch(what, future).await
}

/// A handle whose connection the test can cut: while cut, every call fails with
/// `Unavailable`, as a backend's calls do when its server is unreachable.
struct Cuttable {
    inner: Arc<dyn Storage>,
    cut: AtomicBool,
}

impl Cuttable {
    fn new(inner: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            cut: AtomicBool::new(false),
        })
    }

    fn check(&self) -> Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(Error::Unavailable("test: the connection is cut".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl store_core::Layer for Cuttable {
    type Inner = dyn Storage;
    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }
    async fn create(&self, record: Record) -> Result<String> {
        self.check()?;
        self.inner.create(record).await
    }
    async fn get(&self, key: &str) -> Result<Record> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        self.check()?;
        self.inner.get_many(keys).await
    }
    async fn put(&self, record: Record) -> Result<Record> {
        self.check()?;
        self.inner.put(record).await
    }
    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        self.check()?;
        self.inner.put_many(records).await
    }
    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        self.check()?;
        self.inner.cas_by_version(record).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.check()?;
        self.inner.wait_for_version_change(key, version).await
    }
    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        self.check()?;
        self.inner.list_keys(pattern).await
    }
}

fn short_lease() -> LockOptions {
    LockOptions {
        lease: Duration::from_millis(400),
        // A wide margin: the cut-off holder must notice before the store lets anyone in,
        // even on a loaded machine whose timers fire late.
        clock_margin: Some(Duration::from_millis(200)),
        ..Default::default()
    }
}

/// Sixteen tasks on two handles increment a counter with a read-modify-write that loses
/// updates without mutual exclusion; every acquisition's token is new.
pub async fn mutual_exclusion_under_contention(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    const TASKS: usize = 16;
    const ROUNDS: usize = 20;
    a.put(Record::new("counter", "0")).await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let storage = if t % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let lock = Lock::new(storage.clone(), "counter", LockOptions::default());
                let mut tokens = Vec::new();
                for _ in 0..ROUNDS {
                    let guard = lock.acquire().await.unwrap();
                    tokens.push(guard.token().to_owned());
                    let current = storage.get("counter").await.unwrap();
                    let n: u64 = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    tokio::task::yield_now().await; // give a second holder the chance to exist
                    storage
                        .put(Record::new("counter", (n + 1).to_string()))
                        .await
                        .unwrap();
                    guard.release().await.unwrap();
                }
                tokens
            })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        for token in within("a contender", task).await.unwrap() {
            assert!(
                tokens.insert(token.clone()),
                "token {token} handed out twice"
            );
        }
    }
    let counter = a.get("counter").await.unwrap();
    assert_eq!(
        std::str::from_utf8(&counter.value).unwrap(),
        (TASKS * ROUNDS).to_string(),
        "updates were lost: two holders at once"
    );
}

/// `try_acquire` answers at once whether or not the lock is held.
pub async fn try_acquire_never_waits(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let lock_a = Lock::new(a, "t", LockOptions::default());
    let lock_b = Lock::new(b, "t", LockOptions::default());
    let guard = within("first try", lock_a.try_acquire())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..10 {
        let other = within("try while held", lock_b.try_acquire())
            .await
            .unwrap();
        assert!(other.is_none(), "two holders");
    }
    guard.release().await.unwrap();
    let again = within("try after release", lock_b.try_acquire())
        .await
        .unwrap();
    assert!(again.is_some(), "free lock not taken");
}

/// A holder cut off from the store learns it lost the lock before anyone else gets it, and
/// a holder on the other handle takes over once the lease runs out.
pub async fn a_cut_off_holder_loses_the_lock_and_another_takes_it(
    a: Arc<dyn Storage>,
    b: Arc<dyn Storage>,
) {
    let cut = Cuttable::new(a);
    let holder = Lock::new(cut.clone(), "cut", short_lease())
        .acquire()
        .await
        .unwrap();
    let lost = holder.lost();
    let lost_at = tokio::spawn(async move {
        lost.await;
        Instant::now()
    });
    cut.cut.store(true, Ordering::SeqCst);
    let taken = within("takeover", Lock::new(b, "cut", short_lease()).acquire())
        .await
        .unwrap();
    let taken_at = Instant::now();
    let lost_at = within("lost()", lost_at).await.unwrap();
    assert!(holder.is_lost());
    assert!(
        lost_at <= taken_at,
        "the cut-off holder learned of the loss {:?} after the takeover",
        lost_at - taken_at
    );
    assert_ne!(holder.token(), taken.token());
    taken.release().await.unwrap();
}

/// A holder whose lease lapsed cannot release the next holder's lock.
pub async fn a_stale_release_leaves_the_new_holders_lock(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let cut = Cuttable::new(a);
    let stale = Lock::new(cut.clone(), "stale", short_lease())
        .acquire()
        .await
        .unwrap();
    cut.cut.store(true, Ordering::SeqCst);
    let lock_b = Lock::new(b.clone(), "stale", short_lease());
    let current = within("takeover", lock_b.acquire()).await.unwrap();
    cut.cut.store(false, Ordering::SeqCst); // the stale holder is back in touch
    let released = stale.release().await;
    assert!(matches!(released, Err(Error::Conflict)), "{released:?}");
    assert!(
        lock_b.try_acquire().await.unwrap().is_none(),
        "the stale release removed the new holder's lock"
    );
    assert!(!current.is_lost());
    current.release().await.unwrap();
}

/// Dropped acquires and guards leave nothing behind: the lock is free at once, not after
/// a (here very long) lease.
pub async fn cancellation_leaves_nothing_behind(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let long = LockOptions {
        lease: Duration::from_secs(600),
        ..Default::default()
    };
    let lock_a = Lock::new(a, "cancel", long.clone());
    let lock_b = Lock::new(b, "cancel", long);
    for _ in 0..50 {
        // Given up at once: the claim may or may not have been made; either way it is not held.
        let _ = tokio::time::timeout(Duration::ZERO, lock_a.acquire()).await;
    }
    let held = within("acquire after cancelled claims", lock_b.acquire())
        .await
        .unwrap();
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let lock = lock_a.clone();
            tokio::spawn(async move { lock.acquire().await })
        })
        .collect();
    for waiter in &waiting {
        waiter.abort();
    }
    drop(held); // released in the background
    let again = within("acquire after a dropped guard", lock_a.acquire())
        .await
        .unwrap();
    again.release().await.unwrap();
}

/// A leader that stops renewing is replaced by the next candidate once its lease runs out,
/// and observers see the change.
pub async fn a_silent_leader_is_replaced(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let options = ElectionOptions {
        lease: Duration::from_millis(400),
        clock_margin: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let cut = Cuttable::new(a);
    let first = Election::new(cut.clone(), "e", options.clone());
    let second = Election::new(b.clone(), "e", options.clone());
    let mut observed = Election::new(b, "e", options).observe();
    assert_eq!(
        within("first report", observed.next())
            .await
            .unwrap()
            .unwrap(),
        None
    );

    let leader = within("first campaign", first.campaign("first"))
        .await
        .unwrap();
    let seen = within("leader reported", observed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, Some(leader.leader()));

    let challenger = tokio::spawn(async move { second.campaign("second").await });
    cut.cut.store(true, Ordering::SeqCst); // the leader goes silent
    within("the silent leader notices", leader.lost()).await;
    let successor = within("takeover", challenger).await.unwrap().unwrap();
    assert_eq!(&successor.leader().value[..], b"second");
    // Observers report the lapse and the new leader (the lapse may be folded into it).
    loop {
        let report = within("change reported", observed.next())
            .await
            .unwrap()
            .unwrap();
        if report == Some(successor.leader()) {
            break;
        }
        assert_eq!(report, None, "an unexpected leader was reported");
    }
    successor.resign().await.unwrap();
    assert_eq!(
        within("resignation reported", observed.next())
            .await
            .unwrap()
            .unwrap(),
        None
    );
}

/// Campaigners queue; resigning hands leadership to the next one; `leader()` agrees.
pub async fn resigning_hands_leadership_on(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let first = Election::new(a.clone(), "r", ElectionOptions::default());
    let second = Election::new(b, "r", ElectionOptions::default());
    let leading = first.campaign("one").await.unwrap();
    assert_eq!(first.leader().await.unwrap(), Some(leading.leader()));
    let next = tokio::spawn(async move { second.campaign("two").await });
    tokio::task::yield_now().await;
    assert!(!next.is_finished());
    let token = leading.token().to_owned();
    leading.resign().await.unwrap();
    let next = within("the next candidate", next).await.unwrap().unwrap();
    assert_ne!(next.token(), token);
    assert_eq!(first.leader().await.unwrap(), Some(next.leader()));
    next.resign().await.unwrap();
    assert_eq!(first.leader().await.unwrap(), None);
}

/// A holder paused past its lease (its whole runtime stopped, renewal task included) sees
/// the loss the moment it runs again, before its renewal task has had a turn: `is_lost` is
/// judged by the time, not only by what the renewal task has reported. The lock then goes
/// to the other handle.
pub async fn a_paused_holder_sees_its_loss_at_once(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let options = short_lease();
    let lease = options.lease;
    let lock_a = Lock::new(a, "paused", options.clone());
    let holder = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let guard = lock_a.acquire().await.unwrap();
            let held = !guard.is_lost();
            // Paused: nothing of this runtime runs, the renewal task included.
            std::thread::sleep(lease);
            let lost_at_once = guard.is_lost();
            let noticed = tokio::time::timeout(Duration::ZERO, guard.lost())
                .await
                .is_ok();
            (guard.token().to_owned(), held, lost_at_once, noticed)
        })
    });
    let (token, held, lost_at_once, noticed) = within(
        "the paused holder",
        tokio::task::spawn_blocking(move || holder.join()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        held,
        "the holder did not hold the lock it had just acquired"
    );
    assert!(
        lost_at_once,
        "a holder paused past its lease still believed it held the lock"
    );
    assert!(
        noticed,
        "lost() did not resolve at once for a holder paused past its lease"
    );
    let next = within(
        "the other handle",
        Lock::new(b, "paused", options).acquire(),
    )
    .await
    .unwrap();
    assert_ne!(next.token(), token);
    next.release().await.unwrap();
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        $(
            // Run as the conformance kit runs its cases: a case hangs when none of its
            // calls finishes for the kit's stall limit, not when the machine is slow.
            #[test]
            fn $case() {
                store_testkit::run(|| async {
                    let (a, b, _keep) = fresh().await;
                    let a: Arc<dyn Storage> = Arc::new(Watched::new(a));
                    let b: Arc<dyn Storage> = Arc::new(Watched::new(b));
                    crate::$case(a, b).await;
                });
            }
        )*
    };
}

macro_rules! every_case {
    () => {
        suite!(
            mutual_exclusion_under_contention,
            a_paused_holder_sees_its_loss_at_once,
            try_acquire_never_waits,
            a_cut_off_holder_loses_the_lock_and_another_takes_it,
            a_stale_release_leaves_the_new_holders_lock,
            cancellation_leaves_nothing_behind,
            a_silent_leader_is_replaced,
            resigning_hands_leadership_on,
        );
    };
}

mod memory {
    use super::*;

    /// Two clones of one memory store (one actor behind both).
    pub async fn fresh() -> (Arc<dyn Storage>, Arc<dyn Storage>, ()) {
        let store = store_memory::MemoryStorage::new();
        (Arc::new(store.clone()), Arc::new(store), ())
    }

    every_case!();
}

mod file {
    use super::*;

    /// Two clones of one file store, in a directory that lives as long as the case.
    pub async fn fresh() -> (Arc<dyn Storage>, Arc<dyn Storage>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_file::FileStorage::open(dir.path()).await.unwrap();
        (Arc::new(store.clone()), Arc::new(store), dir)
    }

    every_case!();
}

mod postgres {
    use super::*;
    use store_postgres::testing::TestStore;

    /// Two stores on one fresh table, each with its own pool and listener; the table is
    /// dropped when both are gone.
    pub async fn fresh() -> (Arc<dyn Storage>, Arc<dyn Storage>, ()) {
        let first = TestStore::fresh().await;
        let second = first.open_again().await;
        (Arc::new(first), Arc::new(second), ())
    }

    every_case!();
}

mod redis {
    use super::*;
    use store_redis::testing::test_store;

    /// Two handles on one fresh prefix, each with its own connections and subscription; the
    /// prefix's keys are deleted when both are gone.
    pub async fn fresh() -> (Arc<dyn Storage>, Arc<dyn Storage>, ()) {
        let first = test_store("sync").await;
        let second = first.another().await;
        (Arc::new(first), Arc::new(second), ())
    }

    every_case!();
}
