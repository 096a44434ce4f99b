//! Turns a history into the search's steps: each value read is tied to the write that stored
//! it, each write gets its version, and every version is checked to be used by one write only.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

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

    /// The register after this step, which fills it with `me`, or `None` when the step
    /// cannot happen on `state`.
    pub(super) fn apply(self, me: Writer, state: Option<Writer>) -> Option<Option<Writer>> {
        match self {
            Kind::Holds(want) => (state == want).then_some(state),
            Kind::HoldsOther(not) => (state.is_some() && state != not).then_some(state),
            Kind::Put => Some(Some(me)),
            Kind::Create => state.is_none().then_some(Some(me)),
            Kind::Cas(expected) => (expected.is_some() && state == expected).then_some(Some(me)),
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
}

/// Which steps are interchangeable: the kind of write, and the write a cas expects.
pub(super) type Class = (u8, Option<Writer>);

/// The steps, position by position with the history, and each write's version.
pub(super) struct Prepared {
    pub(super) steps: Vec<Step>,
    pub(super) versions: Vec<Option<String>>,
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
            }
        })
        .collect();

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
                Kind::Put => Some((0, None)),
                Kind::Create => Some((1, None)),
                Kind::Cas(expected) => Some((2, expected)),
                Kind::Delete => Some((3, None)),
                _ => None,
            };
        }
    }
    Ok(Prepared { steps, versions })
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
