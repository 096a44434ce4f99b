//! Turns a history into the search's steps: each value read is tied to the write that stored
//! it, each write gets its version, and every version is checked to be used by one write only.
//! In a timed history each step also gets its wall-clock interval and its record's expiry,
//! as nanoseconds.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::SystemTime;

use bytes::Bytes;

use super::{Call, Operation, Outcome, Violation};

/// The register is identified by the write that filled it: the index of that operation,
/// or [`UNSEEN`].
pub(super) type Writer = u32;

/// The register filled by a write that no call observed (nobody read its value, no
/// `cas_by_version` expected its version). All such writes leave the register in the same
/// state as far as the rest of the history can tell, so they share one: this keeps their
/// orders from multiplying the configurations.
pub(super) const UNSEEN: Writer = Writer::MAX;

/// A wall-clock instant, in nanoseconds from the Unix epoch (negative before it).
pub(super) type Nanos = i128;

/// The expiry of a record that never expires (or not within the history), and the open
/// end of an interval.
pub(super) const NEVER: Nanos = Nanos::MAX;

/// The open start of an interval (a timeless step may be placed at any instant).
pub(super) const ALWAYS: Nanos = Nanos::MIN;

pub(super) fn nanos(at: SystemTime) -> Nanos {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as Nanos,
        Err(before) => -(before.duration().as_nanos() as Nanos),
    }
}

/// The wall-clock instant of `at` (see [`nanos`]), for reports.
pub(super) fn instant(at: Nanos) -> SystemTime {
    let magnitude = std::time::Duration::from_nanos(at.unsigned_abs() as u64);
    if at >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

/// A live record in the register: the write that stored it (see [`Writer`]), and when it
/// expires. Two writes nobody observed are told apart by their expiry alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Held {
    pub(super) writer: Writer,
    pub(super) expires: Nanos,
}

/// The register: the live record it holds, or `None`. The search keeps it as of the
/// instant of the last step placed, so a record in it has not expired by then.
pub(super) type State = Option<Held>;

/// What a step needs from the register, and what it leaves there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Leaves the register alone; it must hold this record (or nothing).
    Holds(Option<Writer>),
    /// Leaves the register alone; it must hold a record other than this one (a conflicting
    /// `cas_by_version`; `None` when the expected version is no write's).
    HoldsOther(Option<Writer>),
    /// Fills the register with this step's value, whatever it held.
    Put,
    /// Fills an empty register with this step's value.
    Create,
    /// Replaces the record written by the given write (`None`: the expected version is no
    /// write's, so it can never succeed).
    Cas(Option<Writer>),
    /// Empties a full register.
    Delete,
    /// A dropped read: it tells nothing.
    Skip,
}

impl Kind {
    /// Whether the step leaves the register unchanged (and so can be placed greedily).
    pub(super) fn is_read_only(self) -> bool {
        matches!(self, Kind::Holds(_) | Kind::HoldsOther(_))
    }

    /// Whether the step needs an empty register (and so, on a live record, waits for it to
    /// expire).
    fn needs_empty(self) -> bool {
        matches!(self, Kind::Holds(None) | Kind::Create)
    }

    /// The register after this step, which fills it with `me`, or `None` when the step
    /// cannot happen on `state` (the register as of the step's instant).
    pub(super) fn apply(self, me: Held, state: State) -> Option<State> {
        let writer = state.map(|held| held.writer);
        match self {
            Kind::Holds(want) => (writer == want).then_some(state),
            Kind::HoldsOther(not) => (state.is_some() && writer != not).then_some(state),
            Kind::Put => Some(Some(me)),
            Kind::Create => state.is_none().then_some(Some(me)),
            Kind::Cas(expected) => (expected.is_some() && writer == expected).then_some(Some(me)),
            Kind::Delete => state.is_some().then_some(None),
            Kind::Skip => None,
        }
    }
}

/// One operation as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    pub(super) kind: Kind,
    pub(super) invoked: u64,
    /// `None` when the outcome is unknown: the step may be placed any time after its
    /// invocation, or never.
    pub(super) returned: Option<u64>,
    /// What the register holds after this step, if it writes: its own index, or [`UNSEEN`].
    pub(super) fills: Writer,
    /// For a write that nobody observed, or a delete: steps of one class have the same
    /// precondition and effect, so the search need not try each of them at one point.
    pub(super) class: Option<Class>,
    /// The earliest instant the step may be placed at: its wall-clock invocation, or
    /// [`ALWAYS`] in a timeless history.
    pub(super) from: Nanos,
    /// The latest: its wall-clock return, or [`NEVER`] in a timeless history and for an
    /// unknown outcome.
    pub(super) until: Nanos,
    /// When the record it writes expires ([`NEVER`] for none, and for calls that write
    /// nothing).
    pub(super) expires: Nanos,
}

