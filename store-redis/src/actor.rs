//! The actor: one task that owns the store's connections and its subscription.
//!
//! ```text
//!  handles ──calls──► mailbox ──recv_many──► batch ──one pipeline──► Redis
//!     ▲                                        │    (EVALSHA of the script per chunk)
//!     └──────────── answers ◄── decode ◄───────┘
//!  subscription ──change messages──► Watchers::notify ──► waiters re-read
//!  reaper timer ──EVALSHA reap──► Redis (reclaims expired records, publishes them)
//! ```
//!
//! The loop takes every queued call at once and sends them as one pipeline while up to
//! `connections × pipelines_per_connection` earlier pipelines are still unanswered; calls
//! that arrive meanwhile wait in the mailbox and go in the next, larger, batch. That is the
//! network version of group commit: the busier the store, the more calls share a round trip.
//!
//! Every pipeline is bounded by the request timeout; a pipeline that fails (no answer, a
//! lost connection) fails its calls with `Unavailable`, and the connection manager
//! reconnects with backoff. A pipeline's calls may have been applied or not when it fails;
//! calls still in the mailbox when their caller gave up are never sent.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use redis::Value;
use store_core::net::{Reaped, ReaperSchedule, ServerClock};
use store_core::watch::Watchers;
use store_core::{Error, Result};

use crate::command::{Op, RedisCall, RedisInbox, Reply};
use crate::layout::Layout;
use crate::link::{Lease, Link};
use crate::options::RedisOptions;
use crate::script;
use crate::server::Server;
use crate::stats::Counters;
use crate::subscription::Subscription;
use store_core::net::mailbox::Answer;

/// Most bytes of arguments in one script call; a larger batch is split into several calls
/// (in the same pipeline), so that no single call keeps the server busy for long. An
/// operation is never split: a `put_many` is one call whatever its size.
const CHUNK_BYTES: usize = 1 << 20;

/// Most expired records one reaper run reclaims; a run that reclaims this many runs again
/// at once.
pub(crate) const REAP_LIMIT: usize = 256;

/// A reaper run in flight.
type Reaping = BoxFuture<'static, Result<Reaped>>;

/// What every pipeline needs; shared by the pipelines in flight.
pub(crate) struct Context {
    pub server: Arc<Server>,
    pub layout: Layout,
    pub sha: String,
    /// This process's random tag, used by the script if it has to start a new version epoch.
    pub tag: String,
    pub request_timeout: Duration,
    /// Replicas that must take each write before it is acknowledged (`WAIT`), and for how
    /// long `WAIT` waits for them.
    pub replicas_to_ack: usize,
    pub replica_ack_timeout: Duration,
    pub counters: Arc<Counters>,
    /// The server's clock, sampled at connect and by every script answer (each carries the
    /// server's `TIME`): what turns a caller's deadline into the server time the script
    /// enforces.
    pub clock: Arc<SharedClock>,
}

/// The freshest [`ServerClock`] sample, shared by the pipelines and the reader.
#[derive(Debug)]
pub(crate) struct SharedClock(std::sync::Mutex<ServerClock>);

impl SharedClock {
    pub fn new(sample: ServerClock) -> Self {
        Self(std::sync::Mutex::new(sample))
    }

    /// Keeps `sample` if it bounds the server's time better than the one held.
    pub fn offer(&self, sample: ServerClock) {
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = held.better(sample);
    }

    /// The server time by which a write with local `deadline` must have been applied.
    pub fn deadline(&self, deadline: std::time::Instant) -> i64 {
        let held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.no_later_than(deadline)
    }
}

pub(crate) struct Actor {
    context: Arc<Context>,
    links: Vec<Arc<Link>>,
    next_link: usize,
    in_flight: FuturesUnordered<BoxFuture<'static, ()>>,
    max_in_flight: usize,
    max_batch: usize,
    subscription: Subscription,
    watchers: Arc<Watchers>,
    reaper: ReaperSchedule,
    reaping: Option<Reaping>,
}

