//! Running one batch of calls on one pooled connection, in as few round trips as possible.
//!
//! **Reads** (gets and list pages) need no transaction: every get of the batch is one
//! `key = ANY($1)` statement (one snapshot, so no `get_many` sees part of a `put_many`),
//! every list page one statement, all sent at once (tokio-postgres pipelines the
//! statements of concurrently polled queries on one connection).
//!
//! **Writes** are sent as `BEGIN; <one statement per call>; <deadline check>; COMMIT` in one
//! pipelined round trip, then answered after the commit. (A connection's first write
//! transaction begins with the history check of `schema.rs`.) One transaction per batch means
//! one WAL flush for the whole batch (the group commit of the file backend, done by
//! PostgreSQL). Calls in one batch are concurrent (none has been answered), so running them
//! in any order is linearizable; they are sorted by key (stable, so calls on one key keep
//! their order), which makes two processes' batches lock rows in the same order and so
//! rarely deadlock.
//!
//! A failure of one call must not fail or undo another's. If any statement fails, the
//! server rolls the whole transaction back (nothing of the batch happened) and every call
//! is run again in a transaction of its own, still in one pipelined round trip: the
//! failing call gets its error, the others their outcome. Only a lost connection or a
//! timeout fails a whole batch, with [`Error::Unavailable`].
//!
//! # A write answered `Unavailable` never lands later
//!
//! PostgreSQL does not stop a statement because its client gave up: a round whose bytes are
//! delayed (a stalled connection) or whose statement waits on a lock can commit long after
//! its callers were told it failed, and silently undo a write acknowledged meanwhile. Four
//! things prevent it:
//!
//! 1. Every write transaction ends with the schema's deadline check (`schema.rs`), given
//!    the latest server time at which it may still commit: the round's start plus half the
//!    operation timeout, turned into a time on the server's clock by the connection's
//!    clock sample (`store_core::net::ServerClock`). A round that reaches the check later
//!    rolls back; each check's answer resamples the clock.
//! 2. Connections run with `idle_in_transaction_session_timeout` at a quarter of the
//!    operation timeout (`pool.rs`), so a transaction whose `COMMIT` is delayed after the
//!    check passed is ended by the server long before its callers' time is up.
//! 3. The other half of the timeout is the commit's own: a check that passed leaves the
//!    commit that long to finish before the callers are answered.
//! 4. A round that times out has its session ended from a fresh connection
//!    (`Context::end_session`) before its callers are answered: whatever it did has then
//!    committed or rolled back for good. This needs the server to be reachable; the first
//!    three hold without it.
//!
//! # Expiry
//!
//! A write decides about a row's expiry with the row locked (`FOR UPDATE` in a CAS, the
//! conflict lock of an upsert, a delete's own lock) and commits a moment later. A read on
//! another connection in between must not call that row expired while the writer found it
//! live, or no order of the two calls explains both answers. So a read that meets an
//! expired row reads again in a transaction that first locks the expired rows `FOR SHARE`
//! (waiting for any writer that holds them) and then reads with a new snapshot: the
//! writer's decision is then visible, or nobody was deciding. Expiry is judged with
//! `clock_timestamp()` when a row is looked at, so a decision taken after a lock wait uses
//! the time after the wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures::future::{maybe_done, MaybeDone};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use store_core::net::ServerClock;
use store_core::{Error, Record, Result};

use crate::codec;
use crate::command::{Answer, Read, ReadOp, Reply, Write, WriteOp};
use crate::context::Context;
use crate::errors;
use crate::pool::Object;

type Param = Box<dyn ToSql + Sync + Send>;

/// How often a `create` that met a row committed after its snapshot reads and tries again
/// before giving up (each round means another process wrote the key in between).
const CREATE_ROUNDS: usize = 16;

/// How often a read that met expired rows reads again holding them, at most: each round
/// locks the rows that expired since the last one, so rounds end as soon as no row expires
/// between two reads a round trip apart.
const LOCKED_ROUNDS: usize = 8;

