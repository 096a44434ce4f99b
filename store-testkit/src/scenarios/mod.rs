//! Concurrent scenarios behind the linearizability cases. Each runs on one handle or on two
//! handles on the same data (writes through one, reads through the other), so the
//! single-handle cases and the two-handle cases check the same rules with the same code.

pub(super) mod histories;
pub(super) mod listing;
pub(super) mod signalled;
pub(super) mod torn;
pub(super) mod wake;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use store_core::Storage;

/// Raises its flag when dropped, so tasks that loop until a scenario ends stop however it
/// ends, a failed check included.
pub(super) struct StopOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The handles a scenario runs on: one, or two on the same data.
#[derive(Clone)]
pub(super) struct Handles(Vec<(&'static str, Arc<dyn Storage>)>);

impl Handles {
    pub(super) fn one<S: Storage>(store: S) -> Self {
        Self(vec![("the store", Arc::new(store))])
    }

    pub(super) fn two<A: Storage, B: Storage>(first: A, second: B) -> Self {
        Self(vec![
            ("the first handle", Arc::new(first)),
            ("the second handle", Arc::new(second)),
        ])
    }

    /// The handle that writes.
    pub(super) fn writer(&self) -> &Arc<dyn Storage> {
        &self.0[0].1
    }

    /// The handle that reads what the writer wrote (the other one, when there are two).
    pub(super) fn reader(&self) -> &Arc<dyn Storage> {
        &self.0[self.0.len() - 1].1
    }

    /// Handle `i`, round robin, for spreading tasks over the handles.
    pub(super) fn nth(&self, i: usize) -> &Arc<dyn Storage> {
        &self.0[i % self.0.len()].1
    }

    /// The name of handle `i` (round robin), for messages.
    pub(super) fn name(&self, i: usize) -> &'static str {
        self.0[i % self.0.len()].0
    }

    /// The name of the writer, and of the reader.
    pub(super) fn roles(&self) -> (&'static str, &'static str) {
        (self.0[0].0, self.0[self.0.len() - 1].0)
    }

    /// How many handles there are.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The same handles with the writer and the reader swapped.
    pub(super) fn swapped(&self) -> Self {
        Self(self.0.iter().rev().cloned().collect())
    }
}
