//! [`PrivateRedis`]: a `redis-server` of the test's own, for fault and restart tests.
//!
//! Started on a free port of 127.0.0.1 with nothing kept on disk (`--save ""`,
//! `--appendonly no`), killed when dropped. Readiness is a `PING` over a plain TCP
//! connection ([`answers_ping`]), so this crate needs no Redis client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{free_port, ChildServer};

/// How long a server may take to start before the test fails.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A `redis-server` of the test's own on a random port of 127.0.0.1, keeping nothing on
/// disk; killed when dropped.
///
/// ```no_run
/// let mut redis = store_testkit::servers::redis::PrivateRedis::start();
/// let url = redis.url();
/// redis.kill();    // SIGKILL: every key is lost
/// redis.restart(); // same port, empty
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    server: ChildServer,
}

impl PrivateRedis {
    /// Starts the server and waits until it answers `PING`.
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// assert!(store_testkit::servers::redis::answers_ping(redis.port()));
    /// ```
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (the message says how to install it) or does
    /// not answer within 10 seconds.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](PrivateRedis::start) with more arguments for `redis-server` (appended, so
    /// they override the defaults: `--appendonly yes` keeps the data across a restart).
    ///
    /// ```no_run
    /// use store_testkit::servers::redis::PrivateRedis;
    /// let redis = PrivateRedis::start_with(&["--maxmemory", "10mb"]);
    /// # let _ = redis;
    /// ```
    pub fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let server = ChildServer::start("redis-server", &args, START_LIMIT, || answers_ping(port));
        Self { port, server }
    }

    /// The server's port.
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// assert_ne!(redis.port(), 6379);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/0", redis.port()));
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL): every key and loaded script is lost.
    ///
    /// ```no_run
    /// let mut redis = store_testkit::servers::redis::PrivateRedis::start();
    /// redis.kill();
    /// assert!(!store_testkit::servers::redis::answers_ping(redis.port()));
    /// ```
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same port (empty, since it keeps nothing on disk),
    /// and waits until it answers `PING`.
    ///
    /// ```no_run
    /// let mut redis = store_testkit::servers::redis::PrivateRedis::start();
    /// redis.kill();
    /// redis.restart();
    /// ```
    pub fn restart(&mut self) {
        let port = self.port;
        self.server.restart(START_LIMIT, || answers_ping(port));
    }
}

/// Whether a Redis server on 127.0.0.1:`port` answers `PING` with `PONG` within 200 ms (a
/// plain TCP round trip in the Redis protocol; no client library).
///
/// ```no_run
/// // The machine's test server, if it runs.
/// let up = store_testkit::servers::redis::answers_ping(6379);
/// # let _ = up;
/// ```
pub fn answers_ping(port: u16) -> bool {
    command(port, &["PING"]).is_some_and(|answer| answer.starts_with("+PONG"))
}

/// Sends one command to the Redis server on 127.0.0.1:`port` and returns the first piece
/// of its answer (up to 64 KiB read at once, in the wire format, e.g. `+OK\r\n`), or `None`
/// if it could not be reached within 200 ms. For probes and set-up, not for data.
pub(crate) fn command(port: u16, words: &[&str]) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let limit = Duration::from_millis(200);
    let mut stream = TcpStream::connect_timeout(&addr, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream.set_write_timeout(Some(limit)).ok()?;
    let mut request = format!("*{}\r\n", words.len());
    for word in words {
        request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = vec![0u8; 64 * 1024];
    let n = stream.read(&mut answer).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&answer[..n]).into_owned())
}
