//! The depth-first search over linearization orders, with memoised configurations.

use std::collections::HashMap;

use super::prepare::{Class, Kind, Prepared, Writer};
use super::{report, Operation, Report, Violation};

/// A set of operations, one bit each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Bits(Box<[u64]>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)].into_boxed_slice())
    }
    pub(super) fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn is_subset_of(&self, other: &Bits) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
}

/// The furthest the search got: the order it had found, and the register after it.
pub(super) struct Deepest {
    pub(super) order: Vec<usize>,
    pub(super) linearized: Bits,
    pub(super) state: Option<Writer>,
}

/// A decision point: the operations that may come next, and the one being tried.
struct Frame {
    alternatives: Vec<usize>,
    next: usize,
    /// The operation tried from here and the register before it, to undo on backtracking.
    tried: Option<(usize, Option<Writer>)>,
}

/// The configurations explored, all of which failed (the search stops at the first success).
///
/// A configuration is the set of operations placed and the register. Operations that may be
/// left out are kept apart from the others: a configuration fails whenever one with the same
/// required operations and register but fewer optional ones placed failed, since it can
/// only do less. So for each (required placed, register) the sets of optional operations
/// placed are kept, and a new one is skipped when it includes any of them.
#[derive(Default)]
struct Explored {
    failed: HashMap<(Bits, Option<Writer>), Vec<Bits>>,
    count: usize,
}

impl Explored {
    /// Records the configuration; `false` when it (or one it includes) was explored before.
    fn insert(&mut self, required: &Bits, optional: &Bits, state: Option<Writer>) -> bool {
        let known = self.failed.entry((required.clone(), state)).or_default();
        if known.iter().any(|placed| placed.is_subset_of(optional)) {
            return false;
        }
        known.push(optional.clone());
        self.count += 1;
        true
    }
}

struct Search<'a> {
    prepared: &'a Prepared,
    /// Every operation, by invocation time.
    by_invocation: Vec<usize>,
    /// The operations with a known outcome (they must all be placed), by response time.
    required: Vec<usize>,
    /// Each operation's position among the required ones, or among the optional ones.
    slot: Vec<(bool, usize)>,
}

/// The write a required step needs the register to hold when it is placed: a read of its
/// value, or a successful cas expecting its version.
fn needs(step: &super::prepare::Step) -> Option<Writer> {
    match (step.kind, step.returned) {
        (Kind::Holds(Some(w)) | Kind::Cas(Some(w)), Some(_)) => Some(w),
        _ => None,
    }
}

impl Search<'_> {
    /// The operations that may come next in the configuration (`linearized`, `state`): those
    /// invoked before the earliest response still pending, that the register allows.
    ///
    /// - An operation that leaves the register unchanged and fits it is returned alone:
    ///   placing it now loses no linearization, since nothing pending had to come before it
    ///   and it changes nothing for what follows.
    /// - Of the unobserved writes (and deletes) of one class, only one is returned: the
    ///   required one with the earliest response, else any optional one. Any order that
    ///   places another of them here also works with the two swapped.
    /// - While the register holds a write that a required operation still needs, nothing
    ///   may replace it but that operation (when it is the last one needing it): values
    ///   are unique, so once replaced the write never comes back.
    /// - Required operations come first, earliest response first; those that may never
    ///   have happened last, since leaving them out is always allowed.
    fn alternatives(
        &self,
        linearized: &Bits,
        state: Option<Writer>,
        needed_by: &[u32],
    ) -> Vec<usize> {
        let steps = &self.prepared.steps;
        // How many unplaced required steps need what the register holds.
        let holding_needed = match state {
            Some(w) if w != super::prepare::UNSEEN => needed_by[w as usize],
            _ => 0,
        };
        let earliest = self
            .required
            .iter()
            .find(|&&i| !linearized.get(i))
            .and_then(|&i| steps[i].returned)
            .unwrap_or(u64::MAX);
        let mut required = Vec::new();
        let mut optional = Vec::new();
        // Per class: the best required step, and an optional one.
        let mut classes: Vec<(Class, Option<usize>, Option<usize>)> = Vec::new();
        // What the reads that cannot come yet are waiting for.
        let mut wanted: Vec<Option<Writer>> = Vec::new();
        for &i in &self.by_invocation {
            let step = &steps[i];
            if step.invoked >= earliest {
                break;
            }
            if linearized.get(i) {
                continue;
            }
            if step.kind.apply(step.fills, state).is_none() {
                if let Kind::Holds(want) = step.kind {
                    wanted.push(want);
                }
                continue;
            }
            if step.kind.is_read_only() {
                return vec![i];
            }
            if holding_needed > 0 {
                let itself = u32::from(needs(step).is_some() && needs(step) == state);
                if holding_needed > itself {
                    continue;
                }
            }
            let Some(class) = step.class else {
                match step.returned {
                    Some(_) => required.push(i),
                    None => optional.push(i),
                }
                continue;
            };
            let entry = match classes.iter_mut().find(|(c, _, _)| *c == class) {
                Some(entry) => entry,
                None => {
                    classes.push((class, None, None));
                    classes.last_mut().expect("just pushed")
                }
            };
            match step.returned {
                Some(returned) => {
                    if entry
                        .1
                        .is_none_or(|best| steps[best].returned > Some(returned))
                    {
                        entry.1 = Some(i);
                    }
                }
                None => {
                    entry.2.get_or_insert(i);
                }
            }
        }
        for (_, best_required, any_optional) in classes {
            match (best_required, any_optional) {
                (Some(i), _) => required.push(i),
                (None, Some(i)) => optional.push(i),
                (None, None) => {}
            }
        }
        // First what a waiting read needs (the write it read, or a delete for a NotFound),
        // then earliest response first.
        let needed = |i: usize| {
            let step = &steps[i];
            let after = step.kind.apply(step.fills, state).flatten();
            !wanted.contains(&after)
        };
        required.sort_by_key(|&i| (needed(i), steps[i].returned));
        optional.sort_by_key(|&i| (needed(i), steps[i].invoked));
        required.extend(optional);
        required
    }
}

