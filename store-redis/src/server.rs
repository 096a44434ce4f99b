//! The server a store talks to: its parsed URL, its address for messages (never the
//! password), the clients for commands and for the subscription, and how the `redis`
//! crate's errors become `store_core` errors that name the address.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, ProtocolVersion, RedisError, ServerError};
use store_core::Error;

use crate::options::RedisOptions;

/// Where the store's server is and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    /// `host:port`, with `/db` when the database is not 0; what messages name.
    pub address: String,
    pub db: i64,
    commands: Client,
    subscription: Client,
}

impl Server {
    /// Parses `url`; a bad URL is an error that names it (without a password) and says what
    /// is accepted.
    pub fn new(url: &str) -> Result<Self, Error> {
        let commands = Client::open(url).map_err(|e| {
            Error::Backend(format!(
                "invalid Redis URL {}: {e}; expected redis://[user:password@]host[:port][/db]",
                redact(url)
            ))
        })?;
        let info = commands.get_connection_info().clone();
        let db = info.redis_settings().db();
        let address = match db {
            0 => info.addr().to_string(),
            db => format!("{}/{db}", info.addr()),
        };
        // The subscription is a plain RESP2 pub/sub connection whatever the URL asks for:
        // messages then arrive on their own connection, never between command replies.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP2);
        let subscription = Client::open(info.set_redis_settings(settings))
            .map_err(|e| Error::Backend(format!("invalid Redis URL {}: {e}", redact(url))))?;
        Ok(Self {
            address,
            db,
            commands,
            subscription,
        })
    }

    /// A connection manager (a multiplexed connection that reconnects with backoff),
    /// connected once within the connect timeout. Each command on it fails after
    /// `response_timeout` without an answer; `None` leaves bounding the wait to the caller
    /// (which must then do it, as it must anyway for the time a reconnect takes).
    pub async fn connect(
        &self,
        options: &RedisOptions,
        response_timeout: Option<Duration>,
    ) -> Result<ConnectionManager, Error> {
        let config = manager_config(options, response_timeout);
        // The first attempt is made here, by hand, so that an unreachable server is reported
        // with the reason (refused, unknown host, ...) within the connect timeout, rather
        // than after the manager's retries.
        let probe = tokio::time::timeout(
            options.connect_timeout,
            self.commands.get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(options.connect_timeout))
                    .set_response_timeout(Some(options.request_timeout)),
            ),
        )
        .await;
        match probe {
            Err(_) => return Err(self.timed_out("connecting", options.connect_timeout)),
            Ok(Err(error)) => return Err(self.error("connecting", &error)),
            Ok(Ok(_)) => {}
        }
        match tokio::time::timeout(
            options.connect_timeout,
            ConnectionManager::new_with_config(self.commands.clone(), config),
        )
        .await
        {
            Err(_) => Err(self.timed_out("connecting", options.connect_timeout)),
            Ok(Err(error)) => Err(self.error("connecting", &error)),
            Ok(Ok(manager)) => Ok(manager),
        }
    }

    /// The client for command connections (to make a replacement connection from).
    pub fn commands(&self) -> Client {
        self.commands.clone()
    }

    /// A new pub/sub connection (the subscription's), within `timeout`.
    pub async fn pubsub(&self, timeout: Duration) -> Result<redis::aio::PubSub, Error> {
        match tokio::time::timeout(timeout, self.subscription.get_async_pubsub()).await {
            Err(_) => Err(self.timed_out("opening the subscription", timeout)),
            Ok(Err(error)) => Err(self.error("opening the subscription", &error)),
            Ok(Ok(pubsub)) => Ok(pubsub),
        }
    }

    /// A `redis` crate error while `doing` something, as a store error naming the server:
    /// `Unavailable` when the server could not be reached or asked to retry later,
    /// `Backend` for everything else (refused commands, authentication, ...).
    pub fn error(&self, doing: &str, error: &RedisError) -> Error {
        if error.code() == Some(READONLY) {
            return self.read_only(doing, error);
        }
        let message = format!("redis {}: {doing}: {error}", self.address);
        let retry_later = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.code().is_some_and(is_transient_code)
            || matches!(error.kind(), ErrorKind::Server(_) if error.is_cluster_error());
        if retry_later {
            Error::Unavailable(message)
        } else {
            Error::Backend(message)
        }
    }

    /// A server's error reply to one command of a pipeline, as a store error.
    pub fn server_error(&self, doing: &str, error: &ServerError) -> Error {
        if error.code() == READONLY {
            return self.read_only(doing, error);
        }
        let message = format!("redis {}: {doing}: {error}", self.address);
        if is_transient_code(error.code()) {
            Error::Unavailable(message)
        } else {
            Error::Backend(message)
        }
    }

    /// A write refused by a replica: a configuration error, not a retryable one (the store
    /// was pointed at a replica, and every retry would be refused the same way).
    fn read_only(&self, doing: &str, error: &dyn std::fmt::Display) -> Error {
        Error::Backend(format!(
            "redis {}: {doing}: the server is a read-only replica and refuses writes ({error}); \
             point the store at the primary",
            self.address
        ))
    }

    /// The error for a write that reached the server after its caller's deadline: the
    /// server did not apply it, and never will.
    pub fn late(&self, operation: &str) -> Error {
        Error::Unavailable(format!(
            "redis {}: {operation}: the write reached the server after its deadline (the \
             connection was slow or stalled); it was not applied",
            self.address
        ))
    }

    /// The error for a call that got no answer within `limit`.
    pub fn timed_out(&self, doing: &str, limit: Duration) -> Error {
        Error::Unavailable(format!(
            "redis {}: {doing}: no answer within {}; the server is down, unreachable or \
             overloaded (a write in flight was applied before this answer or never will be)",
            self.address,
            humantime::format_duration(limit)
        ))
    }
}

/// How a command connection reconnects and bounds each command (see [`Server::connect`]).
pub(crate) fn manager_config(
    options: &RedisOptions,
    response_timeout: Option<Duration>,
) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(response_timeout)
        .set_min_delay(options.reconnect_min)
        .set_max_delay(options.reconnect_max)
        // A round of attempts with doubling delays; a call waits for it at most its
        // request timeout, and the first call after a failed round starts a new one.
        .set_number_of_retries(RECONNECT_TRIES)
}

/// Reconnect attempts per round (delays `reconnect_min`, doubling, capped at `reconnect_max`).
const RECONNECT_TRIES: usize = 6;

/// The error code of a write refused by a replica.
const READONLY: &str = "READONLY";

/// Error replies that say "not now": the server is loading, busy with a script, or a
/// cluster is reconfiguring. (`READONLY` is not one: it says the store was pointed at a
/// replica, see [`Server::error`].)
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN"
    )
}

/// `url` with any password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:secret@host/0"), "redis://:***@host/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        let error = Server::new("redis://user:secret@[bad").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn addresses_name_host_port_and_database() {
        assert_eq!(
            Server::new("redis://127.0.0.1:6379/0").unwrap().address,
            "127.0.0.1:6379"
        );
        assert_eq!(
            Server::new("redis://localhost:7000/3").unwrap().address,
            "localhost:7000/3"
        );
        let error = Server::new("http://x").unwrap_err();
        assert!(error.to_string().contains("http://x"), "{error}");
    }
}
