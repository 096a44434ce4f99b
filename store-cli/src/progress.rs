//! The progress bar of `snapshot` and `restore`: drawn on stderr when it is a terminal,
//! nothing at all otherwise (piped, redirected, in scripts and tests).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress report of records and bytes; hidden unless stderr is a terminal.
///
/// ```
/// let progress = store_cli::progress::Progress::new("restore", Some(1000));
/// progress.advance(1, 100);
/// progress.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    records: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// A bar for `what`, over `total_bytes` when known (then with a rate and an ETA), or a
    /// spinner with the bytes so far and their rate.
    ///
    /// ```
    /// let spinner = store_cli::progress::Progress::new("snapshot", None);
    /// # spinner.finish();
    /// ```
    pub fn new(what: &str, total_bytes: Option<u64>) -> Self {
        let bar = if !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = match total_bytes {
                Some(total) => ProgressBar::with_draw_target(
                    Some(total),
                    ProgressDrawTarget::stderr(),
                )
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} {bytes_per_sec}, ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template(
                            "{prefix} {spinner} {bytes} {msg} {bytes_per_sec} {elapsed}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        };
        bar.set_prefix(what.to_owned());
        Self {
            bar,
            records: Default::default(),
        }
    }

    /// Adds `records` records and `bytes` bytes.
    ///
    /// ```
    /// store_cli::progress::Progress::new("x", None).advance(2, 10);
    /// ```
    pub fn advance(&self, records: u64, bytes: u64) {
        use std::sync::atomic::Ordering;
        let total = self.records.fetch_add(records, Ordering::Relaxed) + records;
        if !self.bar.is_hidden() {
            self.bar.inc(bytes);
            self.bar.set_message(format!("{total} records"));
        }
    }

    /// Starts a new phase (`checking`, then `restoring`) over the same total.
    ///
    /// ```
    /// store_cli::progress::Progress::new("restore", Some(10)).phase("verify");
    /// ```
    pub fn phase(&self, what: &str) {
        self.records.store(0, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_prefix(what.to_owned());
        self.bar.set_position(0);
        self.bar.reset_eta();
    }

    /// Removes the bar.
    ///
    /// ```
    /// store_cli::progress::Progress::new("x", None).finish();
    /// ```
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
