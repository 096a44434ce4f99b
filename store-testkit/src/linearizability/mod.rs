//! A linearizability checker for the history of one key, and a [`Recorder`] that builds such
//! histories from calls on any [`Storage`](store_core::Storage).
//!
//! A history is linearizable when every operation can be given one instant between its
//! invocation and its response such that, taken in that order, the operations behave like a
//! single register that holds at most one record: `get` returns what the register holds,
//! `put` replaces it, `create` fills an empty register or reports the record in it,
//! `cas_by_version` replaces the record whose version it names, `delete` empties it.
//!
//! # What the model assumes
//!
//! - Every history starts on a key with no live record.
//! - Every value written is unique within the history, so a value read identifies the write
//!   that stored it. (The [`Recorder`] does not enforce it: the workload chooses the values.)
//! - Versions are opaque strings assigned by the store. A write's version is the one it
//!   returned; a write that does not report one (an entry of `put_many`, a dropped call) gets
//!   the version its readers saw. Two writes of a history must never have the same version:
//!   a version is never reused for a key.
//! - A call whose caller dropped the future (or that failed without saying whether it took
//!   effect) either happened, at some instant after its invocation, or never happened
//!   (DESIGN section 3): the checker may place it anywhere after its invocation, or leave it
//!   out. See [`Outcome::Unknown`].
//! - `get_many` is recorded as one `get` per key with the interval of the whole call, and
//!   `put_many` as one `put` per key (the last record wins when a key repeats). That the
//!   keys of one `get_many` form a single snapshot is a separate check (the kit's
//!   `get_many_is_never_torn_by_put_many` case).
//!
//! # Time and expiry
//!
//! A history is either timeless or timed. In a timeless one (operations made with
//! [`Operation::new`] alone) nothing expires and only the logical stamps count.
//!
//! In a timed one every operation also carries the wall-clock instants read immediately
//! before the call and immediately after it returned or was dropped
//! ([`Operation::with_wall_clock`]), and every write carries the `expires_at` it wrote
//! ([`Operation::with_expiry`]). Each operation placed in the order is then also given an
//! instant `p` between its wall-clock invocation and return (any instant after its
//! invocation for an unknown outcome), the instants never decreasing along the order, and
//! it sees the register as it is at `p`: a record is live while its `expires_at` is `None`
//! or later than `p`, exactly the stores' rule (expired when `expires_at <= now`). An
//! expired record is absent for every call: `get`, `cas_by_version` and `delete` answer
//! `NotFound`, and `create` succeeds over it.
//!
//! The logical stamps still decide which call finished before which began; the wall-clock
//! instants only decide expiry. The two must agree: taken in the order of their logical
//! stamps, a history's wall-clock instants never decrease (the [`Recorder`] reads both
//! under one lock). Expiries must be the ones the store compares: a backend that keeps
//! expiry to the microsecond needs whole microseconds, or the record expires earlier there
//! than in the model. An expiry later than every response of the history never matters,
//! and a timed history in which no record expires is checked as a timeless one.
//!
//! # The search
//!
//! Wing and Gong's search with Lowe's memoisation: depth first over the operations that may
//! come next (those invoked before the earliest pending response), remembering every
//! configuration already explored, so none is explored twice. A configuration is the set
//! of linearized operations, the register, and, in a timed history, the instant `L` of the
//! last one placed. Each operation is placed at the earliest instant that fits it (not
//! before `L`): a later one could only raise the bound for what follows, never let more
//! happen. So a configuration counts as explored when it was seen with an `L` no later
//! than its own.
//!
//! An operation that does not change the register (a read, a refused `create`, a
//! conflicting `cas_by_version`, a `delete` of nothing) is placed at once when it matches
//! the register, which loses no linearization and keeps the concurrent reads of one value
//! from multiplying the configurations; in a timed history only when no record of the
//! history expires between `L` and the instant it is placed at (the search's code says
//! why). The search is bounded: past its budget of configurations it answers
//! [`Violation::GaveUp`], never a pass.
//!
//! # Example
//!
//! ```
//! use store_testkit::linearizability::{check, Call, Operation, Outcome};
//!
//! // Task 0 puts "a" and gets version "1"; task 1's get overlaps the put and sees nothing;
//! // task 2's get starts after the put returned, so it must see "a".
//! let history = vec![
//!     Operation::new(0, Call::Put { value: "a".into() }, Outcome::stored("1"), 1, 4),
//!     Operation::new(1, Call::Get, Outcome::NotFound, 2, 3),
//!     Operation::new(2, Call::Get, Outcome::found("a", "1"), 5, 6),
//! ];
//! assert!(check(&history).is_ok());
//!
//! // A stale read: after the put returned, a get still sees nothing.
//! let stale = vec![
//!     Operation::new(0, Call::Put { value: "a".into() }, Outcome::stored("1"), 1, 2),
//!     Operation::new(1, Call::Get, Outcome::NotFound, 3, 4),
//! ];
//! let violation = check(&stale).unwrap_err();
//! assert!(violation.to_string().contains("not linearizable"));
//! ```
//!
//! A timed history: a record written to expire at 10 ms. A get that returned at 9 ms
//! saw it gone, yet a `cas_by_version` of that version, overlapping the get, succeeded. The
//! cas needs an instant before 10 ms, the get one from 10 ms on (the record was still live
//! before), and the get could only come after the cas if it saw the cas's record: no order
//! explains both.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use store_testkit::linearizability::{check, Call, Operation, Outcome};
//!
//! let ms = |n: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(n);
//! let put = Call::Put { value: "a".into() };
//! let cas = Call::Cas { expected: "1".into(), value: "b".into() };
//! let history = vec![
//!     Operation::new(0, put, Outcome::stored("1"), 1, 2)
//!         .with_wall_clock(ms(1), ms(2))
//!         .with_expiry(Some(ms(10))),
//!     Operation::new(1, cas, Outcome::stored("2"), 3, 6).with_wall_clock(ms(5), ms(12)),
//!     Operation::new(2, Call::Get, Outcome::NotFound, 4, 5).with_wall_clock(ms(6), ms(9)),
//! ];
//! assert!(check(&history).is_err());
//!
//! // Legal: the cas answered NotFound and the get returned at 11 ms, both after the
//! // record expired.
//! let mut fine = history.clone();
//! fine[1].outcome = Outcome::NotFound;
//! fine[2] = Operation::new(2, Call::Get, Outcome::NotFound, 4, 5).with_wall_clock(ms(6), ms(11));
//! assert!(check(&fine).is_ok());
//! ```