impl Step {
    /// The record the step leaves in the register when it writes.
    pub(super) fn held(&self) -> Held {
        Held {
            writer: self.fills,
            expires: self.expires,
        }
    }

    /// Places the step at the earliest instant that fits it: not before `lower` (the
    /// instant of the step placed last, when the register was `state`), not before its
    /// invocation, and not after `deadline` (the earliest response still pending) nor its
    /// own response. Returns that instant and the register after the step, with a record
    /// that has expired by then removed; `None` when the step cannot come next.
    ///
    /// A step that needs an empty register waits for the live record to expire; any other
    /// is placed as early as it may be, since a later instant could only make records
    /// expire under it. Either way no later instant does better: what comes next only
    /// cares about the register, which ends the same, and the instant, which is a lower
    /// bound for it.
    pub(super) fn fit(
        &self,
        state: State,
        lower: Nanos,
        deadline: Nanos,
    ) -> Option<(Nanos, State)> {
        let mut at = lower.max(self.from);
        let mut now = state;
        if let Some(held) = state {
            if held.expires <= at {
                now = None;
            } else if self.kind.needs_empty() {
                if held.expires == NEVER {
                    return None;
                }
                at = held.expires;
                now = None;
            }
        }
        if at > deadline.min(self.until) {
            return None;
        }
        let after = self.kind.apply(self.held(), now)?;
        // A record written already expired (or one that expired meanwhile) is no record.
        Some((at, after.filter(|held| held.expires > at)))
    }
}

/// Which steps are interchangeable: the kind of write, the write a cas expects, and the
/// expiry of the record written.
pub(super) type Class = (u8, Option<Writer>, Nanos);

/// The steps, position by position with the history, and each write's version.
pub(super) struct Prepared {
    pub(super) steps: Vec<Step>,
    pub(super) versions: Vec<Option<String>>,
    /// Every distinct expiry of the history that may matter, in ascending order (empty
    /// when the history is timeless, or nothing in it expires before its last response).
    pub(super) expiries: Vec<Nanos>,
}

fn malformed(operation: &Operation, why: &str) -> Violation {
    Violation::Malformed {
        reason: format!("{why}:\n  {operation}"),
    }
}

