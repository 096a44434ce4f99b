//! Running one batch of calls on one pooled connection, in as few round trips as possible.
//!
//! **Reads** (gets and list pages) need no transaction: every get of the batch is one
//! `key = ANY($1)` statement (one snapshot, so no `get_many` sees part of a `put_many`),
//! every list page one statement, all sent at once (tokio-postgres pipelines the
//! statements of concurrently polled queries on one connection).
//!
//! **Writes** are sent as `BEGIN; <one statement per call>; COMMIT` in one pipelined round
//! trip, then answered after the commit. One transaction per batch means one WAL flush for
//! the whole batch (the group commit of the file backend, done by PostgreSQL). Calls in one
//! batch are concurrent (none has been answered), so running them in any order is
//! linearizable; they are sorted by key (stable, so calls on one key keep their order),
//! which makes two processes' batches lock rows in the same order and so rarely deadlock.
//!
//! A failure of one call must not fail or undo another's. If any statement fails, the
//! server rolls the whole transaction back (nothing of the batch happened) and every call
//! is run again on its own, each statement in its own implicit transaction, still in one
//! pipelined round trip: the failing call gets its error, the others their outcome. Only a
//! lost connection fails a whole batch, with [`Error::Unavailable`]: whether a commit in
//! flight was applied is then unknown, for one call as for many.
//!
//! The round trip is bounded by `operation_timeout`; on timeout the connection is dropped
//! (taken out of the pool: it may be inside a transaction) and every caller is answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use futures::future::{maybe_done, MaybeDone};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use store_core::{Error, Record, Result};

use crate::codec;
use crate::command::{Outcome, Read, ReadOp, ReadReply, Write, WriteOp};
use crate::context::Context;
use crate::errors;

type Param = Box<dyn ToSql + Sync + Send>;

/// How often a `create` that met a row committed after its snapshot reads and tries again
/// before giving up (each round means another process wrote the key in between).
const CREATE_ROUNDS: usize = 16;

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
    let (ops, replies): (Vec<ReadOp>, Vec<ReadReply>) =
        reads.into_iter().map(|r| (r.op, r.reply)).unzip();
    let outcome = context
        .with_connection(async |client| read_round(&context, client, &ops).await)
        .await;
    match outcome {
        Err(error) => replies
            .into_iter()
            .for_each(|reply| reply.fail(error.clone())),
        Ok((gets, lists)) => answer_reads(&context, ops, replies, gets, lists),
    }
}

type GetRows = Option<std::result::Result<Vec<Row>, Error>>;
type ListRows = Vec<std::result::Result<Vec<Row>, Error>>;

async fn read_round(
    context: &Context,
    client: &deadpool_postgres::Object,
    ops: &[ReadOp],
) -> Result<(GetRows, ListRows)> {
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
    let any_get = ops.iter().any(|op| matches!(op, ReadOp::Get(_)));
    let any_list = ops.iter().any(|op| matches!(op, ReadOp::List { .. }));
    let get = prepare_if(client, any_get, &context.statements.get)
        .await
        .map_err(failed)?;
    let list = prepare_if(client, any_list, &context.statements.list)
        .await
        .map_err(failed)?;
    let page = crate::sql::LIST_PAGE;
    let get_future = async {
        match &get {
            Some(statement) => Some(client.query(statement, &[&keys]).await.map_err(failed)),
            None => None,
        }
    };
    let list_futures: Vec<_> = ops
        .iter()
        .filter_map(|op| match (op, &list) {
            (ReadOp::List { from, to }, Some(statement)) => Some(async move {
                let params: [&(dyn ToSql + Sync); 3] = [from, to, &page];
                client.query(statement, &params).await.map_err(failed)
            }),
            _ => None,
        })
        .collect();
    let (gets, lists) = futures::join!(get_future, pipeline(list_futures));
    Ok((gets, lists))
}