impl Actor {
    pub fn new(
        context: Arc<Context>,
        links: Vec<Arc<Link>>,
        subscription: Subscription,
        watchers: Arc<Watchers>,
        options: &RedisOptions,
    ) -> Self {
        let max_in_flight = links.len() * options.pipelines_per_connection.max(1);
        Self {
            context,
            links,
            next_link: 0,
            in_flight: FuturesUnordered::new(),
            max_in_flight,
            max_batch: options.max_batch.max(1),
            subscription,
            watchers,
            reaper: ReaperSchedule::new(options.reaper_interval, REAP_LIMIT as u64),
            reaping: None,
        }
    }

    /// Runs until `close` or until every handle is gone.
    pub async fn run(mut self, mut inbox: RedisInbox) {
        let mut guard = inbox.stop_guard("redis", {
            // However the actor stops, waiters re-check, and their reads then fail with
            // Closed or Stopped instead of waiting forever.
            let watchers = self.watchers.clone();
            move || watchers.notify_all()
        });
        let close = loop {
            let can_send = self.in_flight.len() < self.max_in_flight;
            tokio::select! {
                // Pipelines that ended come first: one that timed out replaces its stuck
                // connection before the next batch is sent, so that batch goes out on the
                // new one (a caller whose call timed out may send its next call at once).
                biased;
                Some(()) = self.in_flight.next(), if !self.in_flight.is_empty() => {}
                batch = inbox.next_batch(self.max_batch), if can_send => match batch {
                    None => break None,
                    Some(batch) => {
                        if let Some(close) = self.dispatch(batch) {
                            break Some(close);
                        }
                    }
                },
                () = self.subscription.step() => {}
                () = self.reaper.due() => self.start_reap(),
                outcome = poll_reap(&mut self.reaping), if self.reaping.is_some() => {
                    self.reaping = None;
                    if let Ok(reaped) = &outcome {
                        Counters::add(&self.context.counters.reclaimed, reaped.reclaimed);
                    }
                    self.reaper.finished(outcome);
                }
            }
        };
        // Stopping on purpose: finish what was sent, refuse the rest.
        guard.disarm();
        while self.in_flight.next().await.is_some() {}
        inbox.close().await;
        drop(self.subscription);
        for link in &self.links {
            link.close();
        }
        tracing::debug!(server = %self.context.server.address, "redis store closed");
        drop(guard); // waiters re-check now and get Closed
        if let Some(close) = close {
            close.send(Ok(Reply::Done));
        }
    }

    /// Sends a batch as one pipeline; returns the answer slot of a `close` in it. Calls
    /// after a `close` in the same batch are answered `Closed`.
    fn dispatch(&mut self, batch: Vec<RedisCall>) -> Option<Answer<Reply>> {
        let mut close = None;
        let mut calls = Vec::with_capacity(batch.len());
        for call in batch {
            if close.is_some() {
                call.answer(Err(Error::Closed));
            } else if matches!(call.op, Op::Close) {
                close = Some(call.into_parts().1);
            } else {
                calls.push(call);
            }
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            for call in &calls {
                tracing::trace!(operation = call.op.name(), key = call.op.key(), "sending");
            }
        }
        if !calls.is_empty() {
            let link = self.links[self.next_link].clone();
            self.next_link = (self.next_link + 1) % self.links.len();
            self.in_flight
                .push(send(self.context.clone(), link, calls).boxed());
        }
        close
    }

    fn start_reap(&mut self) {
        self.reaper.start();
        let context = self.context.clone();
        let link = self.links[0].clone();
        self.reaping = Some(
            async move {
                let cmd =
                    script::encode_reap(&context.sha, &context.layout, &context.tag, REAP_LIMIT);
                let value = query(&context, &link, cmd, "reaping expired records").await?;
                let (reclaimed, next_expiry) = script::decode_reap(value)?;
                Ok(Reaped {
                    reclaimed,
                    next_expiry,
                })
            }
            .boxed(),
        );
    }
}