pub(super) fn search(
    history: &[Operation],
    prepared: &Prepared,
    budget: usize,
) -> Result<Report, Violation> {
    let steps = &prepared.steps;
    let mut by_invocation: Vec<usize> = (0..steps.len()).collect();
    by_invocation.sort_by_key(|&i| steps[i].invoked);
    let mut required: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].returned.is_some())
        .collect();
    required.sort_by_key(|&i| steps[i].returned);
    let mut slot = vec![(false, 0); steps.len()];
    let (mut required_count, mut optional_count) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        slot[i] = if step.returned.is_some() {
            required_count += 1;
            (true, required_count - 1)
        } else {
            optional_count += 1;
            (false, optional_count - 1)
        };
    }
    let search = Search {
        prepared,
        by_invocation,
        required,
        slot,
    };

    // Per write: how many unplaced required steps need it in the register.
    let mut needed_by = vec![0u32; steps.len()];
    for step in steps {
        if let Some(w) = needs(step) {
            needed_by[w as usize] += 1;
        }
    }
    let mut left = search.required.len();
    let mut linearized = Bits::new(steps.len());
    let mut placed_required = Bits::new(required_count);
    let mut placed_optional = Bits::new(optional_count);
    let mut state: Option<Writer> = None;
    let mut order: Vec<usize> = Vec::new();
    let mut explored = Explored::default();
    let mut deepest = Deepest {
        order: Vec::new(),
        linearized: linearized.clone(),
        state,
    };
    let done = |configurations| {
        Ok(Report {
            operations: history.len(),
            configurations,
        })
    };
    let gave_up = || {
        Err(Violation::GaveUp {
            budget,
            operations: history.len(),
        })
    };
    if left == 0 {
        return done(0);
    }
    let place = |i: usize, on: bool, linearized: &mut Bits, r: &mut Bits, o: &mut Bits| {
        let (is_required, at) = search.slot[i];
        let set = if is_required { r } else { o };
        if on {
            linearized.set(i);
            set.set(at);
        } else {
            linearized.clear(i);
            set.clear(at);
        }
    };
    let mut frames = vec![Frame {
        alternatives: search.alternatives(&linearized, state, &needed_by),
        next: 0,
        tried: None,
    }];
    while let Some(frame) = frames.last_mut() {
        if let Some((i, before)) = frame.tried.take() {
            place(
                i,
                false,
                &mut linearized,
                &mut placed_required,
                &mut placed_optional,
            );
            state = before;
            order.pop();
            if steps[i].returned.is_some() {
                left += 1;
            }
            if let Some(w) = needs(&steps[i]) {
                needed_by[w as usize] += 1;
            }
        }
        let Some(&i) = frame.alternatives.get(frame.next) else {
            frames.pop();
            continue;
        };
        frame.next += 1;
        let before = state;
        let after = steps[i]
            .kind
            .apply(steps[i].fills, state)
            .expect("alternatives fit the register");
        place(
            i,
            true,
            &mut linearized,
            &mut placed_required,
            &mut placed_optional,
        );
        if !explored.insert(&placed_required, &placed_optional, after) {
            // Explored before (or one that can do more was), and it failed then.
            place(
                i,
                false,
                &mut linearized,
                &mut placed_required,
                &mut placed_optional,
            );
            continue;
        }
        if explored.count > budget {
            return gave_up();
        }
        state = after;
        order.push(i);
        frame.tried = Some((i, before));
        if let Some(w) = needs(&steps[i]) {
            needed_by[w as usize] -= 1;
        }
        if steps[i].returned.is_some() {
            left -= 1;
            if left == 0 {
                return done(explored.count);
            }
        }
        if order.len() > deepest.order.len() {
            deepest = Deepest {
                order: order.clone(),
                linearized: linearized.clone(),
                state,
            };
        }
        let alternatives = search.alternatives(&linearized, state, &needed_by);
        frames.push(Frame {
            alternatives,
            next: 0,
            tried: None,
        });
    }
    if explored.count > budget {
        return gave_up();
    }
    Err(Violation::NotLinearizable {
        context: report::context(history, prepared, &deepest),
    })
}
