//! The workloads: how a subject is populated ([`populate`]) and what N tasks do to it for
//! one run ([`measure`]). Every function is generic over [`Subject`], so the target and the
//! baseline run the same code.
//!
//! Uses only `catalog`, the harness and the subjects; nothing here knows the settings,
//! the targets or the report (see the crate's "Structure").
//!
//! `reopen` and `space` are not timed loops over a subject; they live in `figures.rs`. The lock
//! workloads (`lock`, `handover`) run over lock subjects, in `locks.rs`.
//!
//! Key and value shapes (the same for every subject):
//! - get / miss / put / mixed: keys `bench/key/00000000` .. (`--keys` of them), all pre-populated,
//!   values of `--value-size` random bytes; every task picks keys uniformly at random. In
//!   get, put and mixed each task writes a copy of the value of its own (cloning it is a
//!   reference count that only that task and the subject touch), as each of a service's
//!   handlers writes a buffer of its own.
//! - cas: one hot counter `bench/cas/0` holding a decimal number.
//! - wait: one key `bench/wait/0`.
//! - list: `LIST_MATCHES` keys `bench/list/target/000` .. and the rest of the store split
//!   between `bench/list/a/..` and `bench/list/z/..`, so the listed range sits in the middle.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use store_core::{Error, Result};
use tokio::sync::{watch, Notify};

use crate::catalog::Workload;
use crate::harness::{run_tasks, Measurement, Recorder, TaskStats};
use crate::subject::{CasOutcome, Subject};
use crate::BoxError;

/// The counter every `cas` task increments.
const CAS_KEY: &str = "bench/cas/0";
/// The key every `wait` waiter waits on.
const WAIT_KEY: &str = "bench/wait/0";
/// Keys that match the `list` pattern in every list store.
pub const LIST_MATCHES: usize = 100;
/// The prefix `list` lists; exactly [`LIST_MATCHES`] keys start with it.
pub const LIST_PREFIX: &str = "bench/list/target/";
/// How long the `wait` notifier waits for the waiters of a round to register.
const ARM_TIMEOUT: Duration = Duration::from_secs(10);
/// Records per `put_many` call of the `put_many` workload.
pub const PUT_MANY_RECORDS: usize = 1_000;
/// Entries handed to [`Subject::load`] at a time while populating.
const LOAD_CHUNK: usize = 10_000;

/// The keys and value a workload runs with, shared by the target and the baseline.
#[derive(Clone)]
pub struct Shapes {
    /// The keyspace of get, put and mixed.
    pub keys: Arc<[String]>,
    /// The value every write stores (a shared buffer: cloning it is a reference count;
    /// the point workloads give each task a copy of its own).
    pub value: Bytes,
}

impl Shapes {
    /// `keys` point keys and one random value of `value_size` bytes.
    pub fn new(keys: usize, value_size: usize) -> Self {
        let mut value = vec![0u8; value_size];
        SmallRng::seed_from_u64(7).fill_bytes(&mut value);
        Self {
            keys: (0..keys).map(|i| format!("bench/key/{i:08}")).collect(),
            value: Bytes::from(value),
        }
    }
}

/// Populates `subject` for `workload`; `store_keys` is the store size for `list`.
pub async fn populate<S: Subject>(
    subject: &S,
    workload: Workload,
    shapes: &Shapes,
    store_keys: usize,
) -> Result<()> {
    match workload {
        Workload::Get | Workload::Miss | Workload::Put | Workload::Mixed | Workload::PutMany => {
            for chunk in shapes.keys.chunks(LOAD_CHUNK) {
                let entries = chunk
                    .iter()
                    .map(|key| (key.clone(), shapes.value.clone()))
                    .collect();
                subject.load(entries).await?;
            }
            Ok(())
        }
        Workload::Cas => {
            let entries = vec![(CAS_KEY.to_owned(), Bytes::from_static(b"0"))];
            subject.load(entries).await
        }
        Workload::Wait => {
            let entries = vec![(WAIT_KEY.to_owned(), shapes.value.clone())];
            subject.load(entries).await
        }
        Workload::List => {
            let others = store_keys.saturating_sub(LIST_MATCHES);
            let keys = (0..LIST_MATCHES)
                .map(|i| format!("{LIST_PREFIX}{i:03}"))
                .chain((0..others).map(|i| {
                    let side = if i < others / 2 { 'a' } else { 'z' };
                    format!("bench/list/{side}/{i:08}")
                }));
            let mut keys = keys.peekable();
            while keys.peek().is_some() {
                let entries = keys
                    .by_ref()
                    .take(LOAD_CHUNK)
                    .map(|key| (key, shapes.value.clone()))
                    .collect();
                subject.load(entries).await?;
            }
            Ok(())
        }
        Workload::Reopen | Workload::Space | Workload::Lock | Workload::Handover => {
            Err(not_a_loop(workload))
        }
    }
}

