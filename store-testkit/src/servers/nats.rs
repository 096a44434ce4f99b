//! Private NATS servers with JetStream: [`PrivateNats`] alone, or a [`NatsCluster`] of
//! three JetStream servers routed to each other.
//!
//! Each is a `nats-server -js` on a free port of 127.0.0.1 (the program is taken from
//! `STORE_TEST_NATS_SERVER` if set, else `nats-server` on `PATH`), storing its streams in a
//! temporary directory of its own, its log in `server.log` there; killed, and the
//! directory removed, when dropped. Readiness is checked in the NATS protocol over TCP
//! ([`request`]): a server is ready when JetStream answers `$JS.API.INFO` without an error
//! (in a cluster, once the servers have elected a JetStream meta leader).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, log_tail, poll_until, temp_dir, ChildServer};

/// How long a server (or a cluster's JetStream) may take to be ready.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The environment variable naming the `nats-server` program to run.
///
/// ```
/// assert_eq!(store_testkit::servers::nats::PROGRAM_VARIABLE, "STORE_TEST_NATS_SERVER");
/// ```
pub const PROGRAM_VARIABLE: &str = "STORE_TEST_NATS_SERVER";

fn program() -> String {
    std::env::var(PROGRAM_VARIABLE).unwrap_or_else(|_| "nats-server".to_owned())
}

/// A `nats-server` with JetStream of the test's own on a random port of 127.0.0.1; killed
/// when dropped.
///
/// ```no_run
/// use store_testkit::servers::nats::PrivateNats;
/// let mut nats = PrivateNats::start();
/// let url = nats.url(); // nats://127.0.0.1:<port>
/// nats.kill();
/// nats.restart(); // same port and store directory: streams and buckets are kept
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct PrivateNats {
    port: u16,
    server: ChildServer,
    dir: TempDir,
}

impl PrivateNats {
    /// Starts one server with JetStream and waits until JetStream answers.
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// assert!(nats.jetstream_answers());
    /// ```
    ///
    /// # Panics
    ///
    /// If `nats-server` is not installed (the message says how to install it) or
    /// JetStream does not answer within 30 s.
    pub fn start() -> Self {
        let port = free_port();
        let node = Self::launch(port, "nats", &[]);
        node.wait_for_jetstream();
        node
    }

    /// Starts `nats-server -js` on `port` with `extra` arguments; ready when it greets a
    /// client (JetStream may not be ready yet).
    fn launch(port: u16, what: &str, extra: &[String]) -> Self {
        let dir = temp_dir(what);
        let mut args: Vec<String> = [
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            &dir.path().join("jetstream").to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().cloned());
        let server = ChildServer::start_logged(
            &program(),
            &args,
            &dir.path().join("server.log"),
            START_LIMIT,
            || greets(port),
        );
        Self { port, server, dir }
    }

    /// Waits until JetStream answers (at most 30 s).
    fn wait_for_jetstream(&self) {
        if let Err(why) = poll_until(START_LIMIT, || self.jetstream_answers(), || None) {
            panic!(
                "testkit: JetStream on port {} {why}: $JS.API.INFO answers {:?}{}",
                self.port,
                self.request("$JS.API.INFO", ""),
                self.log_tail()
            );
        }
    }

    /// The server's client port.
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// assert_ne!(nats.port(), 4222);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));
    /// ```
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether JetStream answers `$JS.API.INFO` (the account's JetStream usage) without an
    /// error.
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// assert!(nats.jetstream_answers());
    /// ```
    pub fn jetstream_answers(&self) -> bool {
        self.request("$JS.API.INFO", "").is_ok_and(|answer| {
            answer.contains("account_info_response") && !answer.contains("\"error\"")
        })
    }

    /// Sends a request to `subject` and returns the reply's payload (see [`request`]).
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// let streams = nats.request("$JS.API.STREAM.NAMES", "").unwrap();
    /// assert!(streams.contains("stream_names_response"));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`request`].
    pub fn request(&self, subject: &str, payload: &str) -> Result<String, String> {
        request(self.port, subject, payload)
    }

    /// Kills the server (SIGKILL).
    ///
    /// ```no_run
    /// let mut nats = store_testkit::servers::nats::PrivateNats::start();
    /// nats.kill();
    /// assert!(!nats.jetstream_answers());
    /// ```
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again with the same port, name and store directory, and waits
    /// until it greets clients (in a cluster, JetStream answers once a quorum is up).
    ///
    /// ```no_run
    /// let mut nats = store_testkit::servers::nats::PrivateNats::start();
    /// nats.kill();
    /// nats.restart();
    /// ```
    pub fn restart(&mut self) {
        let port = self.port;
        self.server.restart(START_LIMIT, || greets(port));
    }

    /// The server's log so far (its last lines), for failure messages.
    ///
    /// ```no_run
    /// let nats = store_testkit::servers::nats::PrivateNats::start();
    /// println!("{}", nats.log_tail());
    /// ```
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("server.log"))
    }
}

