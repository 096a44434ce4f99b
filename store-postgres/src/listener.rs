//! The listening connection as a [`Subscribe`] protocol: how the shared
//! [`Listener`](store_core::net::Listener) opens a dedicated connection and `LISTEN`s on
//! the store's channel, checks it with an empty query, and turns a notification into
//! wake-ups of the waiters of the keys it names.
//!
//! It is a dedicated connection (a pooled one would be handed to batches), driven by the
//! actor's task. Reconnecting with backoff, the re-check of every waiter once `LISTEN` is
//! back (notifications may have been missed while no connection listened) and replacing a
//! connection that stopped answering are the listener's, written once in store-core.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio_postgres::{AsyncMessage, NoTls, Notification};

use store_core::backoff::Backoff;
use store_core::net::{Feed, Listener, ListenerTiming, Subscribe};
use store_core::watch::Watchers;
use store_core::{BoxFuture, Error, Result};

use crate::codec::{self, Announced};
use crate::names::quote;

/// How often an idle listening connection is checked with an empty query.
const PING_EVERY: Duration = Duration::from_secs(10);

/// The listener a PostgreSQL store's actor drives.
pub(crate) type Listening = Listener<Notifications>;

/// `LISTEN` on the store's channel.
pub(crate) struct Notifications {
    pub config: tokio_postgres::Config,
    pub channel: String,
    pub describe: String,
    pub connect_timeout: Duration,
}

impl Notifications {
    /// Listens for the first time (the store's `connect` fails if that fails) and keeps
    /// listening: pings every ten seconds, each answered within `operation_timeout`.
    pub async fn listen(
        self,
        watchers: Arc<Watchers>,
        operation_timeout: Duration,
    ) -> Result<Listening> {
        let timing = ListenerTiming {
            subscribe_timeout: self.connect_timeout + operation_timeout,
            ping_timeout: operation_timeout,
            ping_every: PING_EVERY,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(5)),
        };
        Listener::open(self, watchers, timing).await
    }
}

impl Subscribe for Notifications {
    type Message = Notification;

    fn subscribe(&self) -> BoxFuture<'static, Result<Feed<Notification>>> {
        let config = self.config.clone();
        let describe = self.describe.clone();
        let connect_timeout = self.connect_timeout;
        let listen_sql = format!("LISTEN {}", quote(&self.channel));
        async move {
            let unavailable = {
                let describe = describe.clone();
                move |what: &str| {
                    Error::Unavailable(format!("{describe}: listening connection: {what}"))
                }
            };
            let failed = move |what: &str, e: tokio_postgres::Error| {
                crate::errors::from_postgres(
                    &format!("{describe}: listening connection: {what}"),
                    &e,
                )
            };
            let (client, mut connection) =
                match tokio::time::timeout(connect_timeout, config.connect(NoTls)).await {
                    Ok(Ok(pair)) => pair,
                    Ok(Err(e)) => return Err(failed("connecting", e)),
                    Err(_) => {
                        return Err(unavailable(&format!(
                            "no connection within {} (connect_timeout)",
                            humantime::format_duration(connect_timeout)
                        )))
                    }
                };
            // The connection must be polled for the client's queries to progress, and it
            // is also where notifications arrive: one stream serves both.
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            {
                let listen = client.batch_execute(&listen_sql);
                tokio::pin!(listen);
                loop {
                    tokio::select! {
                        done = &mut listen => match done {
                            Ok(()) => break,
                            Err(e) => return Err(failed("LISTEN", e)),
                        },
                        message = messages.next() => match message {
                            // Nothing can be notified to us before LISTEN is done.
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Err(failed("reading", e)),
                            None => return Err(unavailable("closed before LISTEN")),
                        },
                    }
                }
            }
            let notifications = messages.filter_map(move |message| {
                std::future::ready(match message {
                    Ok(AsyncMessage::Notification(notification)) => Some(Ok(notification)),
                    Ok(_) => None,
                    Err(e) => Some(Err(failed("reading", e))),
                })
            });
            let client = Arc::new(client);
            let ping = move || {
                let (client, unavailable) = (client.clone(), unavailable.clone());
                async move {
                    client
                        .simple_query("")
                        .await
                        .map(drop)
                        .map_err(|e| unavailable(&format!("ping: {e}")))
                }
                .boxed()
            };
            Ok(Feed::new(notifications.boxed(), ping))
        }
        .boxed()
    }

    fn deliver(&self, notification: Notification, watchers: &Watchers) {
        match codec::announced(notification.payload()) {
            Announced::Everything => watchers.notify_all(),
            Announced::Keys(keys) => keys.iter().for_each(|key| watchers.notify(key)),
        }
    }

    fn address(&self) -> &str {
        &self.describe
    }
}
