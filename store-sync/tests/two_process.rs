//! Locks across processes on Redis: this test binary re-executes itself as child processes
//! (see `store_redis::testing::process`) that share one fresh prefix of the test server.
//!
//! - `counter`: three processes, each with two tasks, take one lock in turn and increment a
//!   counter record with a plain get + put (a read-modify-write that loses updates unless
//!   the lock excludes the others); the counter ends exact and no token is handed out twice.
//! - `killed holder`: a child takes a lock with a short lease and is killed with SIGKILL
//!   while holding it (no release, no clean-up); another child, which found the lock held
//!   and waits in `acquire`, gets it once the lease has lapsed on the server's clock: not
//!   before a lease from the acquisition, and within a lease plus a bounded delay after the
//!   kill.
//!
//! Run by `cargo test` like any test binary (it has its own `main`, `harness = false`), and
//! it ends with a `N passed, M failed` line.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Record, Storage};
use store_redis::testing;
use store_redis::testing::process::{self, say, ChildProcess, Scenario};
use store_redis::RedisStorage;
use store_sync::{Lock, LockOptions};

/// How long any one scenario may run before it is declared hung.
const SCENARIO_LIMIT: Duration = Duration::from_secs(20);

/// Processes that contend in `counter`, tasks per process, and rounds per task.
const PROCESSES: usize = 3;
const TASKS: usize = 2;
const ROUNDS: usize = 25;

/// The lease of the killed holder: long enough that the waiter is surely queued before it
/// lapses, short enough to keep the test quick.
const KILLED_LEASE: Duration = Duration::from_millis(1500);
/// How late after the lease's end the waiter may get the lock (wake-up, a claim, and a
/// loaded machine's scheduling).
const TAKEOVER_SLACK: Duration = Duration::from_secs(3);

