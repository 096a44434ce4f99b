//! The reaper: deletes expired rows and announces them, on every instance.
//!
//! Expired rows are already invisible to every statement (each compares `expires_at` with
//! the database's clock), so the reaper is about space and about waiters: a waiter wakes at
//! its record's expiry by its own timer, and the reaper's notification covers a waiter
//! whose clock lags the database's. Each round deletes up to [`REAP_BATCH`] rows, oldest
//! expiry first, in one transaction with its notifications; `FOR UPDATE SKIP LOCKED` lets
//! any number of instances reap one table without waiting for each other or for writers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use store_core::net::Reaped;
use store_core::Result;

use crate::codec;
use crate::context::Context;
use crate::errors;
use crate::sql::REAP_BATCH;

/// Rounds per tick at most, so one tick never holds a connection for long; what is left
/// is taken by the next tick.
const ROUNDS: usize = 10;

/// Records one run reclaims at most (then it runs again at once, see
/// `store_core::net::ReaperSchedule`).
pub(crate) const LIMIT: u64 = ROUNDS as u64 * REAP_BATCH as u64;

/// One run of the reaper: up to [`ROUNDS`] transactions of [`REAP_BATCH`] rows each.
pub(crate) async fn run(context: Arc<Context>) -> Result<Reaped> {
    let mut client = context.connection().await?;
    let outcome = tokio::time::timeout(context.timeout, reap(&context, &mut client)).await;
    let outcome = outcome.unwrap_or_else(|_| {
        Err(errors::timed_out(
            &format!("{}: reaper", context.describe),
            context.timeout,
        ))
    });
    context.release(client, &outcome);
    Ok(Reaped {
        reclaimed: outcome?,
        // Not asked: a run at every interval is cheap (an index range that is empty).
        next_expiry: None,
    })
}

async fn reap(context: &Context, client: &mut crate::pool::Object) -> Result<u64> {
    let failed = |e: tokio_postgres::Error| {
        errors::from_postgres(&format!("{}: reaper", context.describe), &e)
    };
    let mut total = 0;
    for _ in 0..ROUNDS {
        let tx = client.transaction().await.map_err(failed)?;
        let reap = tx
            .prepare_cached(&context.statements.reap)
            .await
            .map_err(failed)?;
        let rows = tx.query(&reap, &[&REAP_BATCH]).await.map_err(failed)?;
        // Lossy: a row some other program wrote with a key that is not UTF-8 is reclaimed
        // all the same, and no waiter of ours can wait on such a key.
        let keys: Vec<String> = rows
            .iter()
            .map(|row| String::from_utf8_lossy(row.get::<_, &[u8]>(0)).into_owned())
            .collect();
        if !keys.is_empty() {
            let notify = tx
                .prepare_cached(&context.statements.notify)
                .await
                .map_err(failed)?;
            let payloads = codec::payloads(keys.iter().map(String::as_str));
            tx.query(&notify, &[&context.names.channel, &payloads])
                .await
                .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        total += keys.len() as u64;
        context
            .counters
            .reaped
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        if (keys.len() as i64) < REAP_BATCH {
            break;
        }
    }
    Ok(total)
}
