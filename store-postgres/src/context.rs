//! What every batch needs: the pool, the statements, the names, the limits and the
//! counters. Owned by the actor, shared with its batch futures through an `Arc`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use store_core::{Error, Result};
use tokio_postgres::NoTls;

use crate::errors;
use crate::names::Names;
use crate::pool::{Object, Pool, Session};
use crate::sql::Statements;

pub(crate) struct Context {
    pub pool: Pool,
    /// How to reach the server outside the pool (to end a session whose write timed out).
    pub config: tokio_postgres::Config,
    pub statements: Statements,
    pub names: Names,
    /// `postgres 127.0.0.1:5432/test table "orders"`: starts every message.
    pub describe: String,
    /// The bound on one round of statements.
    pub timeout: Duration,
    /// The bound on reaching the server for a cancel or a termination after a timeout.
    pub connect_timeout: Duration,
    pub counters: Arc<Counters>,
}

/// What the store reports in `stats()`.
#[derive(Default)]
pub(crate) struct Counters {
    pub read_batches: AtomicU64,
    pub reads: AtomicU64,
    pub write_batches: AtomicU64,
    pub writes: AtomicU64,
    /// Write batches rolled back and run again call by call.
    pub replays: AtomicU64,
    /// Rounds that hit `operation_timeout`.
    pub timeouts: AtomicU64,
    /// Sessions ended because a write round on them timed out.
    pub terminated: AtomicU64,
    /// Write transactions the server rolled back because they reached it after their
    /// deadline.
    pub late_writes: AtomicU64,
    /// Reads that met an expired row and read again holding it (see `batch.rs`).
    pub locked_rereads: AtomicU64,
    pub reaped: AtomicU64,
    /// Server histories this instance found changed (a promoted standby, a restored
    /// backup), each moving the version sequence past the old history's versions.
    pub history_changes: AtomicU64,
}

impl Counters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a round that timed out means for its writes.
pub(crate) enum Ended {
    /// The session is gone: whatever it was doing committed before, or never will.
    Terminated,
    /// The session could not be ended (the server is unreachable, or it did not exit in
    /// time); the write's deadline on the server's clock still stops it from committing
    /// later, unless its commit was already under way.
    Unknown(String),
}

impl Context {
    /// A pooled connection, or `Unavailable` naming the server.
    pub async fn connection(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|error| errors::from_pool(&self.describe, error))
    }

    /// Runs `round` on a pooled connection, bounded by the operation timeout (see
    /// [`Context::bounded`]), and gives the connection back or drops it (see
    /// [`Context::release`]): what every round of reads does.
    pub async fn with_connection<T>(
        &self,
        round: impl AsyncFnOnce(&Object) -> Result<T>,
    ) -> Result<T> {
        let client = self.connection().await?;
        let outcome = self.bounded(&client, round(&client)).await;
        self.release(client, &outcome);
        outcome
    }

    /// Runs `round` on `client`, bounded by the operation timeout. On timeout the server
    /// is asked to cancel what the connection runs (so a read stuck behind a lock does not
    /// hold a server process), and the caller drops the connection (see
    /// [`Context::release`]). Writes use [`Context::end_session`] instead, which also makes
    /// sure the write can no longer commit.
    pub async fn bounded<T>(
        &self,
        client: &Object,
        round: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, round).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let cancel = client.cancel_token();
                let cancelled =
                    tokio::time::timeout(self.connect_timeout, cancel.cancel_query(NoTls)).await;
                if !matches!(cancelled, Ok(Ok(()))) {
                    tracing::debug!(store = %self.describe, "store-postgres: the cancel request after a timeout failed");
                }
                Err(errors::timed_out(&self.describe, self.timeout))
            }
        }
    }

    /// Ends `session` from a connection of its own and waits until its backend has exited,
    /// so that a write it was running has committed or rolled back for good before its
    /// callers are answered. Bounded by the connect timeout and the operation timeout.
    pub async fn end_session(&self, session: Session) -> Ended {
        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        let wait_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
        let work = async {
            let (client, connection) =
                tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls))
                    .await
                    .map_err(|_| "no connection within the connect timeout".to_owned())?
                    .map_err(|error| error.to_string())?;
            let task = tokio::spawn(connection);
            // No row: the session is gone already. `true`: it exited. `false`: it did not
            // exit within the wait (the server says so in a warning).
            let ended = client
                .query_opt(
                    "SELECT pg_terminate_backend(a.pid, $3) FROM pg_stat_activity AS a \
                     WHERE a.pid = $1 \
                       AND (extract(epoch from a.backend_start) * 1000000)::int8 = $2",
                    &[&session.pid, &session.started_micros, &wait_ms],
                )
                .await
                .map_err(|error| error.to_string())?
                .is_none_or(|row| row.get::<_, bool>(0));
            drop(client);
            task.abort();
            Ok::<_, String>(ended)
        };
        let bound = self.connect_timeout + self.timeout + Duration::from_secs(1);
        let ended = match tokio::time::timeout(bound, work).await {
            Ok(Ok(true)) => Ended::Terminated,
            Ok(Ok(false)) => Ended::Unknown("the session did not exit in time".into()),
            Ok(Err(why)) => Ended::Unknown(why),
            Err(_) => Ended::Unknown("no answer to the termination".into()),
        };
        match &ended {
            Ended::Terminated => {
                self.counters.terminated.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(store = %self.describe, pid = session.pid, "store-postgres: a write round timed out; its session was ended");
            }
            Ended::Unknown(why) => {
                tracing::warn!(store = %self.describe, pid = session.pid, %why, "store-postgres: a write round timed out and its session could not be ended; its deadline stops it from committing late")
            }
        }
        ended
    }

    /// Gives `client` back to the pool, unless the round failed with `Unavailable`: then
    /// the connection may be broken or in the middle of a transaction, and is closed.
    pub fn release<T>(&self, client: Object, outcome: &Result<T>) {
        if matches!(outcome, Err(Error::Unavailable(_))) {
            // Dropping the client ends its connection; the pool opens a new one on demand.
            drop(Object::take(client));
        } else {
            drop(client);
        }
    }
}
