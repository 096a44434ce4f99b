//! The mailbox between a network backend's handles and its actor (Redis and PostgreSQL
//! share it).
//!
//! Handles send [`Call`]s through a bounded channel and wait for the answer: at most the
//! configured request timeout ([`Caller::call`], for a backend whose server refuses a write
//! that arrives after its caller's deadline, as Redis's script does), or, once the actor has
//! taken the call, as long as the actor takes to learn its fate
//! ([`Caller::call_answered_by_actor`], for a backend that bounds its own rounds, as
//! PostgreSQL's does around a commit that cannot be called back). The actor takes every
//! queued call at once ([`Inbox::next_batch`], `recv_many`) and sends the batch to the
//! server in one round trip: the network version of group commit. Calls whose caller has already given up (timed out
//! or dropped its future) are left out of the next batch, so they never happen.
//!
//! When the actor stops, handles learn why from a shared slot: `close` leaves it empty
//! (calls then fail with `Closed`); a panic or a vanished runtime fills it through
//! [`StopGuard`] (calls then fail with `Stopped`, saying which).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use store_core::net::mailbox;
//! use store_core::Error;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A mailbox of at most 64 queued calls, each answered within 2 s.
//! let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(
//!     64,
//!     Duration::from_secs(2),
//!     Arc::new(|| Error::Unavailable("example server: no answer within 2s".into())),
//! );
//! // The actor: one batch (one round trip to the server) answers every call queued.
//! tokio::spawn(async move {
//!     while let Some(batch) = inbox.next_batch(512).await {
//!         for call in batch {
//!             let doubled = call.op * 2;
//!             call.answer(Ok(doubled));
//!         }
//!     }
//! });
//! assert_eq!(caller.call(21).await?, 42);
//! # Ok::<(), Error>(())
//! # });
//! ```

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::{Error, Result};
use tokio::sync::{mpsc, oneshot};

/// One request to the actor: the operation and where its answer goes (see the
/// [module example](self) for a whole exchange).
pub struct Call<Op, Reply> {
    /// What the caller asks for.
    pub op: Op,
    /// When the caller stops waiting (its start plus the request timeout): a write must
    /// not take effect after it, so it travels with the write to the server.
    pub deadline: Instant,
    reply: oneshot::Sender<Result<Reply>>,
}

impl<Op, Reply> Call<Op, Reply> {
    /// Whether the caller stopped waiting (timed out or dropped the call).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(5),
    /// #     Arc::new(|| Error::Unavailable("timeout".into())));
    /// // A caller that gives up at once: its call is queued, then abandoned.
    /// let _ = tokio::time::timeout(Duration::from_millis(1), caller.call(7)).await;
    /// # })
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    /// Sends the answer (nobody may be listening any more; that is fine). See the
    /// [module example](self).
    pub fn answer(self, result: Result<Reply>) {
        let _ = self.reply.send(result);
    }

    /// Splits the call into its operation and its answer slot, for an actor that sends the
    /// operation in a batch and answers later.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(5),
    /// #     Arc::new(|| Error::Unavailable("timeout".into())));
    /// tokio::spawn(async move {
    ///     let batch = inbox.next_batch(16).await.unwrap();
    ///     let (ops, answers): (Vec<u32>, Vec<_>) = batch.into_iter().map(|c| c.into_parts()).unzip();
    ///     for (op, answer) in ops.into_iter().zip(answers) {
    ///         answer.send(Ok(op + 1));
    ///     }
    /// });
    /// assert_eq!(caller.call(1).await.unwrap(), 2);
    /// # })
    /// ```
    pub fn into_parts(self) -> (Op, Answer<Reply>) {
        (self.op, Answer(self.reply))
    }
}

/// Where the answer of a call goes, once its operation has been taken apart (see
/// [`Call::into_parts`]).
pub struct Answer<Reply>(oneshot::Sender<Result<Reply>>);

impl<Reply> Answer<Reply> {
    /// Sends the answer (see [`Call::into_parts`]).
    pub fn send(self, result: Result<Reply>) {
        let _ = self.0.send(result);
    }