pub(super) fn prepare(history: &[Operation]) -> Result<Prepared, Violation> {
    if history.len() >= UNSEEN as usize {
        return Err(Violation::Malformed {
            reason: format!("{} operations are too many for one history", history.len()),
        });
    }
    // Which operation may have stored each value.
    let mut writer_of: HashMap<&Bytes, Writer> = HashMap::new();
    for (i, operation) in history.iter().enumerate() {
        if operation.returned <= operation.invoked {
            return Err(malformed(operation, "returned before it was invoked"));
        }
        let fits = matches!(
            (&operation.call, &operation.outcome),
            (_, Outcome::Unknown)
                | (Call::Get, Outcome::Found { .. } | Outcome::NotFound)
                | (Call::Put { .. }, Outcome::Stored { .. })
                | (
                    Call::Create { .. },
                    Outcome::Stored { .. } | Outcome::AlreadyExists { .. }
                )
                | (
                    Call::Cas { .. },
                    Outcome::Stored { .. } | Outcome::Conflict | Outcome::NotFound
                )
                | (Call::Delete, Outcome::Deleted | Outcome::NotFound)
        );
        if !fits {
            return Err(malformed(operation, "this call cannot have this outcome"));
        }
        if let Some(value) = operation.call.writes() {
            match writer_of.entry(value) {
                Entry::Vacant(slot) => {
                    slot.insert(i as Writer);
                }
                Entry::Occupied(first) => {
                    return Err(Violation::Malformed {
                        reason: format!(
                            "two calls write the same value, so a read cannot tell them \
                             apart (values must be unique):\n  {}\n  {operation}",
                            history[*first.get() as usize]
                        ),
                    })
                }
            }
        }
    }

    let times = times(history)?;

    // Each write's version: the one it returned, else the one its readers saw.
    let mut versions: Vec<Option<String>> = history
        .iter()
        .map(|operation| match &operation.outcome {
            Outcome::Stored { version } => version.clone(),
            _ => None,
        })
        .collect();
    // Who fixed each version, for reports.
    let mut witness: Vec<Option<usize>> = (0..history.len())
        .map(|i| versions[i].as_ref().map(|_| i))
        .collect();
    for (i, operation) in history.iter().enumerate() {
        let (value, version) = match &operation.outcome {
            Outcome::Found { value, version } | Outcome::AlreadyExists { value, version } => {
                (value, version)
            }
            _ => continue,
        };
        let Some(&writer) = writer_of.get(value) else {
            return Err(Violation::NeverWritten {
                operation: Box::new(operation.clone()),
            });
        };
        let writer = writer as usize;
        if matches!(
            history[writer].outcome,
            Outcome::AlreadyExists { .. } | Outcome::Conflict | Outcome::NotFound
        ) {
            // The call that carried this value was refused: nobody stored it.
            return Err(Violation::NeverWritten {
                operation: Box::new(operation.clone()),
            });
        }
        match &versions[writer] {
            None => {
                versions[writer] = Some(version.clone());
                witness[writer] = Some(i);
            }
            Some(known) if known == version => {}
            Some(known) => {
                let first = witness[writer].expect("a known version has a witness");
                return Err(Violation::VersionReused {
                    reason: format!(
                        "one write is seen with two versions, {known:?} and {version:?}"
                    ),
                    operations: dedup(vec![
                        history[writer].clone(),
                        history[first].clone(),
                        operation.clone(),
                    ]),
                });
            }
        }
    }

    // No two writes share a version.
    let mut owner: HashMap<&str, Writer> = HashMap::new();
    for (i, version) in versions.iter().enumerate() {
        let Some(version) = version else { continue };
        if version.is_empty() {
            return Err(malformed(&history[i], "a write has an empty version"));
        }
        if let Some(&other) = owner.get(version.as_str()) {
            let other = other as usize;
            let mut operations = vec![history[other].clone(), history[i].clone()];
            for w in [other, i] {
                if let Some(seen) = witness[w].filter(|&seen| seen != w) {
                    operations.push(history[seen].clone());
                }
            }
            return Err(Violation::VersionReused {
                reason: format!("two different writes both have version {version:?}"),
                operations,
            });
        }
        owner.insert(version, i as Writer);
    }

    let expected = |version: &str| owner.get(version).copied();
    let mut steps: Vec<Step> = history
        .iter()
        .map(|operation| {
            let writer_of_value = |value: &Bytes| Some(writer_of[value]);
            let kind = match (&operation.call, &operation.outcome) {
                (Call::Get, Outcome::Unknown) => Kind::Skip,
                (_, Outcome::Found { value, .. } | Outcome::AlreadyExists { value, .. }) => {
                    Kind::Holds(writer_of_value(value))
                }
                (_, Outcome::NotFound) => Kind::Holds(None),
                (Call::Cas { expected: e, .. }, Outcome::Conflict) => Kind::HoldsOther(expected(e)),
                (Call::Put { .. }, _) => Kind::Put,
                (Call::Create { .. }, _) => Kind::Create,
                (Call::Cas { expected: e, .. }, _) => Kind::Cas(expected(e)),
                (Call::Delete, _) => Kind::Delete,
                // Every other outcome of a get was refused as malformed above.
                (Call::Get, _) => Kind::Skip,
            };
            Step {
                kind,
                invoked: operation.invoked,
                returned: match operation.outcome {
                    Outcome::Unknown => None,
                    _ => Some(operation.returned),
                },
                fills: UNSEEN,
                class: None,
                from: ALWAYS,
                until: NEVER,
                expires: NEVER,
            }
        })
        .collect();
    if let Some(times) = &times {
        for (step, &(from, until, expires)) in steps.iter_mut().zip(&times.steps) {
            step.from = from;
            step.until = if step.returned.is_some() {
                until
            } else {
                NEVER
            };
            step.expires = expires;
        }
    }

    // A write is observed when a call read its value or expected its version.
    let mut observed = vec![false; steps.len()];
    for step in &steps {
        if let Kind::Holds(Some(w)) | Kind::HoldsOther(Some(w)) | Kind::Cas(Some(w)) = step.kind {
            observed[w as usize] = true;
        }
    }
    for (i, step) in steps.iter_mut().enumerate() {
        if observed[i] {
            step.fills = i as Writer;
        } else {
            step.class = match step.kind {
                Kind::Put => Some((0, None, step.expires)),
                Kind::Create => Some((1, None, step.expires)),
                Kind::Cas(expected) => Some((2, expected, step.expires)),
                Kind::Delete => Some((3, None, NEVER)),
                _ => None,
            };
        }
    }
    let expiries = times.map(|times| times.expiries).unwrap_or_default();
    Ok(Prepared {
        steps,
        versions,
        expiries,
    })
}

