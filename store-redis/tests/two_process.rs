//! Two processes on one store: this test binary re-executes itself as a child (see
//! `store_testkit::process`) and the two work on the same prefix of the test server
//! at once:
//!
//! - `cas`: both increment one counter with get + `cas_by_version`; every successful CAS
//!   wrote a value nobody else wrote (exactly one winner per version), and the counter ends
//!   at the sum of both processes' increments.
//! - `waits`: the child waits on three keys; the parent changes one, deletes one, and lets
//!   one expire; the child's waiters wake with `Ok`, `NotFound` and `NotFound`.
//! - `put_many`: the parent writes rounds of `put_many` over 40 keys while the child reads
//!   them with `get_many`; no snapshot the child takes mixes two rounds.
//!
//! Run by `cargo test` like any test binary (it has its own `main`, `harness = false`), and
//! it ends with a `N passed, M failed` line.

use std::time::Duration;

use store_core::{Error, Figure, Record, Storage};
use store_redis::testing;
use store_redis::RedisStorage;
use store_testkit::process::{self, say, ChildProcess, Scenario};
use store_testkit::Watched;

/// How long a scenario's processes may make no progress before it is declared hung (a
/// silence, not a total time: see `store_testkit::process`).
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    match process::child_role() {
        Some(role) => child_main(&role),
        None => {
            let scenarios: [(&str, Scenario); 3] = [
                ("cas_has_one_winner_per_version_across_processes", cas),
                (
                    "waiters_wake_on_the_other_process_writes_deletes_and_expiries",
                    waits,
                ),
                (
                    "put_many_is_never_seen_torn_from_the_other_process",
                    put_many,
                ),
            ];
            testing::run_scenarios("two_process", "two-process", &scenarios);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------

/// A store on the scenario's prefix; in a child, each call it finishes is progress (see
/// `process::run_child`).
type Store = Watched<RedisStorage>;

async fn open(prefix: &str) -> Store {
    let store = RedisStorage::connect(&testing::server_url(), prefix)
        .await
        .unwrap_or_else(|e| panic!("connecting: {e}"));
    Watched::new(store)
}

/// get + cas_by_version until one CAS wins; returns the value it wrote.
async fn increment(store: &Store, key: &str) -> Result<u64, Error> {
    loop {
        let current = store.get(key).await?;
        let n: u64 = std::str::from_utf8(&current.value)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Error::Backend("the counter is not a number".into()))?;
        let next = Record::new(key, (n + 1).to_string()).with_version(current.version);
        match store.cas_by_version(next).await {
            Ok(_) => return Ok(n + 1),
            Err(Error::Conflict) => continue,
            Err(other) => return Err(other),
        }
    }
}

/// Both processes increment with 4 tasks each; returns the values this process wrote.
async fn increments(store: &Store, per_task: usize) -> Result<Vec<u64>, Error> {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut wrote = Vec::new();
            for _ in 0..per_task {
                wrote.push(increment(&store, "counter").await?);
            }
            Ok::<_, Error>(wrote)
        }));
    }
    let mut wrote = Vec::new();
    for task in tasks {
        wrote.extend(task.await.map_err(|e| Error::Backend(e.to_string()))??);
    }
    Ok(wrote)
}

const PER_TASK: usize = 100;

fn cas(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(prefix).await;
        store
            .put(Record::new("counter", "0"))
            .await
            .map_err(|e| e.to_string())?;
        let child = ChildProcess::spawn("cas", prefix, &[]);
        // Start together: the child says when it is connected.
        let ready = tokio::task::block_in_place(|| child.line(SCENARIO_LIMIT))?;
        if ready != "ready" {
            return Err(format!("the child said {ready:?}"));
        }
        let mine = increments(&store, PER_TASK)
            .await
            .map_err(|e| e.to_string())?;
        let lines = tokio::task::block_in_place(|| child.finish(SCENARIO_LIMIT))?;
        let theirs: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("wrote "))
            .map(|v| v.parse().map_err(|e| format!("child line {v:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let total = 8 * PER_TASK;
        if theirs.len() != 4 * PER_TASK {
            return Err(format!("the child reported {} increments", theirs.len()));
        }
        let mut all: Vec<u64> = mine.iter().chain(&theirs).copied().collect();
        all.sort_unstable();
        let expected: Vec<u64> = (1..=total as u64).collect();
        if all != expected {
            let mut seen = std::collections::HashSet::new();
            let twice: Vec<u64> = all.iter().filter(|v| !seen.insert(**v)).copied().collect();
            return Err(format!(
                "two CAS calls won with the same expected version: values written twice {twice:?}"
            ));
        }
        let counter = store.get("counter").await.map_err(|e| e.to_string())?;
        if counter.value != total.to_string().as_bytes() {
            return Err(format!(
                "the counter ends at {:?}, not {total}",
                counter.value
            ));
        }
        store.close().await.map_err(|e| e.to_string())
    })
}