    /// Whether the caller stopped waiting (dropped its call): an actor that keeps taken
    /// calls in queues of its own leaves such calls out of the batch it sends.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(5),
    /// #     Arc::new(|| Error::Unavailable("timeout".into())));
    /// let call = tokio::spawn({
    ///     let caller = caller.clone();
    ///     async move { caller.call_answered_by_actor(1).await }
    /// });
    /// let (_op, answer) = inbox.next_batch(8).await.unwrap().pop().unwrap().into_parts();
    /// assert!(!answer.is_abandoned());
    /// call.abort(); // the caller gives up
    /// let _ = call.await;
    /// assert!(answer.is_abandoned());
    /// # })
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// Creates the two ends of a mailbox holding at most `capacity` queued calls, whose calls
/// are answered within `request_timeout` (queueing included), with `timed_out()` if not.
/// See the [module example](self).
pub fn mailbox<Op, Reply>(
    capacity: usize,
    request_timeout: Duration,
    timed_out: Arc<dyn Fn() -> Error + Send + Sync>,
) -> (Caller<Op, Reply>, Inbox<Op, Reply>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let stopped = Arc::new(OnceLock::new());
    (
        Caller {
            tx,
            stopped: stopped.clone(),
            request_timeout,
            timed_out: timed_out.clone(),
        },
        Inbox {
            rx,
            stopped,
            timed_out,
        },
    )
}

/// The handles' end: cheap to clone. See the [module example](self).
pub struct Caller<Op, Reply> {
    tx: mpsc::Sender<Call<Op, Reply>>,
    stopped: Arc<OnceLock<Error>>,
    request_timeout: Duration,
    timed_out: Arc<dyn Fn() -> Error + Send + Sync>,
}

impl<Op, Reply> Clone for Caller<Op, Reply> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            stopped: self.stopped.clone(),
            request_timeout: self.request_timeout,
            timed_out: self.timed_out.clone(),
        }
    }
}

impl<Op: Send, Reply: Send> Caller<Op, Reply> {
    /// Sends `op` and waits for its answer, at most the request timeout (queueing included);
    /// then the call fails with the mailbox's timeout error and, if the actor has not taken
    /// it yet, never happens.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (caller, _inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_millis(10),
    ///     Arc::new(|| Error::Unavailable("no answer within 10ms".into())));
    /// // Nobody answers: the call times out.
    /// assert!(matches!(caller.call(1).await, Err(Error::Unavailable(_))));
    /// # })
    /// ```
    pub async fn call(&self, op: Op) -> Result<Reply> {
        let deadline = Instant::now() + self.request_timeout;
        let outcome =
            tokio::time::timeout_at(deadline.into(), self.send_and_wait(op, deadline)).await;
        outcome.unwrap_or_else(|_| Err((self.timed_out)()))
    }

    /// Sends `op` and waits for its answer, which the actor gives however long that takes
    /// once it has taken the call. The call's deadline (its start plus the request
    /// timeout) bounds only its wait in the mailbox: taken after it, the call is answered
    /// with the mailbox's timeout error and never sent.
    ///
    /// For an actor that bounds its own rounds and must learn a write's fate before it
    /// answers: a PostgreSQL commit cannot be called back, so the actor, not the caller's
    /// timer, decides when a write in flight has failed (see store-postgres's `batch.rs`).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_millis(10),
    ///     Arc::new(|| Error::Unavailable("no answer within 10ms".into())));
    /// tokio::spawn(async move {
    ///     let batch = inbox.next_batch(8).await.unwrap();
    ///     // Slower than the request timeout: the caller still gets this answer.
    ///     tokio::time::sleep(Duration::from_millis(30)).await;
    ///     for call in batch {
    ///         call.answer(Ok(7));
    ///     }
    /// });
    /// assert_eq!(caller.call_answered_by_actor(0).await.unwrap(), 7);
    /// # })
    /// ```
    pub async fn call_answered_by_actor(&self, op: Op) -> Result<Reply> {
        let deadline = Instant::now() + self.request_timeout;
        self.send_and_wait(op, deadline).await
    }

