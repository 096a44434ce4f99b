//! How the kit tells a hang from slowness: a case hangs when *nothing* in it makes progress
//! for [`STALL_LIMIT`], however long it has been running.
//!
//! A case's [`Progress`] is ticked each time one of its store calls finishes (the macro
//! hands every case its store wrapped in [`Watched`], and a listing ticks on every key it
//! yields) and each time a wait the kit names (`within`, `join`) ends. [`run`](super::run)
//! watches the case as a whole and each named wait watches itself: while any call of the
//! case keeps finishing, a slow machine only makes the case slower. When none has finished
//! for the limit, the case fails and names what it was waiting for.
//!
//! Why not a time limit per call or per case: on a loaded machine (other builds running,
//! load 12 on 2 cores) sixteen tasks of fifty contended increments take tens of seconds,
//! each increment still a few milliseconds; a limit on the total time failed them there,
//! although no call ever stopped answering.
//!
//! The case's progress is found through its runtime: [`run`](super::run) builds one runtime
//! per case and every thread of that runtime knows the case's progress.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;

use store_core::{KeyStream, Layer, Record, Result, Storage};

/// How long nothing in a case may make progress before the kit declares it hung.
///
/// Every store call of a case counts: the limit is on a silence, not on a total time. A
/// network backend answers a call it cannot complete within its own request timeout (a few
/// seconds), so a silence this long means a call that will never be answered.
///
/// ```
/// // What a case run by `conformance_tests!` (or `run`) is held to:
/// store_testkit::run(|| async {
///     assert_eq!(store_testkit::Progress::current().limit(), store_testkit::STALL_LIMIT);
/// });
/// ```
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// How often a watcher looks at the case's progress (a fraction of the limit).
const LOOKS_PER_LIMIT: u32 = 20;

thread_local! {
    /// The progress of the case whose runtime owns this thread, if any.
    static CURRENT: RefCell<Option<Progress>> = const { RefCell::new(None) };
}

/// When a case last made progress: a clonable handle shared by everything the case runs.
///
/// ```
/// use std::time::Duration;
/// use store_testkit::Progress;
///
/// let progress = Progress::new(Duration::from_secs(30));
/// progress.tick();
/// assert!(progress.silent_for() < Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// When this progress was made; ticks are measured from here.
    origin: Instant,
    /// Microseconds after `origin` of the last tick.
    last: AtomicU64,
    /// How long a silence means a hang.
    limit: Duration,
}

