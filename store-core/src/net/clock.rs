//! [`ServerClock`]: what a network backend knows of its server's clock, so that a write can
//! carry a deadline the *server* enforces.

use std::time::{Duration, Instant};

/// How much slower than the local clock the server's clock may run, in parts per million
/// (1000 ppm is about 86 s a day; NTP keeps real clocks within a few hundred ppm before
/// it corrects them, and within tens after).
pub const MAX_DRIFT_PPM: u64 = 1000;

/// One sample of a server's clock, to turn a caller's deadline into a server time.
///
/// # Why a write needs a deadline on the server
///
/// A caller that gives up on a write (its request timeout passed) is answered
/// [`Unavailable`](crate::Error::Unavailable). If the write's bytes are only delayed (a
/// stalled connection, a statement waiting on a lock), the server may still apply it
/// later, after a newer write that *was* acknowledged, and silently undo it. The contract
/// forbids that: a write answered `Unavailable` took effect before that answer or never
/// does. So every write carries the latest server time at which it may still be applied,
/// and the server refuses it after that: Redis's script compares it with `TIME`,
/// PostgreSQL's transaction checks it with `clock_timestamp()` just before `COMMIT`.
///
/// # How a local deadline becomes a server time
///
/// Each exchange with the server gives a *sample*: the server read its clock at some moment
/// between the request's departure (`sent`) and the answer's arrival (`received`), so at
/// `received` the server's clock showed at least the time it reported. From then on it
/// shows at least that time plus the local time elapsed, less what rate drift could take
/// away ([`MAX_DRIFT_PPM`]). [`ServerClock::no_later_than`] turns a local deadline into
/// that lower bound: if the server applies a write at a server time no later than it, the
/// local clock had not yet reached the deadline, so the caller had not yet been answered.
///
/// What this assumes: the server's clock does not step backwards (a wall-clock step, by
/// NTP or by hand, of more than the margin would let a late write through), and it runs at
/// most [`MAX_DRIFT_PPM`] slower than the local monotonic clock. Both clocks on one machine,
/// or NTP-disciplined clocks, are well within that.
///
/// ```
/// use std::time::{Duration, Instant};
/// use store_core::net::ServerClock;
///
/// let sent = Instant::now();
/// let server_micros = 1_764_600_000_000_000; // what the server's clock said
/// let received = sent + Duration::from_micros(300);
/// let clock = ServerClock::sample(sent, server_micros, received);
///
/// // A deadline two seconds after the answer arrived is at least this server time.
/// let bound = clock.no_later_than(received + Duration::from_secs(2));
/// assert!(bound <= server_micros + 2_000_000);
/// assert!(bound >= server_micros + 1_990_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerClock {
    /// What the server's clock said, in microseconds since the Unix epoch.
    server_micros: i64,
    /// When its answer arrived here.
    received: Instant,
    /// How long the exchange took (the sample's uncertainty).
    round_trip: Duration,
}

impl ServerClock {
    /// A sample from an exchange sent at `sent` and answered at `received`, in which the
    /// server reported `server_micros` (microseconds since the Unix epoch).
    ///
    /// ```
    /// # use std::time::Instant;
    /// let now = Instant::now();
    /// let clock = store_core::net::ServerClock::sample(now, 1_000_000, now);
    /// assert_eq!(clock.server_micros(), 1_000_000);
    /// ```
    pub fn sample(sent: Instant, server_micros: i64, received: Instant) -> Self {
        Self {
            server_micros,
            received,
            round_trip: received.saturating_duration_since(sent),
        }
    }

    /// What the server's clock said in this sample (µs since the Unix epoch).
    ///
    /// ```
    /// # use std::time::Instant;
    /// let now = Instant::now();
    /// assert_eq!(store_core::net::ServerClock::sample(now, 7, now).server_micros(), 7);
    /// ```
    pub fn server_micros(&self) -> i64 {
        self.server_micros
    }