mod prepare;
mod recorder;
mod report;
mod search;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;

pub use recorder::{Recorder, Write};

/// How many configurations the search may explore before it gives up (see [`check`]).
///
/// ```
/// use store_testkit::linearizability::{check, check_with_budget, DEFAULT_BUDGET};
/// // `check` is `check_with_budget` with this budget.
/// assert_eq!(check(&[]).is_ok(), check_with_budget(&[], DEFAULT_BUDGET).is_ok());
/// ```
pub const DEFAULT_BUDGET: usize = 2_000_000;

/// A call on one key, with what it wrote.
///
/// ```
/// use store_testkit::linearizability::Call;
/// let call = Call::Cas { expected: "7".into(), value: "next".into() };
/// assert!(call.writes().is_some());
/// assert!(Call::Get.writes().is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `get`, or this key's position in a `get_many`.
    Get,
    /// `put`, or this key's record in a `put_many`.
    Put {
        /// The value written.
        value: Bytes,
    },
    /// `create`.
    Create {
        /// The value written.
        value: Bytes,
    },
    /// `cas_by_version`.
    Cas {
        /// The version the call expected to replace.
        expected: String,
        /// The value written.
        value: Bytes,
    },
    /// `delete`.
    Delete,
}

impl Call {
    /// The value the call writes, if it writes one.
    ///
    /// ```
    /// use store_testkit::linearizability::Call;
    /// assert_eq!(Call::Put { value: "v".into() }.writes().unwrap(), "v");
    /// ```
    pub fn writes(&self) -> Option<&Bytes> {
        match self {
            Call::Put { value } | Call::Create { value } | Call::Cas { value, .. } => Some(value),
            Call::Get | Call::Delete => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Call::Get => "get",
            Call::Put { .. } => "put",
            Call::Create { .. } => "create",
            Call::Cas { .. } => "cas",
            Call::Delete => "delete",
        }
    }
}