fn not_a_loop(workload: Workload) -> Error {
    let by = if workload.on_locks() {
        "locks.rs"
    } else {
        "figures.rs"
    };
    Error::Backend(format!(
        "{workload} is measured by {by}, not by tasks over a subject"
    ))
}

/// One run of `workload` with `tasks` concurrent tasks for `duration`.
pub async fn measure<S: Subject>(
    subject: &Arc<S>,
    workload: Workload,
    shapes: &Shapes,
    tasks: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    match workload {
        Workload::Get | Workload::Miss => point_ops(subject, shapes, tasks, duration, 100).await,
        Workload::Put => point_ops(subject, shapes, tasks, duration, 0).await,
        Workload::Mixed => point_ops(subject, shapes, tasks, duration, 90).await,
        Workload::Cas => cas_increments(subject, tasks, duration).await,
        Workload::PutMany => batches(subject, shapes, tasks, duration).await,
        Workload::Wait => wake_ups(subject, shapes, tasks, duration).await,
        Workload::List => listings(subject, tasks, duration).await,
        Workload::Reopen | Workload::Space | Workload::Lock | Workload::Handover => {
            Err(not_a_loop(workload).into())
        }
    }
}

/// Runs `tasks` tasks over the keyspace (see [`run_tasks`]): each gets the subject, the
/// shapes and a random generator seeded with its index, so that the target and its baseline
/// visit the same keys in the same order.
async fn run_over_keys<S, F, Fut>(
    subject: &Arc<S>,
    shapes: &Shapes,
    tasks: usize,
    duration: Duration,
    body: F,
) -> Result<Measurement, BoxError>
where
    S: Subject,
    F: Fn(Arc<S>, Shapes, SmallRng, Recorder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<TaskStats>> + Send + 'static,
{
    let (subject, shapes) = (Arc::clone(subject), shapes.clone());
    run_tasks(tasks, duration, move |index, recorder| {
        let rng = SmallRng::seed_from_u64(index as u64);
        body(Arc::clone(&subject), shapes.clone(), rng, recorder)
    })
    .await
}

/// get, put and mixed: each op is a get with probability `get_percent`, else a put.
async fn point_ops<S: Subject>(
    subject: &Arc<S>,
    shapes: &Shapes,
    tasks: usize,
    duration: Duration,
    get_percent: u32,
) -> Result<Measurement, BoxError> {
    run_over_keys(
        subject,
        shapes,
        tasks,
        duration,
        move |subject, shapes, mut rng, mut recorder| async move {
            // Each task writes a buffer of its own, as a service's handlers do: one buffer
            // shared by every task would make every write of every subject bump one
            // reference count from both cores, which measures cache-line ping-pong.
            let value = Bytes::copy_from_slice(&shapes.value);
            loop {
                let key = &shapes.keys[rng.gen_range(0..shapes.keys.len())];
                let is_get =
                    get_percent == 100 || (get_percent > 0 && rng.gen_range(0..100) < get_percent);
                let start = Instant::now();
                if is_get {
                    subject.get(key).await?;
                } else {
                    subject.put(key, value.clone()).await?;
                }
                let end = Instant::now();
                if recorder.lap(start, end, 1).await {
                    return Ok(recorder.finish());
                }
            }
        },
    )
    .await
}

/// put_many: each call stores `PUT_MANY_RECORDS` consecutive keys of the keyspace from a
/// random start (wrapping), so concurrent calls overlap; an op is one record.
async fn batches<S: Subject>(
    subject: &Arc<S>,
    shapes: &Shapes,
    tasks: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    run_over_keys(
        subject,
        shapes,
        tasks,
        duration,
        |subject, shapes, mut rng, mut recorder| async move {
            let count = PUT_MANY_RECORDS.min(shapes.keys.len());
            loop {
                let first = rng.gen_range(0..shapes.keys.len());
                let entries: Vec<(String, Bytes)> = (0..count)
                    .map(|i| {
                        let key = &shapes.keys[(first + i) % shapes.keys.len()];
                        (key.clone(), shapes.value.clone())
                    })
                    .collect();
                let start = Instant::now();
                subject.put_many(entries).await?;
                let end = Instant::now();
                if recorder.lap(start, end, count as u64).await {
                    return Ok(recorder.finish());
                }
            }
        },
    )
    .await
}

/// cas: every task increments the hot counter with get + cas retry loops. An op is one
/// successful increment, its latency includes the retries; afterwards the counter must
/// have grown by exactly the number of increments.
///
/// What bounds an actor-based store here: a cas answers only after a mailbox round trip,
/// and every cas that shares a batch with the winner read the same version, so at most one
/// increment succeeds per batch; the rest answer `Conflict` and go round again (with the
/// `get` served in the caller's task). Increments per second are at most round trips per
/// second, whatever the number of tasks, while a `Mutex<HashMap>` does the same increment
/// in one short critical section with no hand-off. On one current-thread runtime with 64
/// tasks (`instructions --op cas --tasks 64`) each increment costs about 31 conflicts;
/// on two workers, where fewer tasks are in flight at once, about 0.5 to 1.5.
async fn cas_increments<S: Subject>(
    subject: &Arc<S>,
    tasks: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    let before = read_counter(subject.as_ref()).await?;
    let shared = Arc::clone(subject);
    let measurement = run_tasks(tasks, duration, move |_, mut recorder: Recorder| {
        let subject = Arc::clone(&shared);
        async move {
            loop {
                let start = Instant::now();
                loop {
                    let (value, version) = subject.get_versioned(CAS_KEY).await?;
                    let next = Bytes::from((parse_counter(&value)? + 1).to_string());
                    match subject.cas(CAS_KEY, version, next).await? {
                        CasOutcome::Stored => break,
                        CasOutcome::Conflict => recorder.retry(),
                    }
                }
                let end = Instant::now();
                if recorder.lap(start, end, 1).await {
                    return Ok(recorder.finish());
                }
            }
        }
    })
    .await?;
    let after = read_counter(subject.as_ref()).await?;
    if after != before + measurement.ops {
        return Err(format!(
            "cas: the counter went from {before} to {after} after {} successful increments",
            measurement.ops
        )
        .into());
    }
    Ok(measurement)
}

async fn read_counter<S: Subject>(subject: &S) -> Result<u64> {
    parse_counter(&subject.get_versioned(CAS_KEY).await?.0)
}

fn parse_counter(value: &[u8]) -> Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Error::Backend(format!("the counter holds {value:?}, not a number")))
}

