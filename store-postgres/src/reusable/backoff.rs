//! [`Backoff`]: how long to wait before the next reconnect attempt.
//!
//! Exponential from `first` to `max`, each pause jittered to between half and all of its
//! nominal length, so that many instances that lost one server do not reconnect in step
//! when it comes back. [`Backoff::reset`] after a success starts again at `first`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Pauses between reconnect attempts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// A cheap pseudo-random sequence for the jitter (no need for a real generator).
    seed: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Self {
            first,
            max,
            next: first,
            seed,
        }
    }

    /// The pause before the next attempt; each call doubles the nominal pause up to `max`.
    pub fn next_pause(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = 0.5 + 0.5 * (self.seed % 1_000) as f64 / 1_000.0;
        nominal.mul_f64(fraction)
    }

    /// After a success: the next pause is `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let pauses: Vec<Duration> = (0..8).map(|_| backoff.next_pause()).collect();
        assert!(pauses[0] >= Duration::from_millis(50) && pauses[0] <= Duration::from_millis(100));
        assert!(pauses.iter().all(|p| *p <= Duration::from_secs(1)));
        assert!(pauses[7] >= Duration::from_millis(500));
        backoff.reset();
        assert!(backoff.next_pause() <= Duration::from_millis(100));
    }
}
