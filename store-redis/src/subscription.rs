//! The subscription to the store's change channel, owned by the actor: it turns change
//! messages into wake-ups of this process's waiters, and keeps itself alive.
//!
//! Waiters never trust a message (see `store_core::watch`): a message only makes the
//! waiters of its keys read again. So the subscription's one duty is to never let a change
//! go unannounced. While the connection is down, messages are lost; so after every
//! reconnect, once the server has confirmed the subscription, every waiter of this process
//! re-reads ([`Watchers::notify_all`]): a change made while we were away is then seen by the
//! read, and one made after the confirmation arrives as a message.
//!
//! A waiter does not fail because the subscription is down; it keeps waiting and re-checks
//! after the reconnect. (Its reads, like every call, fail with `Unavailable` while the
//! server cannot be reached; a waiter that must give up uses a timeout.) A connection that
//! died without closing is found by a `PING` every request timeout (at least every second,
//! at most every 30 s) that gets no answer within the request timeout.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use store_core::watch::Watchers;
use store_core::Result;
use tokio::time::{sleep, Instant, Sleep};

use crate::layout::decode_changes;
use crate::server::Server;
use crate::stats::Counters;
use store_core::backoff::Backoff;

/// How often the subscription is checked with `PING`, for a given request timeout.
fn ping_interval(timeout: Duration) -> Duration {
    timeout.clamp(Duration::from_secs(1), Duration::from_secs(30))
}

pub(crate) struct Subscription {
    server: Arc<Server>,
    channel: Arc<[u8]>,
    watchers: Arc<Watchers>,
    counters: Arc<Counters>,
    timeout: Duration,
    backoff: Backoff,
    state: State,
}

enum State {
    Up {
        sink: PubSubSink,
        stream: PubSubStream,
        next_ping: Pin<Box<Sleep>>,
        /// A `PING` in flight: resolves to whether it was answered in time.
        ping: Option<BoxFuture<'static, bool>>,
    },
    Connecting(BoxFuture<'static, Result<(PubSubSink, PubSubStream)>>),
    Down(Pin<Box<Sleep>>),
}

/// What one step saw.
enum Event {
    Message(redis::Msg),
    Lost(String),
    PingDue,
    PingAnswered,
    Connected(PubSubSink, PubSubStream),
    ConnectFailed(store_core::Error),
    RetryDue,
}

impl Subscription {
    /// Subscribes to `channel`; fails (naming the server) if that is not done within
    /// `timeout`.
    pub async fn open(
        server: Arc<Server>,
        channel: &[u8],
        watchers: Arc<Watchers>,
        counters: Arc<Counters>,
        timeout: Duration,
        backoff: Backoff,
    ) -> Result<Self> {
        let channel: Arc<[u8]> = channel.into();
        let (sink, stream) = subscribe(server.clone(), channel.clone(), timeout).await?;
        counters.subscribed.store(true, Ordering::Relaxed);
        Ok(Self {
            server,
            channel,
            watchers,
            counters,
            timeout,
            backoff,
            state: up(sink, stream, timeout),
        })
    }