/// What a call answered.
///
/// ```
/// use store_testkit::linearizability::Outcome;
/// assert_eq!(Outcome::stored("3"), Outcome::Stored { version: Some("3".into()) });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `get`: the live record's value and version.
    Found {
        /// The value read.
        value: Bytes,
        /// The version read.
        version: String,
    },
    /// `get`, `cas_by_version` or `delete`: there was no live record.
    NotFound,
    /// `put`, `create` or `cas_by_version` stored the value, under `version` when the call
    /// reports it (`None` for an entry of `put_many`, which returns no versions).
    Stored {
        /// The version the call returned.
        version: Option<String>,
    },
    /// `create` on a live key: the live record the error carried.
    AlreadyExists {
        /// The live value.
        value: Bytes,
        /// The live version.
        version: String,
    },
    /// `cas_by_version`: the live version was another one.
    Conflict,
    /// `delete` removed the live record.
    Deleted,
    /// The caller dropped the future before it returned, or the call failed without saying
    /// whether it took effect (for example `Unavailable`): it either took effect at some
    /// instant after its invocation, with the outcome the register gave it then, or never.
    Unknown,
}

impl Outcome {
    /// `Found` with `value` and `version`.
    ///
    /// ```
    /// let found = store_testkit::linearizability::Outcome::found("v", "1");
    /// assert!(matches!(found, store_testkit::linearizability::Outcome::Found { .. }));
    /// ```
    pub fn found(value: impl Into<Bytes>, version: impl Into<String>) -> Self {
        Outcome::Found {
            value: value.into(),
            version: version.into(),
        }
    }

    /// `Stored` with the returned `version`.
    ///
    /// ```
    /// let stored = store_testkit::linearizability::Outcome::stored("9");
    /// assert!(matches!(stored, store_testkit::linearizability::Outcome::Stored { version: Some(_) }));
    /// ```
    pub fn stored(version: impl Into<String>) -> Self {
        Outcome::Stored {
            version: Some(version.into()),
        }
    }

    /// `AlreadyExists` carrying `value` and `version`.
    ///
    /// ```
    /// let refused = store_testkit::linearizability::Outcome::already_exists("v", "1");
    /// assert!(matches!(refused, store_testkit::linearizability::Outcome::AlreadyExists { .. }));
    /// ```
    pub fn already_exists(value: impl Into<Bytes>, version: impl Into<String>) -> Self {
        Outcome::AlreadyExists {
            value: value.into(),
            version: version.into(),
        }
    }
}

/// One call on one key: who made it, what it did, and when, in logical time (and, in a
/// timed history, in wall-clock time).
///
/// `invoked` is read from a shared counter immediately before the call starts and
/// `returned` immediately after it returns (or when its future was dropped), so that
/// `a.returned < b.invoked` exactly when `a` finished before `b` started.
///
/// ```
/// use store_testkit::linearizability::{Call, Operation, Outcome};
/// let op = Operation::new(3, Call::Delete, Outcome::Deleted, 10, 11);
/// assert_eq!(op.task, 3);
/// assert!(op.wall.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The task (client) that made the call, for reports.
    pub task: usize,
    /// The call.
    pub call: Call,
    /// What it answered.
    pub outcome: Outcome,
    /// Logical time just before the call.
    pub invoked: u64,
    /// Logical time just after it returned (or was dropped).
    pub returned: u64,
    /// Wall-clock time around the call, read with the logical stamps; `None` in a timeless
    /// history (see the [module docs](self#time-and-expiry)).
    pub wall: Option<WallClock>,
    /// The `expires_at` of the record the call wrote; `None` for a record that never
    /// expires and for calls that write nothing.
    pub expires_at: Option<SystemTime>,
}