/// list: every task lists the prefix over and over; an op is one complete listing.
async fn listings<S: Subject>(
    subject: &Arc<S>,
    tasks: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    let subject = Arc::clone(subject);
    run_tasks(tasks, duration, move |_, mut recorder: Recorder| {
        let subject = Arc::clone(&subject);
        async move {
            loop {
                let start = Instant::now();
                let found = subject.list_prefix(LIST_PREFIX).await?;
                let end = Instant::now();
                if found != LIST_MATCHES {
                    return Err(Error::Backend(format!(
                        "listing {LIST_PREFIX:?} found {found} keys, not {LIST_MATCHES}"
                    )));
                }
                if recorder.lap(start, end, 1).await {
                    return Ok(recorder.finish());
                }
            }
        }
    })
    .await
}

/// The state of the `wait` workload that its tasks share.
struct Rounds<V> {
    /// The round in progress and the version its waiters wait on; `None`: stop.
    current: watch::Sender<Round<V>>,
    /// Waiters that have registered their wait, over all rounds.
    armed: AtomicUsize,
    /// Signalled when the last waiter of a round has registered.
    all_armed: Notify,
    /// When the round's put started, in nanoseconds after `epoch`.
    put_started: AtomicU64,
    epoch: Instant,
}

#[derive(Clone)]
struct Round<V> {
    number: usize,
    version: Option<V>,
}

