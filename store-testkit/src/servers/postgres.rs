//! [`PrivatePostgres`]: a PostgreSQL server of the test's own, for restart and crash tests.
//!
//! `initdb` into a fresh temporary directory and `pg_ctl start` on a free port of 127.0.0.1, run as
//! the `postgres` user (PostgreSQL refuses to run as root; when the test already runs as
//! `postgres` it runs the tools directly). The binaries are looked up in
//! `STORE_TEST_PG_BIN`, then `/usr/lib/postgresql/<version>/bin` (newest first), then `PATH`.
//! The calls block (they wait for the server): call them from a test thread or through
//! `spawn_blocking`. Dropping the server stops it at once and removes its directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running (or stopped) private server.
///
/// ```no_run
/// use store_testkit::servers::postgres::PrivatePostgres;
/// let server = PrivatePostgres::start().unwrap();
/// let url = server.url(); // connect stores here
/// server.stop(true).unwrap(); // a crash
/// server.start_again().unwrap(); // recovery, same port
/// # let _ = url;
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
        let bin = find_bin()?;
        let as_postgres = running_as_root()?;
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
