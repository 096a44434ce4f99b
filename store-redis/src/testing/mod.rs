//! Helpers for tests against a real Redis (feature `testkit`): what is typed by this
//! crate, built on `store-testkit` (which holds everything that is not: the conformance
//! kit, the fault proxy, the child-process harness, private servers such as
//! `store_testkit::servers::redis::PrivateRedis`).
//!
//! - [`test_store`]: a store on the test server (`STORE_TEST_REDIS_URL`, default
//!   `redis://127.0.0.1:6379/0`) under a fresh random prefix whose keys are deleted when the
//!   store is dropped. A missing server fails the test with the command that starts one;
//!   it is never skipped.
//! - [`delete_prefix`] and [`PrefixGuard`]: remove one prefix's keys (and nothing else).
//! - [`run_scenarios`]: `store_testkit::process::run_scenarios` on fresh prefixes of the
//!   test server (the two-process tests of this crate and store-sync).
//! - [`fresh_name`]: `store_testkit::fresh_name`, re-exported for the many call sites that
//!   name a prefix next to [`server_url`] and [`PrefixGuard`].
//!
//! Tests never run `FLUSHALL` or `FLUSHDB`: they delete only their own prefix's keys.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use store_core::Layer;
use store_testkit::process::{self, Scenario};

pub use store_testkit::fresh_name;

use crate::{RedisOptions, RedisStorage};

/// The environment variable that points tests at a Redis server.
pub const URL_VARIABLE: &str = "STORE_TEST_REDIS_URL";

/// The server tests use when [`URL_VARIABLE`] is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// How to start the server the tests expect (it keeps nothing on disk).
pub const START_COMMAND: &str =
    r#"redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no"#;

/// The test server's URL: [`URL_VARIABLE`] if set, else [`DEFAULT_URL`].
///
/// ```
/// std::env::remove_var(store_redis::testing::URL_VARIABLE);
/// assert_eq!(store_redis::testing::server_url(), "redis://127.0.0.1:6379/0");
/// ```
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Panics, saying how to start one, unless a Redis server answers `PING` at `url`.
///
/// ```no_run
/// store_redis::testing::require_server(&store_redis::testing::server_url());
/// ```
pub fn require_server(url: &str) {
    let answer = redis::Client::open(url).and_then(|client| {
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
        redis::cmd("PING").query::<String>(&mut connection)
    });
    if let Err(error) = answer {
        panic!(
            "these tests need a Redis server at {url} ({error}). Start one with\n    {START_COMMAND}\n\
             or point {URL_VARIABLE} at a running server (its data outside the test prefixes is \
             never touched)."
        );
    }
}

/// Deletes every Redis key of the store `prefix` at `url` (never anything else): the records
/// its key index names, the index, the expiry queue and the version counter. Returns how
/// many keys there were.
///
/// ```no_run
/// let deleted = store_redis::testing::delete_prefix("redis://127.0.0.1:6379/0", "test-x-1-2");
/// # let _ = deleted;
/// ```
pub fn delete_prefix(url: &str, prefix: &str) -> redis::RedisResult<usize> {
    store_core::validate_name(prefix).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Client, "prefix", e.to_string()))
    })?;
    let client = redis::Client::open(url)?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let layout = crate::layout::Layout::new(prefix, 0);
    let mut deleted = 0;
    // The key index names every record, so the store's size bounds the work, whatever else
    // the server holds (SCAN would walk the whole database).
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(&layout.index[..])
            .arg(0)
            .arg(999)
            .query(&mut connection)?;
        if keys.is_empty() {
            break;
        }
        let records: Vec<Vec<u8>> = keys
            .iter()
            .map(|key| [&layout.record_root[..], key].concat())
            .collect();
        deleted += redis::cmd("DEL")
            .arg(&records)
            .query::<usize>(&mut connection)?;
        redis::cmd("ZREM")
            .arg(&layout.index[..])
            .arg(&keys)
            .exec(&mut connection)?;
    }
    deleted += redis::cmd("DEL")
        .arg(&layout.index[..])
        .arg(&layout.expiry[..])
        .arg(&layout.meta[..])
        .query::<usize>(&mut connection)?;
    Ok(deleted)
}

