//! What a handle asks the actor for ([`Op`]) and what it gets back ([`Reply`]).
//!
//! Keys and records arrive here already validated by the handle, so the actor never sees a
//! request the script could refuse halfway through a batch.

use bytes::Bytes;
use store_core::Record;

use store_core::net::mailbox::{Call, Caller, Inbox};

/// A request to the actor.
#[derive(Debug)]
pub(crate) enum Op {
    /// The live records under these keys (one key for `get`), read in one snapshot.
    Get(Vec<String>),
    Create(Record),
    Put(Record),
    /// Applied atomically, later duplicates winning.
    PutMany(Vec<Record>),
    Cas(Record),
    Delete(String),
    /// One page of the key index: keys in `[min, max]` (Redis `ZRANGEBYLEX` bounds), at most
    /// `count` scanned.
    ListPage {
        min: Vec<u8>,
        max: Vec<u8>,
        count: usize,
    },
    /// Figures for `stats()`.
    Stats,
    /// Finish the batches in flight, then stop.
    Close,
}

/// The actor's answer to an [`Op`] (the variant matches the request's).
#[derive(Debug)]
pub(crate) enum Reply {
    Records(Vec<Option<Record>>),
    /// `create`: the new version, or the live record that was there.
    Created(Result<String, Box<Record>>),
    /// `put`, `cas`: the new version.
    Version(String),
    /// `cas` found no live record.
    CasMissing,
    /// `cas` found another version.
    CasConflict,
    /// `delete`: whether a live record was removed.
    Deleted(bool),
    Page {
        keys: Vec<String>,
        /// The last key scanned, when the range may hold more.
        next: Option<String>,
    },
    Stats(ServerFigures),
    Done,
}

/// What the server says about one store.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerFigures {
    /// Keys in the index (live, and expired ones not yet reclaimed).
    pub keys: u64,
    /// Keys with an expiry.
    pub expiring: u64,
    pub epoch: String,
    pub last_version: u64,
    /// Writes the script refused because they arrived after their deadline (all instances).
    pub late_writes: u64,
}

pub(crate) type RedisCall = Call<Op, Reply>;
pub(crate) type RedisCaller = Caller<Op, Reply>;
pub(crate) type RedisInbox = Inbox<Op, Reply>;

impl Op {
    /// The operation's name, for tracing.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get(keys) if keys.len() == 1 => "get",
            Op::Get(_) => "get_many",
            Op::Create(_) => "create",
            Op::Put(_) => "put",
            Op::PutMany(_) => "put_many",
            Op::Cas(_) => "cas_by_version",
            Op::Delete(_) => "delete",
            Op::ListPage { .. } => "list_keys",
            Op::Stats => "stats",
            Op::Close => "close",
        }
    }
}

impl Op {
    /// Whether the operation may change the store (and so carries a deadline).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create(_) | Op::Put(_) | Op::PutMany(_) | Op::Cas(_) | Op::Delete(_)
        )
    }

    /// The key the operation is about (the first, for several), for tracing.
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Get(keys) => keys.first().map(String::as_str),
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => Some(&r.key),
            Op::PutMany(records) => records.first().map(|r| r.key.as_str()),
            Op::Delete(key) => Some(key),
            Op::ListPage { .. } | Op::Stats | Op::Close => None,
        }
    }
}

/// A value the script hands back, as `Bytes` without a copy.
pub(crate) fn bytes(value: Vec<u8>) -> Bytes {
    Bytes::from(value)
}
