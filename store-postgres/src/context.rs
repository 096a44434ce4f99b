//! What every batch needs: the pool, the statements, the names, the limits and the
//! counters. Owned by the actor, shared with its batch futures through an `Arc`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use store_core::{Error, Result};
use tokio_postgres::NoTls;

use crate::errors;
use crate::names::Names;
use crate::sql::Statements;

pub(crate) struct Context {
    pub pool: Pool,
    pub statements: Statements,
    pub names: Names,
    /// `postgres 127.0.0.1:5432/test table "orders"`: starts every message.
    pub describe: String,
    /// The bound on one round of statements.
    pub timeout: Duration,
    /// The bound on sending a cancel request after a round timed out.
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
    pub notifications: AtomicU64,
    pub listener_connects: AtomicU64,
    pub reaped: AtomicU64,
}

impl Counters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
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
    /// [`Context::release`]): what every round of statements does.
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
    /// is asked to cancel what the connection runs (a statement waiting on a lock would
    /// otherwise go on, and could still commit, long after its callers were answered), and
    /// the caller drops the connection (see [`Context::release`]).
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
