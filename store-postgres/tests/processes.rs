//! Two processes on one table: this test binary re-executes itself as a child process (see
//! `store_testkit::process`: the child says a heartbeat while its store calls finish, and a
//! child that makes no progress for the limit fails the scenario), and the two coordinate
//! through the store itself.
//!
//! - CAS: every process increments one counter with get + CAS; the total is exact, and of
//!   one CAS per process on the same version exactly one wins.
//! - Waits: a waiter in the child is woken by the parent's put, delete and expiry.
//! - put_many: the child's `get_many` never sees part of the parent's `put_many`.
//!
//! Run by `cargo test` like any test binary (it has its own `main`, `harness = false`), and
//! it ends with a `N passed, M failed` line.

use std::time::Duration;

use store_core::{Error, Record, Storage};
use store_postgres::testing;
use store_postgres::{PostgresOptions, PostgresStorage};
use store_testkit::process::{self, ChildProcess, Scenario};
use store_testkit::Watched;

/// How long a process may make no progress (the child) or a key may take to appear (both).
const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    match process::child_role() {
        Some(role) => child_main(&role),
        None => {
            let scenarios: [(&str, Scenario); 3] = [
                ("cas_across_processes_has_exactly_one_winner", cas),
                ("waits_are_woken_by_another_process", waits),
                ("put_many_is_atomic_for_another_process", put_many),
            ];
            testing::run_scenarios("processes", &scenarios);
        }
    }
}

/// A store on the scenario's table (neither process drops it: the scenario's clean-up does);
/// in the child, each call it finishes is progress (see `process::run_child`).
type Store = Watched<PostgresStorage>;

async fn open(table: &str) -> Store {
    let options = PostgresOptions {
        table: table.to_owned(),
        ..testing::fresh_options()
    };
    Watched::new(testing::connect(&options).await)
}

fn text(error: Error) -> String {
    error.to_string()
}

/// Waits for the child to exit successfully (its silence limited to [`LIMIT`]).
fn finish(child: ChildProcess, what: &str) -> Result<(), String> {
    tokio::task::block_in_place(|| child.finish(LIMIT))
        .map(drop)
        .map_err(|why| format!("{what}: {why}"))
}

/// Waits until `key` exists (written by the other process), by waiting on it when it does
/// not: polling would work too, but this is what a user would write.
async fn await_key<S: Storage + ?Sized>(store: &S, key: &str) -> Result<Record, String> {
    tokio::time::timeout(LIMIT, async {
        loop {
            match store.get(key).await {
                Ok(record) => return Ok(record),
                Err(Error::NotFound) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(error) => return Err(format!("get {key}: {error}")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("{key} did not appear within {LIMIT:?}")))
}

async fn increment<S: Storage + ?Sized>(store: &S, key: &str) -> Result<(), String> {
    loop {
        let current = store
            .get(key)
            .await
            .map_err(|e| format!("get the counter: {e}"))?;
        let n: u64 = std::str::from_utf8(&current.value)
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the counter is not a number: {:?}", current.value))?;
        let next = Record::new(key, (n + 1).to_string()).with_version(current.version);
        match store.cas_by_version(next).await {
            Ok(_) => return Ok(()),
            Err(Error::Conflict) => continue,
            Err(error) => return Err(format!("cas: {error}")),
        }
    }
}

/// One CAS on `version`, recorded as `result/<who>` = won or lost.
async fn race<S: Storage + ?Sized>(store: &S, who: &str, version: &str) -> Result<(), String> {
    let attempt = Record::new("race", who.to_owned()).with_version(version);
    let outcome = match store.cas_by_version(attempt).await {
        Ok(_) => "won",
        Err(Error::Conflict) => "lost",
        Err(error) => return Err(format!("{who}: cas: {error}")),
    };
    store
        .put(Record::new(format!("result/{who}"), outcome))
        .await
        .map(drop)
        .map_err(text)
}

const INCREMENTS: u64 = 200;

fn cas(table: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(table).await;
        store.put(Record::new("counter", "0")).await.map_err(text)?;
        let race_version = store
            .put(Record::new("race", ""))
            .await
            .map_err(text)?
            .version;
        let child = ChildProcess::spawn("cas", table, &[]);
        store
            .put(Record::new("go", race_version.clone()))
            .await
            .map_err(text)?;
        race(&store, "parent", &race_version).await?;
        for _ in 0..INCREMENTS {
            increment(&store, "counter").await?;
        }
        finish(child, "cas")?;
        await_key(&store, "done/child").await?;
        let counter = store.get("counter").await.map_err(text)?;
        let expected = (2 * INCREMENTS).to_string();
        if counter.value != expected.as_bytes() {
            return Err(format!(
                "increments were lost or doubled across processes: the counter is {:?}, not \
                 {expected}",
                String::from_utf8_lossy(&counter.value)
            ));
        }
        let results = store
            .get_many(&["result/parent", "result/child"])
            .await
            .map_err(text)?;
        let won = results
            .iter()
            .filter(|r| r.as_ref().is_some_and(|r| &r.value[..] == b"won"))
            .count();
        if won != 1 {
            return Err(format!(
                "exactly one process wins a CAS on one version: {results:?}"
            ));
        }
        store.close().await.map_err(text)
    })
}

fn waits(table: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(table).await;
        let child = ChildProcess::spawn("waits", table, &[]);
        let expect = |key: &str, record: Record, value: &[u8]| {
            if record.value == value {
                Ok(())
            } else {
                Err(format!(
                    "{key} is {:?}, expected {:?}",
                    String::from_utf8_lossy(&record.value),
                    String::from_utf8_lossy(value)
                ))
            }
        };
        store.put(Record::new("by-put", "1")).await.map_err(text)?;
        await_key(&store, "ready/0").await?;
        store.put(Record::new("by-put", "2")).await.map_err(text)?;
        expect("woke/0", await_key(&store, "woke/0").await?, b"changed:2")?;

        store
            .put(Record::new("by-delete", "1"))
            .await
            .map_err(text)?;
        await_key(&store, "ready/1").await?;
        store.delete("by-delete").await.map_err(text)?;
        expect("woke/1", await_key(&store, "woke/1").await?, b"gone")?;

        store
            .put(Record::new("by-expiry", "1").with_ttl(Duration::from_millis(600)))
            .await
            .map_err(text)?;
        await_key(&store, "ready/2").await?;
        expect("woke/2", await_key(&store, "woke/2").await?, b"gone")?;
        finish(child, "waits")?;
        store.close().await.map_err(text)
    })
}

