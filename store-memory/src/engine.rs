//! [`MemoryEngine`]: the state machine behind `MemoryStorage`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use store_core::runtime::{Engine, Entry, EntryMeta, Mutation};
use store_core::Result;

/// Entries in a hash map for point lookups, keys in an ordered set for scans.
///
/// Point operations (the hot path of every get, put and CAS) cost one hash lookup instead of
/// a tree descent comparing long shared key prefixes; listing walks the ordered set, so a
/// pattern's literal prefix is a range scan. Both structures share one allocation per key.
/// The engine never fails and has nothing to sync.
///
/// ```
/// use store_core::runtime::{Engine, Entry, Mutation};
/// let mut engine = store_memory::MemoryEngine::default();
/// let entry = Entry { value: "v".into(), version: 1, expires_at: None };
/// engine.apply(vec![Mutation::Put { key: "k".into(), entry: entry.clone() }]).unwrap();
/// assert_eq!(engine.get("k").unwrap(), Some(entry));
/// ```
#[derive(Debug, Default)]
pub struct MemoryEngine {
    entries: HashMap<Arc<str>, Entry>,
    order: BTreeSet<Arc<str>>,
}

impl Engine for MemoryEngine {
    fn last_version(&self) -> u64 {
        0 // a memory store starts empty, so no version has been handed out yet
    }

    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        Ok(self.entries.get(key).cloned())
    }

    fn meta(&mut self, key: &str) -> Option<EntryMeta> {
        self.entries.get(key).map(EntryMeta::from)
    }

    fn apply(&mut self, batch: Vec<Mutation>) -> Result<()> {
        for mutation in batch {
            match mutation {
                Mutation::Put { key, entry } => match self.entries.get_mut(key.as_str()) {
                    Some(slot) => *slot = entry,
                    None => {
                        let key: Arc<str> = key.into();
                        self.order.insert(key.clone());
                        self.entries.insert(key, entry);
                    }
                },
                Mutation::Delete { key } | Mutation::Expire { key } => {
                    if let Some((key, _)) = self.entries.remove_entry(key.as_str()) {
                        self.order.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan(
        &mut self,
        from: Bound<&str>,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &EntryMeta) -> bool,
    ) -> Result<()> {
        for key in self.order.range::<str, _>((from, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(entry) = self.entries.get(key) else {
                continue; // cannot happen: both structures change together
            };
            if !visit(key, &EntryMeta::from(entry)) {
                break;
            }
        }
        Ok(())
    }
}