/// The wall-clock instants of a call: read immediately before it started and immediately
/// after it returned (or was dropped).
///
/// ```
/// use std::time::SystemTime;
/// use store_testkit::linearizability::WallClock;
/// let now = SystemTime::now();
/// let wall = WallClock { invoked: now, returned: now };
/// assert_eq!(wall.invoked, wall.returned);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// Just before the call.
    pub invoked: SystemTime,
    /// Just after it returned (or was dropped).
    pub returned: SystemTime,
}

impl Operation {
    /// An operation of `task`, invoked at `invoked` and returned at `returned`, with no
    /// wall-clock time and no expiry (a timeless one).
    ///
    /// ```
    /// use store_testkit::linearizability::{Call, Operation, Outcome};
    /// let get = Operation::new(0, Call::Get, Outcome::NotFound, 1, 2);
    /// assert!(get.invoked < get.returned);
    /// ```
    pub fn new(task: usize, call: Call, outcome: Outcome, invoked: u64, returned: u64) -> Self {
        Self {
            task,
            call,
            outcome,
            invoked,
            returned,
            wall: None,
            expires_at: None,
        }
    }

    /// The same operation, timed: the wall clock read with its logical stamps.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use store_testkit::linearizability::{Call, Operation, Outcome};
    /// let start = SystemTime::now();
    /// let get = Operation::new(0, Call::Get, Outcome::NotFound, 1, 2)
    ///     .with_wall_clock(start, start + Duration::from_micros(40));
    /// assert_eq!(get.wall.unwrap().invoked, start);
    /// ```
    pub fn with_wall_clock(mut self, invoked: SystemTime, returned: SystemTime) -> Self {
        self.wall = Some(WallClock { invoked, returned });
        self
    }

    /// The same operation, with the `expires_at` of the record it wrote (`None`: never).
    /// Only writes carry one, and only in a timed history.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use store_testkit::linearizability::{Call, Operation, Outcome};
    /// let now = SystemTime::now();
    /// let put = Operation::new(0, Call::Put { value: "v".into() }, Outcome::stored("1"), 1, 2)
    ///     .with_wall_clock(now, now)
    ///     .with_expiry(Some(now + Duration::from_millis(3)));
    /// assert!(put.expires_at.is_some());
    /// ```
    pub fn with_expiry(mut self, expires_at: Option<SystemTime>) -> Self {
        self.expires_at = expires_at;
        self
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let returned = match self.outcome {
            Outcome::Unknown => format!("dropped at {}", self.returned),
            _ => self.returned.to_string(),
        };
        write!(f, "[{:>6} .. {:>16}", self.invoked, returned)?;
        if let Some(wall) = &self.wall {
            write!(f, " | {} .. {}", clock(wall.invoked), clock(wall.returned))?;
        }
        write!(f, "] task {:>2}: {}", self.task, self.call.name())?;
        match &self.call {
            Call::Get | Call::Delete => {}
            Call::Put { value } | Call::Create { value } => write!(f, " {}", show(value))?,
            Call::Cas { expected, value } => {
                write!(f, " {} expecting version {expected:?}", show(value))?
            }
        }
        if let Some(at) = self.expires_at {
            write!(f, " expiring at {}", clock(at))?;
        }
        match &self.outcome {
            Outcome::Found { value, version } => {
                write!(f, " -> found {} version {version:?}", show(value))
            }
            Outcome::NotFound => write!(f, " -> NotFound"),
            Outcome::Stored { version: Some(v) } => write!(f, " -> stored, version {v:?}"),
            Outcome::Stored { version: None } => write!(f, " -> stored (put_many)"),
            Outcome::AlreadyExists { value, version } => {
                write!(f, " -> AlreadyExists {} version {version:?}", show(value))
            }
            Outcome::Conflict => write!(f, " -> Conflict"),
            Outcome::Deleted => write!(f, " -> deleted"),
            Outcome::Unknown => write!(f, " -> outcome unknown"),
        }
    }
}

/// A wall-clock instant as a report shows it: the UTC time of day to the nanosecond, which
/// is what tells instants of one history apart (they lie milliseconds apart).
fn clock(at: SystemTime) -> String {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => {
            let seconds = since.as_secs() % 86_400;
            format!(
                "{:02}:{:02}:{:02}.{:09}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
                since.subsec_nanos()
            )
        }
        Err(before) => format!("{:?} before 1970", before.duration()),
    }
}

