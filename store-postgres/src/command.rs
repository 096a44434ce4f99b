//! What handles send the actor, and how each call is answered.
//!
//! A command is split in two when the actor dispatches it: the operation (data the batch
//! needs) and its reply (a `oneshot` sender). The batch future owns both, and answers every
//! reply whatever happens to the operations, a timeout included, so no caller is left
//! waiting on a dropped sender.

use tokio::sync::oneshot;

use store_core::{Error, Record, Result, Stats};

/// The answer to one call.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// A message to the actor.
pub(crate) enum Command {
    Read(Read),
    Write(Write),
    Stats(Reply<Stats>),
    /// Stop after the batches in flight; every queued call is answered `Closed`.
    Close(oneshot::Sender<()>),
}

/// A read: runs outside transactions, several reads batched per round trip.
pub(crate) struct Read {
    pub op: ReadOp,
    pub reply: ReadReply,
}

pub(crate) enum ReadOp {
    /// The live records under these keys (one statement: one snapshot).
    Get(Vec<String>),
    /// One page of keys in `[from, to)` (its live ones are answered).
    List { from: Vec<u8>, to: Vec<u8> },
}

pub(crate) enum ReadReply {
    Get(Reply<Vec<Option<Record>>>),
    /// The page's live keys, and the last key it scanned when it was full.
    List(Reply<(Vec<String>, Option<String>)>),
}

/// A write: batched with other writes into one transaction.
pub(crate) struct Write {
    pub op: WriteOp,
    pub reply: WriteReply,
}

pub(crate) enum WriteOp {
    Create(Record),
    Put(Record),
    /// Keys unique and sorted (the handle keeps the last of each repeated key).
    PutMany(Vec<Record>),
    Cas(Record),
    Delete(String),
}

impl WriteOp {
    /// Whether the write touches `key`.
    pub fn touches(&self, key: &[u8]) -> bool {
        match self {
            WriteOp::Create(record) | WriteOp::Put(record) | WriteOp::Cas(record) => {
                record.key.as_bytes() == key
            }
            WriteOp::PutMany(records) => records.iter().any(|r| r.key.as_bytes() == key),
            WriteOp::Delete(k) => k.as_bytes() == key,
        }
    }

    /// The keys to which the write stores a record with an expiry.
    pub fn expiring_writes(&self) -> impl Iterator<Item = &[u8]> {
        let records: &[Record] = match self {
            WriteOp::Create(record) | WriteOp::Put(record) | WriteOp::Cas(record) => {
                std::slice::from_ref(record)
            }
            WriteOp::PutMany(records) => records,
            WriteOp::Delete(_) => &[],
        };
        records
            .iter()
            .filter(|r| r.expires_at.is_some())
            .map(|r| r.key.as_bytes())
    }

    /// The key that orders this write in its batch (see `batch.rs`).
    pub fn first_key(&self) -> &[u8] {
        match self {
            WriteOp::Create(record) | WriteOp::Put(record) | WriteOp::Cas(record) => {
                record.key.as_bytes()
            }
            WriteOp::PutMany(records) => records.first().map_or(&[], |r| r.key.as_bytes()),
            WriteOp::Delete(key) => key.as_bytes(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            WriteOp::Create(_) => "create",
            WriteOp::Put(_) => "put",
            WriteOp::PutMany(_) => "put_many",
            WriteOp::Cas(_) => "cas_by_version",
            WriteOp::Delete(_) => "delete",
        }
    }
}

pub(crate) enum WriteReply {
    Create(Reply<String>),
    Put(Reply<Record>),
    PutMany(Reply<()>),
    Cas(Reply<Record>),
    Delete(Reply<()>),
}

/// What a write produced, before it is handed to its reply.
#[derive(Debug)]
pub(crate) enum Outcome {
    Version(String),
    Record(Record),
    Done,
}

impl WriteReply {
    /// Answers the caller. An outcome of the wrong kind cannot happen (each operation
    /// produces its own kind); it is answered as a backend error rather than a panic.
    pub fn send(self, result: Result<Outcome>) {
        fn mismatch(outcome: Outcome) -> Error {
            Error::Backend(format!("internal: unexpected outcome {outcome:?}"))
        }
        // A caller that gave up (dropped its future) no longer listens: nothing to do.
        match self {
            WriteReply::Create(reply) => {
                let _ = reply.send(result.and_then(|o| match o {
                    Outcome::Version(v) => Ok(v),
                    other => Err(mismatch(other)),
                }));
            }
            WriteReply::Put(reply) | WriteReply::Cas(reply) => {
                let _ = reply.send(result.and_then(|o| match o {
                    Outcome::Record(r) => Ok(r),
                    other => Err(mismatch(other)),
                }));
            }
            WriteReply::PutMany(reply) | WriteReply::Delete(reply) => {
                let _ = reply.send(result.and_then(|o| match o {
                    Outcome::Done => Ok(()),
                    other => Err(mismatch(other)),
                }));
            }
        }
    }
}

impl ReadReply {
    /// Answers with an error.
    pub fn fail(self, error: Error) {
        match self {
            ReadReply::Get(reply) => {
                let _ = reply.send(Err(error));
            }
            ReadReply::List(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

impl Command {
    /// Answers the command with `error` without running it.
    pub fn fail(self, error: Error) {
        match self {
            Command::Read(read) => read.reply.fail(error),
            Command::Write(write) => write.reply.send(Err(error)),
            Command::Stats(reply) => {
                let _ = reply.send(Err(error));
            }
            Command::Close(done) => {
                let _ = done.send(());
            }
        }
    }
}
