//! Locks across processes on Redis: this test binary re-executes itself as child processes
//! (see `store_testkit::process`) that share one fresh prefix of the test server.
//!
//! - `counter`: three processes, each with two tasks, take one lock in turn and increment a
//!   counter record with a plain get + put (a read-modify-write that loses updates unless
//!   the lock excludes the others); the counter ends exact and no token is handed out twice.
//! - `fenced`: the same contention on a counter written only with fenced CAS writes, one
//!   holder pausing past its lease now and then after its last check: every refused write
//!   comes from a holder whose guard reports the lock lost (else the lock was granted
//!   twice), and the counter holds exactly the writes that were let through.
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
use store_redis::RedisStorage;
use store_sync::{Lock, LockOptions};
use store_testkit::process::{self, say, ChildProcess, Scenario};
use store_testkit::Watched;

/// How long a scenario's processes may make no progress before it is declared hung (a
/// silence, not a total time: see `store_testkit::process`).
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

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
            let scenarios: [(&str, Scenario); 3] = [
                (
                    "a_counter_behind_one_lock_ends_exact_across_processes",
                    counter,
                ),
                (
                    "a_fenced_write_is_refused_only_after_its_holder_lost_the_lock",
                    fenced,
                ),
                (
                    "a_killed_holders_lock_goes_to_the_waiting_process_when_its_lease_lapses",
                    killed_holder,
                ),
            ];
            testing::run_scenarios("two_process", "sync-two-process", &scenarios);
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
    // In a child, each call the store finishes is progress (see `process::run_child`).
    Ok(Arc::new(Watched::new(store)))
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

