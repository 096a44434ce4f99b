//! `get_many` answers from one moment: it never observes part of a `put_many` (two keys
//! always written together with equal values), and never a later `put` without an earlier
//! one (two keys written one after the other), while many tasks read them together, for a
//! bounded number of iterations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Handles;
use crate::support::*;
use store_core::Record;

const A: &str = "torn/a";
const B: &str = "torn/b";
/// `put_many` calls by the writer.
const WRITES: u64 = 300;
/// Reading tasks, spread over the handles.
const READERS: usize = 4;
/// Reads per reading task.
const READS: usize = 500;

/// The number both keys hold in one `get_many` answer, or `None` when neither exists.
fn pair(what: &str, records: &[Option<Record>], a: usize, b: usize) -> Option<u64> {
    let number = |record: &Record| -> u64 {
        std::str::from_utf8(&record.value)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: {:?} holds {:?}", record.key, record.value))
    };
    match (&records[a], &records[b]) {
        (None, None) => None,
        (Some(ra), Some(rb)) if ra.value == rb.value => Some(number(ra)),
        (ra, rb) => panic!(
            "{what}: get_many saw part of a put_many: {A:?} = {:?}, {B:?} = {:?} (the two are \
             only ever written together, with equal values)",
            ra.as_ref().map(|r| &r.value),
            rb.as_ref().map(|r| &r.value)
        ),
    }
}

pub(crate) async fn run(handles: &Handles) {
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            // Reader 0 is on the reader handle: with two handles, half read through the
            // handle that does not write.
            let i = handles.len() - 1 + r;
            let (store, on) = (handles.nth(i).clone(), handles.name(i));
            tokio::spawn(async move {
                let mut last = None;
                for n in 0..READS {
                    let what = format!("reader {r} on {on}, read {n}");
                    // Single reads in between fill a cache with one key at a time.
                    let seen = match n % 4 {
                        0 => pair(&what, &ok(&what, store.get_many(&[A, B]).await), 0, 1),
                        1 => pair(&what, &ok(&what, store.get_many(&[B, A]).await), 1, 0),
                        2 => {
                            let _ = store.get(A).await;
                            pair(&what, &ok(&what, store.get_many(&[A, B, A]).await), 0, 1)
                        }
                        _ => {
                            let _ = store.get(B).await;
                            pair(&what, &ok(&what, store.get_many(&[B, A, B]).await), 1, 0)
                        }
                    };
                    assert!(
                        seen >= last,
                        "{what}: get_many went back in time: it saw write {last:?}, then {seen:?}"
                    );
                    last = seen;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let writer = handles.writer();
    for n in 1..=WRITES {
        let records = if n % 2 == 0 {
            vec![Record::new(A, n.to_string()), Record::new(B, n.to_string())]
        } else {
            vec![Record::new(B, n.to_string()), Record::new(A, n.to_string())]
        };
        ok(&format!("put_many {n}"), writer.put_many(records).await);
        tokio::task::yield_now().await;
    }
    for (r, reader) in readers.into_iter().enumerate() {
        join(&format!("reader {r}"), reader).await;
    }
}

/// The numbers `A` and `B` hold in one `get_many` answer (0 for a missing key).
fn numbers(what: &str, records: &[Option<Record>], a: usize, b: usize) -> (u64, u64) {
    let number = |record: &Option<Record>| -> u64 {
        record.as_ref().map_or(0, |record| {
            std::str::from_utf8(&record.value)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{what}: {:?} holds {:?}", record.key, record.value))
        })
    };
    (number(&records[a]), number(&records[b]))
}

/// Rounds of the sequential case: a put to each key in turn.
const ROUNDS: u64 = 1000;

/// The writer puts `n` under `A`, then (once that returned) under `B`, for n = 1, 2, ...:
/// at every moment `A` holds `B` or `B + 1`. A `get_many` that read `A` before a round and
/// `B` after it would see `B > A`, which no moment ever held. The readers read until the
/// writer is done, so that every round has readers to catch it.
pub(crate) async fn sequential(handles: &Handles) {
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let i = handles.len() - 1 + r;
            let (store, on) = (handles.nth(i).clone(), handles.name(i));
            let done = done.clone();
            tokio::spawn(async move {
                let mut last = (0, 0);
                let mut n = 0u64;
                while !done.load(Ordering::Acquire) {
                    n += 1;
                    let what = format!("reader {r} on {on}, read {n}");
                    let (a, b) = if n.is_multiple_of(2) {
                        numbers(&what, &ok(&what, store.get_many(&[A, B]).await), 0, 1)
                    } else {
                        numbers(&what, &ok(&what, store.get_many(&[B, A]).await), 1, 0)
                    };
                    assert!(
                        a == b || a == b + 1,
                        "{what}: get_many saw {A:?} = {a} and {B:?} = {b}, but {A:?} is \
                         always written first and {B:?} only after that write returned, so \
                         no moment held these two"
                    );
                    assert!(
                        (a, b) >= last,
                        "{what}: get_many went back in time: it saw {last:?}, then {:?}",
                        (a, b)
                    );
                    last = (a, b);
                }
            })
        })
        .collect();
    let writer = handles.writer();
    for n in 1..=ROUNDS {
        ok(
            &format!("put {A} {n}"),
            writer.put(Record::new(A, n.to_string())).await,
        );
        ok(
            &format!("put {B} {n}"),
            writer.put(Record::new(B, n.to_string())).await,
        );
        // Let the readers in between rounds, wherever they run.
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::Release);
    for (r, reader) in readers.into_iter().enumerate() {
        join(&format!("reader {r}"), reader).await;
    }
}
