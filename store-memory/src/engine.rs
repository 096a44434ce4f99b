//! [`MemoryEngine`]: the state machine behind `MemoryStorage`.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use store_core::runtime::{Engine, Entry, EntryMeta, Mutation};
use store_core::{Error, Result};

/// Entries in a hash map for point lookups, keys in an ordered set for scans.
///
/// Point operations (the hot path of every put and CAS) cost one hash lookup (foldhash) instead of
/// a tree descent comparing long shared key prefixes; listing walks the ordered set, so a
/// pattern's literal prefix is a range scan. Both structures share one allocation per key.
/// The engine never fails and has nothing to sync. Readers get the values themselves
/// (`Bytes`, reference-counted), so the runtime's read view shares them with this map.
///
/// ```
/// use store_core::runtime::{Engine, Entry, Mutation};
/// let mut engine = store_memory::MemoryEngine::default();
/// let entry = Entry { value: "v".into(), version: 1, expires_at: None };
/// let mut published = Vec::new();
/// engine.apply(&[Mutation::Put { key: "k".into(), entry: entry.clone() }], &mut published).unwrap();
/// assert_eq!(published, vec![entry.value.clone()]);
/// assert_eq!(engine.get("k").unwrap(), Some(entry));
/// ```
#[derive(Debug, Default)]
pub struct MemoryEngine {
    entries: HashMap<Arc<str>, Entry>,
    order: BTreeSet<Arc<str>>,
}

impl Engine for MemoryEngine {
    type Value = Bytes;
    type Request = ();

    fn last_version(&self) -> u64 {
        0 // a memory store starts empty, so no version has been handed out yet
    }

    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        Ok(self.entries.get(key).cloned())
    }

    fn meta(&mut self, key: &str) -> Option<EntryMeta> {
        self.entries.get(key).map(EntryMeta::from)
    }

    fn apply(&mut self, batch: &[Mutation], published: &mut Vec<Bytes>) -> Result<()> {
        // Nothing here can fail half-way, except meeting a kind of mutation this engine does
        // not know (added to store-core later): refuse the whole batch before changing anything.
        if let Some(unknown) = batch.iter().find(|m| {
            !matches!(
                m,
                Mutation::Put { .. } | Mutation::Delete { .. } | Mutation::Expire { .. }
            )
        }) {
            return Err(Error::Backend(format!(
                "the memory engine does not know the mutation {unknown:?}"
            )));
        }
        for mutation in batch {
            match mutation {
                Mutation::Put { key, entry } => {
                    published.push(entry.value.clone());
                    match self.entries.get_mut(key.as_str()) {
                        Some(slot) => slot.clone_from(entry),
                        None => {
                            // The only copy of the key this engine makes: one per new key.
                            let key: Arc<str> = key.as_str().into();
                            self.order.insert(key.clone());
                            self.entries.insert(key, entry.clone());
                        }
                    }
                }
                other => {
                    if let Some((key, _)) = self.entries.remove_entry(other.key()) {
                        self.order.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, Bytes)) -> Result<()> {
        for (key, entry) in &self.entries {
            visit(key, EntryMeta::from(entry), entry.value.clone());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_owned()
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
