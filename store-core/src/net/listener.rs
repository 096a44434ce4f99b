//! [`Listener`]: the connection on which a network backend hears of other processes'
//! writes, kept alive and reconnected, written once for every backend.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::time::{sleep, Instant, Sleep};

use crate::backoff::Backoff;
use crate::watch::Watchers;
use crate::{BoxFuture, Error, Result};

/// A backend's protocol for hearing of changes (see [`Listener`], with an example).
pub trait Subscribe: Send + Sync + 'static {
    /// One message as the connection delivers it.
    type Message: Send + 'static;

    /// Opens a connection and subscribes; resolves once the server has confirmed the
    /// subscription (only then is a change guaranteed to arrive as a message). The
    /// listener bounds it by [`ListenerTiming::subscribe_timeout`].
    fn subscribe(&self) -> BoxFuture<'static, Result<Feed<Self::Message>>>;

    /// Wakes the waiters that `message` concerns (all of them when it cannot tell).
    fn deliver(&self, message: Self::Message, watchers: &Watchers);

    /// The server, as log lines name it (never with a password).
    fn address(&self) -> &str;
}

/// A subscribed connection: its messages, and a way to check that it still answers.
pub struct Feed<M> {
    messages: BoxStream<'static, Result<M>>,
    ping: Box<dyn FnMut() -> BoxFuture<'static, Result<()>> + Send>,
}

impl<M> Feed<M> {
    /// A feed that yields `messages` until the connection ends (the stream ends or yields
    /// an error), and checks the connection with `ping` (which must use the same
    /// connection, and is bounded by the listener's timeout).
    ///
    /// ```
    /// use futures::{FutureExt, StreamExt};
    /// use store_core::net::Feed;
    ///
    /// let feed: Feed<String> = Feed::new(
    ///     futures::stream::iter([Ok("orders/1".to_owned())]).boxed(),
    ///     || async { Ok(()) }.boxed(),
    /// );
    /// # drop(feed);
    /// ```
    pub fn new(
        messages: BoxStream<'static, Result<M>>,
        ping: impl FnMut() -> BoxFuture<'static, Result<()>> + Send + 'static,
    ) -> Self {
        Self {
            messages,
            ping: Box::new(ping),
        }
    }
}

/// What a [`Listener`] reports to operators (a backend shows them in its stats).
///
/// ```
/// let figures = store_core::net::ListenerFigures::default();
/// assert!(!figures.is_connected());
/// assert_eq!(figures.connects(), 0);
/// ```
#[derive(Debug, Default)]
pub struct ListenerFigures {
    connected: AtomicBool,
    connects: AtomicU64,
    messages: AtomicU64,
}

impl ListenerFigures {
    /// Whether the listener is subscribed now.
    ///
    /// ```
    /// assert!(!store_core::net::ListenerFigures::default().is_connected());
    /// ```
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Subscriptions made, the first one included (so reconnects are one less).
    ///
    /// ```
    /// assert_eq!(store_core::net::ListenerFigures::default().connects(), 0);
    /// ```
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Messages received.
    ///
    /// ```
    /// assert_eq!(store_core::net::ListenerFigures::default().messages(), 0);
    /// ```
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
}

/// How a [`Listener`] checks and reconnects its connection.
#[derive(Clone, Debug)]
pub struct ListenerTiming {
    /// How long connecting and subscribing may take before the attempt counts as failed.
    pub subscribe_timeout: Duration,
    /// How long a ping may take before the connection counts as lost.
    pub ping_timeout: Duration,
    /// How often an idle connection is pinged.
    pub ping_every: Duration,
    /// The delays between reconnect attempts.
    pub backoff: Backoff,
}

