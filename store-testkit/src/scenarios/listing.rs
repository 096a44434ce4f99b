//! A get after a listing agrees with it: a key the listing showed is found (when nothing
//! deletes it), a key the listing no longer shows is `NotFound` (when nothing writes it).

use std::sync::Arc;

use super::Handles;
use crate::support::*;
use store_core::{Error, Record, Storage};

const ROUNDS: usize = 10;
/// Keys created, then deleted, per round.
const KEYS: usize = 8;
/// Listing tasks per pair of (lister, getter) handles.
const LISTERS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Keys are only created: a key listed must then be found.
    Creating,
    /// Keys are only deleted: a key not listed must then be `NotFound`.
    Deleting,
}

/// Lists `prefix*` through `lister` until the listing is complete (every key when creating,
/// none when deleting), getting every key through `getter` first (so a cache holds the
/// old answer) and checking each key against each listing.
async fn watch(
    lister: Arc<dyn Storage>,
    getter: Arc<dyn Storage>,
    keys: Arc<Vec<String>>,
    prefix: String,
    phase: Phase,
    what: String,
) {
    let pattern = format!("{prefix}*");
    loop {
        for key in keys.iter() {
            let _ = getter.get(key).await;
        }
        let listed = list(&*lister, &pattern).await;
        for key in keys.iter() {
            let shown = listed.contains(key);
            let got = getter.get(key).await;
            match (phase, shown, &got) {
                (Phase::Creating, true, Err(Error::NotFound)) => panic!(
                    "{what}: a listing showed {key:?}, then a get answered NotFound (nothing \
                     deletes keys in this phase)"
                ),
                (Phase::Deleting, false, Ok(record)) => panic!(
                    "{what}: a listing no longer showed {key:?}, then a get returned {record:?} \
                     (nothing writes keys in this phase)"
                ),
                (_, _, Ok(_) | Err(Error::NotFound)) => {}
                (_, _, Err(error)) => panic!("{what}: get({key:?}) failed: {error:?}"),
            }
        }
        let complete = match phase {
            Phase::Creating => listed.len() == keys.len(),
            Phase::Deleting => listed.is_empty(),
        };
        if complete {
            return;
        }
        tokio::task::yield_now().await;
    }
}

pub(crate) async fn run(handles: &Handles) {
    let writer = handles.writer();
    // Every (lister, getter) pair: with two handles, listing through one and reading
    // through the other, both ways, as well as through the same handle.
    let mut pairs = Vec::new();
    for l in 0..handles.len() {
        for g in 0..handles.len() {
            pairs.push((l, g));
        }
    }
    for round in 0..ROUNDS {
        let prefix = format!("listed/{round}/");
        let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|k| format!("{prefix}{k}")).collect());
        for phase in [Phase::Creating, Phase::Deleting] {
            let mut watchers = Vec::new();
            for &(l, g) in &pairs {
                for n in 0..LISTERS {
                    let what = format!(
                        "round {round}, {phase:?}: lister {n} listing through {} and reading \
                         through {}",
                        handles.name(l),
                        handles.name(g)
                    );
                    watchers.push(tokio::spawn(watch(
                        handles.nth(l).clone(),
                        handles.nth(g).clone(),
                        keys.clone(),
                        prefix.clone(),
                        phase,
                        what,
                    )));
                }
            }
            for key in keys.iter() {
                match phase {
                    Phase::Creating => {
                        ok("create", writer.create(Record::new(key.clone(), "v")).await);
                    }
                    Phase::Deleting => ok("delete", writer.delete(key).await),
                }
                tokio::task::yield_now().await;
            }
            for (n, watcher) in watchers.into_iter().enumerate() {
                join(&format!("round {round}, {phase:?}: lister {n}"), watcher).await;
            }
        }
    }
}
