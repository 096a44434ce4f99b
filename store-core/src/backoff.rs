//! [`Backoff`]: how long a network backend waits before its next reconnect attempt.
//!
//! Exponential and capped, with jitter: the n-th consecutive failure waits between half and
//! all of `min * 2^n`, never more than `max`. The jitter keeps the many instances of a service
//! that lost one server from reconnecting in step when it comes back (each of them would
//! otherwise hit it at the same moment, again and again); the lower half keeps any one of
//! them from retrying in a tight loop. A success resets it.
//!
//! The jitter needs no cryptographic quality, only instances that disagree, so it comes from
//! a small xorshift generator seeded per `Backoff` from the clock and a process-wide counter
//! rather than from a random-number crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delays between reconnect attempts (see the [module docs](self)).
///
/// ```
/// use std::time::Duration;
/// use store_core::backoff::Backoff;
///
/// let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(25) && first <= Duration::from_millis(50));
/// let second = backoff.next_delay();
/// assert!(second >= Duration::from_millis(50) && second <= Duration::from_millis(100));
/// assert_eq!(backoff.failures(), 2);
///
/// backoff.reset(); // the attempt succeeded
/// assert!(backoff.next_delay() <= Duration::from_millis(50));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    seed: u64,
}

impl Backoff {
    /// A backoff whose first delay is at most `min` and whose delays never exceed `max`
    /// (a `max` below `min` is raised to `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        Self {
            min,
            max: max.max(min),
            failures: 0,
            // Odd, so never zero: xorshift would stay at zero forever.
            seed: (clock ^ instance.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1,
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
        half + (ceiling - half).mul_f64(self.next_fraction())
    }

    /// Forgets earlier failures: the next delay is at most `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A number in `[0, 1)` from the instance's xorshift64 sequence.
    fn next_fraction(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 53) as f64
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

    #[test]
    fn instances_made_together_do_not_wait_in_step() {
        let delays: Vec<Duration> = (0..8)
            .map(|_| {
                let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
                backoff.next_delay()
            })
            .collect();
        let first = delays[0];
        assert!(
            delays.iter().any(|delay| *delay != first),
            "eight backoffs made at once chose the same delay: {delays:?}"
        );
    }

    #[test]
    fn huge_bounds_saturate_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX / 2, Duration::MAX);
        for _ in 0..40 {
            assert!(backoff.next_delay() <= Duration::MAX);
        }
    }
}
