//! The depth-first search over linearization orders, with memoised configurations.

use std::collections::HashMap;

use super::prepare::{Class, Kind, Nanos, Prepared, State, Step, Writer, ALWAYS, NEVER};
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

/// The furthest the search got: the order it had found, and the register and instant
/// after it.
pub(super) struct Deepest {
    pub(super) order: Vec<usize>,
    pub(super) linearized: Bits,
    pub(super) state: State,
    pub(super) lower: Nanos,
}

/// An operation that may come next, the instant it is placed at, and the register after it.
#[derive(Clone, Copy, Debug)]
struct Alternative {
    step: usize,
    at: Nanos,
    after: State,
}

/// A decision point: the operations that may come next, and the one being tried.
struct Frame {
    alternatives: Vec<Alternative>,
    next: usize,
    /// The operation tried from here, and the register and instant before it, to undo on
    /// backtracking.
    tried: Option<(usize, State, Nanos)>,
}

/// The configurations explored, all of which failed (the search stops at the first success).
///
/// A configuration is the set of operations placed, the register, and the instant of the
/// last operation placed (the lower bound for the next). Operations that may be left out
/// are kept apart from the others: a configuration fails whenever one with the same
/// required operations and register but fewer optional ones placed, and an instant no
/// later, failed, since it can only do less: every continuation of it is one of the other
/// (whose instants are all allowed there too, and whose optional operations it may leave
/// out). So for each (required placed, register) the (optional placed, instant) pairs are
/// kept, and a new one is skipped when it includes one of them and is no earlier.
#[derive(Default)]
struct Explored {
    failed: HashMap<(Bits, State), Vec<(Bits, Nanos)>>,
    count: usize,
}

