//! The actor: the one task that owns the pool, the listening connection and the reaper.
//!
//! It drains its mailbox into two queues, reads and writes, and keeps batches in flight:
//! at most **one write batch** (so batches of one process never lock rows against each
//! other, and every write that arrives while a batch commits rides in the next one: group
//! commit), and up to `pool_size - 1` **read batches** (reads never wait behind a commit's
//! WAL flush). A queue is sent as one batch as soon as its lane is free, so under load
//! batches grow by themselves and each round trip serves many callers; alone, a call goes
//! out at once.
//!
//! Linearizability: a call is answered only after its statement ran (and, for writes, its
//! transaction committed), and a batch is formed only from calls already received, so a
//! call that starts after another returned runs in a later statement, whose snapshot sees
//! everything committed before it.
//!
//! Closing: calls not yet dispatched are answered `Closed`, batches in flight finish (each
//! bounded by `operation_timeout`), the pool is closed, every waiter re-checks (and, the
//! handle being closed, gets `Closed`), and `close` returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use store_core::net::mailbox::Inbox;
use store_core::net::{ListenerFigures, Reaped, ReaperSchedule};
use store_core::watch::Watchers;
use store_core::{ComponentStats, Error, Figure, Result, Stats};

use crate::batch;
use crate::command::{Answer, Op, Read, Reply, Write};
use crate::context::{Context, Counters};
use crate::listener::Listening;
use crate::reaper;

/// Calls taken out of the mailbox and not yet dispatched, at most. The actor keeps calls
/// waiting while a batch is in flight, so that the next batch carries all that arrived
/// meanwhile; it takes no more than this, or the mailbox's bound would stop protecting
/// memory: beyond it, callers wait in `send` (back-pressure).
const MAX_WAITING: usize = 4096;
/// Calls in one write batch at most (one transaction; bounded so one commit stays short).
const MAX_WRITE_BATCH: usize = 512;
/// Calls in one read batch at most.
const MAX_READ_BATCH: usize = 512;

/// Which kind of work finished.
enum Done {
    Reads,
    Writes,
    Reaper(Result<Reaped>),
    Other,
}

type InFlight = FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send>>>;

pub(crate) struct Actor {
    pub context: Arc<Context>,
    pub inbox: Inbox<Op, Reply>,
    pub watchers: Arc<Watchers>,
    pub counters: Arc<Counters>,
    pub reaper_interval: Duration,
    pub read_lanes: usize,
}

impl Actor {
    /// Runs until closed or until every handle is gone; `listener` is driven alongside.
    pub async fn run(mut self, mut listener: Listening) {
        let listener_figures = listener.figures();
        let mut reads: Vec<Read> = Vec::new();
        let mut writes: Vec<Write> = Vec::new();
        let mut reads_in_flight = 0usize;
        let mut write_in_flight = false;
        let mut in_flight = InFlight::new();
        let mut reaping = ReaperSchedule::new(Some(self.reaper_interval), reaper::LIMIT);
        // A panic or a vanished runtime tells the handles why; `close` disarms it.
        let mut stop_guard = self.inbox.stop_guard("postgres", || {});

        let closing: Option<Answer> = loop {
            let waiting = reads.len() + writes.len();
            tokio::select! {
                received = self.inbox.next_batch(MAX_WAITING - waiting),
                    if waiting < MAX_WAITING => {
                    let Some(received) = received else {
                        break None; // every handle is gone
                    };
                    let mut close = None;
                    for call in received {
                        let (op, answer) = call.into_parts();
                        match op {
                            Op::Read(op) => reads.push(Read { op, answer }),
                            Op::Write(op) => writes.push(Write { op, answer }),
                            Op::Stats => {
                                let context = self.context.clone();
                                let counters = self.counters.clone();
                                let waiters = self.watchers.len();
                                let listener = listener_figures.clone();
                                in_flight.push(Box::pin(async move {
                                    let stats =
                                        stats(&context, &counters, &listener, waiters).await;
                                    answer.send(stats.map(Reply::Stats));
                                    Done::Other
                                }));
                            }
                            Op::Close => close = Some(answer),
                        }
                    }
                    if let Some(answer) = close {
                        break Some(answer);
                    }
                }
                Some(done) = in_flight.next() => match done {
                    Done::Reads => reads_in_flight -= 1,
                    Done::Writes => write_in_flight = false,
                    Done::Reaper(outcome) => reaping.finished(outcome),
                    Done::Other => {}
                },
                () = reaping.due() => {
                    reaping.start();
                    let context = self.context.clone();
                    in_flight.push(Box::pin(async move {
                        Done::Reaper(reaper::run(context).await)
                    }));
                }
                () = listener.step() => {}
            }

            // A call whose caller gave up (dropped its future) is never sent.
            writes.retain(|write| !write.answer.is_abandoned());
            reads.retain(|read| !read.answer.is_abandoned());
            if !write_in_flight && !writes.is_empty() {
                let batch = take_writes(&mut writes, MAX_WRITE_BATCH);
                write_in_flight = true;
                self.counters
                    .write_batches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.counters
                    .writes
                    .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let context = self.context.clone();
                in_flight.push(Box::pin(async move {
                    batch::run_writes(context, batch).await;
                    Done::Writes
                }));
            }
            while reads_in_flight < self.read_lanes && !reads.is_empty() {
                let batch = take(&mut reads, MAX_READ_BATCH);
                reads_in_flight += 1;
                self.counters
                    .read_batches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.counters
                    .reads
                    .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let context = self.context.clone();
                in_flight.push(Box::pin(async move {
                    batch::run_reads(context, batch).await;
                    Done::Reads
                }));
            }
        };

        stop_guard.disarm();
        // Calls that were queued when the store closed are answered `Closed`.
        self.inbox.close().await;
        for call in reads
            .into_iter()
            .map(|r| r.answer)
            .chain(writes.into_iter().map(|w| w.answer))
        {
            call.send(Err(Error::Closed));
        }
        // Batches in flight finish (each bounded by the operation timeout).
        while in_flight.next().await.is_some() {}
        self.context.pool.close();
        self.watchers.notify_all();
        if let Some(answer) = closing {
            answer.send(Ok(Reply::Done));
        }
        tracing::debug!(store = %self.context.describe, "store-postgres: stopped");
    }
}