const BATCH_KEYS: usize = 20;
const GENERATIONS: usize = 150;

fn batch_keys() -> Vec<String> {
    (0..BATCH_KEYS).map(|i| format!("batch/{i:02}")).collect()
}

fn put_many(table: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(table).await;
        let keys = batch_keys();
        let put_generation = |generation: String| {
            keys.iter()
                .map(|key| Record::new(key.clone(), generation.clone()))
                .collect::<Vec<_>>()
        };
        store
            .put_many(put_generation("0".into()))
            .await
            .map_err(text)?;
        let child = ChildProcess::spawn("reader", table, &[]);
        for generation in 1..GENERATIONS {
            store
                .put_many(put_generation(generation.to_string()))
                .await
                .map_err(text)?;
            tokio::task::yield_now().await;
        }
        store
            .put_many(put_generation("last".into()))
            .await
            .map_err(text)?;
        finish(child, "reader")?;
        let seen = await_key(&store, "seen").await?;
        let seen: usize = std::str::from_utf8(&seen.value)
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the reader reported {:?}", seen.value))?;
        if seen < 1 {
            return Err("the reader saw no generation at all".to_owned());
        }
        store.close().await.map_err(text)
    })
}

// ---------------------------------------------------------------------------------------
// Child
// ---------------------------------------------------------------------------------------

fn child_main(role: &str) {
    process::run_child(role, LIMIT, |table, _args| async move {
        let store = open(&table).await;
        let result = match role {
            "cas" => child_cas(&store).await,
            "waits" => child_waits(&store).await,
            "reader" => child_reader(&store).await,
            other => Err(format!("unknown role {other:?}")),
        };
        result?;
        store.close().await.map_err(text)
    });
}

async fn child_cas(store: &Store) -> Result<(), String> {
    // Ready, then wait for the start signal the parent gives to both processes.
    let go = await_key(store, "go").await?;
    let version = String::from_utf8_lossy(&go.value).into_owned();
    race(store, "child", &version).await?;
    for _ in 0..INCREMENTS {
        increment(store, "counter").await?;
    }
    store
        .put(Record::new("done/child", ""))
        .await
        .map(drop)
        .map_err(text)
}

async fn child_waits(store: &Store) -> Result<(), String> {
    // Three waits, each announced as ready before it starts waiting, each reported.
    for (round, key) in ["by-put", "by-delete", "by-expiry"].iter().enumerate() {
        let current = await_key(store, key).await?;
        let wait = store.wait_for_version_change(key, &current.version);
        tokio::pin!(wait);
        // Registered and read once before the parent is told to write.
        let early = tokio::time::timeout(Duration::from_millis(50), &mut wait).await;
        if let Ok(early) = early {
            return Err(format!(
                "{key}: the wait returned before any write: {early:?}"
            ));
        }
        store
            .put(Record::new(format!("ready/{round}"), ""))
            .await
            .map_err(text)?;
        let outcome = tokio::time::timeout(LIMIT, wait)
            .await
            .map_err(|_| format!("{key}: the waiter was never woken"))?;
        let seen = match outcome {
            Ok(()) => {
                let after = store.get(key).await.map_err(text)?;
                format!("changed:{}", String::from_utf8_lossy(&after.value))
            }
            Err(Error::NotFound) => "gone".to_owned(),
            Err(error) => return Err(format!("{key}: {error}")),
        };
        store
            .put(Record::new(format!("woke/{round}"), seen))
            .await
            .map_err(text)?;
    }
    Ok(())
}

async fn child_reader(store: &Store) -> Result<(), String> {
    let keys = batch_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    await_key(store, "batch/00").await?;
    let mut seen_generations = std::collections::BTreeSet::new();
    loop {
        let records = store.get_many(&keys).await.map_err(text)?;
        let values = records
            .iter()
            .map(|r| r.as_ref().map(|r| &r.value[..]))
            .collect::<Option<Vec<&[u8]>>>()
            .ok_or_else(|| format!("a key of the batch is missing: {records:?}"))?;
        if values.iter().any(|v| *v != values[0]) {
            return Err(format!(
                "get_many saw part of a put_many: {:?}",
                values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v))
                    .collect::<Vec<_>>()
            ));
        }
        seen_generations.insert(values[0].to_vec());
        if values[0] == b"last" {
            break;
        }
    }
    // Seeing several generations proves the reads overlapped the writes.
    store
        .put(Record::new("seen", seen_generations.len().to_string()))
        .await
        .map(drop)
        .map_err(text)
}