/// Polls every future in order, each one first in its turn, until all are done, and returns
/// their outputs in order. tokio-postgres sends a query when its future is first polled, so
/// this sends `BEGIN`, the statements and `COMMIT` in this order, in one round trip.
async fn pipeline<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<MaybeDone<F>>>> = futures
        .into_iter()
        .map(|f| Box::pin(maybe_done(f)))
        .collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for future in futures.iter_mut() {
            if future.as_mut().poll(cx).is_pending() {
                done = false;
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    futures
        .iter_mut()
        .filter_map(|future| future.as_mut().take_output())
        .collect()
}

/// Runs `reads` on a pooled connection and answers each.
pub(crate) async fn run_reads(context: Arc<Context>, reads: Vec<Read>) {
    let (ops, answers): (Vec<ReadOp>, Vec<Answer>) =
        reads.into_iter().map(|r| (r.op, r.answer)).unzip();
    let outcome = context
        .with_connection(async |client| read_round(&context, client, &ops).await)
        .await;
    match outcome {
        Err(error) => answers
            .into_iter()
            .for_each(|answer| answer.send(Err(error.clone()))),
        Ok(rows) => answer_reads(&context, ops, answers, rows),
    }
}

/// What one pass of reads returned: the gets' rows (one statement for all of them) and
/// each list page's rows.
struct ReadRows {
    gets: Option<Vec<Row>>,
    lists: Vec<std::result::Result<Vec<Row>, Error>>,
}

impl ReadRows {
    /// The keys of the rows these reads judged expired (a get's column 4, a page's 1).
    fn expired(&self) -> Vec<Vec<u8>> {
        let gets = self
            .gets
            .iter()
            .flatten()
            .filter(|row| row.get::<_, bool>(4));
        let pages = self
            .lists
            .iter()
            .filter_map(|page| page.as_ref().ok())
            .flatten()
            .filter(|row| row.get::<_, bool>(1));
        gets.chain(pages)
            .map(|row| row.get::<_, Vec<u8>>(0))
            .collect()
    }
}

async fn read_round(context: &Context, client: &Object, ops: &[ReadOp]) -> Result<ReadRows> {
    let failed = |e: tokio_postgres::Error| errors::from_postgres(&context.describe, &e);
    let s = &context.statements;
    let any_get = ops.iter().any(|op| matches!(op, ReadOp::Get(_)));
    let any_list = ops.iter().any(|op| matches!(op, ReadOp::List { .. }));
    let get = prepare_if(client, any_get, &s.get).await.map_err(failed)?;
    let list = prepare_if(client, any_list, &s.list)
        .await
        .map_err(failed)?;
    let first = read_pass(context, client, ops, get.as_ref(), list.as_ref()).await?;
    let mut expired = first.expired();
    if expired.is_empty() {
        return Ok(first);
    }
    // Expired rows were met: read again holding them (see "Expiry" in the module docs).
    context
        .counters
        .locked_rereads
        .fetch_add(1, Ordering::Relaxed);
    let lock = client.prepare_cached(&s.lock).await.map_err(failed)?;
    for _ in 0..LOCKED_ROUNDS {
        expired.sort_unstable();
        expired.dedup();
        let control =
            |sql: &'static str| async move { client.batch_execute(sql).await.map_err(failed) };
        let begin = control("BEGIN");
        let locked = async { client.query(&lock, &[&expired]).await.map_err(failed) };
        let reads = read_pass(context, client, ops, get.as_ref(), list.as_ref());
        let commit = control("COMMIT");
        // `join!` polls in order and tokio-postgres sends a query when first polled: these
        // go out in this order in one round trip, so the reads' snapshots follow the locks.
        let (begun, locked, rows, committed) = futures::join!(begin, locked, reads, commit);
        begun?;
        locked?;
        committed?;
        let rows = rows?;
        let newly: Vec<Vec<u8>> = rows
            .expired()
            .into_iter()
            .filter(|key| expired.binary_search(key).is_err())
            .collect();
        if newly.is_empty() {
            return Ok(rows);
        }
        expired.extend(newly);
    }
    Err(Error::Unavailable(format!(
        "{}: rows kept expiring under a read for {LOCKED_ROUNDS} rounds; try again",
        context.describe
    )))
}

/// One pass of the batch's reads: the gets as one statement, each list page as one, all
/// sent at once.
async fn read_pass(
    context: &Context,
    client: &Object,
    ops: &[ReadOp],
    get: Option<&Statement>,
    list: Option<&Statement>,
) -> Result<ReadRows> {
    let failed = |e: tokio_postgres::Error| errors::from_postgres(&context.describe, &e);
    let mut keys: Vec<&[u8]> = ops
        .iter()
        .filter_map(|op| match op {
            ReadOp::Get(keys) => Some(keys.iter().map(|k| k.as_bytes())),
            ReadOp::List { .. } => None,
        })
        .flatten()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let page = crate::sql::LIST_PAGE;
    let get_future = async {
        match get {
            Some(statement) => Some(client.query(statement, &[&keys]).await.map_err(failed)),
            None => None,
        }
    };
    let list_futures: Vec<_> = ops
        .iter()
        .filter_map(|op| match (op, list) {
            (ReadOp::List { from, to }, Some(statement)) => Some(async move {
                let params: [&(dyn ToSql + Sync); 3] = [from, to, &page];
                client.query(statement, &params).await.map_err(failed)
            }),
            _ => None,
        })
        .collect();
    let (gets, lists) = futures::join!(get_future, pipeline(list_futures));
    Ok(ReadRows {
        gets: gets.transpose()?,
        lists,
    })
}

fn answer_reads(context: &Context, ops: Vec<ReadOp>, answers: Vec<Answer>, rows: ReadRows) {
    let table = context.names.display();
    // The live records found, by key.
    let found: Result<std::collections::HashMap<String, Record>> = rows
        .gets
        .into_iter()
        .flatten()
        .filter(|row| !row.get::<_, bool>(4))
        .map(|row| {
            let key = codec::key_from_bytes(row.get(0), &table)?;
            let record = codec::record(key.clone(), row.get(1), row.get(2), row.get(3));
            Ok((key, record))
        })
        .collect();
    let mut lists = rows.lists.into_iter();
    for (op, answer) in ops.into_iter().zip(answers) {
        let reply = match op {
            ReadOp::Get(keys) => found.as_ref().map_err(Clone::clone).map(|found| {
                Reply::Records(keys.iter().map(|key| found.get(key).cloned()).collect())
            }),
            ReadOp::List { .. } => match lists.next() {
                Some(Ok(rows)) => page(&rows, &table).map(|(keys, next)| Reply::Page(keys, next)),
                Some(Err(error)) => Err(error),
                None => Err(Error::Backend("internal: a list page went missing".into())),
            },
        };
        answer.send(reply);
    }
}

/// A page of a listing: its live keys, and the last key it scanned when it was full (the
/// next page starts after it).
fn page(rows: &[Row], table: &str) -> Result<(Vec<String>, Option<String>)> {
    let mut keys = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows {
        let key = codec::key_from_bytes(row.get(0), table)?;
        if !row.get::<_, bool>(1) {
            keys.push(key.clone());
        }
        last = Some(key);
    }
    let full = rows.len() as i64 >= crate::sql::LIST_PAGE;
    Ok((keys, last.filter(|_| full)))
}

/// Runs `writes` as one transaction on a pooled connection (or each in its own if the
/// transaction fails) and answers each.
pub(crate) async fn run_writes(context: Arc<Context>, mut writes: Vec<Write>) {
    writes.sort_by(|a, b| a.op.first_key().cmp(b.op.first_key()));
    let (ops, answers): (Vec<WriteOp>, Vec<Answer>) =
        writes.into_iter().map(|w| (w.op, w.answer)).unzip();
    let outcome = match context.connection().await {
        Err(error) => Err(error),
        Ok(mut client) => {
            let started = Instant::now();
            // The server may commit until half the timeout; the other half is the commit's.
            let deadline = client.clock.no_later_than(started + context.timeout / 2);
            let check_history = !client.history_checked;
            let round = write_round(&context, &client, &ops, deadline, check_history);
            match tokio::time::timeout(context.timeout, round).await {
                Ok(Ok((results, clock))) => {
                    client.history_checked = true;
                    if let Some(clock) = clock {
                        client.clock = client.clock.better(clock);
                    }
                    Ok(results)
                }
                Ok(Err(error)) => {
                    // The connection failed or the server refused the round as late: it may
                    // be inside a transaction, and is not used again.
                    drop(Object::take(client));
                    Err(error)
                }
                Err(_) => {
                    let ended = context.end_session(client.session).await;
                    drop(Object::take(client));
                    Err(errors::writes_timed_out(
                        &context.describe,
                        context.timeout,
                        &ended,
                    ))
                }
            }
        }
    };
    match outcome {
        Err(error) => answers
            .into_iter()
            .for_each(|answer| answer.send(Err(error.clone()))),
        Ok(results) => {
            if tracing::enabled!(tracing::Level::TRACE) {
                for (op, result) in ops.iter().zip(&results) {
                    tracing::trace!(
                        store = %context.describe,
                        op = op.name(),
                        key = %String::from_utf8_lossy(op.first_key()),
                        ok = result.is_ok(),
                        "store-postgres: write"
                    );
                }
            }
            for (answer, result) in answers.into_iter().zip(results) {
                answer.send(result);
            }
        }
    }
}

/// `sql` prepared on `client` (the connection caches it) if `needed`, else `None`.
async fn prepare_if(
    client: &Object,
    needed: bool,
    sql: &str,
) -> std::result::Result<Option<Statement>, tokio_postgres::Error> {
    Ok(if needed {
        Some(client.prepare_cached(sql).await?)
    } else {
        None
    })
}

/// The prepared statements a batch of writes needs.
struct Prepared {
    create: Option<Statement>,
    put: Option<Statement>,
    put_many: Option<Statement>,
    cas: Option<Statement>,
    delete: Option<Statement>,
    get_live: Option<Statement>,
    deadline: Statement,
    /// The history check, for a connection's first write.
    history: Option<Statement>,
}

impl Prepared {
    async fn for_ops(
        context: &Context,
        client: &Object,
        ops: &[WriteOp],
        check_history: bool,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let s = &context.statements;
        let needs = |f: fn(&WriteOp) -> bool| ops.iter().any(f);
        // A create that meets a row it cannot see reads the live record (`create_again`).
        let creates = needs(|op| matches!(op, WriteOp::Create(_)));
        Ok(Prepared {
            create: prepare_if(client, creates, &s.create).await?,
            get_live: prepare_if(client, creates, &s.get_live).await?,
            put: prepare_if(client, needs(|op| matches!(op, WriteOp::Put(_))), &s.put).await?,
            put_many: prepare_if(
                client,
                needs(|op| matches!(op, WriteOp::PutMany(_))),
                &s.put_many,
            )
            .await?,
            cas: prepare_if(client, needs(|op| matches!(op, WriteOp::Cas(_))), &s.cas).await?,
            delete: prepare_if(
                client,
                needs(|op| matches!(op, WriteOp::Delete(_))),
                &s.delete,
            )
            .await?,
            deadline: client.prepare_cached(&s.deadline).await?,
            history: prepare_if(client, check_history, &s.history).await?,
        })
    }

    fn statement(&self, op: &WriteOp) -> Option<&Statement> {
        match op {
            WriteOp::Create(_) => self.create.as_ref(),
            WriteOp::Put(_) => self.put.as_ref(),
            WriteOp::PutMany(_) => self.put_many.as_ref(),
            WriteOp::Cas(_) => self.cas.as_ref(),
            WriteOp::Delete(_) => self.delete.as_ref(),
        }
    }
}

/// The parameters of one write's statement (owned, so the futures can borrow them).
fn params(op: &WriteOp, channel: &str) -> Vec<Param> {
    let channel = || Box::new(channel.to_owned()) as Param;
    match op {
        WriteOp::Create(record) | WriteOp::Put(record) => vec![
            Box::new(record.key.as_bytes().to_vec()),
            Box::new(record.value.to_vec()),
            Box::new(codec::expiry_param(record.expires_at)),
            channel(),
            Box::new(codec::payload(&record.key)),
        ],
        WriteOp::PutMany(records) => {
            let keys: Vec<Vec<u8>> = records.iter().map(|r| r.key.as_bytes().to_vec()).collect();
            let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.to_vec()).collect();
            let expiries: Vec<Option<i64>> = records
                .iter()
                .map(|r| codec::expiry_param(r.expires_at))
                .collect();
            let payloads = codec::payloads(records.iter().map(|r| r.key.as_str()));
            vec![
                Box::new(keys),
                Box::new(values),
                Box::new(expiries),
                channel(),
                Box::new(payloads),
            ]
        }
        WriteOp::Cas(record) => vec![
            Box::new(record.key.as_bytes().to_vec()),
            Box::new(record.value.to_vec()),
            Box::new(codec::expiry_param(record.expires_at)),
            Box::new(codec::version_param(&record.version)),
            channel(),
            Box::new(codec::payload(&record.key)),
        ],
        WriteOp::Delete(key) => vec![
            Box::new(key.as_bytes().to_vec()),
            channel(),
            Box::new(codec::payload(key)),
        ],
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

type Rows = std::result::Result<Vec<Row>, tokio_postgres::Error>;

/// What one fenced transaction answered: each statement's rows, and the deadline check's.
struct Fenced {
    /// The history check's rows, when the transaction began with it.
    history: Option<Rows>,
    statements: Vec<Rows>,
    check: Check,
    /// Whether `BEGIN` and `COMMIT` went through (a failed statement makes the server turn
    /// the `COMMIT` into a rollback, reported as an error).
    control: std::result::Result<(), tokio_postgres::Error>,
    sent: Instant,
    received: Instant,
}

/// The deadline check's answer.
enum Check {
    /// In time: the server's clock then (µs since the Unix epoch).
    Passed(i64),
    Failed(tokio_postgres::Error),
    /// It answered no row, which the function never does: read as a failure.
    Empty,
}

impl Fenced {
    fn committed(&self) -> bool {
        !matches!(self.history, Some(Err(_)))
            && self.control.is_ok()
            && matches!(self.check, Check::Passed(_))
            && self.statements.iter().all(Result::is_ok)
    }

    /// Whether the history check found another history (and moved the sequence).
    fn history_changed(&self) -> bool {
        matches!(&self.history, Some(Ok(rows)) if rows.first().is_some_and(|row| row.get::<_, bool>(0)))
    }

    /// The check's answer as a sample of the server's clock.
    fn clock(&self) -> Option<ServerClock> {
        match self.check {
            Check::Passed(now) => Some(ServerClock::sample(self.sent, now, self.received)),
            Check::Failed(_) | Check::Empty => None,
        }
    }

    /// Every error the transaction reported.
    fn errors(&self) -> impl Iterator<Item = &tokio_postgres::Error> {
        let check = match &self.check {
            Check::Failed(error) => Some(error),
            Check::Passed(_) | Check::Empty => None,
        };
        self.statements
            .iter()
            .filter_map(|r| r.as_ref().err())
            .chain(check)
            .chain(self.control.as_ref().err())
    }
}

/// Runs `statements` as one transaction that ends with the deadline check, in one
/// pipelined round trip: `BEGIN; statements; check(deadline); COMMIT`.
async fn fenced<'a>(
    client: &'a Object,
    history: Option<(&'a Statement, &'a [&'a (dyn ToSql + Sync)])>,
    statements: &'a [(&'a Statement, &'a [&'a (dyn ToSql + Sync)])],
    check: &'a Statement,
    deadline: i64,
) -> Fenced {
    enum Step {
        Control(std::result::Result<(), tokio_postgres::Error>),
        History(Rows),
        Rows(Rows),
    }
    let mut round: Vec<Pin<Box<dyn Future<Output = Step> + Send + '_>>> =
        Vec::with_capacity(statements.len() + 4);
    round.push(Box::pin(async {
        Step::Control(client.batch_execute("BEGIN").await)
    }));
    if let Some((statement, params)) = history {
        round.push(Box::pin(async move {
            Step::History(client.query(statement, params).await)
        }));
    }
    for (statement, params) in statements {
        round.push(Box::pin(async move {
            Step::Rows(client.query(*statement, params).await)
        }));
    }
    round.push(Box::pin(async move {
        Step::Rows(client.query(check, &[&deadline]).await)
    }));
    round.push(Box::pin(async {
        Step::Control(client.batch_execute("COMMIT").await)
    }));
    let sent = Instant::now();
    let steps = pipeline(round).await;
    let received = Instant::now();
    let mut control = Ok(());
    let mut history = None;
    let mut rows = Vec::with_capacity(statements.len() + 1);
    for step in steps {
        match step {
            Step::History(result) => history = Some(result),
            Step::Control(Ok(())) => {}
            Step::Control(Err(error)) => {
                if control.is_ok() {
                    control = Err(error);
                }
            }
            Step::Rows(result) => rows.push(result),
        }
    }
    let check = match rows.pop() {
        Some(Ok(answer)) => answer
            .first()
            .map_or(Check::Empty, |row| Check::Passed(row.get::<_, i64>(0))),
        Some(Err(error)) => Check::Failed(error),
        None => Check::Empty,
    };
    Fenced {
        history,
        statements: rows,
        check,
        control,
        sent,
        received,
    }
}