/// A value as a report shows it: text when it is UTF-8, bytes otherwise.
fn show(value: &Bytes) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("{value:?}"),
    }
}

/// How a history was found linearizable.
///
/// ```
/// use store_testkit::linearizability::{check, Call, Operation, Outcome};
/// let report = check(&[Operation::new(0, Call::Get, Outcome::NotFound, 1, 2)]).unwrap();
/// assert_eq!(report.operations, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// How many operations the history holds.
    pub operations: usize,
    /// How many configurations the search explored (compare with its budget).
    pub configurations: usize,
}

/// Why a history is not linearizable (or why the checker could not tell).
///
/// `Display` prints the operations around the problem, one a line.
///
/// ```
/// use store_testkit::linearizability::{check, Call, Operation, Outcome, Violation};
/// let history = [Operation::new(0, Call::Get, Outcome::found("ghost", "1"), 1, 2)];
/// assert!(matches!(check(&history), Err(Violation::NeverWritten { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The history breaks an assumption of the checker: two writes of the same value, or an
    /// outcome that the call cannot have (a `get` that answered `Conflict`).
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A call saw a value that no write of the history stored.
    NeverWritten {
        /// The call.
        operation: Box<Operation>,
    },
    /// Two writes have the same version, or one write was seen with two versions.
    VersionReused {
        /// What was seen.
        reason: String,
        /// The operations involved.
        operations: Vec<Operation>,
    },
    /// No order of the operations respects both their intervals and the register.
    NotLinearizable {
        /// The operations around the problem (see [`fmt::Display`]).
        context: String,
    },
    /// The search explored `budget` configurations without an answer.
    GaveUp {
        /// The budget it had.
        budget: usize,
        /// How many operations the history holds.
        operations: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Malformed { reason } => {
                write!(f, "the history cannot be checked: {reason}")
            }
            Violation::NeverWritten { operation } => write!(
                f,
                "a call saw a value that no write of the history stored:\n  {operation}"
            ),
            Violation::VersionReused { reason, operations } => {
                write!(f, "version reused: {reason}")?;
                for operation in operations {
                    write!(f, "\n  {operation}")?;
                }
                Ok(())
            }
            Violation::NotLinearizable { context } => {
                write!(f, "the history is not linearizable:\n{context}")
            }
            Violation::GaveUp { budget, operations } => write!(
                f,
                "checker gave up: {budget} configurations explored for a history of \
                 {operations} operations without an answer (make the history smaller)"
            ),
        }
    }
}

impl std::error::Error for Violation {}

/// Checks one key's history with the [`DEFAULT_BUDGET`]. See the [module docs](self).
///
/// ```
/// use store_testkit::linearizability::{check, Call, Operation, Outcome};
/// // Two CAS calls expecting the same version, both successful: impossible.
/// let history = [
///     Operation::new(0, Call::Create { value: "a".into() }, Outcome::stored("1"), 1, 2),
///     Operation::new(1, Call::Cas { expected: "1".into(), value: "b".into() }, Outcome::stored("2"), 3, 6),
///     Operation::new(2, Call::Cas { expected: "1".into(), value: "c".into() }, Outcome::stored("3"), 4, 5),
/// ];
/// assert!(check(&history).is_err());
/// ```
pub fn check(history: &[Operation]) -> Result<Report, Violation> {
    check_with_budget(history, DEFAULT_BUDGET)
}

/// Checks one key's history, exploring at most `budget` configurations.
///
/// ```
/// use store_testkit::linearizability::{check_with_budget, Call, Operation, Outcome, Violation};
/// let history = [Operation::new(0, Call::Put { value: "a".into() }, Outcome::stored("1"), 1, 2)];
/// assert!(matches!(check_with_budget(&history, 0), Err(Violation::GaveUp { .. })));
/// ```
pub fn check_with_budget(history: &[Operation], budget: usize) -> Result<Report, Violation> {
    let prepared = prepare::prepare(history)?;
    search::search(history, &prepared, budget)
}