    /// [`call`](Caller::call) without the timeout, for `close`, which must wait for the
    /// batches in flight however long the server takes to answer them.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (caller, mut inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_millis(10),
    /// #     Arc::new(|| Error::Unavailable("timeout".into())));
    /// tokio::spawn(async move { inbox.close().await });
    /// assert!(matches!(caller.call_unbounded(0).await, Err(Error::Closed)));
    /// # })
    /// ```
    pub async fn call_unbounded(&self, op: Op) -> Result<Reply> {
        // No caller gives up on this one; a deadline far away (an hour) still bounds it.
        let deadline = Instant::now() + Duration::from_secs(3600);
        self.send_and_wait(op, deadline).await
    }

    async fn send_and_wait(&self, op: Op, deadline: Instant) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Call {
                op,
                deadline,
                reply,
            })
            .await
            .is_err()
        {
            return Err(self.stop_error());
        }
        match answer.await {
            Ok(result) => result,
            // The actor answers every call it takes; an unanswered one means it is gone.
            Err(_) => {
                self.tx.closed().await;
                Err(self.stop_error())
            }
        }
    }

    /// `Ok` while the actor runs; otherwise why it stopped.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// let (caller, inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(1),
    ///     Arc::new(|| Error::Unavailable("timeout".into())));
    /// assert!(caller.check_open().is_ok());
    /// drop(inbox);
    /// assert!(matches!(caller.check_open(), Err(Error::Closed)));
    /// ```
    pub fn check_open(&self) -> Result<()> {
        if self.tx.is_closed() {
            Err(self.stop_error())
        } else {
            Ok(())
        }
    }

    /// Calls queued and not yet taken by the actor.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// let (caller, _inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(1),
    ///     Arc::new(|| Error::Unavailable("timeout".into())));
    /// assert_eq!(caller.queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn stop_error(&self) -> Error {
        self.stopped.get().cloned().unwrap_or(Error::Closed)
    }
}

/// The actor's end. See the [module example](self).
pub struct Inbox<Op, Reply> {
    rx: mpsc::Receiver<Call<Op, Reply>>,
    stopped: Arc<OnceLock<Error>>,
    timed_out: Arc<dyn Fn() -> Error + Send + Sync>,
}

impl<Op, Reply> Inbox<Op, Reply> {
    /// Waits for at least one call and returns every queued call, up to `max`, without the
    /// abandoned ones (which may leave the batch empty). `None` once every handle is gone.
    /// An actor that keeps calls taken but not yet sent passes as `max` the room left under
    /// its cap, so that the mailbox's bound keeps protecting memory (callers then wait in
    /// `send`). See the [module example](self).
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<Call<Op, Reply>>> {
        let mut batch = Vec::with_capacity(max.min(64));
        if self.rx.recv_many(&mut batch, max.max(1)).await == 0 {
            return None;
        }
        // A call whose caller gave up is never sent; nor one whose deadline has passed (its
        // caller is being answered with the timeout error at this moment).
        let now = Instant::now();
        batch.retain(|call| !call.is_abandoned());
        for late in batch.extract_if(.., |call| call.deadline <= now) {
            late.answer(Err((self.timed_out)()));
        }
        Some(batch)
    }

    /// Refuses new calls and answers every queued one with `Closed`. Waits for senders that
    /// had reserved a slot before the close, so that no call is left unanswered. See
    /// [`Caller::call_unbounded`].
    pub async fn close(&mut self) {
        self.rx.close();
        while let Some(call) = self.rx.recv().await {
            call.answer(Err(Error::Closed));
        }
    }

    /// A guard that records why the actor stopped if it stops without [`StopGuard::disarm`]
    /// (a panic, or its runtime shutting down), and runs `on_stop` in any case.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (caller, inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(1),
    ///     Arc::new(|| Error::Unavailable("timeout".into())));
    /// let guard = inbox.stop_guard("example", || {});
    /// drop(guard); // not disarmed: as if the actor had panicked
    /// drop(inbox);
    /// assert!(matches!(caller.call(1).await, Err(Error::Stopped(_))));
    /// # })
    /// ```
    pub fn stop_guard(&self, what: &str, on_stop: impl FnOnce() + Send + 'static) -> StopGuard {
        StopGuard {
            stopped: self.stopped.clone(),
            what: what.to_owned(),
            on_stop: Some(Box::new(on_stop)),
            armed: true,
        }
    }
}

