//! [`PostgresStorage`]: the handle callers hold, and `connect`.
//!
//! The handle checks what it can alone (keys, patterns, a closed store), then sends a
//! command to the actor and waits for the answer. Waits and listings run in the caller's
//! task: a waiter registers with the shared [`Watchers`], then reads through the actor
//! (see [`store_core::watch`]); a listing fetches one page per command and matches the
//! pattern in the caller's task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use store_core::net::mailbox::{self, Caller};
use store_core::watch::{Current, Watchers};
use store_core::{Error, KeyStream, Pattern, Record, Result, Stats, Storage};

use crate::actor::Actor;
use crate::codec;
use crate::command::{Op, ReadOp, Reply, WriteOp};
use crate::context::{Context, Counters};
use crate::listener::Notifications;
use crate::names::{self, Names};
use crate::options::PostgresOptions;
use crate::schema;
use crate::sql::Statements;

/// Commands queued in the mailbox at most before callers wait in `send`.
const MAILBOX: usize = 1024;

/// A store kept in one PostgreSQL table, shared by every process that opens the same table.
///
/// `Clone` is cheap (a reference count); every clone talks to the same actor. See the
/// [crate documentation](crate) for the layout and the guarantees.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// use store_postgres::PostgresStorage;
///
/// let store = PostgresStorage::connect("postgres://postgres@127.0.0.1:5432/test", "orders").await?;
/// let version = store.create(Record::new("orders/1", "new")).await?;
/// let updated = store
///     .cas_by_version(Record::new("orders/1", "paid").with_version(version))
///     .await?;
/// assert_eq!(&store.get("orders/1").await?.value[..], b"paid");
/// println!("{} at version {}", store.describe(), updated.version);
/// store.close().await?;
/// # Ok::<(), store_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct PostgresStorage {
    shared: Arc<Shared>,
}