async fn poll_reap(reaping: &mut Option<Reaping>) -> Result<Reaped> {
    match reaping.as_mut() {
        Some(reaping) => reaping.await,
        None => std::future::pending().await,
    }
}

/// Runs one command, loading the script first if the server does not have it (it restarted
/// or its script cache was flushed), within the request timeout.
async fn query(context: &Context, link: &Link, cmd: redis::Cmd, doing: &str) -> Result<Value> {
    let mut lease = link.lease()?;
    let attempt = async {
        let answer = match cmd.query_async::<Value>(&mut lease.connection).await {
            Err(error) if error.code() == Some("NOSCRIPT") => {
                lease.answered();
                Counters::add(&context.counters.script_loads, 1);
                let mut pipe = redis::pipe();
                pipe.cmd("SCRIPT").arg("LOAD").arg(script::SOURCE).ignore();
                pipe.add_command(cmd);
                let (value,): (Value,) = pipe.query_async(&mut lease.connection).await?;
                Ok(value)
            }
            other => other,
        };
        match &answer {
            Ok(_) => lease.answered(),
            Err(error) if error.is_timeout() => link.timed_out(&lease),
            Err(_) => {}
        }
        answer
    };
    match tokio::time::timeout(context.request_timeout, attempt).await {
        Err(_) => {
            link.timed_out(&lease);
            Err(context.server.timed_out(doing, context.request_timeout))
        }
        Ok(Err(error)) => Err(context.server.error(doing, &error)),
        Ok(Ok(Value::ServerError(error))) => Err(context.server.server_error(doing, &error)),
        Ok(Ok(value)) => Ok(value),
    }
}

fn is_no_script(value: &Value) -> bool {
    matches!(value, Value::ServerError(error) if error.code() == "NOSCRIPT")
}