impl Progress {
    /// A new progress whose last tick is now, declaring a hang after `limit` of silence.
    ///
    /// ```
    /// let progress = store_testkit::Progress::new(std::time::Duration::from_secs(5));
    /// assert_eq!(progress.limit(), std::time::Duration::from_secs(5));
    /// ```
    pub fn new(limit: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                last: AtomicU64::new(0),
                limit,
            }),
        }
    }

    /// The progress of the case running on this thread, or a fresh one (with
    /// [`STALL_LIMIT`]) outside a case, which then limits a single wait.
    ///
    /// ```
    /// store_testkit::run(|| async {
    ///     let progress = store_testkit::Progress::current();
    ///     assert_eq!(progress.limit(), store_testkit::STALL_LIMIT);
    /// });
    /// ```
    pub fn current() -> Self {
        CURRENT
            .with(|current| current.borrow().clone())
            .unwrap_or_else(|| Self::new(STALL_LIMIT))
    }

    /// A multi-threaded tokio runtime with two workers on whose every thread this is the
    /// [current](Self::current) progress (what [`run`](super::run) runs a case on; a child
    /// process of a multi-process test runs on one too).
    ///
    /// ```
    /// use store_testkit::Progress;
    ///
    /// let progress = Progress::new(std::time::Duration::from_secs(30));
    /// let runtime = progress.runtime();
    /// let limit = runtime.block_on(async {
    ///     tokio::spawn(async { Progress::current().limit() }).await.unwrap()
    /// });
    /// assert_eq!(limit, std::time::Duration::from_secs(30));
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the runtime cannot be built.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        let progress = self.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testkit-worker")
            // The runtime's threads end with it, so nothing needs restoring.
            .on_thread_start(move || {
                CURRENT.with(|current| *current.borrow_mut() = Some(progress.clone()))
            })
            .enable_all()
            .build()
            .expect("testkit: could not build a tokio runtime")
    }

    /// Makes this the [current](Self::current) progress of this thread until the returned
    /// guard is dropped (the previous one, if any, is then restored): for the thread that
    /// calls `block_on` on a [`runtime`](Self::runtime).
    ///
    /// ```
    /// use store_testkit::Progress;
    ///
    /// let progress = Progress::new(std::time::Duration::from_secs(7));
    /// let guard = progress.enter();
    /// assert_eq!(Progress::current().limit(), std::time::Duration::from_secs(7));
    /// drop(guard);
    /// ```
    pub fn enter(&self) -> Entered {
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        Entered { previous }
    }

    /// Records that something finished just now.
    ///
    /// ```
    /// let progress = store_testkit::Progress::new(std::time::Duration::from_secs(5));
    /// progress.tick();
    /// ```
    pub fn tick(&self) {
        let micros = u64::try_from(self.inner.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.inner.last.fetch_max(micros, Ordering::Relaxed);
    }

    /// How long it has been since the last tick.
    ///
    /// ```
    /// let progress = store_testkit::Progress::new(std::time::Duration::from_secs(5));
    /// assert!(progress.silent_for() < std::time::Duration::from_secs(5));
    /// ```
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_micros(self.inner.last.load(Ordering::Relaxed));
        self.inner.origin.elapsed().saturating_sub(last)
    }

    /// How long a silence means a hang.
    ///
    /// ```
    /// let progress = store_testkit::Progress::new(std::time::Duration::from_secs(5));
    /// assert_eq!(progress.limit(), std::time::Duration::from_secs(5));
    /// ```
    pub fn limit(&self) -> Duration {
        self.inner.limit
    }

    /// Awaits `future`, then ticks; panics naming `what` if, while it is pending, nothing
    /// ticks this progress for [`limit`](Self::limit).
    ///
    /// ```
    /// store_testkit::run(|| async {
    ///     let progress = store_testkit::Progress::current();
    ///     let answer = progress.watch("a quick answer", async { 42 }).await;
    ///     assert_eq!(answer, 42);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Panics with a message naming `what` and the silence when the future hangs.
    pub async fn watch<F: Future>(&self, what: &str, future: F) -> F::Output {
        let mut future = pin!(future);
        let look = self.limit() / LOOKS_PER_LIMIT;
        loop {
            match tokio::time::timeout(look, future.as_mut()).await {
                Ok(output) => {
                    self.tick();
                    return output;
                }
                Err(_) => {
                    let silent = self.silent_for();
                    assert!(
                        silent < self.limit(),
                        "{what}: no call of this case has finished for {silent:.1?} (the kit \
                         declares a hang after {:?} without progress): it hangs",
                        self.limit()
                    );
                }
            }
        }
    }
}

/// Restores the thread's previous progress when dropped (see [`Progress::enter`]).
///
/// ```
/// use std::time::Duration;
/// use store_testkit::{Entered, Progress};
///
/// let outer: Entered = Progress::new(Duration::from_secs(7)).enter();
/// {
///     let _inner = Progress::new(Duration::from_secs(3)).enter();
///     assert_eq!(Progress::current().limit(), Duration::from_secs(3));
/// }
/// assert_eq!(Progress::current().limit(), Duration::from_secs(7));
/// drop(outer);
/// ```
#[must_use = "the progress is current only until this guard is dropped"]
#[derive(Debug)]
pub struct Entered {
    previous: Option<Progress>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// A store whose every finished call (and every key a listing yields) ticks the case's
/// [`Progress`]; otherwise it forwards everything unchanged.
///
/// `conformance_tests!` hands each case its store wrapped in this, so that a case is
/// declared hung only when no call of it finishes for [`STALL_LIMIT`].
///
/// ```
/// store_testkit::run(|| async {
///     use store_core::{Record, Storage};
///     let store = store_testkit::Watched::new(store_core::__private::doc_store());
///     store.put(Record::new("k", "v")).await.unwrap();
///     assert_eq!(&store.get("k").await.unwrap().value[..], b"v");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Watched<S> {
    inner: S,
    progress: Progress,
}

impl<S> Watched<S> {
    /// Wraps `inner`, ticking the progress of the case running on this thread
    /// ([`Progress::current`]).
    ///
    /// ```
    /// let store = store_testkit::Watched::new(store_core::__private::doc_store());
    /// # drop(store);
    /// ```
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            progress: Progress::current(),
        }
    }

    /// The wrapped store.
    ///
    /// ```
    /// let store = store_testkit::Watched::new(store_core::__private::doc_store());
    /// let _inner = store.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, unwrapped.
    ///
    /// ```
    /// let store = store_testkit::Watched::new(store_core::__private::doc_store());
    /// let _inner = store.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Ticks on the way out of a call, whatever it answered.
    fn ticked<T>(&self, answer: T) -> T {
        self.progress.tick();
        answer
    }
}

