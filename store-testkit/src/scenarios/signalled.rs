//! Read your write across tasks: a write completes in one task, is signalled to another,
//! which then reads it, while other tasks keep reading the key (so a cache keeps refilling).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Handles, StopOnDrop};
use crate::support::*;
use store_core::{Error, Record};

const KEY: &str = "signalled";
/// Writes per run, cycling through every kind of write.
const WRITES: usize = 150;
/// Tasks reading the key all along, per handle.
const BACKGROUND_READERS: usize = 2;

/// What the writer tells the checking task it has just written.
struct Written {
    n: usize,
    how: &'static str,
    /// The value now stored, or `None` after a delete.
    value: Option<Bytes>,
    /// The version the write returned (`None` for put_many and delete).
    version: Option<String>,
    /// The version it replaced, which must not be read any more.
    replaced: Option<String>,
}

/// Writes through the writer, checks each write through the reader in another task.
pub(crate) async fn run(handles: &Handles) {
    let (writer_name, reader_name) = handles.roles();
    let done = Arc::new(AtomicBool::new(false));
    // Stops the background readers however this function ends, a failed check included.
    let stop = StopOnDrop(done.clone());
    let background: Vec<_> = (0..BACKGROUND_READERS * handles.len())
        .map(|r| {
            let (store, done) = (handles.nth(r).clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let result = if reads.is_multiple_of(2) {
                        store.get(KEY).await.map(drop)
                    } else {
                        store.get_many(&[KEY]).await.map(drop)
                    };
                    match result {
                        Ok(()) | Err(Error::NotFound) => {}
                        Err(error) => panic!("a background read of {KEY:?} failed: {error:?}"),
                    }
                    reads += 1;
                    // A read that a cache answers at once never yields by itself.
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();

    let (tell, mut told) = mpsc::channel::<Written>(1);
    let (answer, mut answered) = mpsc::channel::<Option<String>>(1);
    let reader = handles.reader().clone();
    let checker =
        tokio::spawn(async move {
            while let Some(written) = told.recv().await {
                let what = format!(
                    "write {} ({} through {writer_name}, then read through {reader_name} in \
                 another task)",
                    written.n, written.how
                );
                let got = reader.get(KEY).await;
                let many = ok(&format!("{what}: get_many"), reader.get_many(&[KEY]).await);
                let version =
                    match (&written.value, got) {
                        (None, Err(Error::NotFound)) => {
                            assert!(
                                many[0].is_none(),
                                "{what}: get_many still returns {:?} after the delete",
                                many[0]
                            );
                            None
                        }
                        (Some(value), Ok(record)) => {
                            assert!(
                        record.value == *value
                            && written.version.as_ref().is_none_or(|v| *v == record.version)
                            && written.replaced.as_ref() != Some(&record.version),
                        "{what}: get returned value {:?} version {:?}; the write stored value \
                         {value:?} version {:?} over version {:?}",
                        record.value,
                        record.version,
                        written.version,
                        written.replaced
                    );
                            assert!(
                                many[0].as_ref() == Some(&record),
                                "{what}: get_many returned {:?}, get {record:?}",
                                many[0]
                            );
                            Some(record.version)
                        }
                        (expected, got) => panic!(
                            "{what}: get returned {got:?}, expected {}",
                            match expected {
                                Some(value) => format!("the value {value:?}"),
                                None => "Err(NotFound)".to_owned(),
                            }
                        ),
                    };
                if answer.send(version).await.is_err() {
                    break;
                }
            }
        });

    let writer = handles.writer();
    let mut live: Option<String> = None;
    for n in 0..WRITES {
        let value = Bytes::from(format!("write {n}"));
        let (how, value, version) = match (n % 5, &live) {
            (0, _) | (1, None) => {
                let stored = ok("put", writer.put(Record::new(KEY, value.clone())).await);
                ("put", Some(value), Some(stored.version))
            }
            (1, Some(version)) => {
                let next = Record::new(KEY, value.clone()).with_version(version.clone());
                let stored = ok("cas", writer.cas_by_version(next).await);
                ("cas", Some(value), Some(stored.version))
            }
            (2, _) => {
                ok(
                    "put_many",
                    writer.put_many(vec![Record::new(KEY, value.clone())]).await,
                );
                ("put_many", Some(value), None)
            }
            (3, _) => {
                ok("delete", writer.delete(KEY).await);
                ("delete", None, None)
            }
            _ => {
                let version = ok(
                    "create",
                    writer.create(Record::new(KEY, value.clone())).await,
                );
                ("create", Some(value), Some(version))
            }
        };
        let written = Written {
            n,
            how,
            value,
            version,
            replaced: live.take(),
        };
        if tell.send(written).await.is_err() {
            break;
        }
        match answered.recv().await {
            Some(version) => live = version,
            None => break,
        }
    }
    drop(tell);
    join("the checking task", checker).await;
    drop(stop);
    for reader in background {
        join("a background reader", reader).await;
    }
}
