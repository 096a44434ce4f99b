//! The store's change channel as a [`Subscribe`] protocol: how the shared
//! [`Listener`](store_core::net::Listener) subscribes on Redis, checks the connection with
//! `PING`, and turns a change message into wake-ups of this process's waiters.
//!
//! Everything else (reconnecting with backoff, making every waiter re-check after a
//! reconnect, dropping a connection that stopped answering) is the listener's, written once
//! in store-core for every network backend.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use store_core::net::{Feed, Listener, ListenerTiming, Subscribe};
use store_core::watch::Watchers;
use store_core::{BoxFuture, Result};

use crate::layout::decode_changes;
use crate::server::Server;

/// The listener a Redis store's actor drives.
pub(crate) type Subscription = Listener<Changes>;

/// How often the subscription is checked with `PING`, for a given request timeout.
pub(crate) fn ping_interval(timeout: Duration) -> Duration {
    timeout.clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Subscribes to `channel` and keeps the subscription; fails (naming the server) if the
/// first subscription is not made within `timing.subscribe_timeout`.
pub(crate) async fn open(
    server: Arc<Server>,
    channel: &[u8],
    watchers: Arc<Watchers>,
    timing: ListenerTiming,
) -> Result<Subscription> {
    let changes = Changes {
        server,
        channel: channel.into(),
        timeout: timing.subscribe_timeout,
    };
    Listener::open(changes, watchers, timing).await
}

/// Redis pub/sub on the store's change channel.
pub(crate) struct Changes {
    server: Arc<Server>,
    channel: Arc<[u8]>,
    timeout: Duration,
}

impl Subscribe for Changes {
    type Message = redis::Msg;

    fn subscribe(&self) -> BoxFuture<'static, Result<Feed<redis::Msg>>> {
        let (server, channel, timeout) = (self.server.clone(), self.channel.clone(), self.timeout);
        async move {
            let (mut sink, stream) = server.pubsub(timeout).await?.split();
            sink.subscribe(&channel[..])
                .await
                .map_err(|error| server.error("subscribing to changes", &error))?;
            let ping = move || {
                let (mut sink, server) = (sink.clone(), server.clone());
                async move {
                    sink.ping::<redis::Value>()
                        .await
                        .map(drop)
                        .map_err(|error| server.error("pinging the subscription", &error))
                }
                .boxed()
            };
            Ok(Feed::new(stream.map(Ok).boxed(), ping))
        }
        .boxed()
    }

    fn deliver(&self, message: redis::Msg, watchers: &Watchers) {
        if watchers.is_empty() {
            return;
        }
        if !decode_changes(message.get_payload_bytes(), |key| watchers.notify(key)) {
            tracing::warn!(
                server = %self.server.address,
                "a malformed change message; every waiter re-checks"
            );
            watchers.notify_all();
        }
    }

    fn address(&self) -> &str {
        &self.server.address
    }
}
