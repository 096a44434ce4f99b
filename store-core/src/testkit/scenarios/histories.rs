//! Random concurrent histories of every call over a few keys, from 8 to 32 tasks, recorded
//! and checked key by key with the linearizability checker.

use std::collections::HashMap;
use std::sync::Arc;

use super::Handles;
use crate::testkit::linearizability::{Recorder, Write};
use crate::testkit::support::join;
use crate::{Error, Record, Result, Storage};

/// (tasks, calls per task) of each round, each played with [`PASSES`] seeds. Sized so that
/// each key's history (up to about 220 operations) stays far below the checker's budget on
/// a correct store: over 1,900 histories on memory and file, the most it explored was
/// about a thousand configurations of its 2,000,000.
const ROUNDS: &[(usize, usize)] = &[(8, 30), (16, 20), (24, 14), (32, 10)];
/// How many times each round is played, with other seeds.
const PASSES: usize = 4;
/// Keys per round: two, so that calls on one key overlap a lot (races show more often).
const KEYS: usize = 2;

/// A small deterministic generator (xorshift): each task makes the same calls from run to
/// run, only their interleaving differs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// An expiry that no history outlives: records that carry one take the stores' expiry-aware
/// paths (a Redis read then judges the record on the server's clock), while the checker's
/// model, which knows no time, stays right.
const FAR_EXPIRY: std::time::Duration = std::time::Duration::from_secs(3600);

/// `record`, with [`FAR_EXPIRY`] one time in three.
fn maybe_expiring(rng: &mut Rng, record: Record) -> Record {
    if rng.below(3) == 0 {
        record.with_ttl(FAR_EXPIRY)
    } else {
        record
    }
}

/// Fails on errors the workload never provokes: the answers it expects are recorded.
#[track_caller]
fn expected<T>(what: &str, result: &Result<T>) {
    if let Err(error) = result {
        assert!(
            matches!(
                error,
                Error::NotFound | Error::Conflict | Error::AlreadyExists(_)
            ),
            "{what}: unexpected error {error:?}"
        );
    }
}

/// One task's calls: `calls` random operations on `keys`, through `store`.
async fn task(
    recorder: &Recorder,
    store: &dyn Storage,
    keys: &[String],
    task: usize,
    calls: usize,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    // The last version this task saw per key, for cas calls that may well win.
    let mut seen: HashMap<&str, String> = HashMap::new();
    for n in 0..calls {
        let k = rng.below(keys.len());
        let key = keys[k].as_str();
        let other = keys[(k + 1 + rng.below(keys.len() - 1)) % keys.len()].as_str();
        let value = format!("task {task} call {n}");
        let what = format!("task {task}, call {n}");
        let expect = match seen.get(key) {
            Some(version) if rng.below(5) != 0 => version.clone(),
            _ => format!("no such version {n}"),
        };
        match rng.below(100) {
            0..=21 => {
                let result = recorder.get(task, store, key).await;
                expected(&what, &result);
                if let Ok(record) = result {
                    seen.insert(key, record.version);
                }
            }
            22..=31 => {
                let result = recorder.get_many(task, store, &[key, other]).await;
                expected(&what, &result);
                if let Ok(records) = result {
                    for record in records.into_iter().flatten() {
                        let key = if record.key == key { key } else { other };
                        seen.insert(key, record.version);
                    }
                }
            }
            32..=45 => {
                let record = maybe_expiring(&mut rng, Record::new(key, value));
                let result = recorder.put(task, store, record).await;
                expected(&what, &result);
                if let Ok(record) = result {
                    seen.insert(key, record.version);
                }
            }
            46..=51 => {
                let records = vec![
                    Record::new(key, format!("{value} a")),
                    Record::new(other, format!("{value} b")),
                ];
                let result = recorder.put_many(task, store, records).await;
                expected(&what, &result);
            }
            52..=61 => {
                let record = maybe_expiring(&mut rng, Record::new(key, value));
                let result = recorder.create(task, store, record).await;
                expected(&what, &result);
                if let Ok(version) = result {
                    seen.insert(key, version);
                }
            }
            62..=77 => {
                let record = Record::new(key, value).with_version(expect);
                let record = maybe_expiring(&mut rng, record);
                let result = recorder.cas_by_version(task, store, record).await;
                expected(&what, &result);
                if let Ok(record) = result {
                    seen.insert(key, record.version);
                }
            }
            78..=89 => {
                let result = recorder.delete(task, store, key).await;
                expected(&what, &result);
            }
            _ => {
                // A caller that gives up: the write either happens or not.
                let write = match rng.below(5) {
                    0 => Write::Put(Record::new(key, value)),
                    1 => Write::PutMany(vec![
                        Record::new(key, format!("{value} a")),
                        Record::new(other, format!("{value} b")),
                    ]),
                    2 => Write::Create(Record::new(key, value)),
                    3 => Write::Cas(Record::new(key, value).with_version(expect)),
                    _ => Write::Delete(key.to_owned()),
                };
                recorder.dropped(task, store, write, 1 + rng.below(3)).await;
            }
        }
        if n % 4 == 3 {
            // Calls that complete at once (a cache hit) never yield by themselves.
            tokio::task::yield_now().await;
        }
    }
}

/// Runs every round, tasks spread over the handles, and checks each key's history.
pub(crate) async fn run(handles: &Handles) {
    let rounds = (0..PASSES).flat_map(|_| ROUNDS.iter().copied());
    for (round, (tasks, calls)) in rounds.enumerate() {
        let recorder = Arc::new(Recorder::new());
        let keys: Arc<Vec<String>> =
            Arc::new((0..KEYS).map(|k| format!("history/{round}/{k}")).collect());
        let running: Vec<_> = (0..tasks)
            .map(|t| {
                let (recorder, keys) = (recorder.clone(), keys.clone());
                let store = handles.nth(t).clone();
                let seed = (round * 1000 + t) as u64;
                tokio::spawn(async move { task(&recorder, &*store, &keys, t, calls, seed).await })
            })
            .collect();
        for (t, running) in running.into_iter().enumerate() {
            join(&format!("round {round}, task {t}"), running).await;
        }
        if let Err(report) = recorder.check() {
            let spread = if handles.len() > 1 {
                " (even tasks on the first handle, odd ones on the second)"
            } else {
                ""
            };
            panic!("round {round}, {tasks} tasks{spread}:\n{report}");
        }
    }
}