/// The connection on which a backend hears of changes, kept alive and reconnected.
///
/// A backend supplies its protocol as a [`Subscribe`]: how to open a connection and
/// subscribe (Redis `SUBSCRIBE`, PostgreSQL `LISTEN`, a NATS KV watch), how to check that the
/// connection still answers, and what a message means for the store's [`Watchers`]. The
/// listener does the rest, the same way for all of them:
///
/// - **Never an unannounced change.** Waiters never trust a message (see
///   [`watch`](crate::watch)): a message only makes the waiters of its keys read again. While
///   the connection is down messages are lost, so after every reconnect, once the server has
///   confirmed the subscription, every waiter re-reads ([`Watchers::notify_all`]): a change
///   made while no connection listened is seen by that read, and one made after the
///   confirmation arrives as a message.
/// - **A connection that stopped answering is found.** A connection that died without
///   closing (a server that no longer reads it, a network path that blackholes) delivers
///   nothing and fails nothing; so an idle connection is pinged every `ping_every`, and one
///   whose ping is not answered within `ping_timeout` is dropped and replaced.
/// - **Reconnects back off** with the one [`Backoff`], reset by a success.
/// - **A waiter does not fail because the listener is down**: it keeps waiting and re-checks
///   after the reconnect (its reads, like every call, fail with `Unavailable` while the
///   server cannot be reached; a waiter that must give up uses a timeout).
///
/// The listener is driven by its owner: [`Listener::step`] waits for and handles one event,
/// and is cancel-safe, so an actor polls it in its `select!` beside its mailbox.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use futures::{FutureExt, StreamExt};
/// use store_core::backoff::Backoff;
/// use store_core::net::{Feed, Listener, ListenerTiming, Subscribe};
/// use store_core::watch::Watchers;
/// use store_core::BoxFuture;
///
/// /// A "server" whose change messages are the keys written, from a channel.
/// struct Changes(std::sync::Mutex<Option<futures::channel::mpsc::UnboundedReceiver<String>>>);
///
/// impl Subscribe for Changes {
///     type Message = String;
///     fn subscribe(&self) -> BoxFuture<'static, store_core::Result<Feed<String>>> {
///         let messages = self.0.lock().unwrap().take().expect("one connection in this example");
///         let feed = Feed::new(messages.map(Ok).boxed(), || async { Ok(()) }.boxed());
///         async move { Ok(feed) }.boxed()
///     }
///     fn deliver(&self, key: String, watchers: &Watchers) {
///         watchers.notify(&key);
///     }
///     fn address(&self) -> &str {
///         "example:1"
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (writes, messages) = futures::channel::mpsc::unbounded();
/// let watchers = Arc::new(Watchers::default());
/// let timing = ListenerTiming {
///     subscribe_timeout: Duration::from_secs(1),
///     ping_timeout: Duration::from_secs(1),
///     ping_every: Duration::from_secs(10),
///     backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)),
/// };
/// let changes = Changes(std::sync::Mutex::new(Some(messages)));
/// let mut listener = Listener::open(changes, watchers.clone(), timing).await?;
///
/// let mut watch = watchers.watch("orders/1");
/// writes.unbounded_send("orders/1".to_owned()).unwrap();
/// listener.step().await; // the message wakes the waiter of its key
/// watch.changed().await;
/// assert_eq!(listener.figures().messages(), 1);
/// # Ok::<(), store_core::Error>(())
/// # });
/// ```
pub struct Listener<S: Subscribe> {
    protocol: Arc<S>,
    watchers: Arc<Watchers>,
    figures: Arc<ListenerFigures>,
    timing: ListenerTiming,
    state: State<S::Message>,
}

enum State<M> {
    Up {
        feed: Feed<M>,
        next_ping: Pin<Box<Sleep>>,
        /// A ping in flight: resolves to whether it was answered in time.
        ping: Option<BoxFuture<'static, bool>>,
    },
    Connecting(BoxFuture<'static, Result<Feed<M>>>),
    Down(Pin<Box<Sleep>>),
}

/// What one step saw.
enum Event<M> {
    Message(M),
    Lost(String),
    PingDue,
    PingAnswered,
    Connected(Feed<M>),
    ConnectFailed(Error),
    RetryDue,
}

impl<S: Subscribe> Listener<S> {
    /// Subscribes for the first time; fails (naming the server) if that fails or is not
    /// done within the timing's `subscribe_timeout`, so a store's `connect` fails with it. Later
    /// losses only reconnect.
    pub async fn open(
        protocol: S,
        watchers: Arc<Watchers>,
        timing: ListenerTiming,
    ) -> Result<Self> {
        let protocol = Arc::new(protocol);
        let feed = subscribe(&*protocol, timing.subscribe_timeout).await?;
        let figures = Arc::new(ListenerFigures::default());
        figures.connected.store(true, Ordering::Relaxed);
        figures.connects.fetch_add(1, Ordering::Relaxed);
        let state = up(feed, timing.ping_every);
        Ok(Self {
            protocol,
            watchers,
            figures,
            timing,
            state,
        })
    }