/// Deletes a test prefix's keys when dropped (shared by every handle of one test store).
#[derive(Debug)]
pub struct PrefixGuard {
    url: String,
    prefix: String,
}

impl PrefixGuard {
    /// Guards `prefix` at `url`.
    pub fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// The guarded prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        if let Err(error) = delete_prefix(&self.url, &self.prefix) {
            // Not a panic: Drop may run while a test is already failing.
            eprintln!(
                "testing: could not delete the test prefix {:?} at {}: {error}",
                self.prefix, self.url
            );
        }
    }
}

/// A [`RedisStorage`] under a fresh prefix that is deleted when the last handle of the test
/// store is dropped. A layer that changes nothing, so every conformance case runs on the
/// real store.
#[derive(Clone, Debug)]
pub struct TestStore {
    store: RedisStorage,
    options: RedisOptions,
    guard: Arc<PrefixGuard>,
}

impl TestStore {
    /// The store itself.
    pub fn store(&self) -> &RedisStorage {
        &self.store
    }

    /// The options it was connected with (its prefix included).
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// A second, independent handle on the same prefix (its own actor, connections and
    /// subscription), as another process would open it.
    pub async fn another(&self) -> TestStore {
        let store = RedisStorage::connect_with(self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("testing: second handle on {}: {e}", self.options.url));
        TestStore {
            store,
            options: self.options.clone(),
            guard: self.guard.clone(),
        }
    }
}

#[async_trait]
impl Layer for TestStore {
    type Inner = RedisStorage;
    fn inner(&self) -> &RedisStorage {
        &self.store
    }
}

/// A store on the test server under a fresh prefix named after `label`, with default
/// options otherwise; panics (saying how to start one) if there is no server.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// let store = store_redis::testing::test_store("example").await;
/// store.put(Record::new("k", "v")).await.unwrap();
/// drop(store); // its keys are deleted
/// # });
/// ```
pub async fn test_store(label: &str) -> TestStore {
    test_store_with(label, RedisOptions::default()).await
}

/// [`test_store`] with options (their `url` and `prefix` are replaced).
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let options = store_redis::RedisOptions { page_size: 2, ..Default::default() };
/// let store = store_redis::testing::test_store_with("small-pages", options).await;
/// # let _ = store;
/// # });
/// ```
pub async fn test_store_with(label: &str, options: RedisOptions) -> TestStore {
    let url = server_url();
    let options = RedisOptions {
        url: url.clone(),
        prefix: fresh_name(label),
        ..options
    };
    let guard = Arc::new(PrefixGuard::new(&url, &options.prefix));
    match RedisStorage::connect_with(options.clone()).await {
        Ok(store) => TestStore {
            store,
            options,
            guard,
        },
        Err(error) => {
            require_server(&url);
            panic!("testing: connecting to {url}: {error}");
        }
    }
}

/// Runs each scenario of a multi-process test (see `store_testkit::process`) on a fresh
/// prefix of the test server named after `label`, deleting its keys afterwards; panics,
/// saying how to start one, if there is no server. Prints a line per scenario and
/// `TITLE: N passed, M failed`, and exits with status 1 if any failed.
///
/// ```no_run
/// use store_testkit::process::Scenario;
/// fn nothing(_prefix: &str) -> Result<(), String> {
///     Ok(())
/// }
/// let scenarios: [(&str, Scenario); 1] = [("nothing_fails", nothing)];
/// store_redis::testing::run_scenarios("two_process", "two-process", &scenarios);
/// ```
pub fn run_scenarios(title: &str, label: &str, scenarios: &[(&str, Scenario)]) {
    let url = server_url();
    require_server(&url);
    process::run_scenarios(
        title,
        scenarios,
        || fresh_name(label),
        |prefix| drop(PrefixGuard::new(&url, prefix)),
    );
}
