//! Private Redis servers: [`PrivateRedis`] (alone, or a replica of another), a
//! [`RedisCluster`] of primaries and replicas, and a [`PrivateSentinel`] watching a primary.
//!
//! Each is a `redis-server` on a free port of 127.0.0.1 with a temporary directory of its
//! own (its `--dir`: a replica's full sync, a cluster node's `nodes.conf`, a Sentinel's
//! rewritten configuration, and the server's log, `server.log`), keeping no snapshot or
//! append-only file unless asked; killed, and its directory removed, when dropped.
//! Readiness is checked with plain Redis commands over TCP ([`command`]), so this crate
//! needs no Redis client; the cluster is created with `redis-cli --cluster create`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, free_port_pair, log_tail, poll_until, temp_dir, ChildServer};

/// How long a server may take to start (or a cluster or replica to settle).
const START_LIMIT: Duration = Duration::from_secs(30);

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
    dir: TempDir,
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
    /// not answer within 30 seconds.
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
        Self::launch(free_port(), "redis", extra, |_| true)
    }

    /// Starts a replica of `primary` (`--replicaof`), and waits until its link to the
    /// primary is up and the first full sync is done (`master_link_status:up`).
    ///
    /// ```no_run
    /// use store_testkit::servers::redis::PrivateRedis;
    /// let primary = PrivateRedis::start();
    /// let replica = PrivateRedis::start_replica(&primary);
    /// assert_eq!(replica.role(), "slave");
    /// replica.promote();
    /// assert_eq!(replica.role(), "master");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](PrivateRedis::start) does.
    pub fn start_replica(primary: &PrivateRedis) -> Self {
        let primary_port = primary.port.to_string();
        Self::launch(
            free_port(),
            "redis-replica",
            &["--replicaof", "127.0.0.1", &primary_port],
            replica_is_linked,
        )
    }

    /// Starts `redis-server` on `port` with the defaults, then `extra`; ready when it
    /// answers `PING` and `settled(port)`.
    fn launch(port: u16, what: &str, extra: &[&str], settled: fn(u16) -> bool) -> Self {
        let dir = temp_dir(what);
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.path().to_string_lossy(),
            "--logfile",
            "",
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
        let server = ChildServer::start_logged(
            "redis-server",
            &args,
            &dir.path().join("server.log"),
            START_LIMIT,
            || answers_ping(port) && settled(port),
        );
        Self { port, server, dir }
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

    /// Sends one command and returns its answer as text (see [`command`]).
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// assert_eq!(redis.command(&["SET", "k", "v"]).unwrap(), "OK");
    /// assert_eq!(redis.command(&["GET", "k"]).unwrap(), "v");
    /// ```
    ///
    /// # Errors
    ///
    /// The server's error answer, or why it could not be reached.
    pub fn command(&self, words: &[&str]) -> Result<String, String> {
        command(self.port, words)
    }

    /// The first word of `ROLE`: `master`, `slave` or `sentinel`.
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// assert_eq!(redis.role(), "master");
    /// ```
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub fn role(&self) -> String {
        let role = self
            .command(&["ROLE"])
            .unwrap_or_else(|e| panic!("testkit: ROLE on port {}: {e}", self.port));
        role.lines().next().unwrap_or_default().to_owned()
    }

    /// Makes a replica a primary (`REPLICAOF NO ONE`), as an operator or Sentinel would.
    ///
    /// ```no_run
    /// use store_testkit::servers::redis::PrivateRedis;
    /// let primary = PrivateRedis::start();
    /// let replica = PrivateRedis::start_replica(&primary);
    /// replica.promote();
    /// ```
    ///
    /// # Panics
    ///
    /// If the server does not answer `OK`.
    pub fn promote(&self) {
        let answer = self.command(&["REPLICAOF", "NO", "ONE"]);
        assert!(
            answer.as_deref() == Ok("OK"),
            "testkit: REPLICAOF NO ONE on port {}: {answer:?}",
            self.port
        );
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

    /// Starts the server again on the same port and directory (empty unless it was told to
    /// keep its data; a replica syncs again, a cluster node rejoins from its `nodes.conf`),
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

    /// The server's log so far (its last lines), for failure messages.
    ///
    /// ```no_run
    /// let redis = store_testkit::servers::redis::PrivateRedis::start();
    /// println!("{}", redis.log_tail());
    /// ```
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("server.log"))
    }
}

