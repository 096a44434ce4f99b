//! Servers of a test's own: a free port, a server process killed when dropped, and private
//! Redis and PostgreSQL servers built on them.
//!
//! - [`free_port`] and [`ChildServer`]: what every private server needs, for any program.
//! - [`redis::PrivateRedis`]: a `redis-server` on a random port that keeps nothing on disk.
//! - [`redis::PrivateRedis`] also as a replica of another ([`PrivateRedis::start_replica`](redis::PrivateRedis::start_replica)),
//!   [`redis::RedisCluster`] (3 primaries and 3 replicas) and [`redis::PrivateSentinel`]
//!   (a Sentinel watching a primary).
//! - [`postgres::PrivatePostgres`]: `initdb` and `pg_ctl` in a temporary directory; a
//!   streaming standby of it ([`PrivatePostgres::start_standby`](postgres::PrivatePostgres::start_standby),
//!   `pg_basebackup -R` on a replication slot) that can be promoted.
//! - [`nats::PrivateNats`]: `nats-server` with JetStream, alone or as a 3-node JetStream
//!   cluster ([`nats::NatsCluster`]).
//! - [`mariadb::PrivateMariadb`]: `mariadb-install-db` and `mariadbd`, optionally with the
//!   binary log on.
//!
//! Every server here listens on 127.0.0.1 only, on a port nothing else used a moment before,
//! keeps its files (if any) in a directory of its own, and is stopped when dropped, so that
//! tests never touch the machine's shared servers and leave nothing behind. Readiness is
//! checked over the wire or with the server's own tools, never through a backend crate (a
//! backend's tests use this crate, so this crate cannot use the backend).
//!
//! The calls block while a server starts or stops: call them from a test thread, or from
//! `tokio::task::spawn_blocking` in an async test.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod mariadb;
pub mod nats;
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
    log: Option<PathBuf>,
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
            log: None,
            child: None,
        };
        server.spawn(within, ready);
        server
    }

    /// [`start`](ChildServer::start) with the program's stdout and stderr appended to
    /// `log` (kept across restarts); a failure to start quotes the log's last lines.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let dir = std::env::temp_dir();
    /// let server = store_testkit::ChildServer::start_logged(
    ///     "sleep",
    ///     &["60".to_owned()],
    ///     &dir.join("sleep.log"),
    ///     Duration::from_secs(1),
    ///     || true,
    /// );
    /// # let _ = server;
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](ChildServer::start) does, and if `log` cannot be opened.
    pub fn start_logged(
        program: &str,
        args: &[String],
        log: &Path,
        within: Duration,
        ready: impl FnMut() -> bool,
    ) -> Self {
        let mut server = Self {
            program: program.to_owned(),
            args: args.to_vec(),
            log: Some(log.to_owned()),
            child: None,
        };
        server.spawn(within, ready);
        server
    }

    fn spawn(&mut self, within: Duration, ready: impl FnMut() -> bool) {
        let (stdout, stderr) = match &self.log {
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("testkit: opening {}: {e}", path.display()));
                let copy = file
                    .try_clone()
                    .unwrap_or_else(|e| panic!("testkit: opening {}: {e}", path.display()));
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "testkit: cannot start `{}` ({e}); install it ({}) or put it on PATH",
                    self.program,
                    install_hint(&self.program)
                )
            });
        self.child = Some(child);
        let command = format!("`{} {}`", self.program, self.args.join(" "));
        let outcome = poll_until(within, ready, || {
            match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(format!("exited at start ({status})")),
                _ => None,
            }
        });
        if let Err(why) = outcome {
            let tail = self.log.as_deref().map(log_tail).unwrap_or_default();
            self.kill();
            panic!("testkit: {command} {why}; is its port taken?{tail}");
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

/// Calls `ready` until it returns `true`, at most `within`; `failed` may say that waiting
/// is pointless (the process exited). Polling is the only way to learn that another process
/// is ready: each look is a quick probe, and limits are generous, so a slow start is waited
/// for.
pub(crate) fn poll_until(
    within: Duration,
    mut ready: impl FnMut() -> bool,
    mut failed: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(why) = failed() {
            return Err(why);
        }
        if Instant::now() >= deadline {
            return Err(format!("did not become ready within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of a server's log, for a failure message (empty if there is none).
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n  the end of {}:\n    {tail}", path.display())
    }
}

/// What to install for a server program that is missing.
fn install_hint(program: &str) -> &'static str {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    match name {
        "redis-server" | "redis-cli" => "apt-get install redis-server",
        "nats-server" => {
            "apt-get install nats-server, or a release from https://github.com/nats-io/nats-server"
        }
        "mariadbd" | "mariadb-install-db" | "mysql" | "mariadb" => {
            "apt-get install mariadb-server mariadb-client"
        }
        "postgres" | "initdb" | "pg_ctl" | "pg_basebackup" | "psql" => "apt-get install postgresql",
        _ => "with the system's package manager",
    }
}

/// A temporary directory of a private server, removed when dropped; named after `what`.
pub(crate) fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("store-testkit-{what}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("testkit: creating a temporary directory: {e}"))
}

/// A free port `p` of 127.0.0.1 with `p + offset` free too and below 65536 (Redis Cluster's
/// bus listens on `port + 10000`).
pub(crate) fn free_port_pair(offset: u16) -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        let Some(other) = port.checked_add(offset) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", other)).is_ok() {
            return port;
        }
    }
    panic!("testkit: no free pair of ports {offset} apart on 127.0.0.1");
}
