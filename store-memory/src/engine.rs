//! [`MemoryEngine`]: the state machine behind `MemoryStorage`.

use std::collections::BTreeMap;
use std::ops::Bound;

use store_core::runtime::{Engine, Entry, EntryMeta, Mutation};
use store_core::Result;

/// An ordered map from key to entry. It never fails and has nothing to sync.
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
    entries: BTreeMap<String, Entry>,
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
                Mutation::Put { key, entry } => {
                    // Reuse the existing key allocation on overwrite.
                    match self.entries.get_mut(key.as_str()) {
                        Some(slot) => *slot = entry,
                        None => {
                            self.entries.insert(key, entry);
                        }
                    }
                }
                Mutation::Delete { key } | Mutation::Expire { key } => {
                    self.entries.remove(key.as_str());
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
        for (key, entry) in self.entries.range::<str, _>((from, Bound::Unbounded)) {
            if !key.starts_with(prefix) || !visit(key, &EntryMeta::from(entry)) {
                break;
            }
        }
        Ok(())
    }
}