/// The history check's failure as the round's error: the transaction rolled back, so
/// nothing of the round happened.
fn history_failed(context: &Context, error: &tokio_postgres::Error) -> Error {
    let in_recovery = error.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
    });
    if in_recovery {
        Error::Backend(format!(
            "{}: the server is a standby in recovery, which refuses writes: connect to the \
             primary (with several hosts, add target_session_attrs=read-write to the URL)",
            context.describe
        ))
    } else {
        errors::from_postgres(
            &format!("{}: checking the server's history", context.describe),
            error,
        )
    }
}

/// Counts and logs a history change that a committed transaction made.
fn note_history_change(context: &Context) {
    context
        .counters
        .history_changes
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        store = %context.describe,
        "store-postgres: the server's history differs from the one the table's versions were \
         last handed out on (a promoted standby, a restored backup, or the first write of this \
         build); versions continue past every earlier one"
    );
}

/// One round: the batch as one fenced transaction, or each call in its own if that fails.
/// Returns an error only when the connection failed or the round came too late (every
/// call's outcome is then settled by `run_writes`); otherwise each call's outcome, and the
/// server's clock as the checks saw it.
async fn write_round(
    context: &Context,
    client: &Object,
    ops: &[WriteOp],
    deadline: i64,
    check_history: bool,
) -> Result<(Vec<Result<Reply>>, Option<ServerClock>)> {
    let failed = |e: &tokio_postgres::Error| errors::from_postgres(&context.describe, e);
    let prepared = Prepared::for_ops(context, client, ops, check_history)
        .await
        .map_err(|e| failed(&e))?;
    // The connection's first write checks the server's history first, in its transaction
    // (see `schema.rs`): a check that fails rolls the writes back with it.
    let history_params: [&(dyn ToSql + Sync); 2] =
        [&context.names.table, &context.names.qualified_sequence];
    let history = prepared
        .history
        .as_ref()
        .map(|statement| (statement, &history_params[..]));
    let params: Vec<Vec<Param>> = ops
        .iter()
        .map(|op| params(op, &context.names.channel))
        .collect();
    let param_refs: Vec<Vec<&(dyn ToSql + Sync)>> = params.iter().map(|p| refs(p)).collect();
    let statements: Vec<(&Statement, &[&(dyn ToSql + Sync)])> = ops
        .iter()
        .zip(&param_refs)
        .map(|(op, params)| prepared.statement(op).map(|s| (s, params.as_slice())))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Backend("internal: a write's statement was not prepared".into()))?;

    let batch = fenced(client, history, &statements, &prepared.deadline, deadline).await;
    let mut clock = batch.clock();
    settle(context, &batch)?;
    let results = if batch.committed() {
        if batch.history_changed() {
            note_history_change(context);
        }
        batch.statements
    } else {
        // The server rolled the batch back: nothing of it happened. Each call runs in its
        // own transaction now, so only the failing one fails.
        context.counters.replays.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            calls = ops.len(),
            "store-postgres: a batch failed; running each call on its own"
        );
        let alone: Vec<_> = statements
            .iter()
            .map(|statement| {
                fenced(
                    client,
                    history,
                    std::slice::from_ref(statement),
                    &prepared.deadline,
                    deadline,
                )
            })
            .collect();
        let mut results = Vec::with_capacity(ops.len());
        let mut history_noted = false;
        for one in pipeline(alone).await {
            settle(context, &one)?;
            if !history_noted && one.committed() && one.history_changed() {
                history_noted = true;
                note_history_change(context);
            }
            if let Some(sample) = one.clock() {
                clock = Some(clock.map_or(sample, |held| held.better(sample)));
            }
            results.extend(one.statements);
        }
        results
    };

    let mut outcomes = Vec::with_capacity(ops.len());
    for (op, result) in ops.iter().zip(results) {
        let outcome = match result {
            Err(error) => Err(errors::from_postgres(
                &format!("{}: {}", context.describe, op.name()),
                &error,
            )),
            Ok(rows) => match decode(context, op, rows)? {
                Decoded::Done(outcome) => outcome,
                Decoded::CreateAgain => {
                    create_again(context, client, &prepared, op, deadline).await?
                }
            },
        };
        outcomes.push(outcome);
    }
    Ok((outcomes, clock))
}

