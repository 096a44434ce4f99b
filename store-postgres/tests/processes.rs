//! Two processes on one table: the test binary runs itself again as the second process
//! (`STORE_PG_CHILD` names the part it plays, `STORE_PG_TABLE` the table), and the two
//! coordinate through the store itself.
//!
//! - CAS: every process increments one counter with get + CAS; the total is exact, and of
//!   one CAS per process on the same version exactly one wins.
//! - Waits: a waiter in the child is woken by the parent's put, delete and expiry.
//! - put_many: the child's `get_many` never sees part of the parent's `put_many`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use store_core::{Error, Record, Storage};
use store_postgres::testing::{self, TestStore};
use store_postgres::PostgresStorage;

const ROLE: &str = "STORE_PG_CHILD";
const TABLE: &str = "STORE_PG_TABLE";
const LIMIT: Duration = Duration::from_secs(30);

/// Starts this test binary again, running only `test` as `role` on `table`.
fn spawn_child(test: &str, role: &str, table: &str) -> Child {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(TABLE, table)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the child process")
}

/// Waits for the child (in a blocking thread) and fails with its output if it failed.
async fn finish(child: Child, what: &str) {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("waiting for the child")
        .expect("the child's output");
    assert!(
        output.status.success(),
        "{what}: the child process failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The role this process plays, and the store the child opens (it never drops the table).
async fn child_store() -> Option<(String, PostgresStorage)> {
    let role = std::env::var(ROLE).ok()?;
    let table = std::env::var(TABLE).expect("STORE_PG_TABLE is set with STORE_PG_CHILD");
    let options = store_postgres::PostgresOptions {
        table,
        ..testing::fresh_options()
    };
    Some((role, testing::connect(&options).await))
}

/// Waits until `key` exists (written by the other process), by waiting on it when it does
/// not: polling would work too, but this is what a user would write.
async fn await_key<S: Storage + ?Sized>(store: &S, key: &str) -> Record {
    tokio::time::timeout(LIMIT, async {
        loop {
            match store.get(key).await {
                Ok(record) => return record,
                Err(Error::NotFound) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(error) => panic!("get {key}: {error}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{key} did not appear within {LIMIT:?}"))
}

async fn increment<S: Storage + ?Sized>(store: &S, key: &str) {
    loop {
        let current = store.get(key).await.expect("get the counter");
        let n: u64 = std::str::from_utf8(&current.value)
            .unwrap()
            .parse()
            .unwrap();
        let next = Record::new(key, (n + 1).to_string()).with_version(current.version);
        match store.cas_by_version(next).await {
            Ok(_) => return,
            Err(Error::Conflict) => continue,
            Err(error) => panic!("cas: {error}"),
        }
    }
}

/// One CAS on `version`, recorded as `result/<who>` = won or lost.
async fn race<S: Storage + ?Sized>(store: &S, who: &str, version: &str) {
    let attempt = Record::new("race", who.to_owned()).with_version(version);
    let outcome = match store.cas_by_version(attempt).await {
        Ok(_) => "won",
        Err(Error::Conflict) => "lost",
        Err(error) => panic!("{who}: cas: {error}"),
    };
    store
        .put(Record::new(format!("result/{who}"), outcome))
        .await
        .unwrap();
}

const INCREMENTS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_across_processes_has_exactly_one_winner() {
    if let Some((_, store)) = child_store().await {
        // Ready, then wait for the start signal the parent gives to both processes.
        let go = await_key(&store, "go").await;
        let version = std::str::from_utf8(&go.value).unwrap().to_owned();
        race(&store, "child", &version).await;
        for _ in 0..INCREMENTS {
            increment(&store, "counter").await;
        }
        store.put(Record::new("done/child", "")).await.unwrap();
        store.close().await.unwrap();
        return;
    }
    let store = TestStore::fresh().await;
    store.put(Record::new("counter", "0")).await.unwrap();
    let race_version = store.put(Record::new("race", "")).await.unwrap().version;
    let child = spawn_child(
        "cas_across_processes_has_exactly_one_winner",
        "cas",
        &store.options().table,
    );
    store
        .put(Record::new("go", race_version.clone()))
        .await
        .unwrap();
    race(&store, "parent", &race_version).await;
    for _ in 0..INCREMENTS {
        increment(&store, "counter").await;
    }
    finish(child, "cas").await;
    await_key(&store, "done/child").await;
    let counter = store.get("counter").await.unwrap();
    assert_eq!(
        std::str::from_utf8(&counter.value).unwrap(),
        (2 * INCREMENTS).to_string(),
        "increments were lost or doubled across processes"
    );
    let results = store
        .get_many(&["result/parent", "result/child"])
        .await
        .unwrap();
    let won = results
        .iter()
        .filter(|r| r.as_ref().is_some_and(|r| &r.value[..] == b"won"))
        .count();
    assert_eq!(
        won, 1,
        "exactly one process wins a CAS on one version: {results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_are_woken_by_another_process() {
    if let Some((_, store)) = child_store().await {
        // Three waits, each announced as ready before it starts waiting, each reported.
        for (round, key) in ["by-put", "by-delete", "by-expiry"].iter().enumerate() {
            let current = await_key(&store, key).await;
            let wait = store.wait_for_version_change(key, &current.version);
            tokio::pin!(wait);
            // Registered and read once before the parent is told to write.
            let early = tokio::time::timeout(Duration::from_millis(50), &mut wait).await;
            assert!(
                early.is_err(),
                "{key}: the wait returned before any write: {early:?}"
            );
            store
                .put(Record::new(format!("ready/{round}"), ""))
                .await
                .unwrap();
            let outcome = tokio::time::timeout(LIMIT, wait)
                .await
                .unwrap_or_else(|_| panic!("{key}: the waiter was never woken"));
            let seen = match outcome {
                Ok(()) => {
                    let after = store.get(key).await.unwrap();
                    format!("changed:{}", String::from_utf8_lossy(&after.value))
                }
                Err(Error::NotFound) => "gone".to_owned(),
                Err(error) => panic!("{key}: {error}"),
            };
            store
                .put(Record::new(format!("woke/{round}"), seen))
                .await
                .unwrap();
        }
        store.close().await.unwrap();
        return;
    }
    let store = TestStore::fresh().await;
    let child = spawn_child(
        "waits_are_woken_by_another_process",
        "waits",
        &store.options().table,
    );
    store.put(Record::new("by-put", "1")).await.unwrap();
    await_key(&store, "ready/0").await;
    store.put(Record::new("by-put", "2")).await.unwrap();
    assert_eq!(&await_key(&store, "woke/0").await.value[..], b"changed:2");

    store.put(Record::new("by-delete", "1")).await.unwrap();
    await_key(&store, "ready/1").await;
    store.delete("by-delete").await.unwrap();
    assert_eq!(&await_key(&store, "woke/1").await.value[..], b"gone");

    store
        .put(Record::new("by-expiry", "1").with_ttl(Duration::from_millis(600)))
        .await
        .unwrap();
    await_key(&store, "ready/2").await;
    assert_eq!(&await_key(&store, "woke/2").await.value[..], b"gone");
    finish(child, "waits").await;
}

const BATCH_KEYS: usize = 20;
const GENERATIONS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_many_is_atomic_for_another_process() {
    let keys: Vec<String> = (0..BATCH_KEYS).map(|i| format!("batch/{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if let Some((_, store)) = child_store().await {
        await_key(&store, "batch/00").await;
        let mut seen_generations = std::collections::BTreeSet::new();
        loop {
            let records = store.get_many(&keys).await.unwrap();
            let values: Vec<&[u8]> = records
                .iter()
                .map(|r| &r.as_ref().expect("every key exists").value[..])
                .collect();
            assert!(
                values.iter().all(|v| *v == values[0]),
                "get_many saw part of a put_many: {:?}",
                values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v))
                    .collect::<Vec<_>>()
            );
            seen_generations.insert(values[0].to_vec());
            if values[0] == b"last" {
                break;
            }
        }
        // Seeing several generations proves the reads overlapped the writes.
        store
            .put(Record::new("seen", seen_generations.len().to_string()))
            .await
            .unwrap();
        store.close().await.unwrap();
        return;
    }
    let store = TestStore::fresh().await;
    let put_generation = |generation: String| {
        keys.iter()
            .map(|key| Record::new(*key, generation.clone()))
            .collect::<Vec<_>>()
    };
    store.put_many(put_generation("0".into())).await.unwrap();
    let child = spawn_child(
        "put_many_is_atomic_for_another_process",
        "reader",
        &store.options().table,
    );
    for generation in 1..GENERATIONS {
        store
            .put_many(put_generation(generation.to_string()))
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    store.put_many(put_generation("last".into())).await.unwrap();
    finish(child, "reader").await;
    let seen: usize = std::str::from_utf8(&await_key(&store, "seen").await.value)
        .unwrap()
        .parse()
        .unwrap();
    assert!(seen >= 1, "the reader saw no generation at all");
}