#[async_trait]
impl<S: Storage> Layer for Watched<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn create(&self, record: Record) -> Result<String> {
        self.ticked(self.inner.create(record).await)
    }

    async fn get(&self, key: &str) -> Result<Record> {
        self.ticked(self.inner.get(key).await)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        self.ticked(self.inner.get_many(keys).await)
    }

    async fn put(&self, record: Record) -> Result<Record> {
        self.ticked(self.inner.put(record).await)
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        self.ticked(self.inner.put_many(records).await)
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        self.ticked(self.inner.cas_by_version(record).await)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.ticked(self.inner.delete(key).await)
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.ticked(self.inner.wait_for_version_change(key, version).await)
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        let stream = self.ticked(self.inner.list_keys(pattern).await)?;
        let progress = self.progress.clone();
        Ok(stream.inspect(move |_| progress.tick()).boxed())
    }

    async fn close(&self) -> Result<()> {
        self.ticked(self.inner.close().await)
    }
}

#[cfg(test)]
mod tests {
    //! The kit's hang detection on stores that are slow or silent, with a short limit so the
    //! verdicts come quickly. What is slow here is each call (a sleep inside the store), so
    //! the cases below take several limits in total while every call finishes well within one.

    use std::panic::{catch_unwind, AssertUnwindSafe};

    use std::future::Future;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use async_trait::async_trait;

    use super::super::run_with;
    use super::super::support::{join, within};
    use super::{Progress, Watched, STALL_LIMIT};
    use store_core::__private::doc_store;
    use store_core::runtime::ActorHandle;
    use store_core::{Record, Result, Storage};

    const LIMIT: Duration = Duration::from_secs(1);
    /// Each slow call takes a twentieth of the limit (a margin for a loaded machine's
    /// scheduling); a case makes fifty of them, so it runs for more than two limits.
    const CALL: Duration = Duration::from_millis(50);
    const CALLS: usize = 50;

    /// A store whose `get` takes [`CALL`], or never answers when `silent`.
    struct Slow {
        inner: ActorHandle,
        silent: bool,
    }

    #[async_trait]
    impl store_core::Layer for Slow {
        type Inner = ActorHandle;

        fn inner(&self) -> &ActorHandle {
            &self.inner
        }

        async fn get(&self, key: &str) -> Result<Record> {
            if self.silent {
                futures::future::pending::<()>().await;
            }
            tokio::time::sleep(CALL).await;
            Storage::get(&self.inner, key).await
        }
    }

    fn slow(silent: bool) -> Watched<Arc<Slow>> {
        Watched::new(Arc::new(Slow {
            inner: doc_store(),
            silent,
        }))
    }

    /// The panic message of `case` run with [`LIMIT`], or `None` if it passed.
    fn verdict<Fut: Future<Output = ()>>(case: impl FnOnce() -> Fut) -> Option<String> {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_with(Progress::new(LIMIT), case)));
        outcome.err().map(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    }

    #[test]
    fn a_slow_case_whose_calls_keep_finishing_passes() {
        let started = Instant::now();
        let failure = verdict(|| async {
            let store = slow(false);
            store.put(Record::new("k", "v")).await.unwrap();
            for _ in 0..CALLS {
                assert_eq!(&store.get("k").await.unwrap().value[..], b"v");
            }
        });
        assert_eq!(failure, None);
        assert!(started.elapsed() > LIMIT * 2, "the case was not slow");
    }

    #[test]
    fn a_slow_task_joined_by_name_passes() {
        let failure = verdict(|| async {
            let store = Arc::new(slow(false));
            store.put(Record::new("k", "v")).await.unwrap();
            let task = tokio::spawn({
                let store = store.clone();
                async move {
                    for _ in 0..CALLS {
                        store.get("k").await.unwrap();
                    }
                }
            });
            join("the slow task", task).await;
        });
        assert_eq!(failure, None);
    }

    #[test]
    fn a_call_that_never_answers_is_declared_hung_by_name() {
        let failure = verdict(|| async {
            let store = slow(true);
            let _ = within("the silent get", store.get("k")).await;
        })
        .expect("a case whose only call never answers passed");
        assert!(
            failure.contains("the silent get") && failure.contains("it hangs"),
            "{failure}"
        );
    }

    #[test]
    fn a_case_that_stops_making_progress_is_declared_hung() {
        let failure = verdict(|| async {
            let store = slow(true);
            // Progress first, then silence: the verdict is on the silence.
            store.put(Record::new("k", "v")).await.unwrap();
            let _ = store.get("k").await;
        })
        .expect("a case whose last call never answers passed");
        assert!(
            failure.contains("the case") && failure.contains("it hangs"),
            "{failure}"
        );
    }

    #[test]
    fn progress_outside_a_case_limits_one_wait() {
        let progress = Progress::current();
        assert_eq!(progress.limit(), STALL_LIMIT);
        progress.tick();
        assert!(progress.silent_for() < STALL_LIMIT);
    }
}