impl Explored {
    /// Records the configuration; `false` when it (or one that can do more) was explored
    /// before.
    fn insert(&mut self, required: &Bits, optional: &Bits, state: State, lower: Nanos) -> bool {
        let known = self.failed.entry((required.clone(), state)).or_default();
        if known
            .iter()
            .any(|(placed, at)| *at <= lower && placed.is_subset_of(optional))
        {
            return false;
        }
        known.push((optional.clone(), lower));
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
fn needs(step: &Step) -> Option<Writer> {
    match (step.kind, step.returned) {
        (Kind::Holds(Some(w)) | Kind::Cas(Some(w)), Some(_)) => Some(w),
        _ => None,
    }
}

/// Whether `a` makes trying `b`, of the same class, at this point unnecessary: any order
/// that places `b` here and `a` later (or never) also works with the two swapped. The
/// class fixes what they need and leave (the record written and its expiry, or none), `a`
/// comes here no later than `b` would, so what follows keeps its instants, and `b` can
/// take `a`'s later place, having been invoked before this point and having returned no
/// sooner (or never: an unknown outcome). An optional `a` cannot stand for a required
/// `b`, which must be placed somewhere. Comparing the instants matters in a timed history
/// only: a write that returned first but was invoked later may come too late for a record
/// that expires, where the other would have been in time.
fn stands_for(steps: &[Step], a: &Alternative, b: &Alternative) -> bool {
    a.at <= b.at
        && match (steps[a.step].returned, steps[b.step].returned) {
            (_, None) => true,
            (Some(a), Some(b)) => a <= b,
            (None, Some(_)) => false,
        }
}

impl Search<'_> {
    /// Whether a record of the history expires after `lower` and no later than `at`.
    fn expiry_between(&self, lower: Nanos, at: Nanos) -> bool {
        let expiries = &self.prepared.expiries;
        let first_after = expiries.partition_point(|&e| e <= lower);
        expiries.get(first_after).is_some_and(|&e| e <= at)
    }

    /// The operations that may come next in the configuration (`linearized`, `state`,
    /// `lower`): those invoked before the earliest response still pending, that the
    /// register allows, each at the earliest instant that fits it.
    ///
    /// - An operation that leaves the register unchanged and fits it is returned alone,
    ///   when no record of the history expires between `lower` and its instant: placing it
    ///   now loses no linearization. Nothing pending had to come before it (it was invoked
    ///   before every pending response), it changes nothing for what follows, and the
    ///   operations that some order places before it can be moved to its instant: their
    ///   intervals reach it (they return after it was invoked) and no record's liveness
    ///   changes between (always so in a timeless history). If a record did expire
    ///   between, placing the read first would push every other operation past that
    ///   expiry, losing the orders in which the record is written and then read, replaced
    ///   or deleted before it lapses (a renewal by cas, say), so the read then waits its
    ///   turn like any other.
    /// - Of the unobserved writes (and deletes) of one class, only those that no other of
    ///   the class stands for (see [`stands_for`]): in a timeless history, the required one
    ///   with the earliest response, else any optional one.
    /// - While the register holds a write that a required operation still needs, nothing
    ///   may replace it (or wait for it to expire) but that operation (when it is the last
    ///   one needing it): values are unique, so once gone the write never comes back.
    /// - Required operations come first, earliest response first; those that may never
    ///   have happened last, since leaving them out is always allowed.
    fn alternatives(
        &self,
        linearized: &Bits,
        state: State,
        lower: Nanos,
        needed_by: &[u32],
    ) -> Vec<Alternative> {
        let steps = &self.prepared.steps;
        let holding = state.map(|held| held.writer);
        // How many unplaced required steps need what the register holds.
        let holding_needed = match holding {
            Some(w) if w != super::prepare::UNSEEN => needed_by[w as usize],
            _ => 0,
        };
        let pending = self
            .required
            .iter()
            .find(|&&i| !linearized.get(i))
            .map(|&i| &steps[i]);
        let earliest = pending.and_then(|step| step.returned).unwrap_or(u64::MAX);
        // Nothing may be placed after the earliest pending response, or that operation
        // could not be placed at all.
        let deadline = pending.map_or(NEVER, |step| step.until);
        let mut required = Vec::new();
        let mut optional = Vec::new();
        // Per class: the alternatives that no other of the class stands for.
        let mut classes: Vec<(Class, Vec<Alternative>)> = Vec::new();
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
            let Some((at, after)) = step.fit(state, lower, deadline) else {
                if let Kind::Holds(want) = step.kind {
                    wanted.push(want);
                }
                continue;
            };
            let alternative = Alternative { step: i, at, after };
            if step.kind.is_read_only() && after == state && !self.expiry_between(lower, at) {
                return vec![alternative];
            }
            if holding_needed > 0 && after.map(|held| held.writer) != holding {
                let itself = u32::from(needs(step).is_some() && needs(step) == holding);
                if holding_needed > itself {
                    continue;
                }
            }
            let Some(class) = step.class else {
                match step.returned {
                    Some(_) => required.push(alternative),
                    None => optional.push(alternative),
                }
                continue;
            };
            let kept = match classes.iter_mut().find(|(c, _)| *c == class) {
                Some((_, kept)) => kept,
                None => {
                    classes.push((class, Vec::new()));
                    &mut classes.last_mut().expect("just pushed").1
                }
            };
            if kept.iter().any(|k| stands_for(steps, k, &alternative)) {
                continue;
            }
            kept.retain(|k| !stands_for(steps, &alternative, k));
            kept.push(alternative);
        }
        for (_, kept) in classes {
            for alternative in kept {
                match steps[alternative.step].returned {
                    Some(_) => required.push(alternative),
                    None => optional.push(alternative),
                }
            }
        }
        // First what a waiting read needs (the write it read, or a delete for a NotFound),
        // then earliest response first.
        let needed = |a: &Alternative| !wanted.contains(&a.after.map(|held| held.writer));
        required.sort_by_key(|a| (needed(a), steps[a.step].returned, a.at));
        optional.sort_by_key(|a| (needed(a), steps[a.step].invoked, a.at));
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
    let mut state: State = None;
    // The instant of the last operation placed.
    let mut lower: Nanos = ALWAYS;
    let mut order: Vec<usize> = Vec::new();
    let mut explored = Explored::default();
    let mut deepest = Deepest {
        order: Vec::new(),
        linearized: linearized.clone(),
        state,
        lower,
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
        alternatives: search.alternatives(&linearized, state, lower, &needed_by),
        next: 0,
        tried: None,
    }];
    while let Some(frame) = frames.last_mut() {
        if let Some((i, before, was)) = frame.tried.take() {
            place(
                i,
                false,
                &mut linearized,
                &mut placed_required,
                &mut placed_optional,
            );
            state = before;
            lower = was;
            order.pop();
            if steps[i].returned.is_some() {
                left += 1;
            }
            if let Some(w) = needs(&steps[i]) {
                needed_by[w as usize] += 1;
            }
        }
        let Some(&Alternative { step: i, at, after }) = frame.alternatives.get(frame.next) else {
            frames.pop();
            continue;
        };
        frame.next += 1;
        place(
            i,
            true,
            &mut linearized,
            &mut placed_required,
            &mut placed_optional,
        );
        if !explored.insert(&placed_required, &placed_optional, after, at) {
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
        frame.tried = Some((i, state, lower));
        state = after;
        lower = at;
        order.push(i);
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
                lower,
            };
        }
        let alternatives = search.alternatives(&linearized, state, lower, &needed_by);
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
