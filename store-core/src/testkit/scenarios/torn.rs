//! `get_many` never observes part of a `put_many`: two keys always written together with
//! equal values, read together by many tasks, for a bounded number of iterations.

use super::Handles;
use crate::testkit::support::*;
use crate::Record;

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
