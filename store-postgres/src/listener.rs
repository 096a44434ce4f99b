//! The listening connection: `LISTEN` on the store's channel, and every notification turned
//! into a wake-up of the waiters of the keys it names.
//!
//! It is a dedicated connection (a pooled one would be handed to batches), driven by the
//! actor's task as one of the futures it polls. When the connection is lost (server
//! restart, network cut, no answer to a ping within `operation_timeout`) notifications
//! may have been missed, so every waiter re-checks its key once `LISTEN` is back: anything
//! written between the loss and the new `LISTEN` is seen by that re-read. Meanwhile waiters
//! keep waiting (their expiry timers still run): an outage is not a change of the key, and
//! a waiter that re-read during it would only learn `Unavailable`. A caller that must not
//! wait through an outage bounds its wait with a timeout, as for any wait. Reconnects back
//! off exponentially, with jitter.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_postgres::{AsyncMessage, NoTls};

use store_core::watch::Watchers;
use store_core::{Error, Result};

use crate::codec::{self, Announced};
use crate::context::Counters;
use crate::names::quote;
use store_core::backoff::Backoff;

/// How often an idle listening connection is checked with an empty query.
const PING_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Listener {
    pub config: tokio_postgres::Config,
    pub channel: String,
    pub watchers: Arc<Watchers>,
    pub counters: Arc<Counters>,
    pub describe: String,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
}

impl Listener {
    /// Listens until dropped. `ready` is answered after the first `LISTEN` succeeds, or with
    /// the first failure (the store's `connect` then fails; later failures only reconnect).
    pub async fn run(self, ready: oneshot::Sender<Result<()>>) {
        let mut ready = Some(ready);
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            let ended = self.session(&mut ready, &mut backoff).await;
            match (ready.take(), ended) {
                (Some(ready), Err(error)) => {
                    let _ = ready.send(Err(error));
                }
                (_, Err(error)) => {
                    tracing::warn!(error = %error, "store-postgres: the listening connection failed; reconnecting");
                }
                (_, Ok(())) => {
                    tracing::warn!(store = %self.describe, "store-postgres: the listening connection closed; reconnecting");
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// One connection: connect, LISTEN, relay notifications until it ends.
    async fn session(
        &self,
        ready: &mut Option<oneshot::Sender<Result<()>>>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let failed = |what: &str, e: tokio_postgres::Error| {
            crate::errors::from_postgres(
                &format!("{}: listening connection: {what}", self.describe),
                &e,
            )
        };
        let (client, mut connection) =
            match tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(failed("connecting", e)),
                Err(_) => {
                    return Err(Error::Unavailable(format!(
                        "{}: listening connection: no connection within {} (connect_timeout)",
                        self.describe,
                        humantime::format_duration(self.connect_timeout)
                    )))
                }
            };
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let listen_sql = format!("LISTEN {}", quote(&self.channel));
        let listen =
            tokio::time::timeout(self.operation_timeout, client.batch_execute(&listen_sql));
        tokio::pin!(listen);
        loop {
            tokio::select! {
                done = &mut listen => match done {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => return Err(failed("LISTEN", e)),
                    Err(_) => return Err(Error::Unavailable(format!(
                        "{}: listening connection: no answer to LISTEN", self.describe))),
                },
                message = messages.next() => match message {
                    Some(Ok(message)) => self.relay(message),
                    Some(Err(e)) => return Err(failed("reading", e)),
                    None => return Err(Error::Unavailable(format!(
                        "{}: listening connection closed before LISTEN", self.describe))),
                },
            }
        }
        self.counters
            .listener_connects
            .fetch_add(1, Ordering::Relaxed);
        backoff.reset();
        // Listening from now on: whatever was written while no connection listened (or
        // before the first one did) is seen by the waiters' re-read.
        self.watchers.notify_all();
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        tracing::debug!(store = %self.describe, channel = %self.channel, "store-postgres: listening");

        let mut ticker = tokio::time::interval(PING_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        type Ping<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
        let mut ping: Option<Ping<'_>> = None;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(Ok(message)) => self.relay(message),
                    Some(Err(e)) => return Err(failed("reading", e)),
                    None => return Ok(()),
                },
                _ = ticker.tick(), if ping.is_none() => {
                    let timeout = self.operation_timeout;
                    let query = client.simple_query("");
                    ping = Some(Box::pin(async move {
                        matches!(tokio::time::timeout(timeout, query).await, Ok(Ok(_)))
                    }));
                }
                alive = async {
                    match ping.as_mut() {
                        Some(ping) => ping.await,
                        None => std::future::pending().await,
                    }
                }, if ping.is_some() => {
                    ping = None;
                    if !alive {
                        return Err(Error::Unavailable(format!(
                            "{}: listening connection: no answer to a ping within {}",
                            self.describe,
                            humantime::format_duration(self.operation_timeout)
                        )));
                    }
                }
            }
        }
    }

    fn relay(&self, message: AsyncMessage) {
        let AsyncMessage::Notification(notification) = message else {
            return;
        };
        self.counters.notifications.fetch_add(1, Ordering::Relaxed);
        match codec::announced(notification.payload()) {
            Announced::Everything => self.watchers.notify_all(),
            Announced::Keys(keys) => keys.iter().for_each(|key| self.watchers.notify(key)),
        }
    }
}
