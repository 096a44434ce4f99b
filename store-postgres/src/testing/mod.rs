//! Helpers for tests on a real PostgreSQL (feature `testkit`): what is typed by this crate
//! (the server to use, fresh tables that are dropped afterwards), built on `store-testkit`,
//! which holds everything that is not: the conformance kit, the fault proxy, the
//! child-process harness, and the private server of restart tests
//! (`store_testkit::servers::postgres::PrivatePostgres`).
//!
//! - [`server_url`]: `STORE_TEST_POSTGRES_URL`, or `postgres://postgres@127.0.0.1:5432/test`.
//! - [`fresh_options`]: options for a table with a random name nobody else uses.
//! - [`TestStore`]: a store on such a table that drops the table (and only it) when the
//!   last handle is gone; a missing server is a failure that says how to start one.
//! - [`run_scenarios`]: `store_testkit::process::run_scenarios` on fresh tables (tests
//!   whose binary re-executes itself as a second process on the same table).

use std::sync::Arc;

use store_core::{Error, Storage};

use store_testkit::process::{self, Scenario};

use crate::{PostgresOptions, PostgresStorage};

/// The environment variable that overrides [`DEFAULT_URL`].
pub const URL_VARIABLE: &str = "STORE_TEST_POSTGRES_URL";

/// The server tests use unless [`URL_VARIABLE`] says otherwise.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How to start the machine's PostgreSQL, for failure messages.
pub const HOW_TO_START: &str =
    "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
     (database `test`, user `postgres`, trust authentication), or point STORE_TEST_POSTGRES_URL \
     at another server";

/// The server tests run against.
///
/// ```
/// assert!(store_postgres::testing::server_url().starts_with("postgres"));
/// ```
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A table name no other test uses: `test_<pid>_<random>`.
///
/// ```
/// let a = store_postgres::testing::fresh_table();
/// assert!(store_postgres::validate_table(&a).is_ok());
/// assert_ne!(a, store_postgres::testing::fresh_table());
/// ```
pub fn fresh_table() -> String {
    format!("test_{}_{:016x}", std::process::id(), rand::random::<u64>())
}

/// How long one round of statements, or making a connection, may take in tests: longer than
/// the defaults, because a test checks what a call answers, and a shared, loaded test
/// machine can stall a commit's flush or a connection's start for seconds (a checkpoint,
/// other processes' fsyncs, a load of 8 on 2 cores was seen). Fault tests set their own.
pub const TEST_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Options for a fresh table on [`server_url`], with [`TEST_OPERATION_TIMEOUT`] for rounds
/// and connections.
///
/// ```
/// let options = store_postgres::testing::fresh_options();
/// assert!(options.table.starts_with("test_"));
/// assert_eq!(options.operation_timeout, store_postgres::testing::TEST_OPERATION_TIMEOUT);
/// ```
pub fn fresh_options() -> PostgresOptions {
    PostgresOptions {
        url: server_url(),
        table: fresh_table(),
        operation_timeout: TEST_OPERATION_TIMEOUT,
        connect_timeout: TEST_OPERATION_TIMEOUT,
        ..PostgresOptions::default()
    }
}

/// `url` with `synchronous_commit` turned off for its sessions: commits return before their
/// WAL is flushed. For suites that measure time with short TTLs (go-micro's ports write a
/// record with a 100 ms TTL and read it back) on a machine whose disk flushes slowly;
/// whether commits survive a crash is tested elsewhere, on the default settings.
///
/// ```
/// let url = store_postgres::testing::without_commit_flush("postgres://u@h/db");
/// assert_eq!(url, "postgres://u@h/db?options=-c%20synchronous_commit%3Doff");
/// let url = store_postgres::testing::without_commit_flush("host=h dbname=db");
/// assert_eq!(url, "host=h dbname=db options='-c synchronous_commit=off'");
/// ```
pub fn without_commit_flush(url: &str) -> String {
    if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-c%20synchronous_commit%3Doff")
    } else {
        format!("{url} options='-c synchronous_commit=off'")
    }
}

/// Connects with `options`, failing the test with a message that says how to start the
/// server when it cannot be reached.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let options = store_postgres::testing::fresh_options();
/// let store = store_postgres::testing::connect(&options).await;
/// # });
/// ```
///
/// # Panics
///
/// On any connect error (that is the point: a missing server fails the test).
pub async fn connect(options: &PostgresOptions) -> PostgresStorage {
    match PostgresStorage::connect_with(options.clone()).await {
        Ok(store) => store,
        Err(error @ Error::Unavailable(_)) => {
            panic!("PostgreSQL is not reachable for this test: {error}. {HOW_TO_START}")
        }
        Err(error) => panic!("connecting to PostgreSQL for this test failed: {error}"),
    }
}