/// Fails the round when a fenced transaction says the connection broke (every outcome is
/// then unknown until the session is settled) or the server refused it as late (nothing of
/// it happened, and nothing later will: the round is over). Statement errors are left to
/// the caller: the transaction rolled back and each call is run again alone.
fn settle(context: &Context, fenced: &Fenced) -> Result<()> {
    if let Some(Err(error)) = &fenced.history {
        // Not a statement of a call: running each call alone would only fail again.
        if !is_aborted(error) {
            return Err(history_failed(context, error));
        }
    }
    for error in fenced.errors() {
        if errors::is_late(error) {
            context.counters.late_writes.fetch_add(1, Ordering::Relaxed);
            return Err(errors::from_postgres(&context.describe, error));
        }
        if !errors::is_statement_error(error) && !is_aborted(error) {
            return Err(errors::from_postgres(&context.describe, error));
        }
    }
    Ok(())
}

/// "current transaction is aborted": a statement after the one that failed, which says
/// nothing of its own.
fn is_aborted(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
}

enum Decoded {
    Done(Result<Reply>),
    /// A create met a row committed after its snapshot: read the live record (or create
    /// again if it is gone).
    CreateAgain,
}

/// Turns a statement's rows into the call's answer. Errs (outer) only on rows that cannot
/// be read, which fails the round.
fn decode(context: &Context, op: &WriteOp, rows: Vec<Row>) -> Result<Decoded> {
    let table = context.names.display();
    let out = match op {
        WriteOp::Create(record) => match rows.first() {
            None => return Ok(Decoded::CreateAgain),
            Some(row) if row.get::<_, bool>(0) => {
                Ok(Reply::Version(codec::version_text(row.get(1))))
            }
            Some(row) => Err(Error::AlreadyExists(Box::new(codec::record(
                record.key.clone(),
                row.get(2),
                row.get(1),
                row.get(3),
            )))),
        },
        WriteOp::Put(record) => match rows.first() {
            Some(row) => Ok(Reply::Record(stored(record, row.get(0)))),
            None => Err(Error::Backend(format!(
                "{}: put: the upsert returned no row (table {table})",
                context.describe
            ))),
        },
        WriteOp::PutMany(_) => Ok(Reply::Done),
        WriteOp::Cas(record) => match rows.first() {
            None => Err(Error::NotFound),
            Some(row) => match row.get::<_, Option<i64>>(1) {
                Some(version) => Ok(Reply::Record(stored(record, version))),
                None => Err(Error::Conflict),
            },
        },
        WriteOp::Delete(_) => {
            if rows.is_empty() {
                Err(Error::NotFound)
            } else {
                Ok(Reply::Done)
            }
        }
    };
    Ok(Decoded::Done(out))
}

