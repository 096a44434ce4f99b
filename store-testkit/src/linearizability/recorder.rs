//! Records calls on a store as per-key histories, with logical and wall-clock timestamps.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::task::Poll;
use std::time::SystemTime;

use bytes::Bytes;

use super::{check, Call, Operation, Outcome, Report};
use store_core::{Error, Record, Result, Storage};

/// Makes calls on a [`Storage`] and records each as an [`Operation`] of its key's history.
///
/// Every call is stamped from one shared counter, read immediately before the call and
/// immediately after it returns, so the order of the stamps is the real-time order of the
/// calls however many tasks share the recorder. The wall clock is read with each stamp,
/// and each write records the `expires_at` it wrote, so records that expire during the
/// recording are checked as the stores judge them (see the
/// [module docs](super#time-and-expiry)). Values must be unique across the whole recording
/// (see the [module docs](super)).
///
/// ```
/// use store_testkit::linearizability::Recorder;
/// use store_core::Record;
///
/// # store_testkit::run(|| async {
/// # let store = store_core::__private::doc_store();
/// let recorder = Recorder::new();
/// let stored = recorder.put(0, &store, Record::new("k", "first")).await.unwrap();
/// recorder.get(1, &store, "k").await.unwrap();
/// let next = Record::new("k", "second").with_version(stored.version);
/// recorder.cas_by_version(0, &store, next).await.unwrap();
/// recorder.delete(1, &store, "k").await.unwrap();
/// assert_eq!(recorder.histories()["k"].len(), 4);
/// recorder.check().unwrap();
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Recorder {
    /// The logical clock. The wall clock is read under the same lock, so that the two
    /// agree: in the order of the logical stamps the wall-clock ones never go back (as
    /// long as the system clock does not).
    clock: Mutex<u64>,
    histories: Mutex<BTreeMap<String, Vec<Operation>>>,
}

/// A write for [`Recorder::dropped`].
///
/// ```
/// use store_testkit::linearizability::Write;
/// let write = Write::Delete("k".to_owned());
/// assert!(matches!(write, Write::Delete(_)));
/// ```
#[derive(Clone, Debug)]
pub enum Write {
    /// `put(record)`.
    Put(Record),
    /// `put_many(records)`.
    PutMany(Vec<Record>),
    /// `create(record)`.
    Create(Record),
    /// `cas_by_version(record)`.
    Cas(Record),
    /// `delete(key)`.
    Delete(String),
}

/// When a call started or ended, on both clocks.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    logical: u64,
    wall: SystemTime,
}

/// The operation of `task` making `call` between `invoked` and `returned`, writing a
/// record that expires at `expires_at`.
fn timed(
    task: usize,
    call: Call,
    outcome: Outcome,
    (invoked, returned): (Stamp, Stamp),
    expires_at: Option<SystemTime>,
) -> Operation {
    Operation::new(task, call, outcome, invoked.logical, returned.logical)
        .with_wall_clock(invoked.wall, returned.wall)
        .with_expiry(expires_at)
}

fn put_outcome(result: &Result<Record>) -> Outcome {
    match result {
        Ok(stored) => Outcome::stored(stored.version.clone()),
        Err(_) => Outcome::Unknown,
    }
}

fn put_many_outcome(result: &Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Stored { version: None },
        Err(_) => Outcome::Unknown,
    }
}

fn create_outcome(result: &Result<String>) -> Outcome {
    match result {
        Ok(version) => Outcome::stored(version.clone()),
        Err(Error::AlreadyExists(live)) => {
            Outcome::already_exists(live.value.clone(), live.version.clone())
        }
        Err(_) => Outcome::Unknown,
    }
}

fn cas_outcome(result: &Result<Record>) -> Outcome {
    match result {
        Ok(stored) => Outcome::stored(stored.version.clone()),
        Err(Error::Conflict) => Outcome::Conflict,
        Err(Error::NotFound) => Outcome::NotFound,
        Err(_) => Outcome::Unknown,
    }
}

fn delete_outcome(result: &Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Deleted,
        Err(Error::NotFound) => Outcome::NotFound,
        Err(_) => Outcome::Unknown,
    }
}

fn cas_call(record: &Record) -> Call {
    Call::Cas {
        expected: record.version.clone(),
        value: record.value.clone(),
    }
}

/// The record each key of a `put_many` ends with (the later of duplicates wins): its value
/// and expiry.
fn last_per_key(records: &[Record]) -> BTreeMap<String, (Bytes, Option<SystemTime>)> {
    records
        .iter()
        .map(|record| {
            let written = (record.value.clone(), record.expires_at);
            (record.key.clone(), written)
        })
        .collect()
}

/// Polls `future` up to `polls` times (at least once), yielding in between, then drops it.
async fn poll_then_drop<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    for round in 0..polls.max(1) {
        if round > 0 {
            tokio::task::yield_now().await;
        }
        if let Poll::Ready(output) = futures::poll!(future.as_mut()) {
            return Some(output);
        }
    }
    None
}

