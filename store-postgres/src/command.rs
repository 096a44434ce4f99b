//! What handles send the actor, and how each call is answered.
//!
//! A call travels through the [`store_core::net::mailbox`] every network backend shares: an
//! [`Op`] out, a [`Reply`] back. When the actor dispatches a call it splits it in two: the
//! operation (data the batch needs) and its [`Answer`]. The batch future owns both and
//! answers every call whatever happens to the operations, a timeout included, so no caller
//! is left waiting on a dropped answer.

use store_core::net::mailbox;
use store_core::{Error, Record, Stats};

/// Where a call's answer goes.
pub(crate) type Answer = mailbox::Answer<Reply>;

/// What a handle asks of the actor.
pub(crate) enum Op {
    Read(ReadOp),
    Write(WriteOp),
    Stats,
    /// Stop after the batches in flight; every queued call is answered `Closed`.
    Close,
}

/// What the actor answers; each operation has its own kind.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A get: the live records under its keys, in order.
    Records(Vec<Option<Record>>),
    /// A list page: its live keys, and the last key it scanned when it was full.
    Page(Vec<String>, Option<String>),
    /// A create: the new version.
    Version(String),
    /// A put or CAS: the record as stored.
    Record(Record),
    /// A put_many, a delete, a close.
    Done,
    Stats(Stats),
}

impl Reply {
    /// The error for a reply of the wrong kind, which cannot happen (each operation
    /// produces its own kind); answered as a backend error rather than a panic.
    pub fn mismatch(self) -> Error {
        Error::Backend(format!("internal: unexpected reply {self:?}"))
    }
}

/// A read: runs outside transactions, several reads batched per round trip.
pub(crate) struct Read {
    pub op: ReadOp,
    pub answer: Answer,
}

pub(crate) enum ReadOp {
    /// The live records under these keys (one statement: one snapshot).
    Get(Vec<String>),
    /// One page of keys in `[from, to)` (its live ones are answered).
    List { from: Vec<u8>, to: Vec<u8> },
}

/// A write: batched with other writes into one transaction.
pub(crate) struct Write {
    pub op: WriteOp,
    pub answer: Answer,
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
