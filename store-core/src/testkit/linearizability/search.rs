//! The depth-first search over linearization orders, with memoised configurations.

use std::collections::HashSet;

use super::prepare::{Prepared, Writer};
use super::{report, Operation, Report, Violation};

/// Which operations are linearized, one bit each.
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

struct Search<'a> {
    prepared: &'a Prepared,
    /// Every operation, by invocation time.
    by_invocation: Vec<usize>,
    /// The operations with a known outcome (they must all be placed), by response time.
    required: Vec<usize>,
}

impl Search<'_> {
    /// The operations that may come next in the configuration (`linearized`, `state`): those
    /// invoked before the earliest response still pending, that the register allows.
    /// An operation that leaves the register unchanged and fits it is returned alone: placing
    /// it now loses no linearization, since nothing pending had to come before it and it
    /// changes nothing for what follows.
    fn alternatives(&self, linearized: &Bits, state: Option<Writer>) -> Vec<usize> {
        let steps = &self.prepared.steps;
        let earliest = self
            .required
            .iter()
            .find(|&&i| !linearized.get(i))
            .and_then(|&i| steps[i].returned)
            .unwrap_or(u64::MAX);
        let mut required = Vec::new();
        let mut optional = Vec::new();
        for &i in &self.by_invocation {
            let step = &steps[i];
            if step.invoked >= earliest {
                break;
            }
            if linearized.get(i) || step.kind.apply(i as Writer, state).is_none() {
                continue;
            }
            if step.kind.is_read_only() {
                return vec![i];
            }
            match step.returned {
                Some(_) => required.push(i),
                None => optional.push(i),
            }
        }
        // Operations that must be placed first, earliest response first; those that may
        // never have happened last, since leaving them out is always allowed.
        required.sort_by_key(|&i| steps[i].returned);
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
    let search = Search {
        prepared,
        by_invocation,
        required,
    };

    let mut left = search.required.len();
    let mut linearized = Bits::new(steps.len());
    let mut state: Option<Writer> = None;
    let mut order: Vec<usize> = Vec::new();
    let mut seen: HashSet<(Bits, Option<Writer>)> = HashSet::new();
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
    if left == 0 {
        return done(0);
    }
    let mut frames = vec![Frame {
        alternatives: search.alternatives(&linearized, state),
        next: 0,
        tried: None,
    }];
    while let Some(frame) = frames.last_mut() {
        if let Some((i, before)) = frame.tried.take() {
            linearized.clear(i);
            state = before;
            order.pop();
            if steps[i].returned.is_some() {
                left += 1;
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
            .apply(i as Writer, state)
            .expect("alternatives fit the register");
        linearized.set(i);
        if !seen.insert((linearized.clone(), after)) {
            // Explored before, from another order: it failed then.
            linearized.clear(i);
            continue;
        }
        if seen.len() > budget {
            return Err(Violation::GaveUp {
                budget,
                operations: history.len(),
            });
        }
        state = after;
        order.push(i);
        frame.tried = Some((i, before));
        if steps[i].returned.is_some() {
            left -= 1;
            if left == 0 {
                return done(seen.len());
            }
        }
        if order.len() > deepest.order.len() {
            deepest = Deepest {
                order: order.clone(),
                linearized: linearized.clone(),
                state,
            };
        }
        let alternatives = search.alternatives(&linearized, state);
        frames.push(Frame {
            alternatives,
            next: 0,
            tried: None,
        });
    }
    if seen.len() > budget {
        return Err(Violation::GaveUp {
            budget,
            operations: history.len(),
        });
    }
    Err(Violation::NotLinearizable {
        context: report::context(history, prepared, &deepest),
    })
}
