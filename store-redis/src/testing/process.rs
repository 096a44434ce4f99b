//! Child processes for tests.
//!
//! - Servers: a free port, a server process that is killed when its guard is dropped, and
//!   waiting until it answers ([`free_port`], [`ChildServer`]). Nothing there is
//!   Redis-specific; the PostgreSQL backend's fault tests need the same.
//! - Multi-process tests: a test binary (`harness = false`) that re-executes itself as
//!   children which open the same store as the parent ([`child_role`], [`run_scenarios`],
//!   [`ChildProcess`], [`run_child`], [`say`]). The parent runs each scenario on a fresh
//!   prefix of the test server; a child learns its role and the prefix from the
//!   environment and talks to the parent in lines on its stdout.
//!
//! A limit given here is on a *silence*, never on a total time, so that a loaded machine
//! makes a scenario slower but never fails it. A child runs on a runtime that knows its
//! [`Progress`]: every line it says, and every call of a store it wrapped in
//! [`Watched`](store_core::testkit::Watched), is progress. While it makes progress it tells
//! the parent so (a [`HEARTBEAT`] line, which the parent's reads skip); when it has made
//! none for its limit, it fails itself, saying so. The parent's reads fail when the child
//! has said nothing, heartbeat included, for their limit.
//!
//! ```no_run
//! use std::time::Duration;
//! use store_redis::testing::process::{self, ChildProcess, Scenario};
//!
//! const LIMIT: Duration = Duration::from_secs(20);
//!
//! /// The parent's side: start a child on the scenario's prefix and read what it says.
//! fn child_answers(prefix: &str) -> Result<(), String> {
//!     let child = ChildProcess::spawn("echo", prefix, &["hello".to_owned()]);
//!     let word = child.expect_line("echo", LIMIT)?;
//!     child.finish(LIMIT)?;
//!     if word == "hello" { Ok(()) } else { Err(format!("the child said {word:?}")) }
//! }
//!
//! fn main() {
//!     match process::child_role() {
//!         Some(role) => process::run_child(&role, LIMIT, |_prefix, args| async move {
//!             process::say(&format!("echo {}", args.join(" ")));
//!             Ok(())
//!         }),
//!         None => {
//!             let scenarios: [(&str, Scenario); 1] = [("a_child_answers", child_answers)];
//!             process::run_scenarios("echo", "echo", &scenarios);
//!         }
//!     }
//! }
//! ```

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use store_core::testkit::Progress;

use super::PrefixGuard;

/// A TCP port on 127.0.0.1 that nothing listens on right now.
///
/// The port is only free when this returns; a server started on it a moment later almost
/// always gets it, and [`ChildServer::start`] reports the rare loser clearly.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("testing: no free TCP port on 127.0.0.1: {e}"))
}

/// A server process started by a test; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildServer {
    program: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts `program args...`, then calls `ready` until it returns `true` (at most
    /// `within`); panics with what to install if the program cannot be started.
    pub fn start(
        program: &str,
        args: &[String],
        within: Duration,
        ready: impl FnMut() -> bool,
    ) -> Self {
        let mut server = Self {
            program: program.to_owned(),
            args: args.to_vec(),
            child: None,
        };
        server.spawn(within, ready);
        server
    }

    fn spawn(&mut self, within: Duration, mut ready: impl FnMut() -> bool) {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "testing: cannot start `{}` ({e}); install it (for Redis: apt-get install \
                     redis-server) or put it on PATH",
                    self.program
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + within;
        while !ready() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "testing: `{} {}` exited at start ({status}); is its port taken?",
                    self.program,
                    self.args.join(" ")
                );
            }
            assert!(
                Instant::now() < deadline,
                "testing: `{} {}` did not become ready within {within:?}",
                self.program,
                self.args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown, nothing saved) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again (after [`kill`](ChildServer::kill)).
    pub fn restart(&mut self, within: Duration, ready: impl FnMut() -> bool) {
        self.kill();
        self.spawn(within, ready);
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment variable that tells a re-executed test binary which role it plays.
///
/// ```no_run
/// // What `ChildProcess::spawn("reader", ..)` sets for the child:
/// std::env::set_var(store_redis::testing::process::ROLE_VARIABLE, "reader");
/// assert_eq!(store_redis::testing::process::child_role().as_deref(), Some("reader"));
/// ```
pub const ROLE_VARIABLE: &str = "STORE_TEST_CHILD_ROLE";

/// The environment variable that passes a child the prefix of the scenario's store.
///
/// ```no_run
/// let prefix = std::env::var(store_redis::testing::process::PREFIX_VARIABLE);
/// # let _ = prefix;
/// ```
pub const PREFIX_VARIABLE: &str = "STORE_TEST_CHILD_PREFIX";

/// One scenario of a multi-process test: it runs on the store prefix it is given (fresh,
/// and deleted afterwards) and says why it failed.
///
/// ```no_run
/// use store_redis::testing::process::Scenario;
/// fn nothing(_prefix: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenario: Scenario = nothing;
/// # let _ = scenario;
/// ```
pub type Scenario = fn(&str) -> Result<(), String>;

/// The role this process plays when [`ChildProcess::spawn`] started it; `None` in the parent.
///
/// ```no_run
/// match store_redis::testing::process::child_role() {
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
/// let answer = store_redis::testing::process::runtime().block_on(async { 42 });
/// assert_eq!(answer, 42);
/// ```
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("testing: cannot build a tokio runtime: {e}"))
}

