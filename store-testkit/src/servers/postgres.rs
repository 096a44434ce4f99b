//! [`PrivatePostgres`]: a PostgreSQL server of the test's own, for restart and crash tests,
//! and a streaming standby of it that can be promoted, for failover tests.
//!
//! `initdb` into a fresh temporary directory and `pg_ctl start` on a free port of 127.0.0.1,
//! run as the `postgres` user (PostgreSQL refuses to run as root; when the test already runs
//! as `postgres` it runs the tools directly). A standby is `pg_basebackup -R` of the primary
//! on a replication slot, started on a port and directory of its own. The binaries are looked up in
//! `STORE_TEST_PG_BIN`, then `/usr/lib/postgresql/<version>/bin` (newest first), then `PATH`.
//! The calls block (they wait for the server): call them from a test thread or through
//! `spawn_blocking`. Dropping the server stops it at once and removes its directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running (or stopped) private server: a primary, or a standby of one.
///
/// ```no_run
/// use store_testkit::servers::postgres::PrivatePostgres;
/// let server = PrivatePostgres::start().unwrap();
/// let url = server.url(); // connect stores here
/// server.stop(true).unwrap(); // a crash
/// server.start_again().unwrap(); // recovery, same port
/// # let _ = url;
/// ```
///
/// A primary and a streaming standby, promoted:
///
/// ```no_run
/// use store_testkit::servers::postgres::PrivatePostgres;
/// let primary = PrivatePostgres::start()?;
/// let standby = primary.start_standby("standby1")?;
/// primary.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1)")?;
/// standby.wait_for_replay(&primary)?;
/// assert_eq!(standby.psql("SELECT n FROM t")?, "1");
/// standby.promote()?; // now a primary of its own, on a new timeline
/// assert!(!standby.is_in_recovery()?);
/// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
/// ```
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Why a private server could not be made or driven; says what to install or check.
///
/// ```
/// let error = store_testkit::servers::postgres::ServerError("initdb not found".into());
/// assert_eq!(error.to_string(), "initdb not found");
/// ```
#[derive(Debug)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

type Outcome<T> = Result<T, ServerError>;