    /// Waits for the next event (a message, a lost connection, a reconnect, a ping) and
    /// handles it. Cancel-safe: everything in progress lives in `self`, so the actor can
    /// poll this in a `select!` beside its other work.
    pub async fn step(&mut self) {
        let event = match &mut self.state {
            State::Up {
                stream,
                next_ping,
                ping,
                ..
            } => {
                let ping_idle = ping.is_none();
                let ping_answer = async {
                    match ping.as_mut() {
                        Some(ping) => ping.await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => Event::Message(message),
                        None => Event::Lost("the connection closed".to_owned()),
                    },
                    answered = ping_answer => if answered {
                        Event::PingAnswered
                    } else {
                        Event::Lost(format!(
                            "no answer to PING within {}",
                            humantime::format_duration(self.timeout)
                        ))
                    },
                    () = next_ping.as_mut(), if ping_idle => Event::PingDue,
                }
            }
            State::Connecting(connecting) => match connecting.await {
                Ok((sink, stream)) => Event::Connected(sink, stream),
                Err(error) => Event::ConnectFailed(error),
            },
            State::Down(retry) => {
                retry.as_mut().await;
                Event::RetryDue
            }
        };
        self.handle(event);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Message(message) => {
                Counters::add(&self.counters.messages, 1);
                if self.watchers.is_empty() {
                    return;
                }
                let watchers = &self.watchers;
                if !decode_changes(message.get_payload_bytes(), |key| watchers.notify(key)) {
                    tracing::warn!(
                        server = %self.server.address,
                        "a malformed change message; every waiter re-checks"
                    );
                    watchers.notify_all();
                }
            }
            Event::PingDue => {
                if let State::Up {
                    sink,
                    ping,
                    next_ping,
                    ..
                } = &mut self.state
                {
                    let mut sink = sink.clone();
                    let timeout = self.timeout;
                    *ping = Some(
                        async move {
                            matches!(
                                tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await,
                                Ok(Ok(_))
                            )
                        }
                        .boxed(),
                    );
                    next_ping
                        .as_mut()
                        .reset(Instant::now() + ping_interval(self.timeout));
                }
            }
            Event::PingAnswered => {
                if let State::Up { ping, .. } = &mut self.state {
                    *ping = None;
                }
            }
            Event::Lost(why) => {
                tracing::warn!(
                    server = %self.server.address,
                    reason = %why,
                    "the change subscription was lost; reconnecting (waiters keep waiting and \
                     re-check once it is back)"
                );
                self.retry_later();
            }
            Event::RetryDue => {
                let (server, channel, timeout) =
                    (self.server.clone(), self.channel.clone(), self.timeout);
                self.state = State::Connecting(subscribe(server, channel, timeout).boxed());
            }
            Event::Connected(sink, stream) => {
                tracing::info!(
                    server = %self.server.address,
                    after_failures = self.backoff.failures(),
                    "the change subscription is back; every waiter re-checks"
                );
                self.backoff.reset();
                self.state = up(sink, stream, self.timeout);
                self.counters.subscribed.store(true, Ordering::Relaxed);
                Counters::add(&self.counters.resubscribes, 1);
                // Messages sent while we were away are lost: every waiter reads again.
                self.watchers.notify_all();
            }
            Event::ConnectFailed(error) => {
                if self.backoff.failures() == 0 {
                    tracing::warn!(%error, "resubscribing failed; retrying with backoff");
                } else {
                    tracing::debug!(%error, failures = self.backoff.failures(), "resubscribing failed");
                }
                self.retry_later();
            }
        }
    }

    fn retry_later(&mut self) {
        self.counters.subscribed.store(false, Ordering::Relaxed);
        let delay = self.backoff.next_delay();
        self.state = State::Down(Box::pin(sleep(delay)));
    }
}

fn up(sink: PubSubSink, stream: PubSubStream, timeout: Duration) -> State {
    State::Up {
        sink,
        stream,
        next_ping: Box::pin(sleep(ping_interval(timeout))),
        ping: None,
    }
}

/// Opens a pub/sub connection and subscribes to `channel`; done once the server confirmed.
async fn subscribe(
    server: Arc<Server>,
    channel: Arc<[u8]>,
    timeout: Duration,
) -> Result<(PubSubSink, PubSubStream)> {
    let (mut sink, stream) = server.pubsub(timeout).await?.split();
    match tokio::time::timeout(timeout, sink.subscribe(&channel[..])).await {
        Err(_) => Err(server.timed_out("subscribing to changes", timeout)),
        Ok(Err(error)) => Err(server.error("subscribing to changes", &error)),
        Ok(Ok(())) => Ok((sink, stream)),
    }
}
