//! Read after wake: a waiter that wakes observes the change that woke it on its next read.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::Handles;
use crate::support::*;
use store_core::{Error, Record};

/// Rounds of one write and its waiters.
const ROUNDS: usize = 60;
/// Waiters per round, spread over the handles.
const WAITERS: usize = 4;

/// What a waiter saw: its read before waiting, the wait's answer, its read after waking.
type Sighting = (
    store_core::Result<Record>,
    store_core::Result<()>,
    store_core::Result<Record>,
);

/// Spawns the round's waiters: each reads the key (so a cache holds the record being
/// replaced), meets the writer at `barrier`, waits for a change of `version`, then reads.
fn spawn_waiters(
    handles: &Handles,
    key: &'static str,
    version: &str,
    barrier: &Arc<Barrier>,
) -> Vec<tokio::task::JoinHandle<Sighting>> {
    (0..WAITERS)
        .map(|w| {
            // Waiter 0 is on the reader, so with two handles most waiters are on the
            // handle that did not write.
            let store = handles.nth(handles.len() - 1 + w).clone();
            let (barrier, version) = (barrier.clone(), version.to_owned());
            tokio::spawn(async move {
                let before = store.get(key).await;
                barrier.wait().await;
                let woke = store.wait_for_version_change(key, &version).await;
                let after = store.get(key).await;
                (before, woke, after)
            })
        })
        .collect()
}

/// Waiters woken by a put, a put_many or a cas read that write (nothing is written after it
/// in the round, so exactly that write).
pub(crate) async fn woken_by_writes(handles: &Handles) {
    const KEY: &str = "wake/written";
    let writer = handles.writer();
    let mut current = ok("put", writer.put(Record::new(KEY, "start")).await);
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(WAITERS + 1));
        let waiters = spawn_waiters(handles, KEY, &current.version, &barrier);
        barrier.wait().await;
        let value = Bytes::from(format!("round {round}"));
        let (how, version) = match round % 3 {
            0 => {
                let stored = ok("put", writer.put(Record::new(KEY, value.clone())).await);
                ("put", Some(stored.version))
            }
            1 => {
                let records = vec![
                    Record::new(KEY, value.clone()),
                    Record::new("wake/beside", value.clone()),
                ];
                ok("put_many", writer.put_many(records).await);
                ("put_many", None)
            }
            _ => {
                let next = Record::new(KEY, value.clone()).with_version(current.version.clone());
                let stored = ok("cas", writer.cas_by_version(next).await);
                ("cas", Some(stored.version))
            }
        };
        let mut seen = None;
        for (w, waiter) in waiters.into_iter().enumerate() {
            let on = handles.name(handles.len() - 1 + w);
            let what = format!("round {round}: waiter {w} on {on}, woken by a {how}");
            let (before, woke, after) = join(&what, waiter).await;
            let before = ok(&format!("{what}: its read before waiting"), before);
            assert!(
                before.version == current.version,
                "{what}: its read before the write returned version {:?}, expected {:?}",
                before.version,
                current.version
            );
            ok(&format!("{what}: the wait"), woke);
            let after = ok(&format!("{what}: its read after waking"), after);
            assert!(
                after.value == value
                    && after.version != current.version
                    && version.as_ref().is_none_or(|v| *v == after.version),
                "{what}: its read after waking returned value {:?} version {:?}; the write \
                 that woke it stored value {value:?} version {} over version {:?}",
                after.value,
                after.version,
                version
                    .as_deref()
                    .map_or("(not reported by put_many)".to_owned(), |v| format!(
                        "{v:?}"
                    )),
                current.version
            );
            seen = Some(after);
        }
        current = seen.expect("at least one waiter");
    }
}

/// Waiters woken by a delete read `NotFound`.
pub(crate) async fn woken_by_delete(handles: &Handles) {
    const KEY: &str = "wake/deleted";
    let writer = handles.writer();
    for round in 0..ROUNDS {
        let value = format!("round {round}");
        let current = ok("put", writer.put(Record::new(KEY, value)).await);
        let barrier = Arc::new(Barrier::new(WAITERS + 1));
        let waiters = spawn_waiters(handles, KEY, &current.version, &barrier);
        barrier.wait().await;
        ok("delete", writer.delete(KEY).await);
        for (w, waiter) in waiters.into_iter().enumerate() {
            let on = handles.name(handles.len() - 1 + w);
            let what = format!("round {round}: waiter {w} on {on}, woken by a delete");
            let (before, woke, after) = join(&what, waiter).await;
            let before = ok(&format!("{what}: its read before waiting"), before);
            assert!(
                before.version == current.version,
                "{what}: its read before the delete returned version {:?}, expected {:?}",
                before.version,
                current.version
            );
            expect_not_found(&format!("{what}: the wait"), woke);
            assert!(
                matches!(after, Err(Error::NotFound)),
                "{what}: its read after waking returned {after:?}, expected Err(NotFound): the \
                 record deleted was version {:?}",
                current.version
            );
        }
    }
}
