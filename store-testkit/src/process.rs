//! Tests that run in several processes: a test binary (`harness = false`) re-executes
//! itself as children that open the same store as the parent.
//!
//! The parent runs each scenario on a fresh store ([`run_scenarios`]: a Redis prefix, a
//! PostgreSQL table, anything a name selects, removed afterwards by the caller's clean-up)
//! and starts children with [`ChildProcess::spawn`]. A child learns its role
//! ([`child_role`]) and the store's name from the environment, runs its part with
//! [`run_child`], and talks to the parent in lines on its stdout ([`say`]).
//!
//! A limit given here is on a *silence*, never on a total time, so that a loaded machine
//! makes a scenario slower but never fails it. A child runs on a runtime that knows its
//! [`Progress`]: every line it says, and every call of a store it wrapped in
//! [`Watched`](crate::Watched), is progress. While it makes progress it tells the parent
//! so (a [`HEARTBEAT`] line, which the parent's reads skip); when it has made none for its
//! limit, it fails itself, saying so. The parent's reads fail when the child has said
//! nothing, heartbeat included, for their limit.
//!
//! Backends wrap [`run_scenarios`] with their own fresh store and clean-up (for instance
//! `store_redis::testing::run_scenarios`, which also fails at once, saying how to start
//! one, when the test server is missing).
//!
//! ```no_run
//! use std::time::Duration;
//! use store_testkit::process::{self, ChildProcess, Scenario};
//!
//! const LIMIT: Duration = Duration::from_secs(20);
//!
//! /// The parent's side: start a child on the scenario's store and read what it says.
//! fn child_answers(store: &str) -> Result<(), String> {
//!     let child = ChildProcess::spawn("echo", store, &["hello".to_owned()]);
//!     let word = child.expect_line("echo", LIMIT)?;
//!     child.finish(LIMIT)?;
//!     if word == "hello" { Ok(()) } else { Err(format!("the child said {word:?}")) }
//! }
//!
//! fn main() {
//!     match process::child_role() {
//!         Some(role) => process::run_child(&role, LIMIT, |_store, args| async move {
//!             process::say(&format!("echo {}", args.join(" ")));
//!             Ok(())
//!         }),
//!         None => {
//!             let scenarios: [(&str, Scenario); 1] = [("a_child_answers", child_answers)];
//!             process::run_scenarios(
//!                 "echo",
//!                 &scenarios,
//!                 || store_testkit::fresh_name("echo"),
//!                 |_store| {}, // nothing to remove
//!             );
//!         }
//!     }
//! }
//! ```

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::Progress;

/// The environment variable that tells a re-executed test binary which role it plays.
///
/// ```no_run
/// // What `ChildProcess::spawn("reader", ..)` sets for the child:
/// std::env::set_var(store_testkit::process::ROLE_VARIABLE, "reader");
/// assert_eq!(store_testkit::process::child_role().as_deref(), Some("reader"));
/// ```
pub const ROLE_VARIABLE: &str = "STORE_TEST_CHILD_ROLE";

/// The environment variable that passes a child the name of the scenario's store (a Redis
/// prefix, a PostgreSQL table: whatever the scenario was given).
///
/// ```no_run
/// let store = std::env::var(store_testkit::process::STORE_VARIABLE);
/// # let _ = store;
/// ```
pub const STORE_VARIABLE: &str = "STORE_TEST_CHILD_STORE";

/// One scenario of a multi-process test: it runs on the store it is given by name (fresh,
/// and removed afterwards) and says why it failed.
///
/// ```no_run
/// use store_testkit::process::Scenario;
/// fn nothing(_store: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenario: Scenario = nothing;
/// # let _ = scenario;
/// ```
pub type Scenario = fn(&str) -> Result<(), String>;

/// The role this process plays when [`ChildProcess::spawn`] started it; `None` in the parent.
///
/// ```no_run
/// match store_testkit::process::child_role() {
///     Some(role) => println!("a child playing {role}"),
///     None => println!("the parent"),
/// }
/// ```
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_VARIABLE).ok()
}

/// The runtime of a parent's scenario or of a child: two workers, so that a task blocked
/// on the other process (in `block_in_place`) leaves one to drive the store.
///
/// ```no_run
/// let answer = store_testkit::process::runtime().block_on(async { 42 });
/// assert_eq!(answer, 42);
/// ```
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("testkit: cannot build a tokio runtime: {e}"))
}

