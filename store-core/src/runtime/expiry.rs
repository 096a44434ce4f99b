//! Which keys expire when, so the actor's timer can reclaim them without anyone reading.

use std::collections::BTreeSet;
use std::time::SystemTime;

/// Keys with an expiry, ordered by expiry time. The actor keeps it in step with the engine:
/// every write removes the key's old expiry and adds its new one.
#[derive(Default)]
pub(crate) struct ExpiryIndex {
    by_time: BTreeSet<(SystemTime, String)>,
}

impl ExpiryIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    pub(crate) fn insert(&mut self, key: &str, at: SystemTime) {
        self.by_time.insert((at, key.to_owned()));
    }

    pub(crate) fn remove(&mut self, key: &str, at: SystemTime) {
        self.by_time.remove(&(at, key.to_owned()));
    }

    /// The earliest expiry time.
    pub(crate) fn next(&self) -> Option<SystemTime> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns every entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: SystemTime) -> Vec<(SystemTime, String)> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            due.extend(self.by_time.pop_first());
        }
        due
    }
}
