//! Callers blocked in `wait_for_version_change`, by key.

use std::collections::HashMap;

use super::command::ReplyTx;

/// Below this many registrations no sweep runs.
const MIN_SWEEP: usize = 1024;

/// Waiters by key. Everyone waiting on a key waits for its current version to change, so a
/// change of the key wakes them all.
///
/// A cancelled wait is a dropped receiver; its sender stays here until the key changes or a
/// sweep finds it. Sweeps run when registrations since the last one reach twice the live
/// count, so the cost is amortised O(1) per wait and memory stays proportional to the waits
/// still alive, however many are cancelled.
#[derive(Default)]
pub(crate) struct Waiters {
    by_key: HashMap<String, Vec<ReplyTx>>,
    total: usize,
    sweep_at: usize,
}

impl Waiters {
    pub(crate) fn register(&mut self, key: String, waiter: ReplyTx) {
        if waiter.is_closed() {
            return; // the caller already gave up
        }
        self.by_key.entry(key).or_default().push(waiter);
        self.total += 1;
        if self.total >= self.sweep_at.max(MIN_SWEEP) {
            self.sweep();
        }
    }

    /// Removes and returns everyone waiting on `key`.
    pub(crate) fn take(&mut self, key: &str) -> Option<Vec<ReplyTx>> {
        if self.by_key.is_empty() {
            return None;
        }
        let waiters = self.by_key.remove(key)?;
        self.total -= waiters.len();
        Some(waiters)
    }

    /// Removes and returns every waiter (at shutdown).
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = ReplyTx> {
        self.total = 0;
        std::mem::take(&mut self.by_key).into_values().flatten()
    }

    /// Number of registered waiters, cancelled ones not yet swept included.
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    fn sweep(&mut self) {
        self.by_key.retain(|_, list| {
            list.retain(|w| !w.is_closed());
            if list.capacity() > 4 * list.len().max(4) {
                list.shrink_to_fit();
            }
            !list.is_empty()
        });
        if self.by_key.capacity() > 4 * self.by_key.len().max(16) {
            self.by_key.shrink_to_fit();
        }
        self.total = self.by_key.values().map(Vec::len).sum();
        self.sweep_at = 2 * self.total;
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    #[test]
    fn cancelled_waiters_do_not_accumulate() {
        let mut waiters = Waiters::default();
        let (live, _live_rx) = oneshot::channel();
        waiters.register("k".into(), live);
        for _ in 0..100_000 {
            let (tx, rx) = oneshot::channel();
            waiters.register("k".into(), tx);
            drop(rx);
        }
        assert!(waiters.len() <= MIN_SWEEP, "{} waiters kept", waiters.len());
        // The live waiter survives every sweep.
        let kept = waiters.take("k").unwrap();
        assert!(kept.iter().any(|w| !w.is_closed()));
    }

    #[test]
    fn take_returns_everyone_on_the_key() {
        let mut waiters = Waiters::default();
        let mut receivers = Vec::new();
        for _ in 0..10 {
            let (tx, rx) = oneshot::channel();
            waiters.register("k".into(), tx);
            receivers.push(rx);
        }
        assert!(waiters.take("other").is_none());
        assert_eq!(waiters.take("k").unwrap().len(), 10);
        assert_eq!(waiters.len(), 0);
    }
}