fn replica_is_linked(port: u16) -> bool {
    command(port, &["INFO", "replication"]).is_ok_and(|info| info.contains("master_link_status:up"))
}

/// A Redis Cluster of private servers (`--cluster-enabled yes`), created with
/// `redis-cli --cluster create`: by default 3 primaries, each with one replica, the 16384
/// slots spread over the primaries. Every node is killed when the cluster is dropped.
///
/// ```no_run
/// use store_testkit::servers::redis::RedisCluster;
/// let cluster = RedisCluster::start();
/// let seeds = cluster.urls(); // any node's URL finds the others
/// assert_eq!(seeds.len(), 6);
/// assert_eq!(cluster.primaries().len(), 3);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<PrivateRedis>,
}

impl RedisCluster {
    /// Starts 3 primaries and 3 replicas and waits until every node reports
    /// `cluster_state:ok` with every slot served and every replica in sync.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start();
    /// # let _ = cluster;
    /// ```
    ///
    /// # Panics
    ///
    /// If a node cannot be started, `redis-cli --cluster create` fails, or the cluster
    /// does not settle within 30 seconds.
    pub fn start() -> Self {
        Self::start_with(3, 1)
    }

    /// A cluster of `primaries` primaries (at least 3, as `redis-cli` requires), each with
    /// `replicas` replicas.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start_with(3, 0);
    /// assert_eq!(cluster.ports().len(), 3);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](RedisCluster::start) does.
    pub fn start_with(primaries: usize, replicas: usize) -> Self {
        let count = primaries * (replicas + 1);
        let nodes: Vec<PrivateRedis> = (0..count)
            .map(|_| {
                // The cluster bus listens on port + 10000.
                let port = free_port_pair(10_000);
                PrivateRedis::launch(
                    port,
                    "redis-cluster",
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                    |_| true,
                )
            })
            .collect();
        let mut create = std::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(std::process::Stdio::null());
        let output = create.output().unwrap_or_else(|e| {
            panic!("testkit: cannot run redis-cli ({e}); install it (apt-get install redis-tools)")
        });
        let cluster = Self { nodes };
        assert!(
            output.status.success(),
            "testkit: {create:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let settled = poll_until(START_LIMIT, || cluster.is_settled(count), || None);
        if let Err(why) = settled {
            let states: Vec<String> = cluster
                .nodes
                .iter()
                .map(|n| format!("{}: {:?}", n.port, n.command(&["CLUSTER", "INFO"])))
                .collect();
            panic!("testkit: the cluster {why}: {states:#?}");
        }
        cluster
    }

    /// Whether every node sees `count` nodes and every slot served, and every replica's
    /// link to its primary is up.
    fn is_settled(&self, count: usize) -> bool {
        self.nodes.iter().all(|node| {
            let Ok(info) = node.command(&["CLUSTER", "INFO"]) else {
                return false;
            };
            info.contains("cluster_state:ok")
                && info.contains("cluster_slots_ok:16384")
                && info.contains(&format!("cluster_known_nodes:{count}\r\n"))
                && (node
                    .command(&["ROLE"])
                    .is_ok_and(|role| role.starts_with("master"))
                    || replica_is_linked(node.port))
        })
    }

    /// Every node's port, in the order they were started.
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start();
    /// assert_eq!(cluster.ports().len(), 6);
    /// ```
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(PrivateRedis::port).collect()
    }