/// The writes of the next batch: the first `max` of `queue`, but never a write that
/// touches a key to which an earlier write of the batch stores a record with an expiry.
///
/// A batch's statements see each other's writes before its commit makes them visible to
/// anyone else. Had a later statement of the batch seen such a record (a create meeting
/// it, a CAS matching it), the write must have happened before the record expired; if it
/// expired before the commit, a read on another connection that saw the old row after that
/// moment could not be ordered with it. So that write waits for the next batch, which sees
/// the record only once it is committed, judged by a clock read after the commit.
fn take_writes(queue: &mut Vec<Write>, max: usize) -> Vec<Write> {
    let mut expiring: Vec<&[u8]> = Vec::new();
    let mut end = 0;
    for write in queue.iter().take(max) {
        if expiring.iter().any(|key| write.op.touches(key)) {
            break;
        }
        expiring.extend(write.op.expiring_writes());
        end += 1;
    }
    let rest = queue.split_off(end);
    std::mem::replace(queue, rest)
}

/// The first `max` items of `queue` (all of them when fewer), keeping their order.
fn take<T>(queue: &mut Vec<T>, max: usize) -> Vec<T> {
    if queue.len() <= max {
        std::mem::take(queue)
    } else {
        let rest = queue.split_off(max);
        std::mem::replace(queue, rest)
    }
}

async fn stats(
    context: &Context,
    counters: &Counters,
    listener: &ListenerFigures,
    waiters: usize,
) -> Result<Stats> {
    let (rows, bytes) = context
        .with_connection(async |client| {
            let row = client
                .query_one(&context.statements.size, &[])
                .await
                .map_err(|e| crate::errors::from_postgres(&context.describe, &e))?;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })
        .await?;
    let status = context.pool.status();
    let get = Counters::get;
    let detail = context
        .describe
        .strip_prefix("postgres ")
        .unwrap_or(&context.describe)
        .to_owned();
    let component = ComponentStats::new("postgres", detail)
        // reltuples is -1 before the table's first VACUUM/ANALYZE: report 0 then.
        .with("rows_estimate", Figure::Count(rows.max(0) as u64))
        .with("table_bytes", Figure::Bytes(bytes.max(0) as u64))
        .with("pool_size", Figure::Count(status.max_size as u64))
        .with("pool_open", Figure::Count(status.size as u64))
        .with("pool_idle", Figure::Count(status.available as u64))
        .with("read_batches", Figure::Count(get(&counters.read_batches)))
        .with("reads", Figure::Count(get(&counters.reads)))
        .with("write_batches", Figure::Count(get(&counters.write_batches)))
        .with("writes", Figure::Count(get(&counters.writes)))
        .with("replayed_batches", Figure::Count(get(&counters.replays)))
        .with("timeouts", Figure::Count(get(&counters.timeouts)))
        .with("sessions_ended", Figure::Count(get(&counters.terminated)))
        .with(
            "late_writes_refused",
            Figure::Count(get(&counters.late_writes)),
        )
        .with(
            "locked_rereads",
            Figure::Count(get(&counters.locked_rereads)),
        )
        .with("waiting_keys", Figure::Count(waiters as u64))
        .with("notifications", Figure::Count(listener.messages()))
        .with("listener_connects", Figure::Count(listener.connects()))
        .with("reaped", Figure::Count(get(&counters.reaped)))
        .with(
            "history_changes",
            Figure::Count(get(&counters.history_changes)),
        );
    Ok(Stats {
        components: vec![component],
    })
}