/// Runs each scenario on a fresh prefix of the test server named after `label` (its keys
/// are deleted afterwards), printing a line per scenario like libtest's and then
/// `TITLE: N passed, M failed`; exits with status 1 if any failed. Panics, saying how to
/// start one, if there is no server.
///
/// ```no_run
/// use store_redis::testing::process::{run_scenarios, Scenario};
/// fn nothing(_prefix: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenarios: [(&str, Scenario); 1] = [("nothing_fails", nothing)];
/// run_scenarios("two_process", "two-process", &scenarios);
/// ```
pub fn run_scenarios(title: &str, label: &str, scenarios: &[(&str, Scenario)]) {
    let url = super::server_url();
    super::require_server(&url);
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios {
        let prefix = super::fresh_name(label);
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
    println!("\n{title}: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// This test binary re-executed as a child playing `role`, its stdout piped to the parent
/// line by line; killed (SIGKILL) if dropped unfinished.
///
/// ```no_run
/// use std::time::Duration;
/// let child = store_redis::testing::process::ChildProcess::spawn("reader", "test-prefix", &[]);
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
    /// Starts the child `role` on the store `prefix` of the test server, with `args`.
    /// Panics if the test binary cannot be re-executed.
    ///
    /// ```no_run
    /// let child = store_redis::testing::process::ChildProcess::spawn("waiter", "test-prefix", &["7".to_owned()]);
    /// # let _ = child;
    /// ```
    pub fn spawn(role: &str, prefix: &str, args: &[String]) -> Self {
        let program = std::env::current_exe()
            .unwrap_or_else(|e| panic!("testing: the test binary's path: {e}"));
        let mut child = Command::new(&program)
            .args(args)
            .env(ROLE_VARIABLE, role)
            .env(PREFIX_VARIABLE, prefix)
            .env(super::URL_VARIABLE, super::server_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("testing: re-executing {}: {e}", program.display()));
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
    /// # let child = store_redis::testing::process::ChildProcess::spawn("cas", "test-prefix", &[]);
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
    /// # let child = store_redis::testing::process::ChildProcess::spawn("holder", "test-prefix", &[]);
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
    /// # let mut child = store_redis::testing::process::ChildProcess::spawn("holder", "test-prefix", &[]);
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
    /// # let child = store_redis::testing::process::ChildProcess::spawn("cas", "test-prefix", &[]);
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
/// assert!(!store_redis::testing::process::HEARTBEAT.is_empty());
/// ```
pub const HEARTBEAT: &str = "\u{2665} progress";

/// Runs this process as the child `role`: `body` gets the scenario's prefix (from
/// [`PREFIX_VARIABLE`]) and the child's arguments and runs on a [`Progress::runtime`].
/// While the child makes progress (a line said, a call of a
/// [`Watched`](store_core::testkit::Watched) store finished) it says a [`HEARTBEAT`] every
/// tenth of `limit`; when it has made none for `limit`, or `body` fails, the reason is
/// printed to stderr and the process ends with status 1, which the parent's
/// [`ChildProcess::finish`] reports.
///
/// ```no_run
/// use std::time::Duration;
/// use store_redis::testing::process;
/// if let Some(role) = process::child_role() {
///     process::run_child(&role, Duration::from_secs(20), |prefix, _args| async move {
///         process::say(&format!("ready on {prefix}"));
///         Ok(())
///     });
/// }
/// ```
pub fn run_child<F, Fut>(role: &str, limit: Duration, body: F)
where
    F: FnOnce(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let prefix = std::env::var(PREFIX_VARIABLE)
        .unwrap_or_else(|_| panic!("testing: the parent passes the prefix in {PREFIX_VARIABLE}"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let progress = Progress::new(limit);
    watch_child(role, progress.clone());
    let runtime = progress.runtime();
    let outcome = {
        let _entered = progress.enter();
        runtime.block_on(body(prefix, args))
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
/// store_redis::testing::process::say("ready");
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