    /// Every node's URL (`redis://127.0.0.1:<port>`, no database: a cluster has only 0).
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start();
    /// assert!(cluster.urls()[0].starts_with("redis://127.0.0.1:"));
    /// ```
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The ports of the nodes that are primaries now (`ROLE` is `master`).
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start();
    /// assert_eq!(cluster.primaries().len(), 3);
    /// ```
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.command(&["ROLE"]).is_ok_and(|r| r.starts_with("master")))
            .map(PrivateRedis::port)
            .collect()
    }

    /// The node at `index` (in the order of [`ports`](RedisCluster::ports)).
    ///
    /// ```no_run
    /// let cluster = store_testkit::servers::redis::RedisCluster::start();
    /// let info = cluster.node(0).command(&["CLUSTER", "INFO"]).unwrap();
    /// assert!(info.contains("cluster_state:ok"));
    /// ```
    pub fn node(&self, index: usize) -> &PrivateRedis {
        &self.nodes[index]
    }

    /// The node at `index`, to kill or restart (a restarted node rejoins from its
    /// `nodes.conf`; a killed primary's replica is promoted after the node timeout, 2 s).
    ///
    /// ```no_run
    /// let mut cluster = store_testkit::servers::redis::RedisCluster::start();
    /// cluster.node_mut(0).kill();
    /// cluster.node_mut(0).restart();
    /// ```
    pub fn node_mut(&mut self, index: usize) -> &mut PrivateRedis {
        &mut self.nodes[index]
    }
}

/// A Redis Sentinel of the test's own (`redis-server <conf> --sentinel`) watching one
/// primary under a master name, with quorum 1, a primary considered down after 1 s
/// without an answer, and a failover timeout of 5 s; killed when dropped.
///
/// ```no_run
/// use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
/// let primary = PrivateRedis::start();
/// let replica = PrivateRedis::start_replica(&primary);
/// let sentinel = PrivateSentinel::start("main", &primary);
/// assert_eq!(sentinel.primary_port(), Some(primary.port()));
/// let url = format!("redis+sentinel://{}/main", sentinel.address());
/// # let _ = (url, replica);
/// ```
#[derive(Debug)]
pub struct PrivateSentinel {
    port: u16,
    name: String,
    server: ChildServer,
    dir: TempDir,
}

impl PrivateSentinel {
    /// Starts a Sentinel watching `primary` as `name`, and waits until it answers and
    /// names `primary` for `name`.
    ///
    /// ```no_run
    /// use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// # let _ = sentinel;
    /// ```
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed or the Sentinel does not answer within 30 s.
    pub fn start(name: &str, primary: &PrivateRedis) -> Self {
        let port = free_port();
        let dir = temp_dir("redis-sentinel");
        // Sentinel rewrites its configuration file (what it learns, the current primary),
        // so the file lives in the Sentinel's own directory.
        let conf = dir.path().join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile \"\"\n\
             sentinel monitor {name} 127.0.0.1 {primary} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n",
            dir = dir.path().display(),
            primary = primary.port,
        );
        std::fs::write(&conf, text)
            .unwrap_or_else(|e| panic!("testkit: writing {}: {e}", conf.display()));
        let args = vec![conf.to_string_lossy().into_owned(), "--sentinel".to_owned()];
        let expected = primary.port;
        let server = ChildServer::start_logged(
            "redis-server",
            &args,
            &dir.path().join("server.log"),
            START_LIMIT,
            || sentinel_names(port, name) == Some(expected),
        );
        Self {
            port,
            name: name.to_owned(),
            server,
            dir,
        }
    }

    /// The Sentinel's port.
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// assert_ne!(sentinel.port(), primary.port());
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for a `redis+sentinel://` URL or a list of sentinels.
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// assert_eq!(sentinel.address(), format!("127.0.0.1:{}", sentinel.port()));
    /// ```
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The master name it watches.
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// assert_eq!(sentinel.name(), "main");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port of the primary it names now (`SENTINEL get-master-addr-by-name`); it
    /// changes after a failover. `None` if the Sentinel does not answer.
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// assert_eq!(sentinel.primary_port(), Some(primary.port()));
    /// ```
    pub fn primary_port(&self) -> Option<u16> {
        sentinel_names(self.port, &self.name)
    }

    /// Sends one command to the Sentinel (see [`command`]).
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// let replicas = sentinel.command(&["SENTINEL", "REPLICAS", "main"]).unwrap();
    /// # let _ = replicas;
    /// ```
    ///
    /// # Errors
    ///
    /// The Sentinel's error answer, or why it could not be reached.
    pub fn command(&self, words: &[&str]) -> Result<String, String> {
        command(self.port, words)
    }

    /// Kills the Sentinel (SIGKILL).
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let mut sentinel = PrivateSentinel::start("main", &primary);
    /// sentinel.kill();
    /// ```
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// The Sentinel's log so far (its last lines), for failure messages.
    ///
    /// ```no_run
    /// # use store_testkit::servers::redis::{PrivateRedis, PrivateSentinel};
    /// # let primary = PrivateRedis::start();
    /// let sentinel = PrivateSentinel::start("main", &primary);
    /// println!("{}", sentinel.log_tail());
    /// ```
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("server.log"))
    }
}