fn answer_reads(
    context: &Context,
    ops: Vec<ReadOp>,
    replies: Vec<ReadReply>,
    gets: GetRows,
    lists: ListRows,
) {
    let table = context.names.display();
    // The live records found, by key.
    let found: Result<std::collections::HashMap<String, Record>> = match gets {
        None => Ok(Default::default()),
        Some(Err(error)) => Err(error),
        Some(Ok(rows)) => rows
            .into_iter()
            .map(|row| {
                let key = codec::key_from_bytes(row.get(0), &table)?;
                let record = codec::record(key.clone(), row.get(1), row.get(2), row.get(3));
                Ok((key, record))
            })
            .collect(),
    };
    let mut lists = lists.into_iter();
    for (op, reply) in ops.into_iter().zip(replies) {
        match (op, reply) {
            (ReadOp::Get(keys), ReadReply::Get(reply)) => {
                let answer = found
                    .as_ref()
                    .map_err(Clone::clone)
                    .map(|found| keys.iter().map(|key| found.get(key).cloned()).collect());
                let _ = reply.send(answer);
            }
            (ReadOp::List { .. }, ReadReply::List(reply)) => {
                let answer = match lists.next() {
                    Some(Ok(rows)) => rows
                        .into_iter()
                        .map(|row| codec::key_from_bytes(row.get(0), &table))
                        .collect(),
                    Some(Err(error)) => Err(error),
                    None => Err(Error::Backend("internal: a list page went missing".into())),
                };
                let _ = reply.send(answer);
            }
            (_, reply) => reply.fail(Error::Backend("internal: a read lost its reply".into())),
        }
    }
}

/// Runs `writes` as one transaction on a pooled connection (or each alone if the
/// transaction fails) and answers each.
pub(crate) async fn run_writes(context: Arc<Context>, mut writes: Vec<Write>) {
    writes.sort_by(|a, b| a.op.first_key().cmp(b.op.first_key()));
    let (ops, replies): (Vec<WriteOp>, Vec<_>) =
        writes.into_iter().map(|w| (w.op, w.reply)).unzip();
    let outcome = context
        .with_connection(async |client| write_round(&context, client, &ops).await)
        .await;
    match outcome {
        Err(error) => replies
            .into_iter()
            .for_each(|reply| reply.send(Err(error.clone()))),
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
            for (reply, result) in replies.into_iter().zip(results) {
                reply.send(result);
            }
        }
    }
}

/// `sql` prepared on `client` (the connection caches it) if `needed`, else `None`.
async fn prepare_if(
    client: &deadpool_postgres::Object,
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
    get: Option<Statement>,
}

