//! The messages that travel between handles and the actor.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::engine::Entry;
use crate::{Pattern, Record, Result};

/// What a handle asks the actor to do.
pub(crate) enum Op {
    Create(Record),
    Get(String),
    GetMany(Vec<String>),
    Put(Record),
    PutMany(Vec<Record>),
    Cas(Record),
    Delete(String),
    Wait {
        key: String,
        version: String,
    },
    ListPage {
        pattern: Arc<Pattern>,
        after: Option<String>,
    },
    /// Run the engine's `on_deadline` now (see `ActorHandle::wake_engine`).
    WakeEngine,
    Close,
}

impl Op {
    /// The key the operation is about, for tracing (the first one for batches).
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Op::Create(r) | Op::Put(r) | Op::Cas(r) => Some(&r.key),
            Op::Get(key) | Op::Delete(key) | Op::Wait { key, .. } => Some(key),
            Op::GetMany(keys) => keys.first().map(String::as_str),
            Op::PutMany(records) => records.first().map(|r| r.key.as_str()),
            Op::ListPage { pattern, .. } => Some(pattern.as_str()),
            Op::WakeEngine | Op::Close => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Create(_) => "create",
            Op::Get(_) => "get",
            Op::GetMany(_) => "get_many",
            Op::Put(_) => "put",
            Op::PutMany(_) => "put_many",
            Op::Cas(_) => "cas_by_version",
            Op::Delete(_) => "delete",
            Op::Wait { .. } => "wait_for_version_change",
            Op::ListPage { .. } => "list_keys",
            Op::WakeEngine => "wake_engine",
            Op::Close => "close",
        }
    }
}

/// What the actor answers. Replies are raw (numeric versions, engine entries, the caller's
/// own key handed back) so that building `Record`s and version strings happens in the
/// caller's task, not on the actor that every caller shares.
pub(crate) enum Reply {
    Unit,
    /// The version a create, put or cas stored.
    Version(u64),
    /// A get: the key the caller sent, and the live entry.
    Entry(String, Entry),
    /// A get_many: the keys the caller sent, and their live entries.
    Entries(Vec<String>, Vec<Option<Entry>>),
    Page(Page),
}

/// One page of `list_keys`: the matching keys and where to continue (`None`: done).
pub(crate) struct Page {
    pub(crate) keys: Vec<String>,
    pub(crate) next: Option<String>,
}

pub(crate) type ReplyTx = oneshot::Sender<Result<Reply>>;

pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) reply: ReplyTx,
}