    /// What the listener reports; the handle stays valid after the listener is dropped.
    pub fn figures(&self) -> Arc<ListenerFigures> {
        self.figures.clone()
    }

    /// Waits for the next event (a message, a lost connection, a reconnect, a ping) and
    /// handles it. Cancel-safe: everything in progress lives in `self`.
    pub async fn step(&mut self) {
        let timeout = self.timing.ping_timeout;
        let event = match &mut self.state {
            State::Up {
                feed,
                next_ping,
                ping,
            } => {
                let ping_idle = ping.is_none();
                let ping_answer = async {
                    match ping.as_mut() {
                        Some(ping) => ping.await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    message = feed.messages.next() => match message {
                        Some(Ok(message)) => Event::Message(message),
                        Some(Err(error)) => Event::Lost(error.to_string()),
                        None => Event::Lost("the connection closed".to_owned()),
                    },
                    answered = ping_answer => if answered {
                        Event::PingAnswered
                    } else {
                        Event::Lost(format!("no answer to a ping within {timeout:?}"))
                    },
                    () = next_ping.as_mut(), if ping_idle => Event::PingDue,
                }
            }
            State::Connecting(connecting) => match connecting.await {
                Ok(feed) => Event::Connected(feed),
                Err(error) => Event::ConnectFailed(error),
            },
            State::Down(retry) => {
                retry.as_mut().await;
                Event::RetryDue
            }
        };
        self.handle(event);
    }

    fn handle(&mut self, event: Event<S::Message>) {
        match event {
            Event::Message(message) => {
                self.figures.messages.fetch_add(1, Ordering::Relaxed);
                self.protocol.deliver(message, &self.watchers);
            }
            Event::PingDue => {
                if let State::Up {
                    feed,
                    ping,
                    next_ping,
                } = &mut self.state
                {
                    let sent = (feed.ping)();
                    let timeout = self.timing.ping_timeout;
                    *ping = Some(Box::pin(async move {
                        matches!(tokio::time::timeout(timeout, sent).await, Ok(Ok(())))
                    }));
                    next_ping
                        .as_mut()
                        .reset(Instant::now() + self.timing.ping_every);
                }
            }
            Event::PingAnswered => {
                if let State::Up { ping, .. } = &mut self.state {
                    *ping = None;
                }
            }
            Event::Lost(why) => {
                tracing::warn!(
                    server = %self.protocol.address(),
                    reason = %why,
                    "the change listener lost its connection; reconnecting (waiters keep \
                     waiting and re-check once it is back)"
                );
                self.retry_later();
            }
            Event::RetryDue => {
                let protocol = self.protocol.clone();
                let timeout = self.timing.subscribe_timeout;
                self.state =
                    State::Connecting(Box::pin(
                        async move { subscribe(&*protocol, timeout).await },
                    ));
            }
            Event::Connected(feed) => {
                tracing::info!(
                    server = %self.protocol.address(),
                    after_failures = self.timing.backoff.failures(),
                    "the change listener is back; every waiter re-checks"
                );
                self.timing.backoff.reset();
                self.state = up(feed, self.timing.ping_every);
                self.figures.connected.store(true, Ordering::Relaxed);
                self.figures.connects.fetch_add(1, Ordering::Relaxed);
                // Messages sent while no connection listened are lost: every waiter reads.
                self.watchers.notify_all();
            }
            Event::ConnectFailed(error) => {
                if self.timing.backoff.failures() == 0 {
                    tracing::warn!(%error, "the change listener could not reconnect; retrying with backoff");
                } else {
                    tracing::debug!(%error, failures = self.timing.backoff.failures(),
                        "the change listener could not reconnect");
                }
                self.retry_later();
            }
        }
    }

    fn retry_later(&mut self) {
        self.figures.connected.store(false, Ordering::Relaxed);
        let delay = self.timing.backoff.next_delay();
        self.state = State::Down(Box::pin(sleep(delay)));
    }
}

fn up<M>(feed: Feed<M>, ping_every: Duration) -> State<M> {
    State::Up {
        feed,
        next_ping: Box::pin(sleep(ping_every)),
        ping: None,
    }
}

async fn subscribe<S: Subscribe>(protocol: &S, timeout: Duration) -> Result<Feed<S::Message>> {
    match tokio::time::timeout(timeout, protocol.subscribe()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Error::Unavailable(format!(
            "{}: no subscription to changes within {timeout:?}",
            protocol.address()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::FutureExt;
    use std::sync::Mutex;

    /// Each subscription is one channel handed over by the test; pings answer as told.
    struct Scripted {
        connections: Mutex<mpsc::UnboundedReceiver<mpsc::UnboundedReceiver<Result<String>>>>,
        ping_answers: Arc<AtomicBool>,
    }

    impl Subscribe for Scripted {
        type Message = String;
        fn subscribe(&self) -> BoxFuture<'static, Result<Feed<String>>> {
            let next = self.connections.lock().unwrap().try_recv();
            let answers = self.ping_answers.clone();
            async move {
                match next {
                    Ok(messages) => Ok(Feed::new(messages.boxed(), move || {
                        let answers = answers.load(Ordering::Relaxed);
                        async move {
                            if answers {
                                Ok(())
                            } else {
                                std::future::pending().await
                            }
                        }
                        .boxed()
                    })),
                    _ => Err(Error::Unavailable("scripted: refused".into())),
                }
            }
            .boxed()
        }
        fn deliver(&self, key: String, watchers: &Watchers) {
            watchers.notify(&key);
        }
        fn address(&self) -> &str {
            "scripted:1"
        }
    }

    fn timing() -> ListenerTiming {
        ListenerTiming {
            subscribe_timeout: Duration::from_millis(100),
            ping_timeout: Duration::from_millis(100),
            ping_every: Duration::from_millis(200),
            backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(5)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_connection_is_replaced_and_every_waiter_rechecks() {
        let (connections, offered) = mpsc::unbounded();
        let (first, messages) = mpsc::unbounded();
        connections.unbounded_send(messages).unwrap();
        let protocol = Scripted {
            connections: Mutex::new(offered),
            ping_answers: Arc::new(AtomicBool::new(true)),
        };
        let watchers = Arc::new(Watchers::default());
        let mut listener = Listener::open(protocol, watchers.clone(), timing())
            .await
            .unwrap();
        let figures = listener.figures();
        let mut watch = watchers.watch("other/key");

        drop(first); // the connection closes
        listener.step().await;
        assert!(!figures.is_connected());
        // The first retry is refused (no connection offered), then one is offered.
        listener.step().await; // retry due
        listener.step().await; // refused
        assert_eq!(figures.connects(), 1);
        let (_second, messages) = mpsc::unbounded();
        connections.unbounded_send(messages).unwrap();
        listener.step().await; // retry due
        listener.step().await; // connected
        assert!(figures.is_connected());
        assert_eq!(figures.connects(), 2);
        // A waiter of a key no message named re-checks after the reconnect.
        assert!(watch.changed().now_or_never().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_stops_answering_pings_is_dropped() {
        let (connections, offered) = mpsc::unbounded();
        let (_first, messages) = mpsc::unbounded();
        connections.unbounded_send(messages).unwrap();
        let answers = Arc::new(AtomicBool::new(false));
        let protocol = Scripted {
            connections: Mutex::new(offered),
            ping_answers: answers,
        };
        let watchers = Arc::new(Watchers::default());
        let mut listener = Listener::open(protocol, watchers, timing()).await.unwrap();
        let figures = listener.figures();
        listener.step().await; // ping due
        assert!(figures.is_connected());
        listener.step().await; // no answer within the timeout
        assert!(!figures.is_connected());
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_subscription_that_fails_fails_open() {
        let (_connections, offered) = mpsc::unbounded();
        let protocol = Scripted {
            connections: Mutex::new(offered),
            ping_answers: Arc::new(AtomicBool::new(true)),
        };
        let error = Listener::open(protocol, Arc::new(Watchers::default()), timing())
            .await
            .err()
            .expect("no connection is offered");
        assert!(error.to_string().contains("scripted: refused"), "{error}");
    }
}