/// Sends the calls of one batch as one pipeline and answers each of them.
async fn send(context: Arc<Context>, link: Arc<Link>, calls: Vec<RedisCall>) {
    let counters = &context.counters;
    Counters::add(&counters.pipelines, 1);
    Counters::add(&counters.calls, calls.len() as u64);
    // Each write carries its caller's deadline as a server time (see `script.lua`).
    let deadlines: Vec<Option<i64>> = calls
        .iter()
        .map(|call| {
            call.op
                .is_write()
                .then(|| context.clock.deadline(call.deadline))
        })
        .collect();
    // The pipeline gives up when its first caller does (never later), so a stuck
    // connection is replaced by the time that caller learns of the timeout and calls again.
    let give_up = calls
        .iter()
        .map(|call| call.deadline)
        .min()
        .unwrap_or_else(|| std::time::Instant::now() + context.request_timeout);
    let (ops, answers): (Vec<Op>, Vec<Answer<Reply>>) =
        calls.into_iter().map(RedisCall::into_parts).unzip();
    let chunks = chunk(&ops);
    // Set when too few replicas took the pipeline's writes in time: each write then fails.
    let mut unacknowledged: Option<Error> = None;
    let results = match link.lease() {
        Err(error) => fail_all(&context, &chunks, error),
        Ok(mut lease) => {
            let writes = context.replicas_to_ack > 0 && ops.iter().any(Op::is_write);
            let outcome = tokio::time::timeout_at(give_up.into(), async {
                let results =
                    run_chunks(&context, &link, &mut lease, &ops, &deadlines, &chunks).await?;
                if writes {
                    unacknowledged = wait_for_replicas(&context, &link, &mut lease).await?;
                }
                Ok(results)
            })
            .await;
            match outcome {
                Ok(Ok(results)) => results,
                Ok(Err(error)) => fail_all(&context, &chunks, error),
                Err(_) => {
                    link.timed_out(&lease);
                    fail_all(
                        &context,
                        &chunks,
                        context
                            .server
                            .timed_out("waiting for a pipeline's answer", context.request_timeout),
                    )
                }
            }
        }
    };
    tracing::trace!(
        calls = ops.len(),
        script_calls = chunks.len(),
        "pipeline answered"
    );
    let mut answers = answers.into_iter();
    for (range, result) in chunks.iter().zip(results) {
        let ops = &ops[range.clone()];
        match result {
            Ok(values) => {
                let mut values = values.into_iter();
                for op in ops {
                    let mut reply =
                        script::decode(op, &mut values, || context.server.late(op.name()));
                    if let (Some(error), true) = (&unacknowledged, op.is_write()) {
                        if reply.is_ok() {
                            reply = Err(error.clone());
                        }
                    }
                    if let Err(error) = &reply {
                        tracing::error!(operation = op.name(), %error, "undecodable answer");
                    }
                    if let Some(answer) = answers.next() {
                        answer.send(reply);
                    }
                }
            }
            Err(error) => {
                for op in ops {
                    tracing::debug!(operation = op.name(), %error, "call failed");
                    if let Some(answer) = answers.next() {
                        answer.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// `WAIT replicas_to_ack replica_ack_timeout` on the connection that carried the writes:
/// `Some(error)` when fewer replicas took them in time (the writes were applied on the
/// primary, but a failover may lose them, so they are not acknowledged).
async fn wait_for_replicas(
    context: &Context,
    link: &Link,
    lease: &mut Lease,
) -> Result<Option<Error>> {
    let wanted = context.replicas_to_ack;
    let millis = u64::try_from(context.replica_ack_timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let took: usize = redis::cmd("WAIT")
        .arg(wanted)
        .arg(millis)
        .query_async(&mut lease.connection)
        .await
        .map_err(|e| failed(link, lease, "waiting for replicas (WAIT)", &e))?;
    lease.answered();
    if took >= wanted {
        return Ok(None);
    }
    Counters::add(&context.counters.unacknowledged_batches, 1);
    Ok(Some(Error::Unavailable(format!(
        "redis {}: only {took} of the {wanted} replicas asked for (replicas_to_ack) took the \
         write within {} (replica_ack_timeout); the primary applied it, but it may or may not \
         be kept if the primary fails",
        context.server.address,
        humantime::format_duration(context.replica_ack_timeout)
    ))))
}

fn fail_all(
    context: &Context,
    chunks: &[std::ops::Range<usize>],
    error: Error,
) -> Vec<Result<Vec<Value>>> {
    Counters::add(&context.counters.failed_pipelines, 1);
    tracing::warn!(server = %context.server.address, %error, "a pipeline failed");
    chunks.iter().map(|_| Err(error.clone())).collect()
}

/// Splits `ops` into runs of at most [`CHUNK_BYTES`] of arguments (at least one op each).
fn chunk(ops: &[Op]) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, op) in ops.iter().enumerate() {
        let weight = script::weight(op);
        if i > start && bytes + weight > CHUNK_BYTES {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += weight;
    }
    if start < ops.len() {
        chunks.push(start..ops.len());
    }
    chunks
}

/// Sends one script call per chunk in one pipeline; chunks the server did not know the
/// script for are sent again after loading it (they did not run). Returns each chunk's
/// answers, or the error that failed it.
async fn run_chunks(
    context: &Context,
    link: &Link,
    lease: &mut Lease,
    ops: &[Op],
    deadlines: &[Option<i64>],
    chunks: &[std::ops::Range<usize>],
) -> Result<Vec<Result<Vec<Value>>>> {
    let server = &context.server;
    let encode = |range: &std::ops::Range<usize>| {
        script::encode(
            &context.sha,
            &context.layout,
            &context.tag,
            &ops[range.clone()],
            &deadlines[range.clone()],
        )
    };
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for range in chunks {
        pipe.add_command(encode(range));
    }
    let sent = std::time::Instant::now();
    let values: Vec<Value> = pipe
        .query_async(&mut lease.connection)
        .await
        .map_err(|e| failed(link, lease, "sending a pipeline", &e))?;
    let received = std::time::Instant::now();
    lease.answered();
    let mut results: Vec<Result<Vec<Value>>> = Vec::with_capacity(chunks.len());
    let mut missing = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        if is_no_script(&value) {
            missing.push(i);
            results.push(Ok(Vec::new()));
        } else {
            results.push(chunk_result(
                context,
                &ops[chunks[i].clone()],
                value,
                (sent, received),
            ));
        }
    }
    if results.len() != chunks.len() {
        return Err(Error::Backend(format!(
            "redis {}: {} answers to a pipeline of {} script calls",
            server.address,
            results.len(),
            chunks.len()
        )));
    }
    if !missing.is_empty() {
        Counters::add(&context.counters.script_loads, 1);
        tracing::info!(server = %server.address, "the server lost the script (restarted?); loading it again");
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("SCRIPT").arg("LOAD").arg(script::SOURCE);
        for &i in &missing {
            pipe.add_command(encode(&chunks[i]));
        }
        let sent = std::time::Instant::now();
        let mut values: Vec<Value> = pipe
            .query_async(&mut lease.connection)
            .await
            .map_err(|e| failed(link, lease, "loading the script", &e))?;
        let received = std::time::Instant::now();
        lease.answered();
        if let Some(Value::ServerError(error)) = values.first() {
            return Err(server.server_error("loading the script", error));
        }
        for (&i, value) in missing.iter().zip(values.drain(..).skip(1)) {
            results[i] = chunk_result(context, &ops[chunks[i].clone()], value, (sent, received));
        }
    }
    Ok(results)
}

/// A pipeline's failure as a store error; one that timed out (the connection's own
/// response timeout) tells the link, which replaces a connection that stopped answering.
fn failed(link: &Link, lease: &Lease, doing: &str, error: &redis::RedisError) -> Error {
    if error.is_timeout() {
        link.timed_out(lease);
    }
    link.server().error(doing, error)
}

/// The answers of one script call, checked for their count; the server's time in it is a
/// clock sample for an exchange sent and received at `exchange`.
fn chunk_result(
    context: &Context,
    ops: &[Op],
    value: Value,
    exchange: (std::time::Instant, std::time::Instant),
) -> Result<Vec<Value>> {
    match value {
        Value::ServerError(error) => Err(context.server.server_error("running the script", &error)),
        value @ Value::Array(_) => {
            let (now, values) = script::split_answer(value, "the script's answer")?;
            let (sent, received) = exchange;
            context
                .clock
                .offer(ServerClock::sample(sent, now, received));
            let expected = script::expected_results(ops.iter());
            if values.len() == expected {
                Ok(values)
            } else {
                Err(Error::Corrupt(format!(
                    "redis {}: the script gave {} answers for {expected} operations",
                    context.server.address,
                    values.len()
                )))
            }
        }
        other => Err(Error::Corrupt(format!(
            "redis {}: unexpected answer from the script: {other:?}",
            context.server.address
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_core::Record;

    #[test]
    fn chunks_split_large_batches_but_never_an_operation() {
        let big = || Op::Put(Record::new("k", vec![0u8; CHUNK_BYTES / 2 + 1]));
        let small = || Op::Delete("k".into());
        let ops = vec![small(), big(), big(), small(), big()];
        let chunks = chunk(&ops);
        assert_eq!(chunks, vec![0..2, 2..4, 4..5]);
        let huge = vec![Op::Put(Record::new("k", vec![0u8; 3 * CHUNK_BYTES]))];
        assert_eq!(chunk(&huge), vec![0..1]);
        assert!(chunk(&[]).is_empty());
    }
}