/// Records why an actor stopped unless disarmed; see [`Inbox::stop_guard`].
pub struct StopGuard {
    stopped: Arc<OnceLock<Error>>,
    what: String,
    on_stop: Option<Box<dyn FnOnce() + Send>>,
    armed: bool,
}

impl StopGuard {
    /// The actor is stopping on purpose (`close`, or every handle dropped).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use store_core::{net::mailbox, Error};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (caller, inbox) = mailbox::mailbox::<u32, u32>(8, Duration::from_secs(1),
    ///     Arc::new(|| Error::Unavailable("timeout".into())));
    /// let mut guard = inbox.stop_guard("example", || {});
    /// guard.disarm();
    /// drop(guard);
    /// drop(inbox);
    /// assert!(matches!(caller.call(1).await, Err(Error::Closed)));
    /// # })
    /// ```
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if self.armed {
            let why = if std::thread::panicking() {
                format!("the {} actor panicked; open the store again", self.what)
            } else {
                format!(
                    "the tokio runtime that ran the {} actor shut down; open the store again \
                     inside a running runtime",
                    self.what
                )
            };
            tracing::error!(actor = %self.what, "{why}");
            let _ = self.stopped.set(Error::Stopped(why));
        }
        if let Some(on_stop) = self.on_stop.take() {
            on_stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(timeout: Duration) -> (Caller<u32, u32>, Inbox<u32, u32>) {
        mailbox(
            8,
            timeout,
            Arc::new(|| Error::Unavailable("test: timed out".into())),
        )
    }

    #[tokio::test]
    async fn batches_carry_every_queued_call_and_skip_abandoned_ones() {
        let (caller, mut inbox) = pair(Duration::from_secs(5));
        // A caller that gives up before the actor looks: its call is queued, then abandoned.
        let gone = tokio::time::timeout(Duration::from_millis(1), caller.call(2)).await;
        assert!(gone.is_err());
        assert_eq!(caller.queued(), 1);
        let first = tokio::spawn({
            let caller = caller.clone();
            async move { caller.call(1).await }
        });
        while caller.queued() < 2 {
            tokio::task::yield_now().await;
        }
        let batch = inbox.next_batch(16).await.unwrap();
        assert_eq!(batch.iter().map(|c| c.op).collect::<Vec<_>>(), [1]);
        for call in batch {
            let op = call.op;
            call.answer(Ok(op * 10));
        }
        assert_eq!(first.await.unwrap().unwrap(), 10);
    }

    #[tokio::test]
    async fn a_call_is_bounded_by_the_timeout() {
        let (caller, _inbox) = pair(Duration::from_millis(20));
        let error = caller.call(1).await.unwrap_err();
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn close_answers_queued_calls_and_later_ones() {
        let (caller, mut inbox) = pair(Duration::from_secs(5));
        let queued = tokio::spawn({
            let caller = caller.clone();
            async move { caller.call(1).await }
        });
        tokio::task::yield_now().await;
        inbox.close().await;
        assert!(matches!(queued.await.unwrap(), Err(Error::Closed)));
        assert!(matches!(caller.call(2).await, Err(Error::Closed)));
        assert!(matches!(caller.check_open(), Err(Error::Closed)));
    }

    #[tokio::test]
    async fn a_stop_without_close_is_reported_as_stopped() {
        let (caller, inbox) = pair(Duration::from_secs(5));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = inbox.stop_guard("test", {
            let ran = ran.clone();
            move || ran.store(true, std::sync::atomic::Ordering::SeqCst)
        });
        drop(guard);
        drop(inbox);
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(caller.call(1).await, Err(Error::Stopped(_))));
    }
}
