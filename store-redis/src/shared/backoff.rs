//! [`Backoff`]: how long to wait before the next reconnect attempt.
//!
//! Exponential, capped, with full jitter: the n-th consecutive failure waits a random time
//! between half and all of `min * 2^n` (at most `max`). The jitter keeps many clients that
//! lost the same server from reconnecting in lockstep; the lower bound keeps one client from
//! retrying in a tight loop. A success resets it.

use std::time::Duration;

/// Delays between reconnect attempts (see the module docs).
///
/// ```text
/// let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
/// let first = backoff.next_delay();   // 25..=50 ms
/// backoff.reset();                     // after a successful attempt
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff that starts at `min` and never waits longer than `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .checked_mul(1u32 << self.failures.min(16))
            .unwrap_or(self.max)
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(rand::random::<f64>())
    }

    /// Forgets earlier failures (an attempt succeeded).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let min = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        let mut backoff = Backoff::new(min, max);
        let mut ceiling = min;
        for _ in 0..40 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        assert_eq!(backoff.failures(), 40);
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn a_zero_minimum_never_panics() {
        let mut backoff = Backoff::new(Duration::ZERO, Duration::ZERO);
        for _ in 0..100 {
            assert_eq!(backoff.next_delay(), Duration::ZERO);
        }
    }
}