/// How long a standby may take to stream or to catch up.
const STANDBY_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl PrivatePostgres {
    /// Makes a cluster in a fresh directory and starts it on a free port.
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// # let _ = server;
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the PostgreSQL tools are not installed (the error says how to install them) or
    /// fail; their output is in the error.
    pub fn start() -> Outcome<Self> {
        let server = Self::fresh(find_bin()?, running_as_root()?)?;
        let data = server.data_dir();
        server.tool(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        server.start_again()?;
        Ok(server)
    }

    /// A fresh directory (owned by `postgres` when we are root) and a free port; no server.
    fn fresh(bin: PathBuf, as_postgres: bool) -> Outcome<Self> {
        let dir = std::env::temp_dir().join(format!(
            "store-testkit-postgres-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServerError(format!("creating {}: {e}", dir.display())))?;
        let server = Self {
            bin,
            dir,
            port: super::free_port(),
            as_postgres,
        };
        if server.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir))?;
        }
        Ok(server)
    }

    /// Starts a streaming standby of this server: `pg_basebackup -R` (which writes
    /// `standby.signal` and the connection to this server) creating the physical
    /// replication slot `slot` here, then the standby on a port and directory of its own.
    /// Returns once the standby is in recovery and streams from the slot.
    ///
    /// ```no_run
    /// use store_testkit::servers::postgres::PrivatePostgres;
    /// let primary = PrivatePostgres::start()?;
    /// let standby = primary.start_standby("standby1")?;
    /// assert!(standby.is_in_recovery()?);
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When a tool fails (the slot exists already, say), or the standby does not stream
    /// within 60 s.
    pub fn start_standby(&self, slot: &str) -> Outcome<Self> {
        let standby = Self::fresh(self.bin.clone(), self.as_postgres)?;
        standby.tool(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby.data_dir().to_string_lossy(),
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                slot,
                "-c",
                "fast",
                "--no-sync",
            ],
        )?;
        standby.start_again()?;
        let query = format!(
            "SELECT active FROM pg_replication_slots WHERE slot_name = '{}'",
            slot.replace('\'', "''")
        );
        let streaming = super::poll_until(
            STANDBY_LIMIT,
            || {
                standby.is_in_recovery().unwrap_or(false)
                    && self.psql(&query).is_ok_and(|active| active == "t")
            },
            || None,
        );
        streaming.map_err(|why| {
            ServerError(format!(
                "the standby on port {} {why}: it does not stream from slot {slot}{}",
                standby.port,
                super::log_tail(&standby.dir.join("server.log"))
            ))
        })?;
        Ok(standby)
    }

    /// Promotes a standby to a primary (`pg_ctl promote`, waiting until it accepts
    /// writes). The old primary goes on as it was: a test that wants one primary stops it.
    ///
    /// ```no_run
    /// use store_testkit::servers::postgres::PrivatePostgres;
    /// let primary = PrivatePostgres::start()?;
    /// let standby = primary.start_standby("standby1")?;
    /// primary.stop(true)?; // the primary is lost
    /// standby.promote()?;
    /// standby.psql("CREATE TABLE after_failover (n int)")?;
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `pg_ctl promote` fails (this server is not a standby, say).
    pub fn promote(&self) -> Outcome<()> {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().to_string_lossy(),
                "-w",
                "-t",
                "60",
                "promote",
            ],
        )
        .map(drop)
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// assert!(!server.is_in_recovery()?);
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the server does not answer.
    pub fn is_in_recovery(&self) -> Outcome<bool> {
        Ok(self.psql("SELECT pg_is_in_recovery()")? == "t")
    }

    /// Waits until this standby has replayed everything `primary` had written when this was
    /// called (at most 60 s).
    ///
    /// ```no_run
    /// use store_testkit::servers::postgres::PrivatePostgres;
    /// let primary = PrivatePostgres::start()?;
    /// let standby = primary.start_standby("standby1")?;
    /// primary.psql("CREATE TABLE t (n int)")?;
    /// standby.wait_for_replay(&primary)?;
    /// standby.psql("SELECT count(*) FROM t")?;
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When either server does not answer, or the standby does not catch up in time.
    pub fn wait_for_replay(&self, primary: &PrivatePostgres) -> Outcome<()> {
        let target = primary.psql("SELECT pg_current_wal_lsn()")?;
        let query = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        super::poll_until(
            STANDBY_LIMIT,
            || self.psql(&query).is_ok_and(|caught_up| caught_up == "t"),
            || None,
        )
        .map_err(|why| {
            ServerError(format!(
                "the standby on port {} {why}: it has not replayed up to {target}",
                self.port
            ))
        })
    }

    /// Runs `sql` with `psql` in the `postgres` database and returns what it printed:
    /// unaligned, without headers, one row a line, columns separated by `|`.
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// assert_eq!(server.psql("SELECT 1 + 1")?, "2");
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `psql` fails; its output is in the error.
    pub fn psql(&self, sql: &str) -> Outcome<String> {
        let output = run(Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-q"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql]))?;
        Ok(output.trim_end().to_owned())
    }

    /// The URL of the server's `postgres` database (user `postgres`, trust authentication).
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// assert!(server.url().starts_with("postgres://postgres@127.0.0.1:"));
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on (kept across restarts).
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// assert_ne!(server.port(), 5432);
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the stopped server again on the same port and data.
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// server.stop(false)?;
    /// server.start_again()?;
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    pub fn start_again(&self) -> Outcome<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on",
            self.port,
            self.dir.display()
        );
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().to_string_lossy(),
                "-o",
                &options,
                "-l",
                &self.dir.join("server.log").to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map(drop)
    }

    /// Stops the server: `fast` (clean shutdown, clients disconnected) or, with
    /// `crash = true`, `immediate` (like a power cut for clients: recovery on next start).
    ///
    /// ```no_run
    /// let server = store_testkit::servers::postgres::PrivatePostgres::start()?;
    /// server.stop(true)?; // a crash
    /// server.start_again()?; // recovery
    /// # Ok::<(), store_testkit::servers::postgres::ServerError>(())
    /// ```
    pub fn stop(&self, crash: bool) -> Outcome<()> {
        let mode = if crash { "immediate" } else { "fast" };
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().to_string_lossy(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        )
        .map(drop)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str, args: &[&str]) -> Outcome<String> {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> Outcome<String> {
    let output = command
        .output()
        .map_err(|e| ServerError(format!("running {command:?}: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(ServerError(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// Whether the tools must run through `runuser -u postgres` (we are root).
fn running_as_root() -> Outcome<bool> {
    let uid = run(Command::new("id").arg("-u"))?;
    Ok(uid.trim() == "0")
}

fn find_bin() -> Outcome<PathBuf> {
    if let Ok(dir) = std::env::var("STORE_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let initdb = run(Command::new("sh").args(["-c", "command -v initdb"])).map_err(|_| {
        ServerError(
            "initdb not found (looked in STORE_TEST_PG_BIN, /usr/lib/postgresql/*/bin and \
                 PATH): install the PostgreSQL server package (apt-get install postgresql)"
                .into(),
        )
    })?;
    Ok(PathBuf::from(initdb.trim())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}
