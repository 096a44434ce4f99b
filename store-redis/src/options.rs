//! [`RedisOptions`]: everything `connect_with` can be told, with documented defaults.

use std::time::Duration;

/// How to reach the server and how the store behaves; a plain struct, so callers write
/// `RedisOptions { url, prefix, ..Default::default() }`.
///
/// ```
/// use std::time::Duration;
/// use store_redis::RedisOptions;
///
/// let options = RedisOptions {
///     url: "redis://127.0.0.1:6379/0".into(),
///     prefix: "orders".into(),
///     request_timeout: Duration::from_secs(2),
///     ..Default::default()
/// };
/// assert_eq!(options.connections, 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RedisOptions {
    /// The server: `redis://[user:password@]host[:port][/db]` (or `rediss://` where the
    /// `redis` crate was built with TLS). Default `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Every key of the store lives under this prefix (`[A-Za-z0-9._-]+`, at most 255
    /// bytes); stores with different prefixes share one server and never see each other's
    /// keys. Default `store`.
    pub prefix: String,
    /// How long `connect` (and each reconnect attempt) may take to reach the server.
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// The longest any call waits for its answer (time in the queue included), except
    /// `wait_for_version_change`, which waits for a change, and `close`. A call that runs
    /// out fails with `Unavailable` naming the server; a write may then have been applied
    /// or not. Default 5 s.
    pub request_timeout: Duration,
    /// First delay between reconnect attempts after the connection drops; it doubles (with
    /// jitter) up to `reconnect_max`. Default 50 ms.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts. Default 2 s.
    pub reconnect_max: Duration,
    /// How often this instance runs the reaper, which reclaims expired records and tells
    /// every instance's waiters (it also runs when the next known expiry is due). Any
    /// instance may run it; `None` leaves reclaiming to the others (expired records stay
    /// invisible either way). Default 1 s.
    pub reaper_interval: Option<Duration>,
    /// Connections the actor spreads its pipelines over. One multiplexed connection keeps
    /// a loopback or LAN server busy; more help on links with a long round trip. Single-key
    /// reads use one more connection of their own, and the change subscription another.
    /// Default 1.
    pub connections: usize,
    /// Pipelines sent and not yet answered, per connection, before the actor waits for one
    /// (calls queue meanwhile and go in the next, larger, pipeline). Default 2.
    pub pipelines_per_connection: usize,
    /// Most calls in one pipeline. Default 512.
    pub max_batch: usize,
    /// Calls that may wait in the mailbox; callers wait for room beyond that. Default 1024.
    pub mailbox: usize,
    /// Keys scanned per `list_keys` page (one round trip each), at most 4096. Default 256.
    pub page_size: usize,
    /// Replicas that must have every write before it is acknowledged: each pipeline that
    /// writes is followed by `WAIT replicas_to_ack replica_ack_timeout` on its connection.
    /// A write that too few replicas took in time fails with `Unavailable` saying it may or
    /// may not have been kept (the primary applied it; a failover may lose it). With 1 or
    /// more, promoting a replica that acknowledged loses no acknowledged write. Default 0
    /// (Redis's asynchronous replication: a failover may lose the last writes).
    pub replicas_to_ack: usize,
    /// How long `WAIT` waits for the replicas (counted within `request_timeout`). Default 1 s.
    pub replica_ack_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            prefix: "store".to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            reaper_interval: Some(Duration::from_secs(1)),
            connections: 1,
            pipelines_per_connection: 2,
            max_batch: 512,
            mailbox: 1024,
            page_size: 256,
            replicas_to_ack: 0,
            replica_ack_timeout: Duration::from_secs(1),
        }
    }
}