/// The record as stored by a put or CAS with `version`.
fn stored(record: &Record, version: i64) -> Record {
    Record {
        key: record.key.clone(),
        value: record.value.clone(),
        version: codec::version_text(version),
        expires_at: codec::stored_expiry(record.expires_at),
    }
}

/// A create whose statement met a row it could not see: read the live record in a new
/// statement (a new snapshot) and answer `AlreadyExists` with it; if the row has gone
/// meanwhile, create again (fenced, like every write). The call has not been answered, so
/// answering from this later moment is still linearizable.
async fn create_again(
    context: &Context,
    client: &Object,
    prepared: &Prepared,
    op: &WriteOp,
    deadline: i64,
) -> Result<Result<Reply>> {
    let WriteOp::Create(record) = op else {
        return Ok(Err(Error::Backend("internal: not a create".into())));
    };
    let failed = |e: tokio_postgres::Error| errors::from_postgres(&context.describe, &e);
    let (Some(get), Some(create)) = (&prepared.get_live, &prepared.create) else {
        return Ok(Err(Error::Backend(
            "internal: create was not prepared".into(),
        )));
    };
    let params = params(op, &context.names.channel);
    let refs = refs(&params);
    let keys = vec![record.key.as_bytes()];
    for _ in 0..CREATE_ROUNDS {
        let rows = client.query(get, &[&keys]).await.map_err(failed)?;
        if let Some(row) = rows.first() {
            return Ok(Err(Error::AlreadyExists(Box::new(codec::record(
                record.key.clone(),
                row.get(1),
                row.get(2),
                row.get(3),
            )))));
        }
        // The round's first transaction checked the history already.
        let mut again = fenced(
            client,
            None,
            &[(create, refs.as_slice())],
            &prepared.deadline,
            deadline,
        )
        .await;
        settle(context, &again)?;
        let rows = match again.statements.pop() {
            Some(Ok(rows)) => rows,
            Some(Err(error)) => return Ok(Err(failed(error))),
            None => return Ok(Err(Error::Backend("internal: create lost its rows".into()))),
        };
        match decode(context, op, rows)? {
            Decoded::Done(outcome) => return Ok(outcome),
            Decoded::CreateAgain => continue,
        }
    }
    Ok(Err(Error::Unavailable(format!(
        "{}: create of {:?}: the key kept changing under {CREATE_ROUNDS} attempts; try again",
        context.describe, record.key
    ))))
}