/// The wall-clock side of a timed history, as nanoseconds.
struct Times {
    /// Per operation: wall-clock invocation, return, and the expiry of what it wrote
    /// ([`NEVER`] when that cannot matter).
    steps: Vec<(Nanos, Nanos, Nanos)>,
    /// The distinct expiries that may matter, ascending.
    expiries: Vec<Nanos>,
}

/// Checks the history's wall-clock times and expiries, and returns them; `None` when the
/// history is timeless, or timed with no record that expires before its last response (no
/// instant of a linearization can be later than that, and without expiry the wall clock
/// adds nothing to the logical order it agrees with).
fn times(history: &[Operation]) -> Result<Option<Times>, Violation> {
    for operation in history {
        if operation.expires_at.is_some() && operation.call.writes().is_none() {
            return Err(malformed(
                operation,
                "a call that writes nothing carries an expiry",
            ));
        }
    }
    let Some(timed) = history.iter().find(|operation| operation.wall.is_some()) else {
        return match history
            .iter()
            .find(|operation| operation.expires_at.is_some())
        {
            Some(operation) => Err(malformed(
                operation,
                "a write carries an expiry but the history has no wall-clock times, so \
                 the checker cannot tell when it expires",
            )),
            None => Ok(None),
        };
    };
    if let Some(timeless) = history.iter().find(|operation| operation.wall.is_none()) {
        return Err(Violation::Malformed {
            reason: format!(
                "some operations carry wall-clock times and others do not:\n  {timed}\n  \
                 {timeless}"
            ),
        });
    }
    // Every event, in logical order: the wall clock must not go back along it.
    let mut events: Vec<(u64, Nanos, usize)> = Vec::with_capacity(2 * history.len());
    for (i, operation) in history.iter().enumerate() {
        let wall = operation.wall.expect("checked above");
        events.push((operation.invoked, nanos(wall.invoked), i));
        events.push((operation.returned, nanos(wall.returned), i));
    }
    events.sort_unstable();
    for pair in events.windows(2) {
        let ((_, before, a), (_, after, b)) = (pair[0], pair[1]);
        if after < before {
            let reason = if a == b {
                format!(
                    "its wall clock returned before it was invoked:\n  {}",
                    history[a]
                )
            } else {
                format!(
                    "the wall clock went back between two calls in logical order (logical \
                     and wall-clock stamps must be read together):\n  {}\n  {}",
                    history[a], history[b]
                )
            };
            return Err(Violation::Malformed { reason });
        }
    }
    // No step of a linearization comes after the last response: from there on, nothing
    // required is left to place.
    let horizon = history
        .iter()
        .filter(|operation| operation.outcome != Outcome::Unknown)
        .map(|operation| nanos(operation.wall.expect("checked above").returned))
        .max()
        .unwrap_or(ALWAYS);
    let steps: Vec<(Nanos, Nanos, Nanos)> = history
        .iter()
        .map(|operation| {
            let wall = operation.wall.expect("checked above");
            let expires = operation
                .expires_at
                .map(nanos)
                .filter(|&at| at <= horizon)
                .unwrap_or(NEVER);
            (nanos(wall.invoked), nanos(wall.returned), expires)
        })
        .collect();
    let mut expiries: Vec<Nanos> = steps
        .iter()
        .map(|&(_, _, expires)| expires)
        .filter(|&expires| expires != NEVER)
        .collect();
    if expiries.is_empty() {
        return Ok(None);
    }
    expiries.sort_unstable();
    expiries.dedup();
    Ok(Some(Times { steps, expiries }))
}

fn dedup(mut operations: Vec<Operation>) -> Vec<Operation> {
    let mut unique = Vec::with_capacity(operations.len());
    for operation in operations.drain(..) {
        if !unique.contains(&operation) {
            unique.push(operation);
        }
    }
    unique
}