fn main() {
    match process::child_role() {
        Some(role) => child_main(&role),
        None => {
            let scenarios: [(&str, Scenario); 2] = [
                (
                    "a_counter_behind_one_lock_ends_exact_across_processes",
                    counter,
                ),
                (
                    "a_killed_holders_lock_goes_to_the_waiting_process_when_its_lease_lapses",
                    killed_holder,
                ),
            ];
            process::run_scenarios("two_process", "sync-two-process", &scenarios);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------

async fn open(prefix: &str) -> Result<Arc<dyn Storage>, String> {
    let store = RedisStorage::connect(&testing::server_url(), prefix)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    Ok(Arc::new(store))
}

fn counter(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(prefix).await?;
        for key in ["counter", "go"] {
            store
                .put(Record::new(key, "0"))
                .await
                .map_err(|e| e.to_string())?;
        }
        let children: Vec<ChildProcess> = (0..PROCESSES)
            .map(|_| ChildProcess::spawn("counter", prefix, &[]))
            .collect();
        // Start together: each child says when it is connected, then waits for "go" to change.
        for child in &children {
            tokio::task::block_in_place(|| child.expect_line("ready", SCENARIO_LIMIT))?;
        }
        store
            .put(Record::new("go", "1"))
            .await
            .map_err(|e| e.to_string())?;
        let mut tokens = HashSet::new();
        for child in children {
            let lines = tokio::task::block_in_place(|| child.finish(SCENARIO_LIMIT))?;
            let theirs: Vec<&str> = lines
                .iter()
                .filter_map(|line| line.strip_prefix("token "))
                .collect();
            if theirs.len() != TASKS * ROUNDS {
                return Err(format!(
                    "a child reported {} acquisitions, not {}",
                    theirs.len(),
                    TASKS * ROUNDS
                ));
            }
            for token in theirs {
                if !tokens.insert(token.to_owned()) {
                    return Err(format!("token {token} was handed out twice"));
                }
            }
        }
        let total = PROCESSES * TASKS * ROUNDS;
        let counter = store.get("counter").await.map_err(|e| e.to_string())?;
        if counter.value != total.to_string().as_bytes() {
            return Err(format!(
                "the counter ends at {:?}, not {total}: updates were lost, so two processes \
                 held the lock at once",
                String::from_utf8_lossy(&counter.value)
            ));
        }
        store.close().await.map_err(|e| e.to_string())
    })
}

fn killed_holder(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let mut holder = ChildProcess::spawn("holder", prefix, &[]);
        let held_token =
            tokio::task::block_in_place(|| holder.expect_line("holding", SCENARIO_LIMIT))?;
        // The lease started no later than this.
        let held_at = Instant::now();
        let waiter = ChildProcess::spawn("waiter", prefix, &[]);
        // The waiter has seen the lock held (try_acquire said no) and is queued in acquire.
        tokio::task::block_in_place(|| waiter.expect_line("waiting", SCENARIO_LIMIT))?;
        let killed_at = Instant::now();
        holder.kill()?;
        let taken_token =
            tokio::task::block_in_place(|| waiter.expect_line("acquired", SCENARIO_LIMIT))?;
        let taken_at = Instant::now();
        if taken_token == held_token {
            return Err(format!(
                "the waiter got the killed holder's token {taken_token}"
            ));
        }
        // The lease ran from before `held_at` (later renewals only extend it), on the
        // server's clock; the waiter reported after it got the lock. A small allowance for
        // reading two clocks.
        let early = Duration::from_millis(100);
        if taken_at - held_at + early < KILLED_LEASE {
            return Err(format!(
                "the waiter got the lock {:?} after the holder took it, before the lease of \
                 {KILLED_LEASE:?} lapsed",
                taken_at - held_at
            ));
        }
        // The holder's last renewal came before the kill, so its lease ended at most a
        // lease after the kill.
        if taken_at - killed_at > KILLED_LEASE + TAKEOVER_SLACK {
            return Err(format!(
                "the waiter got the lock {:?} after the holder was killed: more than the \
                 lease ({KILLED_LEASE:?}) plus {TAKEOVER_SLACK:?}",
                taken_at - killed_at
            ));
        }
        tokio::task::block_in_place(|| waiter.finish(SCENARIO_LIMIT))?;
        println!(
            "    holder killed {:?} into its lease of {KILLED_LEASE:?}; the waiting process \
             got the lock {:?} after the kill",
            killed_at - held_at,
            taken_at - killed_at
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------------------

fn child_main(role: &str) {
    process::run_child(role, SCENARIO_LIMIT, |prefix, _args| async move {
        let store = open(&prefix).await?;
        let result = match role {
            "counter" => child_counter(&store).await,
            "holder" => child_holder(&store).await,
            "waiter" => child_waiter(&store).await,
            other => Err(format!("unknown role {other:?}")),
        };
        let _ = store.close().await;
        result
    });
}

async fn child_counter(store: &Arc<dyn Storage>) -> Result<(), String> {
    // Start together: wait for the parent to change "go" (at once if it already has).
    let go = store.get("go").await.map_err(|e| e.to_string())?;
    say("ready");
    store
        .wait_for_version_change("go", &go.version)
        .await
        .map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(store.clone(), "counter", LockOptions::default());
            let mut tokens = Vec::new();
            for _ in 0..ROUNDS {
                let guard = lock.acquire().await.map_err(|e| e.to_string())?;
                tokens.push(guard.token().to_owned());
                let current = store.get("counter").await.map_err(|e| e.to_string())?;
                let n: u64 = std::str::from_utf8(&current.value)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or("the counter is not a number")?;
                // Widen the window between the read and the write, where another holder
                // would lose this update.
                tokio::task::yield_now().await;
                store
                    .put(Record::new("counter", (n + 1).to_string()))
                    .await
                    .map_err(|e| e.to_string())?;
                guard.release().await.map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(tokens)
        }));
    }
    for task in tasks {
        for token in task.await.map_err(|e| e.to_string())?? {
            say(&format!("token {token}"));
        }
    }
    Ok(())
}

fn killed_lease() -> LockOptions {
    LockOptions {
        lease: KILLED_LEASE,
        ..Default::default()
    }
}

async fn child_holder(store: &Arc<dyn Storage>) -> Result<(), String> {
    let lock = Lock::new(store.clone(), "killed", killed_lease());
    let guard = lock.acquire().await.map_err(|e| e.to_string())?;
    say(&format!("holding {}", guard.token()));
    // Hold (renewing) until killed.
    std::future::pending::<()>().await;
    drop(guard);
    Ok(())
}

async fn child_waiter(store: &Arc<dyn Storage>) -> Result<(), String> {
    let lock = Lock::new(store.clone(), "killed", killed_lease());
    if lock
        .try_acquire()
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err("the lock was free while the holder held it".into());
    }
    say("waiting");
    let guard = lock.acquire().await.map_err(|e| e.to_string())?;
    say(&format!("acquired {}", guard.token()));
    guard.release().await.map_err(|e| e.to_string())
}