struct Shared {
    caller: Caller<Op, Reply>,
    watchers: Arc<Watchers>,
    closed: AtomicBool,
    describe: String,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("store", &self.shared.describe)
            .finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Connects to the server at `url` and opens the store in `table` (schema `public`),
    /// creating the table if it is missing; every other option is the default (see
    /// [`PostgresOptions`]).
    ///
    /// An unreachable server is [`Error::Unavailable`] naming its address, within the
    /// connect timeout; a bad table name is [`Error::InvalidName`].
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_postgres::PostgresStorage::connect(
    ///     "postgres://postgres@127.0.0.1:5432/test",
    ///     "sessions",
    /// )
    /// .await?;
    /// # Ok::<(), store_core::Error>(())
    /// # });
    /// ```
    pub async fn connect(url: &str, table: &str) -> Result<Self> {
        Self::connect_with(PostgresOptions {
            url: url.to_owned(),
            table: table.to_owned(),
            ..PostgresOptions::default()
        })
        .await
    }

    /// Connects with every option spelled out.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use store_postgres::{PostgresOptions, PostgresStorage};
    ///
    /// let store = PostgresStorage::connect_with(PostgresOptions {
    ///     url: "postgres://postgres@127.0.0.1:5432/test".into(),
    ///     table: "sessions".into(),
    ///     schema: "auth".into(),
    ///     pool_size: 4,
    ///     operation_timeout: Duration::from_secs(2),
    ///     ..Default::default()
    /// })
    /// .await?;
    /// # Ok::<(), store_core::Error>(())
    /// # });
    /// ```
    pub async fn connect_with(options: PostgresOptions) -> Result<Self> {
        let names = Names::new(&options.schema, &options.table)?;
        check_options(&options)?;
        let mut config = parse_url(&options.url, &names)?;
        config.connect_timeout(options.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("store-postgres");
        }
        let address = names::address(&config);
        let describe = format!("postgres {address} table {}", names.display());

        // A transaction left waiting for its client is ended by the server after a quarter
        // of the operation timeout: a write whose COMMIT was delayed after its deadline
        // check passed then rolls back before its callers are answered (`batch.rs`).
        let idle = (options.operation_timeout / 4).as_millis().max(1);
        let mut server_options = config.get_options().unwrap_or_default().to_owned();
        if !server_options.is_empty() {
            server_options.push(' ');
        }
        server_options.push_str(&format!("-c idle_in_transaction_session_timeout={idle}"));
        config.options(&server_options);
        let manager = crate::pool::Manager {
            statements: std::sync::OnceLock::new(),
            inner: deadpool_postgres::Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    // Connections that failed or timed out are taken out of the pool by
                    // the batch that saw it (see `Context::release`), so a cheap
                    // closed-check is enough when one is handed out again.
                    recycling_method: RecyclingMethod::Fast,
                },
            ),
        };
        let pool = crate::pool::Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.operation_timeout))
            .recycle_timeout(Some(options.operation_timeout))
            .build()
            .map_err(|error| Error::Backend(format!("{describe}: building the pool: {error}")))?;

        // The table, before anything else: an unreachable server fails here.
        let migrated = async {
            let mut client = pool
                .get()
                .await
                .map_err(|error| crate::errors::from_pool(&describe, error))?;
            schema::migrate(&mut client, &names, &describe).await?;
            // The table exists now: every connection prepares its statements as it is
            // made, this one included.
            let statements = Statements::new(&names).for_every_connection();
            crate::pool::prepare_all(&client, &statements)
                .await
                .map_err(|e| crate::errors::from_postgres(&describe, &e))?;
            let _ = pool.manager().statements.set(statements);
            Ok::<(), Error>(())
        };
        let bound = options.connect_timeout + options.operation_timeout;
        match tokio::time::timeout(bound, migrated).await {
            Ok(outcome) => outcome?,
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "{describe}: no connection and table within {}",
                    humantime::format_duration(bound)
                )))
            }
        }

        let watchers = Arc::new(Watchers::default());
        let counters = Arc::new(Counters::default());
        let context = Arc::new(Context {
            pool,
            config: config.clone(),
            statements: Statements::new(&names),
            names: names.clone(),
            describe: describe.clone(),
            timeout: options.operation_timeout,
            connect_timeout: options.connect_timeout,
            counters: counters.clone(),
        });
        // Listening before the first call, so a waiter never depends on the reconnect path.
        let listener = Notifications {
            config: config.clone(),
            channel: names.channel.clone(),
            describe: describe.clone(),
            connect_timeout: options.connect_timeout,
        }
        .listen(watchers.clone(), options.operation_timeout)
        .await?;
        let timed_out = {
            let describe = describe.clone();
            let timeout = options.operation_timeout;
            Arc::new(move || crate::errors::queued_too_long(&describe, timeout))
        };
        let (caller, inbox) = mailbox::mailbox(MAILBOX, options.operation_timeout, timed_out);
        let actor = Actor {
            context,
            inbox,
            watchers: watchers.clone(),
            counters,
            reaper_interval: options.reaper_interval,
            read_lanes: options.pool_size - 1,
        };
        tokio::spawn(actor.run(listener));
        let storage = PostgresStorage {
            shared: Arc::new(Shared {
                caller,
                watchers,
                closed: AtomicBool::new(false),
                describe,
            }),
        };
        tracing::info!(store = %storage.shared.describe, "store-postgres: connected");
        Ok(storage)
    }

    /// Drops the table, version sequence and format record of the store that `options`
    /// describe, if this crate created them: a table with no format record is left alone
    /// (the answer is then `false`). For tests and tools that own a table; close every
    /// handle on it first, since they fail from then on.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_postgres::{PostgresOptions, PostgresStorage};
    /// let options = PostgresOptions {
    ///     url: "postgres://postgres@127.0.0.1:5432/test".into(),
    ///     table: "scratch".into(),
    ///     ..Default::default()
    /// };
    /// let dropped = PostgresStorage::drop_table(&options).await?;
    /// # let _ = dropped;
    /// # Ok::<(), store_core::Error>(())
    /// # });
    /// ```
    pub async fn drop_table(options: &PostgresOptions) -> Result<bool> {
        let names = Names::new(&options.schema, &options.table)?;
        let mut config = parse_url(&options.url, &names)?;
        config.connect_timeout(options.connect_timeout);
        let describe = format!(
            "postgres {} table {}",
            names::address(&config),
            names.display()
        );
        let work = async {
            let (mut client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| crate::errors::from_postgres(&describe, &e))?;
            let task = tokio::spawn(connection);
            let dropped = schema::drop_store(&mut client, &names)
                .await
                .map_err(|e| crate::errors::from_postgres(&format!("{describe}: dropping"), &e));
            drop(client);
            let _ = task.await;
            dropped
        };
        let bound = options.connect_timeout + options.operation_timeout;
        tokio::time::timeout(bound, work).await.unwrap_or_else(|_| {
            Err(Error::Unavailable(format!(
                "{describe}: dropping: no answer within {}",
                humantime::format_duration(bound)
            )))
        })
    }

    fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The error for a call whose actor is gone without saying why.
    fn gone(&self) -> Error {
        if self.closed() {
            Error::Closed
        } else {
            Error::Stopped(format!(
                "{}: the store's actor stopped (it panicked or its tokio runtime shut down); \
                 connect again",
                self.shared.describe
            ))
        }
    }

    /// Sends `op` to the actor and waits for its answer: the actor bounds every round by
    /// the operation timeout and answers a write only once it knows the write's fate.
    async fn call(&self, op: Op) -> Result<Reply> {
        if self.closed() {
            return Err(Error::Closed);
        }
        match self.shared.caller.call_answered_by_actor(op).await {
            Err(Error::Closed) => Err(self.gone()),
            other => other,
        }
    }

    async fn read(&self, op: ReadOp) -> Result<Reply> {
        self.call(Op::Read(op)).await
    }

    async fn get_one(&self, key: &str) -> Result<Option<Record>> {
        match self.read(ReadOp::Get(vec![key.to_owned()])).await? {
            Reply::Records(mut records) => Ok(records.pop().flatten()),
            other => Err(other.mismatch()),
        }
    }

    /// One page of a listing: the keys of `[from, to)` that match `pattern`, and where the
    /// next page starts (after the last key scanned) when this one was full.
    async fn page(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        pattern: &Pattern,
    ) -> Result<(Vec<String>, Option<String>)> {
        let (keys, next) = match self.read(ReadOp::List { from, to }).await? {
            Reply::Page(keys, next) => (keys, next),
            other => return Err(other.mismatch()),
        };
        let matched = keys
            .into_iter()
            .filter(|key| pattern.matches(key))
            .collect();
        Ok((matched, next))
    }

    async fn write(&self, op: WriteOp) -> Result<Reply> {
        self.call(Op::Write(op)).await
    }

    /// A write whose reply is a record (put, CAS).
    async fn write_record(&self, op: WriteOp) -> Result<Record> {
        match self.write(op).await? {
            Reply::Record(record) => Ok(record),
            other => Err(other.mismatch()),
        }
    }

    /// A write whose reply is only that it happened (put_many, delete).
    async fn write_done(&self, op: WriteOp) -> Result<()> {
        match self.write(op).await? {
            Reply::Done => Ok(()),
            other => Err(other.mismatch()),
        }
    }
}