impl Recorder {
    /// An empty recording.
    ///
    /// ```
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// assert!(recorder.histories().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&self) -> Stamp {
        let mut clock = self
            .clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *clock += 1;
        Stamp {
            logical: *clock,
            wall: SystemTime::now(),
        }
    }

    fn push(&self, key: &str, operation: Operation) {
        let mut histories = self
            .histories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        histories.entry(key.to_owned()).or_default().push(operation);
    }

    /// Runs the single-key write `start` (called only after the invocation is ticked, so a
    /// store that begins work before its future is polled is still timed right) and records
    /// it under `key` as `call` writing a record that expires at `expires_at`, with the
    /// outcome `outcome` reads from its result.
    async fn write<T, F>(
        &self,
        task: usize,
        (key, call, expires_at): (&str, Call, Option<SystemTime>),
        start: impl FnOnce() -> F,
        outcome: fn(&Result<T>) -> Outcome,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let invoked = self.tick();
        let result = start().await;
        let returned = self.tick();
        let outcome = outcome(&result);
        self.push(
            key,
            timed(task, call, outcome, (invoked, returned), expires_at),
        );
        result
    }

    /// `store.get(key)`, recorded for `task`. Errors other than `NotFound` are not recorded
    /// (a failed read tells nothing) and are returned as they are.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// assert!(recorder.get(0, &store, "missing").await.is_err());
    /// # });
    /// ```
    pub async fn get<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        key: &str,
    ) -> Result<Record> {
        let invoked = self.tick();
        let result = store.get(key).await;
        let returned = self.tick();
        let outcome = match &result {
            Ok(record) => Outcome::found(record.value.clone(), record.version.clone()),
            Err(Error::NotFound) => Outcome::NotFound,
            Err(_) => return result,
        };
        self.push(
            key,
            timed(task, Call::Get, outcome, (invoked, returned), None),
        );
        result
    }

    /// `store.get_many(keys)`, recorded as one `get` per key with the interval of the call.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// recorder.get_many(0, &store, &["a", "b"]).await.unwrap();
    /// assert_eq!(recorder.histories().len(), 2);
    /// # });
    /// ```
    pub async fn get_many<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        keys: &[&str],
    ) -> Result<Vec<Option<Record>>> {
        let invoked = self.tick();
        let result = store.get_many(keys).await;
        let returned = self.tick();
        if let Ok(records) = &result {
            for (key, record) in keys.iter().zip(records) {
                let outcome = match record {
                    Some(record) => Outcome::found(record.value.clone(), record.version.clone()),
                    None => Outcome::NotFound,
                };
                let operation = timed(task, Call::Get, outcome, (invoked, returned), None);
                self.push(key, operation);
            }
        }
        result
    }

    /// `store.put(record)`, recorded for `task`; an error records an unknown outcome.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// recorder.put(0, &store, store_core::Record::new("k", "v")).await.unwrap();
    /// # });
    /// ```
    pub async fn put<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        record: Record,
    ) -> Result<Record> {
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        let put = || store.put(record);
        let call = (key.as_str(), Call::Put { value }, expires_at);
        self.write(task, call, put, put_outcome).await
    }

    /// `store.put_many(records)`, recorded as one `put` per key (without a version, since
    /// `put_many` returns none); an error records unknown outcomes.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// use store_core::Record;
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// let records = vec![Record::new("a", "a1"), Record::new("b", "b1")];
    /// recorder.put_many(0, &store, records).await.unwrap();
    /// # });
    /// ```
    pub async fn put_many<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        records: Vec<Record>,
    ) -> Result<()> {
        let written = last_per_key(&records);
        let invoked = self.tick();
        let result = store.put_many(records).await;
        let returned = self.tick();
        let outcome = put_many_outcome(&result);
        for (key, (value, expires_at)) in written {
            let call = Call::Put { value };
            let operation = timed(task, call, outcome.clone(), (invoked, returned), expires_at);
            self.push(&key, operation);
        }
        result
    }

    /// `store.create(record)`, recorded for `task`.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// recorder.create(0, &store, store_core::Record::new("k", "v")).await.unwrap();
    /// # });
    /// ```
    pub async fn create<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        record: Record,
    ) -> Result<String> {
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        let create = || store.create(record);
        let call = (key.as_str(), Call::Create { value }, expires_at);
        self.write(task, call, create, create_outcome).await
    }

    /// `store.cas_by_version(record)`, recorded for `task`.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// use store_core::Record;
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// let conflict = recorder.cas_by_version(0, &store, Record::new("k", "v").with_version("9")).await;
    /// assert!(conflict.is_err());
    /// # });
    /// ```
    pub async fn cas_by_version<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        record: Record,
    ) -> Result<Record> {
        let (key, call, expires_at) = (record.key.clone(), cas_call(&record), record.expires_at);
        let cas = || store.cas_by_version(record);
        self.write(task, (key.as_str(), call, expires_at), cas, cas_outcome)
            .await
    }

    /// `store.delete(key)`, recorded for `task`.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// assert!(recorder.delete(0, &store, "k").await.is_err());
    /// # });
    /// ```
    pub async fn delete<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        key: &str,
    ) -> Result<()> {
        let delete = || store.delete(key);
        self.write(task, (key, Call::Delete, None), delete, delete_outcome)
            .await
    }

    /// Starts `write`, polls it `polls` times (at least once, yielding to other tasks in
    /// between) and drops it if it has not finished by then, as a caller that gives up does.
    /// A dropped write is recorded with an unknown outcome; one that finished in time is
    /// recorded as usual. Returns whether it finished.
    ///
    /// ```
    /// # store_testkit::run(|| async {
    /// # let store = store_core::__private::doc_store();
    /// use store_testkit::linearizability::{Recorder, Write};
    /// let recorder = Recorder::new();
    /// recorder.dropped(0, &store, Write::Put(store_core::Record::new("k", "maybe")), 1).await;
    /// recorder.get(1, &store, "k").await.ok();
    /// recorder.check().unwrap();
    /// # });
    /// ```
    pub async fn dropped<S: Storage + ?Sized>(
        &self,
        task: usize,
        store: &S,
        write: Write,
        polls: usize,
    ) -> bool {
        let invoked = self.tick();
        match write {
            Write::Put(record) => {
                let (key, value, expires_at) =
                    (record.key.clone(), record.value.clone(), record.expires_at);
                let result = poll_then_drop(store.put(record), polls).await;
                let returned = self.tick();
                let outcome = result.as_ref().map_or(Outcome::Unknown, put_outcome);
                let call = Call::Put { value };
                let operation = timed(task, call, outcome, (invoked, returned), expires_at);
                self.push(&key, operation);
                result.is_some()
            }
            Write::PutMany(records) => {
                let written = last_per_key(&records);
                let result = poll_then_drop(store.put_many(records), polls).await;
                let returned = self.tick();
                let outcome = result.as_ref().map_or(Outcome::Unknown, put_many_outcome);
                for (key, (value, expires_at)) in written {
                    let (call, outcome) = (Call::Put { value }, outcome.clone());
                    let operation = timed(task, call, outcome, (invoked, returned), expires_at);
                    self.push(&key, operation);
                }
                result.is_some()
            }
            Write::Create(record) => {
                let (key, value, expires_at) =
                    (record.key.clone(), record.value.clone(), record.expires_at);
                let result = poll_then_drop(store.create(record), polls).await;
                let returned = self.tick();
                let outcome = result.as_ref().map_or(Outcome::Unknown, create_outcome);
                let call = Call::Create { value };
                let operation = timed(task, call, outcome, (invoked, returned), expires_at);
                self.push(&key, operation);
                result.is_some()
            }
            Write::Cas(record) => {
                let (key, call, expires_at) =
                    (record.key.clone(), cas_call(&record), record.expires_at);
                let result = poll_then_drop(store.cas_by_version(record), polls).await;
                let returned = self.tick();
                let outcome = result.as_ref().map_or(Outcome::Unknown, cas_outcome);
                let operation = timed(task, call, outcome, (invoked, returned), expires_at);
                self.push(&key, operation);
                result.is_some()
            }
            Write::Delete(key) => {
                let result = poll_then_drop(store.delete(&key), polls).await;
                let returned = self.tick();
                let outcome = result.as_ref().map_or(Outcome::Unknown, delete_outcome);
                let operation = timed(task, Call::Delete, outcome, (invoked, returned), None);
                self.push(&key, operation);
                result.is_some()
            }
        }
    }

    /// Each key's history so far, its operations in the order they were recorded.
    ///
    /// ```
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// assert!(recorder.histories().get("k").is_none());
    /// ```
    pub fn histories(&self) -> BTreeMap<String, Vec<Operation>> {
        self.histories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Checks every key's history (see [`check`](super::check)); on failure the message
    /// names each failing key and prints the operations around its problem.
    ///
    /// ```
    /// let recorder = store_testkit::linearizability::Recorder::new();
    /// assert!(recorder.check().unwrap().is_empty());
    /// ```
    pub fn check(&self) -> std::result::Result<BTreeMap<String, Report>, String> {
        let mut reports = BTreeMap::new();
        let mut failures = Vec::new();
        for (key, history) in self.histories() {
            match check(&history) {
                Ok(report) => {
                    reports.insert(key, report);
                }
                Err(violation) => failures.push(format!("key {key:?}: {violation}")),
            }
        }
        if failures.is_empty() {
            Ok(reports)
        } else {
            Err(failures.join("\n"))
        }
    }
}
