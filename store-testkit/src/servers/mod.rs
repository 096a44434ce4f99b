//! Servers of a test's own: a free port, a server process killed when dropped, and private
//! Redis and PostgreSQL servers built on them.
//!
//! - [`free_port`] and [`ChildServer`]: what every private server needs, for any program.
//! - [`redis::PrivateRedis`]: a `redis-server` on a random port that keeps nothing on disk.
//! - [`postgres::PrivatePostgres`]: `initdb` and `pg_ctl` in a temporary directory.
//!
//! Every server here listens on 127.0.0.1 only, on a port nothing else used a moment before,
//! keeps its files (if any) in a directory of its own, and is stopped when dropped, so that
//! tests never touch the machine's shared servers and leave nothing behind. Readiness is
//! checked over the wire or with the server's own tools, never through a backend crate (a
//! backend's tests use this crate, so this crate cannot use the backend).
//!
//! The calls block while a server starts or stops: call them from a test thread, or from
//! `tokio::task::spawn_blocking` in an async test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod postgres;
pub mod redis;

/// A TCP port on 127.0.0.1 that nothing listens on right now.
///
/// The port is only free when this returns; a server started on it a moment later almost
/// always gets it, and [`ChildServer::start`] reports the rare loser clearly.
///
/// ```
/// let port = store_testkit::free_port();
/// assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
/// ```
///
/// # Panics
///
/// If no port of 127.0.0.1 can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("testkit: no free TCP port on 127.0.0.1: {e}"))
}

/// A server process started by a test; killed (SIGKILL) when dropped.
///
/// ```no_run
/// use std::time::Duration;
/// use store_testkit::{free_port, ChildServer};
///
/// let port = free_port();
/// let args = vec!["--port".to_owned(), port.to_string(), "--save".to_owned(), String::new()];
/// let mut server = ChildServer::start("redis-server", &args, Duration::from_secs(10), || {
///     std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
/// });
/// assert!(server.is_running());
/// server.kill();
/// ```
#[derive(Debug)]
pub struct ChildServer {
    program: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts `program args...`, then calls `ready` until it returns `true` (at most
    /// `within`, sleeping briefly between calls).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let server = store_testkit::ChildServer::start("sleep", &["60".to_owned()], Duration::from_secs(1), || true);
    /// # let _ = server;
    /// ```
    ///
    /// # Panics
    ///
    /// With what to install if the program cannot be started; if it exits before it is
    /// ready (its port was taken, say) or is not ready within `within`.
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
                    "testkit: cannot start `{}` ({e}); install it (for Redis: apt-get install \
                     redis-server) or put it on PATH",
                    self.program
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + within;
        // Polling is the only way to learn that another process is ready; each look is a
        // quick probe, and the limit is generous, so a slow start is waited for.
        while !ready() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "testkit: `{} {}` exited at start ({status}); is its port taken?",
                    self.program,
                    self.args.join(" ")
                );
            }
            assert!(
                Instant::now() < deadline,
                "testkit: `{} {}` did not become ready within {within:?}",
                self.program,
                self.args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown, nothing saved) and reaps it.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let mut server = store_testkit::ChildServer::start("sleep", &["60".to_owned()], Duration::from_secs(1), || true);
    /// server.kill();
    /// assert!(!server.is_running());
    /// ```
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again (after [`kill`](ChildServer::kill); a running process
    /// is killed first), and waits for `ready` as [`start`](ChildServer::start) does.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let mut server = store_testkit::ChildServer::start("sleep", &["60".to_owned()], Duration::from_secs(1), || true);
    /// server.restart(Duration::from_secs(1), || true);
    /// ```
    pub fn restart(&mut self, within: Duration, ready: impl FnMut() -> bool) {
        self.kill();
        self.spawn(within, ready);
    }

    /// Whether the process is running.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let mut server = store_testkit::ChildServer::start("sleep", &["60".to_owned()], Duration::from_secs(1), || true);
    /// assert!(server.is_running());
    /// ```
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}