fn parse_url(url: &str, names: &Names) -> Result<tokio_postgres::Config> {
    url.parse().map_err(|error| {
        Error::Backend(format!(
            "invalid PostgreSQL url {:?} for table {}: {error}; expected \
             postgres://user[:password]@host[:port]/database or \"host=... user=... dbname=...\"",
            names::redact(url),
            names.display()
        ))
    })
}

fn check_options(options: &PostgresOptions) -> Result<()> {
    let bad = |field: &str, value: String, rule: &str| {
        Err(Error::Backend(format!(
            "invalid PostgresOptions::{field} {value}: {rule}"
        )))
    };
    if options.pool_size < 2 {
        return bad(
            "pool_size",
            options.pool_size.to_string(),
            "at least 2 (one connection writes while the others read)",
        );
    }
    for (field, value) in [
        ("connect_timeout", options.connect_timeout),
        ("operation_timeout", options.operation_timeout),
        ("reaper_interval", options.reaper_interval),
    ] {
        if value.is_zero() {
            return bad(field, "0s".into(), "must be longer than zero");
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn create(&self, record: Record) -> Result<String> {
        store_core::validate_key(&record.key)?;
        match self.write(WriteOp::Create(record)).await? {
            Reply::Version(version) => Ok(version),
            other => Err(other.mismatch()),
        }
    }

    async fn get(&self, key: &str) -> Result<Record> {
        store_core::validate_key(key)?;
        self.get_one(key).await?.ok_or(Error::NotFound)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        for key in keys {
            store_core::validate_key(key)?;
        }
        if keys.is_empty() {
            return if self.closed() {
                Err(Error::Closed)
            } else {
                Ok(Vec::new())
            };
        }
        let keys = keys.iter().map(|key| (*key).to_owned()).collect();
        match self.read(ReadOp::Get(keys)).await? {
            Reply::Records(records) => Ok(records),
            other => Err(other.mismatch()),
        }
    }

    async fn put(&self, record: Record) -> Result<Record> {
        store_core::validate_key(&record.key)?;
        self.write_record(WriteOp::Put(record)).await
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        for record in &records {
            store_core::validate_key(&record.key)?;
        }
        if records.is_empty() {
            return if self.closed() {
                Err(Error::Closed)
            } else {
                Ok(())
            };
        }
        // Later duplicates win; sorted, so concurrent put_many calls lock rows in one order.
        let unique: BTreeMap<String, Record> = records
            .into_iter()
            .map(|record| (record.key.clone(), record))
            .collect();
        let records = unique.into_values().collect();
        self.write_done(WriteOp::PutMany(records)).await
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        store_core::validate_key(&record.key)?;
        self.write_record(WriteOp::Cas(record)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        store_core::validate_key(key)?;
        self.write_done(WriteOp::Delete(key.to_owned())).await
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        store_core::validate_key(key)?;
        if self.closed() {
            return Err(Error::Closed);
        }
        let read = || async {
            let current: Current = self
                .get_one(key)
                .await?
                .map(|record| (record.version, record.expires_at));
            Ok(current)
        };
        store_core::watch::wait_for_version_change(&self.shared.watchers, key, version, read).await
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        let pattern = Arc::new(Pattern::new(pattern)?);
        let (from, to) = match pattern.exact() {
            Some(key) => (key.as_bytes().to_vec(), codec::successor(key)),
            None => codec::prefix_range(pattern.literal_prefix()),
        };
        let (first, next) = self.page(from, to.clone(), &pattern).await?;
        let store = self.clone();
        Ok(store_core::paging::key_stream(first, next, move |after| {
            let store = store.clone();
            let pattern = pattern.clone();
            let to = to.clone();
            async move { store.page(codec::successor(&after), to, &pattern).await }
        }))
    }

    async fn close(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        // However long the batches in flight take (each is bounded by the operation
        // timeout); an actor already gone has nothing left to finish.
        let _ = self.shared.caller.call_unbounded(Op::Close).await;
        // Waiters re-check now; the closed flag answers them `Closed`.
        self.shared.watchers.notify_all();
        Ok(())
    }

    fn describe(&self) -> String {
        self.shared.describe.clone()
    }

    async fn stats(&self) -> Result<Stats> {
        match self.call(Op::Stats).await? {
            Reply::Stats(stats) => Ok(stats),
            other => Err(other.mismatch()),
        }
    }
}