/// wait: `waiters` tasks wait on one key; one notifier task puts to it once they are all
/// registered. An op is one wake-up; its latency runs from the start of the put to the
/// moment the woken waiter runs again. Rounds repeat until the duration is over.
///
/// A waiter registers by polling `wait_change` once (the storage handle has then sent its
/// request, the baseline has created its `Notified`) before telling the notifier, so the
/// put always finds it waiting. The waiters of a round learn the next round's version from
/// the notifier before registering again; that hand-over is not timed.
async fn wake_ups<S: Subject>(
    subject: &Arc<S>,
    shapes: &Shapes,
    waiters: usize,
    duration: Duration,
) -> Result<Measurement, BoxError> {
    let first = subject.put(WAIT_KEY, shapes.value.clone()).await?;
    let (current, _) = watch::channel(Round {
        number: 0,
        version: Some(first),
    });
    let rounds = Arc::new(Rounds {
        current,
        armed: AtomicUsize::new(0),
        all_armed: Notify::new(),
        put_started: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let mut handles = Vec::with_capacity(waiters);
    for _ in 0..waiters {
        let (subject, rounds) = (Arc::clone(subject), Arc::clone(&rounds));
        let mut rounds_rx = rounds.current.subscribe();
        handles.push(tokio::spawn(async move {
            // Latencies are all recorded; the notifier decides when the run ends.
            let mut recorder = Recorder::new(Instant::now());
            let mut next = 0;
            loop {
                let round = rounds_rx
                    .wait_for(|round| round.number >= next || round.version.is_none())
                    .await
                    .map_err(|_| Error::Closed)?
                    .clone();
                let Some(version) = round.version else {
                    return Ok::<TaskStats, Error>(recorder.finish());
                };
                let mut wait = pin!(subject.wait_change(WAIT_KEY, &version));
                let early = futures::poll!(wait.as_mut());
                let armed = rounds.armed.fetch_add(1, Ordering::AcqRel) + 1;
                if armed == waiters * (round.number + 1) {
                    rounds.all_armed.notify_one();
                }
                match early {
                    Poll::Ready(result) => result?,
                    Poll::Pending => wait.await?,
                }
                let woke = rounds.epoch.elapsed();
                let started = Duration::from_nanos(rounds.put_started.load(Ordering::Acquire));
                recorder.record_latency(woke.saturating_sub(started));
                next = round.number + 1;
            }
        }));
    }
    let notifier = {
        let (subject, rounds, value) = (
            Arc::clone(subject),
            Arc::clone(&rounds),
            shapes.value.clone(),
        );
        tokio::spawn(async move {
            let start = Instant::now();
            let deadline = start + duration;
            let mut number = 0;
            loop {
                while rounds.armed.load(Ordering::Acquire) < waiters * (number + 1) {
                    let armed = tokio::time::timeout(ARM_TIMEOUT, rounds.all_armed.notified());
                    if armed.await.is_err() {
                        return Err(Error::Backend(format!(
                            "wait: the waiters of round {number} did not all register within \
                             {ARM_TIMEOUT:?}"
                        )));
                    }
                }
                let since_epoch = rounds.epoch.elapsed().as_nanos();
                let since_epoch = u64::try_from(since_epoch).unwrap_or(u64::MAX);
                rounds.put_started.store(since_epoch, Ordering::Release);
                let version = subject.put(WAIT_KEY, value.clone()).await?;
                number += 1;
                // Once the time is up, the waiters of the round just woken stop instead of
                // registering again.
                let version = (Instant::now() < deadline).then_some(version);
                let done = version.is_none();
                rounds.current.send_replace(Round { number, version });
                if done {
                    return Ok::<Instant, Error>(start);
                }
            }
        })
    };
    // On failure the waiters may be left blocked; the error ends the program anyway.
    let start = notifier.await??;
    let mut stats = Vec::with_capacity(waiters);
    for handle in handles {
        stats.push(handle.await??);
    }
    Measurement::merge(stats, start.elapsed())
}