impl Prepared {
    async fn for_ops(
        context: &Context,
        client: &deadpool_postgres::Object,
        ops: &[WriteOp],
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let s = &context.statements;
        let needs = |f: fn(&WriteOp) -> bool| ops.iter().any(f);
        // A create that meets a row it cannot see reads the live record (`create_again`).
        let creates = needs(|op| matches!(op, WriteOp::Create(_)));
        Ok(Prepared {
            create: prepare_if(client, creates, &s.create).await?,
            get: prepare_if(client, creates, &s.get).await?,
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

/// One round: the batch as a transaction, or each call alone if that fails. Returns an
/// error only when the connection failed (every call's outcome unknown).
async fn write_round(
    context: &Context,
    client: &deadpool_postgres::Object,
    ops: &[WriteOp],
) -> Result<Vec<Result<Outcome>>> {
    let failed = |e: &tokio_postgres::Error| errors::from_postgres(&context.describe, e);
    let prepared = Prepared::for_ops(context, client, ops)
        .await
        .map_err(|e| failed(&e))?;
    let params: Vec<Vec<Param>> = ops
        .iter()
        .map(|op| params(op, &context.names.channel))
        .collect();
    let param_refs: Vec<Vec<&(dyn ToSql + Sync)>> = params.iter().map(|p| refs(p)).collect();
    let statements: Vec<&Statement> = ops
        .iter()
        .map(|op| prepared.statement(op))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Backend("internal: a write's statement was not prepared".into()))?;

    let first_error = |results: &[std::result::Result<Vec<Row>, tokio_postgres::Error>]| {
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| !errors::is_statement_error(e))
            .map(failed)
    };
    let results = if ops.len() == 1 {
        // One call: its statement is its own transaction; no BEGIN/COMMIT needed.
        vec![client.query(statements[0], &param_refs[0]).await]
    } else {
        let mut round: Vec<Pin<Box<dyn Future<Output = Step> + Send + '_>>> =
            Vec::with_capacity(ops.len() + 2);
        round.push(Box::pin(async {
            Step::Control(client.batch_execute("BEGIN").await)
        }));
        for (statement, params) in statements.iter().zip(&param_refs) {
            round.push(Box::pin(async move {
                Step::Rows(client.query(*statement, params).await)
            }));
        }
        round.push(Box::pin(async {
            Step::Control(client.batch_execute("COMMIT").await)
        }));
        let mut committed = true;
        let mut results = Vec::with_capacity(ops.len());
        for step in pipeline(round).await {
            match step {
                Step::Control(Ok(())) => {}
                Step::Control(Err(error)) => {
                    if !errors::is_statement_error(&error) {
                        return Err(failed(&error));
                    }
                    committed = false;
                }
                Step::Rows(rows) => {
                    committed &= rows.is_ok();
                    results.push(rows);
                }
            }
        }
        if let Some(error) = first_error(&results) {
            return Err(error);
        }
        if committed {
            results
        } else {
            // The server rolled the batch back: nothing of it happened. Each call runs
            // alone now, so only the failing one fails.
            context.counters.replays.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                calls = ops.len(),
                "store-postgres: a batch failed; running each call on its own"
            );
            let alone: Vec<_> = statements
                .iter()
                .zip(&param_refs)
                .map(|(statement, params)| client.query(*statement, params))
                .collect();
            pipeline(alone).await
        }
    };
    if let Some(error) = first_error(&results) {
        return Err(error);
    }

    let mut outcomes = Vec::with_capacity(ops.len());
    for (op, result) in ops.iter().zip(results) {
        let outcome = match result {
            Err(error) => Err(errors::from_postgres(
                &format!("{}: {}", context.describe, op.name()),
                &error,
            )),
            Ok(rows) => match decode(context, op, rows)? {
                Decoded::Done(outcome) => outcome,
                Decoded::CreateAgain => create_again(context, client, &prepared, op).await?,
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

enum Step {
    Control(std::result::Result<(), tokio_postgres::Error>),
    Rows(std::result::Result<Vec<Row>, tokio_postgres::Error>),
}

enum Decoded {
    Done(Result<Outcome>),
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
                Ok(Outcome::Version(codec::version_text(row.get(1))))
            }
            Some(row) => Err(Error::AlreadyExists(Box::new(codec::record(
                record.key.clone(),
                row.get(2),
                row.get(1),
                row.get(3),
            )))),
        },
        WriteOp::Put(record) => match rows.first() {
            Some(row) => Ok(Outcome::Record(stored(record, row.get(0)))),
            None => Err(Error::Backend(format!(
                "{}: put: the upsert returned no row (table {table})",
                context.describe
            ))),
        },
        WriteOp::PutMany(_) => Ok(Outcome::Done),
        WriteOp::Cas(record) => match rows.first() {
            None => Err(Error::NotFound),
            Some(row) => match row.get::<_, Option<i64>>(1) {
                Some(version) => Ok(Outcome::Record(stored(record, version))),
                None => Err(Error::Conflict),
            },
        },
        WriteOp::Delete(_) => {
            if rows.is_empty() {
                Err(Error::NotFound)
            } else {
                Ok(Outcome::Done)
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
/// meanwhile, create again. The call has not been answered, so answering from this later
/// moment is still linearizable.
async fn create_again(
    context: &Context,
    client: &deadpool_postgres::Object,
    prepared: &Prepared,
    op: &WriteOp,
) -> Result<Result<Outcome>> {
    let WriteOp::Create(record) = op else {
        return Ok(Err(Error::Backend("internal: not a create".into())));
    };
    let failed = |e: tokio_postgres::Error| errors::from_postgres(&context.describe, &e);
    let (Some(get), Some(create)) = (&prepared.get, &prepared.create) else {
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
        let rows = client.query(create, &refs).await.map_err(failed)?;
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