fn fenced(prefix: &str) -> Result<(), String> {
    process::runtime().block_on(async {
        let store = open(prefix).await?;
        for key in ["fenced", "go"] {
            store
                .put(Record::new(key, "0 nobody"))
                .await
                .map_err(|e| e.to_string())?;
        }
        let children: Vec<ChildProcess> = (0..PROCESSES)
            .map(|i| ChildProcess::spawn("fenced", prefix, &[i.to_string()]))
            .collect();
        for child in &children {
            tokio::task::block_in_place(|| child.expect_line("ready", SCENARIO_LIMIT))?;
        }
        store
            .put(Record::new("go", "1"))
            .await
            .map_err(|e| e.to_string())?;
        let (mut written, mut refused) = (0usize, 0usize);
        let mut tokens = HashSet::new();
        for child in children {
            let lines = tokio::task::block_in_place(|| child.finish(SCENARIO_LIMIT))?;
            for line in &lines {
                if let Some(token) = line.strip_prefix("wrote ") {
                    written += 1;
                    if !tokens.insert(token.to_owned()) {
                        return Err(format!("token {token} was handed out twice"));
                    }
                } else if let Some(token) = line.strip_prefix("refused ") {
                    refused += 1;
                    if !tokens.insert(token.to_owned()) {
                        return Err(format!("token {token} was handed out twice"));
                    }
                }
            }
        }
        // Every write that was let through is counted: none lost, none twice.
        let counter = store.get("fenced").await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&counter.value).into_owned();
        let value = text.split(' ').next().unwrap_or_default();
        if value != written.to_string() {
            return Err(format!(
                "the fenced counter ends at {value}, but {written} writes were acknowledged"
            ));
        }
        println!(
            "    {written} fenced writes landed; {refused} were refused, each by a holder \
             that had lost its lease (paused past it)"
        );
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
    process::run_child(role, SCENARIO_LIMIT, |prefix, args| async move {
        let store = open(&prefix).await?;
        let result = match role {
            "counter" => child_counter(&store).await,
            "fenced" => child_fenced(&store, &args).await,
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

/// A short lease, so that a holder paused for [`FENCED_PAUSE`] loses it and another
/// process takes over meanwhile.
fn fenced_lease() -> LockOptions {
    LockOptions {
        lease: Duration::from_millis(400),
        clock_margin: Some(Duration::from_millis(100)),
        ..Default::default()
    }
}

/// How long a holder pauses between checking that it holds the lock and its fenced write,
/// every [`PAUSE_EVERY`] rounds: past its lease, as a loaded or stopped process would.
const FENCED_PAUSE: Duration = Duration::from_millis(700);
const PAUSE_EVERY: usize = 8;
const FENCED_ROUNDS: usize = 16;

/// One process's holders of the fenced counter. Each acquisition claims the counter (a CAS
/// that stamps its token, so that writes prepared by an earlier holder can no longer land),
/// checks that it still holds the lock, sometimes pauses past its lease, then writes with a
/// CAS on the version its claim produced. A write refused while the guard still says the
/// lock is held would mean the lock was granted twice: reported as a failure, with the
/// versions involved. A write refused after the lease ran out is fencing doing its job.
async fn child_fenced(store: &Arc<dyn Storage>, args: &[String]) -> Result<(), String> {
    let process: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    let go = store.get("go").await.map_err(|e| e.to_string())?;
    say("ready");
    store
        .wait_for_version_change("go", &go.version)
        .await
        .map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        // Each holder runs on a runtime of its own, so that a pause stops it whole, its
        // renewal task included, as a stopped process would be.
        let holder = async move {
            let lock = Lock::new(store.clone(), "fenced", fenced_lease());
            let mut lines = Vec::new();
            for round in 0..FENCED_ROUNDS {
                let guard = lock.acquire().await.map_err(|e| e.to_string())?;
                let token = guard.token().to_owned();
                // The claim: read, then stamp the token with a CAS.
                let seen = store.get("fenced").await.map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&seen.value).into_owned();
                let n: u64 = text
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let claim = Record::new("fenced", format!("{n} {token}"))
                    .with_version(seen.version.clone());
                let claimed = match store.cas_by_version(claim).await {
                    Ok(claimed) => claimed,
                    Err(store_core::Error::Conflict) if guard.is_lost() => {
                        // Lost before even claiming (a slow machine): nothing to write.
                        lines.push(format!("refused {token}"));
                        let _ = guard.release().await;
                        continue;
                    }
                    Err(error) => {
                        return Err(format!(
                            "{token}: the claim failed while the guard held the lock: {error} \
                             (another holder wrote {:?} meanwhile)",
                            store.get("fenced").await.map(|r| r.value)
                        ))
                    }
                };
                if guard.is_lost() {
                    let _ = guard.release().await;
                    lines.push(format!("refused {token}"));
                    continue;
                }
                // Past the check: from here on the holder acts on what it last knew.
                if process == 0 && task == 0 && round % PAUSE_EVERY == PAUSE_EVERY - 1 {
                    std::thread::sleep(FENCED_PAUSE);
                }
                let write = Record::new("fenced", format!("{} {token}", n + 1))
                    .with_version(claimed.version.clone());
                match store.cas_by_version(write).await {
                    Ok(_) => lines.push(format!("wrote {token}")),
                    Err(store_core::Error::Conflict) => {
                        if !guard.is_lost() {
                            return Err(format!(
                                "{token}: a fenced write was refused while its guard still held \
                                 the lock, so the lock was granted twice (the counter was \
                                 rewritten from version {} to {:?})",
                                claimed.version,
                                store.get("fenced").await.map(|r| r.version)
                            ));
                        }
                        lines.push(format!("refused {token}"));
                    }
                    Err(error) => return Err(format!("{token}: fenced write: {error}")),
                }
                let lost = guard.is_lost();
                match guard.release().await {
                    Ok(()) => {}
                    // Not ours any more: only acceptable for a guard that lost its lease.
                    Err(store_core::Error::Conflict) if lost => {}
                    Err(error) => return Err(format!("{token}: release of a held lock: {error}")),
                }
            }
            Ok::<_, String>(lines)
        };
        tasks.push(std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(holder)
        }));
    }
    for task in tasks {
        let lines = tokio::task::spawn_blocking(move || task.join())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "a holder panicked".to_owned())??;
        for line in lines {
            say(&line);
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