fn waits(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(prefix).await;
        let put = |key: &'static str, ttl: Option<Duration>| {
            let store = store.clone();
            async move {
                let record = Record::new(key, "1");
                let record = match ttl {
                    Some(ttl) => record.with_ttl(ttl),
                    None => record,
                };
                store.put(record).await.map(|r| r.version)
            }
        };
        let changed = put("changed", None).await.map_err(|e| e.to_string())?;
        let deleted = put("deleted", None).await.map_err(|e| e.to_string())?;
        let expiring = put("expiring", Some(Duration::from_secs(2)))
            .await
            .map_err(|e| e.to_string())?;
        let child = ChildProcess::spawn("waiter", prefix, &[changed, deleted, expiring]);
        let ready = tokio::task::block_in_place(|| child.line(SCENARIO_LIMIT))?;
        if ready != "waiting" {
            return Err(format!("the child said {ready:?}"));
        }
        store
            .put(Record::new("changed", "2"))
            .await
            .map_err(|e| e.to_string())?;
        store.delete("deleted").await.map_err(|e| e.to_string())?;
        let lines = tokio::task::block_in_place(|| child.finish(SCENARIO_LIMIT))?;
        let expected = ["changed Ok", "deleted NotFound", "expiring NotFound"];
        let mut got: Vec<&str> = lines.iter().map(String::as_str).collect();
        got.sort_unstable();
        if got != expected {
            return Err(format!(
                "the child's waiters ended {got:?}, expected {expected:?}"
            ));
        }
        store.close().await.map_err(|e| e.to_string())
    })
}

const ATOMIC_KEYS: usize = 40;
const ROUNDS: u64 = 300;

fn put_many(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(prefix).await;
        let round = |n: u64| -> Vec<Record> {
            (0..ATOMIC_KEYS)
                .map(|i| Record::new(format!("a/{i:02}"), n.to_string()))
                .collect()
        };
        store.put_many(round(0)).await.map_err(|e| e.to_string())?;
        let child = ChildProcess::spawn("reader", prefix, &[]);
        let ready = tokio::task::block_in_place(|| child.line(SCENARIO_LIMIT))?;
        if ready != "reading" {
            return Err(format!("the child said {ready:?}"));
        }
        for n in 1..=ROUNDS {
            store.put_many(round(n)).await.map_err(|e| e.to_string())?;
        }
        store
            .put(Record::new("done", "1"))
            .await
            .map_err(|e| e.to_string())?;
        let lines = tokio::task::block_in_place(|| child.finish(SCENARIO_LIMIT))?;
        let report = lines.last().cloned().unwrap_or_default();
        let rounds_seen: u64 = report
            .strip_prefix("untorn, rounds seen ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the child reported {lines:?}"))?;
        // Evidence that the reads overlapped the writes, not just ran before or after them.
        if rounds_seen < 3 {
            return Err(format!(
                "the child saw only {rounds_seen} rounds: no overlap"
            ));
        }
        store.close().await.map_err(|e| e.to_string())
    })
}

// ---------------------------------------------------------------------------------------
// Child
// ---------------------------------------------------------------------------------------

fn child_main(role: &str) {
    process::run_child(role, SCENARIO_LIMIT, |prefix, args| async move {
        let store = open(&prefix).await;
        let result = match role {
            "cas" => child_cas(&store).await,
            "waiter" => child_waiter(&store, &args).await,
            "reader" => child_reader(&store).await,
            other => Err(format!("unknown role {other:?}")),
        };
        let _ = store.close().await;
        result
    });
}

async fn child_cas(store: &Store) -> Result<(), String> {
    say("ready");
    let wrote = increments(store, PER_TASK)
        .await
        .map_err(|e| e.to_string())?;
    for value in wrote {
        say(&format!("wrote {value}"));
    }
    Ok(())
}

async fn child_waiter(store: &Store, versions: &[String]) -> Result<(), String> {
    let keys: [&'static str; 3] = ["changed", "deleted", "expiring"];
    if versions.len() != keys.len() {
        return Err(format!("expected three versions, got {versions:?}"));
    }
    let mut waiters = Vec::new();
    for (key, version) in keys.into_iter().zip(versions) {
        let store = store.clone();
        let version = version.clone();
        waiters.push(tokio::spawn(async move {
            let outcome = store.wait_for_version_change(key, &version).await;
            (key, outcome)
        }));
    }
    // Tell the parent once every waiter is registered (and one more round trip has passed,
    // so their first reads went before the parent's writes).
    loop {
        let stats = store.stats().await.map_err(|e| e.to_string())?;
        if stats.get("redis", "watched_keys") == Some(&Figure::Count(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = store.get("round-trip").await;
    say("waiting");
    for waiter in waiters {
        let (key, outcome) = waiter.await.map_err(|e| e.to_string())?;
        match outcome {
            Ok(()) => say(&format!("{key} Ok")),
            Err(Error::NotFound) => say(&format!("{key} NotFound")),
            Err(other) => return Err(format!("{key}: {other}")),
        }
    }
    Ok(())
}

async fn child_reader(store: &Store) -> Result<(), String> {
    let keys: Vec<String> = (0..ATOMIC_KEYS).map(|i| format!("a/{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    say("reading");
    let mut rounds = std::collections::BTreeSet::new();
    loop {
        let snapshot = store.get_many(&keys).await.map_err(|e| e.to_string())?;
        let values: Vec<Vec<u8>> = snapshot
            .iter()
            .map(|r| r.as_ref().map(|r| r.value.to_vec()).unwrap_or_default())
            .collect();
        if values.iter().any(|v| *v != values[0]) {
            let distinct: std::collections::BTreeSet<String> = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            return Err(format!(
                "a torn put_many: one snapshot holds rounds {distinct:?}"
            ));
        }
        rounds.insert(values[0].clone());
        if store.get("done").await.is_ok() {
            break;
        }
    }
    say(&format!("untorn, rounds seen {}", rounds.len()));
    Ok(())
}
