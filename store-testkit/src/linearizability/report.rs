//! What a failed search prints: the operations around the point where it got stuck.

use std::fmt::Write as _;

use super::prepare::{instant, Held, Kind, Nanos, Prepared, Writer, ALWAYS, NEVER, UNSEEN};
use super::search::Deepest;
use super::{clock, show, Call, Operation};

/// How many operations of the longest order found are shown before the point of failure.
const LEAD_IN: usize = 6;

/// A report's wall-clock instant.
fn at(instant_nanos: Nanos) -> String {
    if instant_nanos == NEVER {
        "never".to_owned()
    } else {
        clock(instant(instant_nanos))
    }
}

/// Describes the register holding the record of `writer` (or nothing).
fn holding(history: &[Operation], prepared: &Prepared, writer: Option<Writer>) -> String {
    match writer {
        None => "no record".to_owned(),
        Some(UNSEEN) => "a record that no call read".to_owned(),
        Some(w) => {
            let w = w as usize;
            let value = history[w]
                .call
                .writes()
                .map(show)
                .unwrap_or_else(|| "?".to_owned());
            match &prepared.versions[w] {
                Some(version) => format!("{value} version {version:?} (task {})", history[w].task),
                None => format!("{value}, version never seen (task {})", history[w].task),
            }
        }
    }
}

/// What an operation needs from the key to come next.
fn needs(history: &[Operation], prepared: &Prepared, i: usize) -> String {
    let kind = prepared.steps[i].kind;
    match kind {
        Kind::Holds(want) => format!("needs {}", holding(history, prepared, want)),
        Kind::HoldsOther(None) => "needs a record".to_owned(),
        Kind::HoldsOther(Some(w)) => format!(
            "needs a record other than {}",
            holding(history, prepared, Some(w))
        ),
        Kind::Put => "fits any record".to_owned(),
        Kind::Create => "needs no record".to_owned(),
        Kind::Cas(None) => match &history[i].call {
            Call::Cas { expected, .. } => {
                format!("needs version {expected:?}, which no write of the history has")
            }
            _ => "needs a version no write has".to_owned(),
        },
        Kind::Cas(Some(w)) => format!("needs {}", holding(history, prepared, Some(w))),
        Kind::Delete => "needs a record".to_owned(),
        Kind::Skip => "tells nothing".to_owned(),
    }
}

pub(super) fn context(history: &[Operation], prepared: &Prepared, deepest: &Deepest) -> String {
    let steps = &prepared.steps;
    let mut out = String::new();
    let placed = deepest.order.len();
    let writer = deepest.state.map(|held| held.writer);
    let mut holds = match writer {
        // Name the write that filled the register: the last write of the order.
        Some(UNSEEN) => deepest
            .order
            .iter()
            .rev()
            .find(|&&i| matches!(steps[i].kind, Kind::Put | Kind::Create | Kind::Cas(_)))
            .map(|&i| {
                let value = history[i].call.writes().map(show).unwrap_or_default();
                format!("{value} (task {}), which no call read", history[i].task)
            })
            .unwrap_or_else(|| holding(history, prepared, writer)),
        writer => holding(history, prepared, writer),
    };
    if let Some(Held { expires, .. }) = deepest.state.filter(|held| held.expires != NEVER) {
        holds = format!("{holds}, expiring at {}", at(expires));
    }
    if deepest.lower != ALWAYS {
        holds = format!("{holds}, at {}", at(deepest.lower));
    }
    let _ = writeln!(
        out,
        "  {} operations; the longest order found places {placed}, after which the key holds \
         {holds}.",
        history.len()
    );
    let lead_in = &deepest.order[placed.saturating_sub(LEAD_IN)..];
    if placed > 0 {
        let _ = writeln!(out, "  The last operations of that order:");
        for &i in lead_in {
            let _ = writeln!(out, "    {}", history[i]);
        }
    }
    // The earliest response still pending: nothing invoked after it may come before it.
    let blocking = (0..steps.len())
        .filter(|&i| !deepest.linearized.get(i))
        .filter(|&i| steps[i].returned.is_some())
        .min_by_key(|&i| steps[i].returned);
    let Some(blocking) = blocking else {
        return out;
    };
    let earliest = steps[blocking].returned.expect("filtered on a response");
    let mut candidates: Vec<usize> = (0..steps.len())
        .filter(|&i| !deepest.linearized.get(i))
        .filter(|&i| steps[i].invoked < earliest && steps[i].kind != Kind::Skip)
        .collect();
    candidates.sort_by_key(|&i| steps[i].invoked);
    let _ = writeln!(
        out,
        "  None of these can come next (all are invoked before {earliest}, when the first \
         of them still unplaced had returned):"
    );
    // Operations that still need the record the key holds: nothing may replace it first.
    let waiting: Vec<usize> = match writer.filter(|&w| w != UNSEEN) {
        None => Vec::new(),
        Some(w) => (0..steps.len())
            .filter(|&i| !deepest.linearized.get(i) && steps[i].returned.is_some())
            .filter(|&i| match steps[i].kind {
                Kind::Holds(want) | Kind::Cas(want) => want == Some(w),
                _ => false,
            })
            .collect(),
    };
    let deadline = steps[blocking].until;
    for &i in &candidates {
        let step = &steps[i];
        let fits = step.fit(deepest.state, deepest.lower, deadline).is_some();
        let why = if !fits {
            let mut why = needs(history, prepared, i);
            if deepest.lower != ALWAYS {
                // Name the window it had, which the register's record may have outlived.
                let from = deepest.lower.max(step.from);
                let _ = write!(
                    why,
                    ", between {} and {}",
                    at(from),
                    at(deadline.min(step.until))
                );
            }
            why
        } else if !waiting.is_empty() && waiting != [i] {
            "would replace a record that calls below still need".to_owned()
        } else {
            "fits, but no order after it works".to_owned()
        };
        let mark = if i == blocking {
            "  <- returned first"
        } else {
            ""
        };
        let _ = writeln!(out, "    {}   [{why}]{mark}", history[i]);
    }
    if !waiting.is_empty() {
        let _ = writeln!(
            out,
            "  Calls that still need the record the key holds (values are unique: once \
             replaced, it never comes back):"
        );
        for i in waiting {
            let _ = writeln!(out, "    {}", history[i]);
        }
    }
    if !prepared.expiries.is_empty() {
        // When records expire, the writes behind the versions named above say when.
        let shown: Vec<usize> = lead_in.iter().copied().chain(candidates).collect();
        let mut named: Vec<usize> = Vec::new();
        for &i in &shown {
            if let Kind::Holds(Some(w)) | Kind::HoldsOther(Some(w)) | Kind::Cas(Some(w)) =
                steps[i].kind
            {
                let w = w as usize;
                if !shown.contains(&w) && !named.contains(&w) {
                    named.push(w);
                }
            }
        }
        if !named.is_empty() {
            named.sort_by_key(|&w| steps[w].invoked);
            let _ = writeln!(out, "  The writes of the records named above:");
            for w in named.into_iter().take(LEAD_IN) {
                let _ = writeln!(out, "    {}", history[w]);
            }
        }
    }
    out
}
