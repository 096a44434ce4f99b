//! A tiny engine for this crate's documentation examples (store-core cannot depend on
//! store-memory). Not part of the public API.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::runtime::{self, ActorHandle, Engine, Entry, EntryMeta, Mutation};
use crate::Result;

/// An ordered map run by the runtime; see `store-memory` for the real in-memory backend.
#[derive(Default)]
pub struct DocEngine(BTreeMap<String, Entry>);

impl Engine for DocEngine {
    type Value = Bytes;
    type Request = ();

    fn last_version(&self) -> u64 {
        0
    }
    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        Ok(self.0.get(key).cloned())
    }
    fn meta(&mut self, key: &str) -> Option<EntryMeta> {
        self.0.get(key).map(EntryMeta::from)
    }
    fn apply(&mut self, batch: &[Mutation], published: &mut Vec<Bytes>) -> Result<()> {
        for mutation in batch {
            match mutation {
                Mutation::Put { key, entry } => {
                    published.push(entry.value.clone());
                    self.0.insert(key.clone(), entry.clone());
                }
                other => {
                    self.0.remove(other.key());
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
        for (key, entry) in self.0.range::<str, _>((from, Bound::Unbounded)) {
            if !key.starts_with(prefix) || !visit(key, &EntryMeta::from(entry)) {
                break;
            }
        }
        Ok(())
    }
    fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, Bytes)) -> Result<()> {
        for (key, entry) in &self.0 {
            visit(key, EntryMeta::from(entry), entry.value.clone());
        }
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

/// A fresh in-memory store for examples.
pub fn doc_store() -> ActorHandle {
    runtime::spawn(DocEngine::default(), Default::default())
}
