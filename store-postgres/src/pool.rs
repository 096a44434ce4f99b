//! The connection pool: deadpool-postgres's connections, each carrying what a write needs to
//! know about its server session.
//!
//! - **The session**: its backend pid and start time. A write round that times out may
//!   still be running on the server (its bytes delayed, or its statement waiting on a
//!   lock), and PostgreSQL does not stop a statement because its client gave up. So before
//!   its callers are answered, the session is terminated from a fresh connection
//!   (`pg_terminate_backend(pid, wait)`, which returns once the backend has exited: its
//!   transaction has then committed or rolled back for good). The start time makes sure
//!   that a pid reused by a later session is never taken for it.
//! - **The server's clock**, sampled when the connection is made and again by every write
//!   round (see [`store_core::net::ServerClock`]): each write transaction ends with a check
//!   of its deadline on the server's clock, so a write whose round reaches the server late
//!   rolls back instead of committing after its callers were told it failed.
//!
//! deadpool-postgres's own manager does the connecting and recycling; this one wraps it to
//! take those two samples once per connection.

use std::ops::{Deref, DerefMut};
use std::time::Instant;

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_postgres::ClientWrapper;
use store_core::net::ServerClock;

/// What a connection's first query reads: the session and the server's clock.
const SESSION: &str = "SELECT pg_backend_pid(), \
     (extract(epoch from clock_timestamp()) * 1000000)::int8, \
     (extract(epoch from (SELECT a.backend_start FROM pg_stat_activity AS a \
                          WHERE a.pid = pg_backend_pid())) * 1000000)::int8";

pub(crate) type Pool = managed::Pool<Manager>;
pub(crate) type Object = managed::Object<Manager>;
pub(crate) type PoolError = managed::PoolError<tokio_postgres::Error>;

/// Makes [`Conn`]s with deadpool-postgres's manager.
pub(crate) struct Manager {
    pub inner: deadpool_postgres::Manager,
    /// The statements every connection prepares as it is made, once the table exists (set
    /// after the migration). A round then never waits for a `Prepare` of its own: its
    /// statements go out in one pipelined write, whole, which is also what makes a round
    /// delayed on the wire arrive as a whole or not at all.
    pub statements: std::sync::OnceLock<Vec<String>>,
}

/// Prepares `statements` on `client` (into its statement cache).
pub(crate) async fn prepare_all(
    client: &ClientWrapper,
    statements: &[String],
) -> Result<(), tokio_postgres::Error> {
    let prepares = statements.iter().map(|sql| client.prepare_cached(sql));
    for prepared in futures::future::join_all(prepares).await {
        prepared?;
    }
    Ok(())
}

/// A server session: which backend, started when (µs since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub pid: i32,
    pub started_micros: i64,
}

/// A pooled connection with its session and the latest sample of the server's clock.
pub(crate) struct Conn {
    client: ClientWrapper,
    pub session: Session,
    pub clock: ServerClock,
    /// Whether the server's history was checked on this connection (before its first
    /// write; see `schema.rs`).
    pub history_checked: bool,
}

impl Deref for Conn {
    type Target = ClientWrapper;
    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.client
    }
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Conn, tokio_postgres::Error> {
        let client = managed::Manager::create(&self.inner).await?;
        let sent = Instant::now();
        let row = client.query_one(SESSION, &[]).await?;
        let received = Instant::now();
        let started: Option<i64> = row.get(2);
        if let Some(statements) = self.statements.get() {
            prepare_all(&client, statements).await?;
        }
        Ok(Conn {
            session: Session {
                pid: row.get(0),
                // Visible to the session itself whatever the role's rights; 0 only if the
                // row were hidden, and then termination finds no session (and says so).
                started_micros: started.unwrap_or(0),
            },
            clock: ServerClock::sample(sent, row.get(1), received),
            history_checked: false,
            client,
        })
    }

    async fn recycle(&self, conn: &mut Conn, metrics: &Metrics) -> RecycleResult<Self::Error> {
        managed::Manager::recycle(&self.inner, &mut conn.client, metrics).await
    }

    fn detach(&self, conn: &mut Conn) {
        managed::Manager::detach(&self.inner, &mut conn.client);
    }
}