/// Runs each scenario on a fresh store (`fresh_store` names it; `remove_store` removes it
/// afterwards, also when the scenario panics), printing a line per scenario like libtest's
/// and then `TITLE: N passed, M failed`; exits with status 1 if any failed.
///
/// ```no_run
/// use store_testkit::process::{run_scenarios, Scenario};
/// fn nothing(_store: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenarios: [(&str, Scenario); 1] = [("nothing_fails", nothing)];
/// run_scenarios(
///     "two_process",
///     &scenarios,
///     || store_testkit::fresh_name("two-process"),
///     |store| println!("remove {store} here"),
/// );
/// ```
pub fn run_scenarios(
    title: &str,
    scenarios: &[(&str, Scenario)],
    mut fresh_store: impl FnMut() -> String,
    mut remove_store: impl FnMut(&str),
) {
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios {
        let store = fresh_store();
        let _remove = Remove {
            store: &store,
            remove: &mut remove_store,
        };
        let started = Instant::now();
        match scenario(&store) {
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
    println!("\n{title}: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Removes a scenario's store when dropped, so that a panicking scenario leaves nothing.
struct Remove<'a, F: FnMut(&str)> {
    store: &'a str,
    remove: &'a mut F,
}

impl<F: FnMut(&str)> Drop for Remove<'_, F> {
    fn drop(&mut self) {
        (self.remove)(self.store);
    }
}

/// This test binary re-executed as a child playing `role`, its stdout piped to the parent
/// line by line; killed (SIGKILL) if dropped unfinished.
///
/// ```no_run
/// use std::time::Duration;
/// let child = store_testkit::process::ChildProcess::spawn("reader", "test-store", &[]);
/// let first = child.line(Duration::from_secs(20))?;
/// let rest = child.finish(Duration::from_secs(20))?;
/// # let _ = (first, rest);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    lines: Receiver<String>,
}

impl ChildProcess {
    /// Starts the child `role` on the store named `store`, with `args`. The child inherits
    /// this process's environment (so a variable naming the test server reaches it too).
    ///
    /// # Panics
    ///
    /// If the test binary cannot be re-executed.
    ///
    /// ```no_run
    /// let child = store_testkit::process::ChildProcess::spawn("waiter", "test-store", &["7".to_owned()]);
    /// # let _ = child;
    /// ```
    pub fn spawn(role: &str, store: &str, args: &[String]) -> Self {
        let program = std::env::current_exe()
            .unwrap_or_else(|e| panic!("testkit: the test binary's path: {e}"));
        let mut child = Command::new(&program)
            .args(args)
            .env(ROLE_VARIABLE, role)
            .env(STORE_VARIABLE, store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: re-executing {}: {e}", program.display()));
        let stdout = child
            .stdout
            .take()
            .expect("stdout was set to Stdio::piped() above");
        let (tx, lines) = std::sync::mpsc::channel();
        // The thread ends, and so disconnects the channel, when the child's stdout closes:
        // that is how `finish` learns that every line has arrived.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The child's next line of output (heartbeats skipped); fails if the child says
    /// nothing, heartbeat included, for `limit`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let child = store_testkit::process::ChildProcess::spawn("cas", "test-store", &[]);
    /// let ready = child.line(Duration::from_secs(20))?;
    /// # let _ = ready;
    /// # Ok::<(), String>(())
    /// ```
    pub fn line(&self, limit: Duration) -> Result<String, String> {
        match self.next_line(limit) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                Err(format!("the child said nothing for {limit:?} (it hangs)"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err("the child ended without saying the line expected".to_owned())
            }
        }
    }

    /// The next line that is not a heartbeat, each line (heartbeats too) within `limit`
    /// of the one before.
    fn next_line(&self, limit: Duration) -> Result<String, RecvTimeoutError> {
        loop {
            let line = self.lines.recv_timeout(limit)?;
            if line != HEARTBEAT {
                return Ok(line);
            }
        }
    }

    /// The child's next line, which must start with `word`, within `limit`; returns the
    /// rest of the line, trimmed.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let child = store_testkit::process::ChildProcess::spawn("holder", "test-store", &[]);
    /// let token = child.expect_line("holding", Duration::from_secs(20))?;
    /// # let _ = token;
    /// # Ok::<(), String>(())
    /// ```
    pub fn expect_line(&self, word: &str, limit: Duration) -> Result<String, String> {
        let line = self.line(limit)?;
        line.strip_prefix(word)
            .map(|rest| rest.trim().to_owned())
            .ok_or_else(|| format!("expected {word:?} from the child, it said {line:?}"))
    }

    /// Kills the child with SIGKILL (it ends at once, without running any of its code)
    /// and reaps it.
    ///
    /// ```no_run
    /// # let mut child = store_testkit::process::ChildProcess::spawn("holder", "test-store", &[]);
    /// child.kill()?;
    /// # Ok::<(), String>(())
    /// ```
    pub fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("killing: {e}"))?;
        self.child.wait().map_err(|e| format!("reaping: {e}"))?;
        Ok(())
    }

    /// Waits for the child to close its stdout and exit successfully; returns the lines it
    /// said that were not read yet (heartbeats left out). Fails if the child says nothing,
    /// heartbeat included, for `limit`: a child that works, however slowly, is waited for.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let child = store_testkit::process::ChildProcess::spawn("cas", "test-store", &[]);
    /// let lines = child.finish(Duration::from_secs(20))?;
    /// # let _ = lines;
    /// # Ok::<(), String>(())
    /// ```
    pub fn finish(mut self, limit: Duration) -> Result<Vec<String>, String> {
        let mut rest = Vec::new();
        loop {
            match self.next_line(limit) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the child said nothing for {limit:?} (it hangs); before that it \
                         said {rest:?}"
                    ));
                }
            }
        }
        // Its stdout is closed, so the child is exiting.
        let status = self.child.wait().map_err(|e| format!("reaping: {e}"))?;
        if status.success() {
            Ok(rest)
        } else {
            Err(format!("the child failed ({status}); it said {rest:?}"))
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a child says, while it makes progress, so that its parent knows it works; the
/// parent's reads skip it.
///
/// ```
/// assert!(!store_testkit::process::HEARTBEAT.is_empty());
/// ```
pub const HEARTBEAT: &str = "\u{2665} progress";

/// Runs this process as the child `role`: `body` gets the scenario's store name (from
/// [`STORE_VARIABLE`]) and the child's arguments and runs on a [`Progress::runtime`].
/// While the child makes progress (a line said, a call of a
/// [`Watched`](crate::Watched) store finished) it says a [`HEARTBEAT`] every
/// tenth of `limit`; when it has made none for `limit`, or `body` fails, the reason is
/// printed to stderr and the process ends with status 1, which the parent's
/// [`ChildProcess::finish`] reports.
///
/// ```no_run
/// use std::time::Duration;
/// use store_testkit::process;
/// if let Some(role) = process::child_role() {
///     process::run_child(&role, Duration::from_secs(20), |store, _args| async move {
///         process::say(&format!("ready on {store}"));
///         Ok(())
///     });
/// }
/// ```
pub fn run_child<F, Fut>(role: &str, limit: Duration, body: F)
where
    F: FnOnce(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let store = std::env::var(STORE_VARIABLE)
        .unwrap_or_else(|_| panic!("testkit: the parent passes the store in {STORE_VARIABLE}"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let progress = Progress::new(limit);
    watch_child(role, progress.clone());
    let runtime = progress.runtime();
    let outcome = {
        let _entered = progress.enter();
        runtime.block_on(body(store, args))
    };
    if let Err(why) = outcome {
        eprintln!("child {role}: {why}");
        std::process::exit(1);
    }
}

/// Starts the child's watchdog: a plain thread (so that it runs even if every runtime
/// thread is stuck) that says a heartbeat after progress and ends the process after a
/// silence of the progress's limit.
fn watch_child(role: &str, progress: Progress) {
    let role = role.to_owned();
    let look = progress.limit() / 10;
    std::thread::spawn(move || loop {
        std::thread::sleep(look);
        let silent = progress.silent_for();
        if silent >= progress.limit() {
            eprintln!(
                "child {role}: nothing finished for {silent:.1?} (the limit is {:?}): it hangs",
                progress.limit()
            );
            std::process::exit(1);
        }
        if silent < look {
            say_line(HEARTBEAT);
        }
    });
}

/// Says `line` to the parent (stdout, flushed at once so that the parent sees it now);
/// saying something is progress.
///
/// ```no_run
/// store_testkit::process::say("ready");
/// ```
pub fn say(line: &str) {
    say_line(line);
    Progress::current().tick();
}

fn say_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A parent that stopped listening reports the failure itself.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
