//! The in-memory index: for every key, where its newest record lives.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use store_core::runtime::EntryMeta;

use crate::format::{RecordRef, KIND_PUT};

/// `Loc::seg` of an entry whose record compaction dropped because it had expired: its
/// metadata stays until the runtime reclaims the key, its value is gone.
pub(crate) const RECLAIMED: u64 = u64::MAX;

/// Where a record lives: segment, byte offset of the record in the file, record length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) seg: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

/// What the index knows about a key.
#[derive(Clone, Debug)]
pub(crate) struct IndexEntry {
    pub(crate) version: u64,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) loc: Loc,
    /// The value, when it is small enough to keep in memory.
    pub(crate) value: Option<Bytes>,
}

impl IndexEntry {
    /// Bytes of live data this entry accounts for.
    pub(crate) fn live_len(&self) -> u64 {
        if self.loc.seg == RECLAIMED {
            0
        } else {
            u64::from(self.loc.len)
        }
    }

    pub(crate) fn meta(&self) -> EntryMeta {
        EntryMeta {
            version: self.version,
            expires_at: self.expires_at,
        }
    }
}

/// Keys in byte order, so that `list_keys` is a range scan.
pub(crate) type Index = BTreeMap<String, IndexEntry>;

/// The index plus the totals kept in step with it, as recovery builds it.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    pub(crate) index: Index,
    pub(crate) live_bytes: u64,
    pub(crate) last_version: u64,
}

impl IndexState {
    /// Applies one record read back from segment `seg` at file offset `offset`.
    pub(crate) fn replay(&mut self, seg: u64, offset: u64, record: &RecordRef<'_>, cache: usize) {
        self.last_version = self.last_version.max(record.version);
        if record.kind == KIND_PUT {
            let entry = IndexEntry {
                version: record.version,
                expires_at: record.expires_at,
                loc: Loc {
                    seg,
                    offset,
                    len: record.len as u32,
                },
                value: (record.value.len() <= cache).then(|| Bytes::copy_from_slice(record.value)),
            };
            self.live_bytes += entry.live_len();
            if let Some(slot) = self.index.get_mut(record.key) {
                self.live_bytes -= slot.live_len();
                *slot = entry;
            } else {
                self.index.insert(record.key.to_owned(), entry);
            }
        } else if let Some(old) = self.index.remove(record.key) {
            self.live_bytes -= old.live_len();
        }
    }
}
