//! [`PrivateMariadb`]: a MariaDB server of the test's own.
//!
//! `mariadb-install-db` into a temporary directory (user `root` without a password over
//! TCP, no test database), then `mariadbd` on a free port of 127.0.0.1 with its socket,
//! pid file, temporary files and data in that directory and its log in `server.log` there, optionally with
//! the binary log on (`--log-bin --binlog-format=ROW --server-id=1`). Both run with
//! `--no-defaults`, so the machine's MariaDB configuration is never read, and as `root`
//! when the test runs as root (`--user=root`). A database `test` is created. Readiness and
//! queries go through the `mysql` client. Killed, and the directory removed, when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, log_tail, temp_dir, ChildServer};

/// How long the server may take to start (InnoDB's recovery after a kill included).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A `mariadbd` of the test's own on a random port of 127.0.0.1; killed when dropped.
///
/// ```no_run
/// use store_testkit::servers::mariadb::PrivateMariadb;
/// let mut db = PrivateMariadb::start();
/// let url = db.url(); // mysql://root@127.0.0.1:<port>/test
/// db.query("CREATE TABLE test.t (n INT)").unwrap();
/// db.kill();    // SIGKILL
/// db.restart(); // same port and data: committed rows are kept
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct PrivateMariadb {
    port: u16,
    binlog: bool,
    server: ChildServer,
    dir: TempDir,
}

impl PrivateMariadb {
    /// Installs a fresh data directory and starts the server (binary log off), then waits
    /// until it answers a query and creates the database `test`.
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// assert_eq!(db.query("SELECT 1 + 1").unwrap(), "2");
    /// ```
    ///
    /// # Panics
    ///
    /// If MariaDB's server or client is not installed (the message says how to install
    /// them), or the server does not answer within 60 s.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// [`start`](PrivateMariadb::start) with the binary log on, in row format, server id 1
    /// (what change-data capture and replicas read).
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start_with_binlog();
    /// assert_eq!(db.query("SELECT @@log_bin, @@binlog_format").unwrap(), "1\tROW");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](PrivateMariadb::start) does.
    pub fn start_with_binlog() -> Self {
        Self::launch(true)
    }

    fn launch(binlog: bool) -> Self {
        // Readiness is asked through the client: without it the server would look dead.
        if let Err(e) = Command::new("mysql").arg("--version").output() {
            panic!(
                "testkit: cannot run the mysql client ({e}); install it (apt-get install \
                 mariadb-client)"
            );
        }
        let dir = temp_dir("mariadb");
        let data = dir.path().join("data");
        // Temporary tables in a directory of the server's own: in the shared /tmp,
        // concurrent bootstraps were seen to lose each other's (`Unknown table
        // 'mysql.tmp_user_sys'`).
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp)
            .unwrap_or_else(|e| panic!("testkit: creating {}: {e}", tmp.display()));
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(user_arg());
        let output = install.output().unwrap_or_else(|e| {
            panic!(
                "testkit: cannot run mariadb-install-db ({e}); install it (apt-get install \
                 mariadb-server mariadb-client)"
            )
        });
        assert!(
            output.status.success(),
            "testkit: {install:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let mut args = vec![
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            format!("--tmpdir={}", tmp.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--socket={}", dir.path().join("mysqld.sock").display()),
            format!("--pid-file={}", dir.path().join("mysqld.pid").display()),
            "--skip-name-resolve".to_owned(),
        ];
        args.extend(user_arg());
        if binlog {
            args.extend([
                format!("--log-bin={}", data.join("binlog").display()),
                "--binlog-format=ROW".to_owned(),
                "--server-id=1".to_owned(),
            ]);
        }
        let server = ChildServer::start_logged(
            "mariadbd",
            &args,
            &dir.path().join("server.log"),
            START_LIMIT,
            || query(port, "SELECT 1").is_ok(),
        );
        let db = Self {
            port,
            binlog,
            server,
            dir,
        };
        if let Err(error) = db.query("CREATE DATABASE IF NOT EXISTS test") {
            panic!(
                "testkit: creating the database test: {error}{}",
                db.log_tail()
            );
        }
        db
    }

    /// The server's port.
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// assert_ne!(db.port(), 3306);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:<port>/test`.
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// assert_eq!(db.url(), format!("mysql://root@127.0.0.1:{}/test", db.port()));
    /// ```
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    /// Whether the binary log is on (the server was started with
    /// [`start_with_binlog`](PrivateMariadb::start_with_binlog)).
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// assert!(!db.binlog());
    /// ```
    pub fn binlog(&self) -> bool {
        self.binlog
    }

    /// Runs `sql` with the `mysql` client (see [`query`]).
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// db.query("CREATE TABLE test.t (n INT); INSERT INTO test.t VALUES (7)").unwrap();
    /// assert_eq!(db.query("SELECT n FROM test.t").unwrap(), "7");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`query`].
    pub fn query(&self, sql: &str) -> Result<String, String> {
        query(self.port, sql)
    }

    /// Kills the server (SIGKILL: InnoDB recovers on the next start).
    ///
    /// ```no_run
    /// let mut db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// db.kill();
    /// assert!(db.query("SELECT 1").is_err());
    /// ```
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same port and data, and waits until it answers.
    ///
    /// ```no_run
    /// let mut db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// db.kill();
    /// db.restart();
    /// ```
    pub fn restart(&mut self) {
        let port = self.port;
        self.server
            .restart(START_LIMIT, || query(port, "SELECT 1").is_ok());
    }

    /// The server's log so far (its last lines), for failure messages.
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// println!("{}", db.log_tail());
    /// ```
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("server.log"))
    }

    /// The server's data directory.
    ///
    /// ```no_run
    /// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
    /// assert!(db.data_dir().join("mysql").is_dir());
    /// ```
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// `--user=root` when this process is root (MariaDB refuses root unless told), else nothing.
fn user_arg() -> Vec<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if root {
        vec!["--user=root".to_owned()]
    } else {
        Vec::new()
    }
}

/// Runs `sql` (one or more statements) as `root` on the MariaDB or MySQL server on
/// 127.0.0.1:`port` with the `mysql` client, and returns what it printed: one row a line,
/// columns separated by tabs, no column names.
///
/// ```no_run
/// let db = store_testkit::servers::mariadb::PrivateMariadb::start();
/// let version = store_testkit::servers::mariadb::query(db.port(), "SELECT VERSION()").unwrap();
/// assert!(version.contains("MariaDB"));
/// ```
///
/// # Errors
///
/// What the client printed when it failed (the server's error, or why it could not
/// connect, within 2 s), or why it could not be run.
pub fn query(port: u16, sql: &str) -> Result<String, String> {
    let output = Command::new("mysql")
        .arg("--no-defaults")
        .args(["--protocol=TCP", "-h", "127.0.0.1", "-P", &port.to_string()])
        .args(["-u", "root", "--connect-timeout=2", "-N", "-B", "-e", sql])
        .output()
        .map_err(|e| {
            format!(
                "cannot run the mysql client ({e}); install it (apt-get install mariadb-client)"
            )
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned())
    }
}