    /// How long the sampled exchange took.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let sent = Instant::now();
    /// let clock = store_core::net::ServerClock::sample(sent, 0, sent + Duration::from_millis(2));
    /// assert_eq!(clock.round_trip(), Duration::from_millis(2));
    /// ```
    pub fn round_trip(&self) -> Duration {
        self.round_trip
    }

    /// When the sampled answer arrived.
    ///
    /// ```
    /// # use std::time::Instant;
    /// let now = Instant::now();
    /// assert_eq!(store_core::net::ServerClock::sample(now, 0, now).received(), now);
    /// ```
    pub fn received(&self) -> Instant {
        self.received
    }

    /// The latest server time (µs since the Unix epoch) that the server's clock certainly
    /// had not passed when the local clock reached `deadline`: a write applied at a server
    /// time no later than this was applied before `deadline` here. A deadline before the
    /// sample gives the sample's own time less the distance (never later than the truth).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let now = Instant::now();
    /// let clock = store_core::net::ServerClock::sample(now, 5_000_000, now);
    /// // A second later, less the drift margin (1000 ppm of a second is 1 ms).
    /// assert_eq!(clock.no_later_than(now + Duration::from_secs(1)), 5_999_000);
    /// ```
    pub fn no_later_than(&self, deadline: Instant) -> i64 {
        match deadline.checked_duration_since(self.received) {
            Some(ahead) => {
                let micros = i64::try_from(ahead.as_micros()).unwrap_or(i64::MAX);
                let drift = micros / (1_000_000 / MAX_DRIFT_PPM as i64);
                self.server_micros
                    .saturating_add(micros)
                    .saturating_sub(drift)
            }
            None => {
                let behind = self.received.duration_since(deadline);
                let micros = i64::try_from(behind.as_micros()).unwrap_or(i64::MAX);
                // Rounded up, so the bound stays at or below the truth.
                let micros = micros.saturating_add(1);
                self.server_micros.saturating_sub(micros)
            }
        }
    }

    /// Whichever of two samples gives the tighter bound for deadlines from now on: the
    /// later one, unless it is much less certain than the other.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let old = store_core::net::ServerClock::sample(t, 1_000_000, t);
    /// let new = store_core::net::ServerClock::sample(t, 1_500_000, t + Duration::from_millis(500));
    /// assert_eq!(old.better(new), new);
    /// ```
    #[must_use]
    pub fn better(self, other: Self) -> Self {
        let now = self.received.max(other.received);
        if self.no_later_than(now) >= other.no_later_than(now) {
            self
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_never_exceed_the_server_time_for_any_moment_of_the_exchange() {
        let sent = Instant::now();
        let received = sent + Duration::from_millis(10);
        // The server read its clock somewhere in [sent, received]; say it runs 3 ms ahead.
        for read_at_ms in [0u64, 5, 10] {
            let truth_at = |local: Instant| -> i64 {
                // Server time at a local instant, clocks at the same rate.
                let offset = 3_000i64;
                offset + local.duration_since(sent).as_micros() as i64
            };
            let reported = truth_at(sent + Duration::from_millis(read_at_ms));
            let clock = ServerClock::sample(sent, reported, received);
            for later_ms in [0u64, 1, 100, 10_000] {
                let deadline = received + Duration::from_millis(later_ms);
                assert!(clock.no_later_than(deadline) <= truth_at(deadline));
            }
            assert!(clock.no_later_than(sent) <= truth_at(sent));
        }
    }

    #[test]
    fn a_slower_server_clock_within_the_drift_margin_stays_bounded() {
        let t = Instant::now();
        let clock = ServerClock::sample(t, 0, t);
        let hour = Duration::from_secs(3600);
        // A server clock 900 ppm slow has advanced this much after an hour.
        let slow = (hour.as_micros() as i64) * (1_000_000 - 900) / 1_000_000;
        assert!(clock.no_later_than(t + hour) <= slow);
    }
}
