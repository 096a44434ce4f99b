//! [`ReaperSchedule`]: when a network backend's reaper runs next, written once.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::Result;

/// How soon after connecting the first run comes.
const FIRST_RUN: Duration = Duration::from_millis(10);

/// What one reaper run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Records reclaimed.
    pub reclaimed: u64,
    /// The earliest expiry still ahead, if the backend can tell.
    pub next_expiry: Option<SystemTime>,
}

/// When the reaper runs next.
///
/// Expired records are invisible at once (every read compares the expiry with the server's
/// clock), so a reaper is about space, and about waking the waiters of other processes
/// whose clocks lag the server's. Every instance of a store may reap; each run reclaims a
/// bounded number of records, so one run never holds the server for long. The schedule:
///
/// - the first run comes soon after connecting, for what expired while no instance ran;
/// - a run that reclaimed its whole limit runs again at once (more is waiting);
/// - otherwise the next run is at the earliest expiry the run saw, if the backend can tell
///   (Redis keeps expiries in a sorted set), and never later than one interval;
/// - a run that failed (the server is away) is tried again one interval later.
///
/// ```
/// use std::time::Duration;
/// use store_core::net::{Reaped, ReaperSchedule};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut schedule = ReaperSchedule::new(Some(Duration::from_secs(1)), 256);
/// schedule.due().await; // soon after connecting
/// schedule.start();
/// assert!(!schedule.is_idle()); // one run at a time
/// // The run reclaimed its whole limit: the next one is due at once.
/// schedule.finished(Ok(Reaped { reclaimed: 256, next_expiry: None }));
/// assert!(schedule.next_run().unwrap() <= tokio::time::Instant::now());
/// # });
/// ```
#[derive(Debug)]
pub struct ReaperSchedule {
    interval: Option<Duration>,
    limit: u64,
    next: Instant,
    running: bool,
}

impl ReaperSchedule {
    /// A schedule for runs of at most `limit` records, at least every `interval` (`None`:
    /// this instance never reaps; another one does).
    pub fn new(interval: Option<Duration>, limit: u64) -> Self {
        Self {
            interval,
            limit: limit.max(1),
            next: Instant::now() + FIRST_RUN,
            running: false,
        }
    }

    /// When the next run is due; `None` while one runs, or if this instance never reaps.
    pub fn next_run(&self) -> Option<Instant> {
        (self.interval.is_some() && !self.running).then_some(self.next)
    }

    /// Whether no run is in progress.
    pub fn is_idle(&self) -> bool {
        !self.running
    }

    /// Resolves when the next run is due; never while one runs. Cancel-safe, for a `select!`.
    pub async fn due(&self) {
        match self.next_run() {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// A run starts.
    pub fn start(&mut self) {
        self.running = true;
    }

    /// A run ended with `outcome`: schedules the next one (and logs what the run did).
    pub fn finished(&mut self, outcome: Result<Reaped>) {
        self.running = false;
        let interval = self.interval.unwrap_or(Duration::from_secs(1));
        let now = Instant::now();
        self.next = match outcome {
            Ok(reaped) if reaped.reclaimed >= self.limit => now,
            Ok(reaped) => {
                if reaped.reclaimed > 0 {
                    tracing::debug!(
                        reclaimed = reaped.reclaimed,
                        "the reaper reclaimed expired records"
                    );
                }
                let latest = now + interval;
                reaped.next_expiry.map_or(latest, |at| {
                    let ahead = at
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    (now + ahead).min(latest)
                })
            }
            Err(error) => {
                if matches!(error, crate::Error::Unavailable(_)) {
                    // Expected while the server is away; the callers hear about it.
                    tracing::debug!(%error, "the reaper could not run; it tries again later");
                } else {
                    tracing::warn!(%error, "the reaper failed; it tries again later");
                }
                now + interval
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[tokio::test(start_paused = true)]
    async fn the_next_run_is_the_earliest_expiry_but_never_later_than_an_interval() {
        let interval = Duration::from_secs(10);
        let mut schedule = ReaperSchedule::new(Some(interval), 100);
        let now = Instant::now();
        schedule.start();
        assert_eq!(schedule.next_run(), None);
        let soon = SystemTime::now() + Duration::from_secs(2);
        schedule.finished(Ok(Reaped {
            reclaimed: 3,
            next_expiry: Some(soon),
        }));
        let next = schedule.next_run().unwrap();
        assert!(next > now + Duration::from_secs(1) && next <= now + Duration::from_secs(2));

        schedule.start();
        let far = SystemTime::now() + Duration::from_secs(3600);
        schedule.finished(Ok(Reaped {
            reclaimed: 0,
            next_expiry: Some(far),
        }));
        assert_eq!(schedule.next_run().unwrap(), Instant::now() + interval);

        schedule.start();
        schedule.finished(Err(Error::Unavailable("away".into())));
        assert_eq!(schedule.next_run().unwrap(), Instant::now() + interval);
    }

    #[test]
    fn an_instance_without_an_interval_never_reaps() {
        let schedule = ReaperSchedule::new(None, 100);
        assert_eq!(schedule.next_run(), None);
    }
}
