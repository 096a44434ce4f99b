//! Locks across processes on Redis: this test binary re-executes itself as child processes
//! (selected by the `STORE_SYNC_CHILD` environment variable) that share one fresh prefix of
//! the test server.
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
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Record, Storage};
use store_redis::testing::{self, PrefixGuard};
use store_redis::RedisStorage;
use store_sync::{Lock, LockOptions};

const ROLE: &str = "STORE_SYNC_CHILD";
const PREFIX: &str = "STORE_SYNC_CHILD_PREFIX";
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
    match std::env::var(ROLE) {
        Ok(role) => child_main(&role),
        Err(_) => parent_main(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------

fn parent_main() {
    let url = testing::server_url();
    testing::require_server(&url);
    type Scenario = fn(&str) -> Result<(), String>;
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
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios {
        let prefix = testing::fresh_name("sync-two-process");
        let _guard = PrefixGuard::new(&url, &prefix);
        let started = Instant::now();
        match scenario(&prefix) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1?})", started.elapsed());
            }
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n    {why}");
            }
        }
    }
    println!("\ntwo_process: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// A child process with its stdout piped to the parent; killed (SIGKILL) if dropped
/// unfinished.
struct ChildProcess {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ChildProcess {
    fn spawn(role: &str, prefix: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .env(ROLE, role)
            .env(PREFIX, prefix)
            .env(testing::URL_VARIABLE, testing::server_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("re-executing the test binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The child's next line of output, within `limit`.
    fn line(&self, limit: Duration) -> Result<String, String> {
        self.lines
            .recv_timeout(limit)
            .map_err(|_| format!("the child said nothing within {limit:?}"))
    }

    /// The child's next line, which must start with `word`; returns the rest.
    fn expect(&self, word: &str, limit: Duration) -> Result<String, String> {
        let line = self.line(limit)?;
        line.strip_prefix(word)
            .map(|rest| rest.trim().to_owned())
            .ok_or_else(|| format!("expected {word:?} from the child, it said {line:?}"))
    }

    /// SIGKILL: the process ends at once, without running any of its code.
    fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("killing: {e}"))?;
        self.child.wait().map_err(|e| format!("reaping: {e}"))?;
        Ok(())
    }

    /// Waits for the child to exit successfully, within `limit`; returns its remaining
    /// lines.
    fn finish(mut self, limit: Duration) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                // Lines may still be in flight from the reader thread, which ends with the
                // child's stdout.
                let rest: Vec<String> = self.lines.iter().collect();
                return if status.success() {
                    Ok(rest)
                } else {
                    Err(format!("the child failed ({status}); it said {rest:?}"))
                };
            }
            if Instant::now() > deadline {
                return Err(format!("the child did not finish within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open(prefix: &str) -> Result<Arc<dyn Storage>, String> {
    let store = RedisStorage::connect(&testing::server_url(), prefix)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    Ok(Arc::new(store))
}

fn counter(prefix: &str) -> Result<(), String> {
    runtime().block_on(async {
        let store = open(prefix).await?;
        for key in ["counter", "go"] {
            store
                .put(Record::new(key, "0"))
                .await
                .map_err(|e| e.to_string())?;
        }
        let children: Vec<ChildProcess> = (0..PROCESSES)
            .map(|_| ChildProcess::spawn("counter", prefix))
            .collect();
        // Start together: each child says when it is connected, then waits for "go" to change.
        for child in &children {
            tokio::task::block_in_place(|| child.expect("ready", SCENARIO_LIMIT))?;
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
    runtime().block_on(async {
        let mut holder = ChildProcess::spawn("holder", prefix);
        let held_token = tokio::task::block_in_place(|| holder.expect("holding", SCENARIO_LIMIT))?;
        // The lease started no later than this.
        let held_at = Instant::now();
        let waiter = ChildProcess::spawn("waiter", prefix);
        // The waiter has seen the lock held (try_acquire said no) and is queued in acquire.
        tokio::task::block_in_place(|| waiter.expect("waiting", SCENARIO_LIMIT))?;
        let killed_at = Instant::now();
        holder.kill()?;
        let taken_token =
            tokio::task::block_in_place(|| waiter.expect("acquired", SCENARIO_LIMIT))?;
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
    let prefix = std::env::var(PREFIX).expect("the parent passes the prefix");
    let outcome = runtime().block_on(async {
        tokio::time::timeout(SCENARIO_LIMIT, async {
            let store = open(&prefix).await?;
            let result = match role {
                "counter" => child_counter(&store).await,
                "holder" => child_holder(&store).await,
                "waiter" => child_waiter(&store).await,
                other => Err(format!("unknown role {other:?}")),
            };
            let _ = store.close().await;
            result
        })
        .await
        .unwrap_or_else(|_| Err(format!("the {role} child timed out")))
    });
    if let Err(why) = outcome {
        eprintln!("child {role}: {why}");
        std::process::exit(1);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
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