/// A store on a fresh table, dropped when the last clone of this handle is gone.
///
/// Cheap to clone; a second [`PostgresStorage`] on the same table (another "process") is
/// [`TestStore::open_again`].
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// let store = store_postgres::testing::TestStore::fresh().await;
/// store.put(Record::new("k", "v")).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct TestStore {
    store: PostgresStorage,
    table: Arc<TableGuard>,
}

impl TestStore {
    /// A store on a fresh table with default options.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_postgres::testing::TestStore::fresh().await;
    /// assert!(store.options().table.starts_with("test_"));
    /// # });
    /// ```
    pub async fn fresh() -> Self {
        Self::with_options(fresh_options()).await
    }

    /// A store with `options` (give it a fresh table: the table is dropped afterwards).
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_postgres::testing::{fresh_options, TestStore};
    /// let store = TestStore::with_options(store_postgres::PostgresOptions {
    ///     pool_size: 2,
    ///     ..fresh_options()
    /// })
    /// .await;
    /// # });
    /// ```
    pub async fn with_options(options: PostgresOptions) -> Self {
        let store = connect(&options).await;
        Self {
            store,
            table: Arc::new(TableGuard { options }),
        }
    }

    /// Another handle on the same table, with its own actor, pool and listener (what a
    /// second process would have). The table lives until every `TestStore` on it is gone.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_core::{Record, Storage};
    /// let first = store_postgres::testing::TestStore::fresh().await;
    /// let second = first.open_again().await;
    /// first.put(Record::new("k", "v")).await.unwrap();
    /// assert_eq!(&second.get("k").await.unwrap().value[..], b"v");
    /// # });
    /// ```
    pub async fn open_again(&self) -> Self {
        Self {
            store: connect(&self.table.options).await,
            table: self.table.clone(),
        }
    }

    /// The options this store was opened with (`options().table` is the table's name).
    pub fn options(&self) -> &PostgresOptions {
        &self.table.options
    }

    /// The backend handle itself (for calls that are not part of `Storage`).
    pub fn store(&self) -> &PostgresStorage {
        &self.store
    }
}

impl store_core::Layer for TestStore {
    type Inner = PostgresStorage;
    fn inner(&self) -> &PostgresStorage {
        &self.store
    }
}

/// Drops its table when dropped (and only a table this crate created).
pub struct TableGuard {
    options: PostgresOptions,
}

impl TableGuard {
    /// A guard for the table of `options`.
    ///
    /// ```no_run
    /// let options = store_postgres::testing::fresh_options();
    /// let guard = store_postgres::testing::TableGuard::new(options);
    /// drop(guard); // drops the table, if store-postgres created it
    /// ```
    pub fn new(options: PostgresOptions) -> Self {
        Self { options }
    }
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        // Drop may run inside a runtime (at the end of an async test) or outside one: a
        // thread with its own runtime works in both.
        let options = self.options.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(PostgresStorage::drop_table(&options))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                eprintln!("test table {} was not dropped: {error}", self.options.table)
            }
            Err(_) => eprintln!(
                "test table {}: the drop thread panicked",
                self.options.table
            ),
        }
    }
}

/// Waits until `store` answers, for tests that restart servers: `Ok` once a `get` no
/// longer fails with `Unavailable`; the last error when `within` has passed.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = store_postgres::testing::TestStore::fresh().await;
/// store_postgres::testing::until_available(&store, std::time::Duration::from_secs(5)).await.unwrap();
/// # });
/// ```
pub async fn until_available<S: Storage + ?Sized>(
    store: &S,
    within: std::time::Duration,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match store.get("until_available/probe").await {
            Ok(_) | Err(Error::NotFound) => return Ok(()),
            Err(error) if error.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Runs each scenario of a multi-process test (see `store_testkit::process`) on a fresh
/// table of the test server, dropped afterwards; panics, saying how to start it, if the
/// server is not reachable. Prints a line per scenario and `TITLE: N passed, M failed`, and
/// exits with status 1 if any failed.
///
/// ```no_run
/// use store_testkit::process::Scenario;
/// fn nothing(_table: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenarios: [(&str, Scenario); 1] = [("nothing_fails", nothing)];
/// store_postgres::testing::run_scenarios("processes", &scenarios);
/// ```
pub fn run_scenarios(title: &str, scenarios: &[(&str, Scenario)]) {
    require_server();
    process::run_scenarios(title, scenarios, fresh_table, |table| {
        drop(TableGuard::new(PostgresOptions {
            table: table.to_owned(),
            ..fresh_options()
        }))
    });
}

/// Panics, saying how to start it, unless the test server accepts a connection (a store on
/// a fresh table is opened, and the table dropped again).
///
/// ```no_run
/// store_postgres::testing::require_server();
/// ```
pub fn require_server() {
    let outcome = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let store = TestStore::fresh().await;
            store.close().await.map_err(|e| e.to_string())
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("PostgreSQL at {}: {error}. {HOW_TO_START}", server_url()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