/// The port a Sentinel on `port` names for the master `name`.
fn sentinel_names(port: u16, name: &str) -> Option<u16> {
    let answer = command(port, &["SENTINEL", "get-master-addr-by-name", name]).ok()?;
    answer.lines().nth(1)?.trim().parse().ok()
}

/// Whether a Redis server on 127.0.0.1:`port` answers `PING` with `PONG` (a plain TCP
/// round trip in the Redis protocol; no client library).
///
/// ```no_run
/// // The machine's test server, if it runs.
/// let up = store_testkit::servers::redis::answers_ping(6379);
/// # let _ = up;
/// ```
pub fn answers_ping(port: u16) -> bool {
    command(port, &["PING"]).is_ok_and(|answer| answer == "PONG")
}

/// Sends one command to the Redis server (or Sentinel) on 127.0.0.1:`port` over a new
/// connection and returns its answer as text: a status, integer or bulk string as it is
/// (`(nil)` for none), an array as its elements, one a line (nested arrays flattened).
/// For probes and set-up in tests, not for data.
///
/// ```no_run
/// use store_testkit::servers::redis::{command, PrivateRedis};
/// let redis = PrivateRedis::start();
/// assert_eq!(command(redis.port(), &["PING"]).unwrap(), "PONG");
/// assert!(command(redis.port(), &["NOSUCHCOMMAND"]).is_err());
/// ```
///
/// # Errors
///
/// The server's error answer (`ERR ...`), or why it could not be reached or read (within
/// 2 s for each step).
pub fn command(port: u16, words: &[&str]) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let limit = Duration::from_secs(2);
    let io = |e: std::io::Error| format!("127.0.0.1:{port}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, limit).map_err(io)?;
    stream.set_read_timeout(Some(limit)).map_err(io)?;
    stream.set_write_timeout(Some(limit)).map_err(io)?;
    let mut request = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        request.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        request.extend_from_slice(word.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).map_err(io)?;
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader).map_err(io)?
}

/// Reads one reply in the Redis protocol (RESP2).
fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Result<String, String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{line:?}"));
    let (kind, rest) = (line.get(..1).ok_or_else(bad)?, &line[1..]);
    let length = || rest.parse::<i64>().map_err(|_| bad());
    Ok(match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => match usize::try_from(length()?) {
            Err(_) => Ok("(nil)".to_owned()),
            Ok(n) => {
                let mut bytes = vec![0; n + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(n);
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
        },
        "*" => match usize::try_from(length()?) {
            Err(_) => Ok("(nil)".to_owned()),
            Ok(n) => {
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(match read_reply(reader)? {
                        Ok(item) => item,
                        Err(error) => format!("(error) {error}"),
                    });
                }
                Ok(items.join("\n"))
            }
        },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::read_reply;

    fn read(wire: &str) -> Result<String, String> {
        read_reply(&mut wire.as_bytes()).expect("a whole reply")
    }

    #[test]
    fn replies_read_as_text() {
        assert_eq!(read("+OK\r\n"), Ok("OK".to_owned()));
        assert_eq!(read(":42\r\n"), Ok("42".to_owned()));
        assert_eq!(read("-ERR no\r\n"), Err("ERR no".to_owned()));
        assert_eq!(read("$5\r\na\r\nbc\r\n"), Ok("a\r\nbc".to_owned()));
        assert_eq!(read("$-1\r\n"), Ok("(nil)".to_owned()));
        assert_eq!(
            read("*3\r\n$6\r\nmaster\r\n:7\r\n*1\r\n+x\r\n"),
            Ok("master\n7\nx".to_owned())
        );
        assert!(read_reply(&mut "?\r\n".as_bytes()).is_err());
        assert!(read_reply(&mut "".as_bytes()).is_err());
    }
}