/// A JetStream cluster of private servers (`--cluster_name`, `--cluster`, `--routes` to
/// every other node, a server name each), by default three: JetStream's replicated streams
/// (`R3`) need three. Every node is killed when the cluster is dropped.
///
/// ```no_run
/// use store_testkit::servers::nats::NatsCluster;
/// let cluster = NatsCluster::start();
/// let seeds = cluster.urls().join(","); // nats://127.0.0.1:<port>,...
/// assert!(cluster.node(2).jetstream_answers());
/// # let _ = seeds;
/// ```
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<PrivateNats>,
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream answers on every one.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::nats::NatsCluster::start();
    /// assert_eq!(cluster.urls().len(), 3);
    /// ```
    ///
    /// # Panics
    ///
    /// If a node cannot be started or JetStream does not answer within 30 s.
    pub fn start() -> Self {
        Self::start_with(3)
    }

    /// A cluster of `count` nodes (at least 3 for a JetStream quorum that survives a lost
    /// node).
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::nats::NatsCluster::start_with(5);
    /// assert_eq!(cluster.urls().len(), 5);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](NatsCluster::start) does.
    pub fn start_with(count: usize) -> Self {
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let cluster_name = format!("testkit-{}", ports[0].1);
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(index, &(port, route_port))| {
                let routes: Vec<String> = ports
                    .iter()
                    .filter(|&&(_, other)| other != route_port)
                    .map(|(_, other)| format!("nats://127.0.0.1:{other}"))
                    .collect();
                let extra = [
                    "-n".to_owned(),
                    format!("n{index}-{port}"),
                    "--cluster_name".to_owned(),
                    cluster_name.clone(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route_port}"),
                    "--routes".to_owned(),
                    routes.join(","),
                ];
                PrivateNats::launch(port, "nats-cluster", &extra)
            })
            .collect();
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            node.wait_for_jetstream();
        }
        cluster
    }

    /// Every node's URL (`nats://127.0.0.1:<port>`), in the order they were started.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::nats::NatsCluster::start();
    /// assert!(cluster.urls()[0].starts_with("nats://127.0.0.1:"));
    /// ```
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(PrivateNats::url).collect()
    }

    /// The node at `index`.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::nats::NatsCluster::start();
    /// assert!(cluster.node(0).jetstream_answers());
    /// ```
    pub fn node(&self, index: usize) -> &PrivateNats {
        &self.nodes[index]
    }

    /// The node at `index`, to kill or restart.
    ///
    /// ```no_run
    /// let mut cluster = store_testkit::servers::nats::NatsCluster::start();
    /// cluster.node_mut(0).kill();
    /// cluster.node_mut(0).restart();
    /// ```
    pub fn node_mut(&mut self, index: usize) -> &mut PrivateNats {
        &mut self.nodes[index]
    }
}

/// Whether a NATS server on 127.0.0.1:`port` greets a new connection with `INFO`.
fn greets(port: u16) -> bool {
    connect(port).is_ok()
}

/// Connects and reads the server's `INFO` greeting.
fn connect(port: u16) -> std::io::Result<(BufReader<TcpStream>, TcpStream)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let limit = Duration::from_secs(2);
    let stream = TcpStream::connect_timeout(&addr, limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut greeting = String::new();
    reader.read_line(&mut greeting)?;
    if greeting.starts_with("INFO ") {
        Ok((reader, stream))
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a NATS greeting: {greeting:?}"),
        ))
    }
}

/// Sends one request to `subject` on the NATS server on 127.0.0.1:`port` over a new
/// connection (the NATS text protocol: `CONNECT`, `SUB` to an inbox, `PUB` with that
/// reply subject) and returns the first reply's payload. For probes and set-up in tests
/// (JetStream's API is requests with JSON payloads), not for data.
///
/// ```no_run
/// use store_testkit::servers::nats::{request, PrivateNats};
/// let nats = PrivateNats::start();
/// let info = request(nats.port(), "$JS.API.INFO", "").unwrap();
/// assert!(info.contains("account_info_response"));
/// ```
///
/// # Errors
///
/// `no responders` when nobody listens on `subject`, a protocol error the server sent, or
/// why it could not be reached or read (within 2 s for each step).
pub fn request(port: u16, subject: &str, payload: &str) -> Result<String, String> {
    let io = |e: std::io::Error| format!("127.0.0.1:{port}: {e}");
    let (mut reader, mut stream) = connect(port).map_err(io)?;
    let inbox = format!("_INBOX.testkit.{:016x}", rand::random::<u64>());
    let message = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}}\r\n\
         SUB {inbox} 1\r\nPUB {subject} {inbox} {}\r\n{payload}\r\n",
        payload.len()
    );
    stream.write_all(message.as_bytes()).map_err(io)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err(format!(
                "127.0.0.1:{port}: the server closed the connection"
            ));
        }
        let line = line.trim_end();
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "PING" => stream.write_all(b"PONG\r\n").map_err(io)?,
            "PONG" | "+OK" | "INFO" => {}
            "-ERR" => return Err(line.to_owned()),
            // MSG <subject> <sid> [reply] <bytes>
            "MSG" => {
                let size = last_number(&words).ok_or_else(|| format!("bad line {line:?}"))?;
                let body = read_body(&mut reader, size).map_err(io)?;
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            // HMSG <subject> <sid> [reply] <header bytes> <total bytes>: a status (503 is
            // "no responders") or a reply with headers.
            "HMSG" => {
                let total = last_number(&words).ok_or_else(|| format!("bad line {line:?}"))?;
                let headers = words
                    .get(words.len().wrapping_sub(2))
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| format!("bad line {line:?}"))?;
                let body = read_body(&mut reader, total).map_err(io)?;
                let (head, rest) = body.split_at(headers.min(body.len()));
                if head.starts_with(b"NATS/1.0 503") {
                    return Err(format!("no responders on {subject}"));
                }
                return Ok(String::from_utf8_lossy(rest).into_owned());
            }
            _ => return Err(format!("unexpected {line:?}")),
        }
    }
}

fn last_number(words: &[&str]) -> Option<usize> {
    words.last()?.parse().ok()
}

/// Reads a message body of `size` bytes and its line end.
fn read_body(reader: &mut impl Read, size: usize) -> std::io::Result<Vec<u8>> {
    let mut body = vec![0; size + 2];
    reader.read_exact(&mut body)?;
    body.truncate(size);
    Ok(body)
}
