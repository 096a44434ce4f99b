//! [`RedisStorage`]: the cloneable handle, and how a store is connected.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use store_core::watch::{self, Watchers};
use store_core::{
    validate_key, validate_name, ComponentStats, Error, Figure, KeyStream, Pattern, Record, Result,
    Stats, Storage,
};

use crate::actor::{Actor, Context, SharedClock};
use crate::command::{Op, RedisCaller, Reply};
use crate::layout::Layout;
use crate::link::Link;
use crate::options::RedisOptions;
use crate::read::{sample_clock, Reader};
use crate::script;
use crate::server::{manager_config, Server};
use crate::stats::Counters;
use crate::subscription;
use store_core::backoff::Backoff;
use store_core::net::{mailbox, ListenerFigures, ListenerTiming};

/// Most keys a listing page may scan (the script reads their expiries in one call).
const MAX_PAGE_SIZE: usize = 4096;

/// The largest value a record may hold: Redis's own limit for one string (512 MiB).
pub const MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// A store on a Redis server, shared by every process that opens the same prefix there.
///
/// Cloning is cheap (one `Arc`); every clone talks to the same actor, which owns the
/// connections and the change subscription (see the [crate docs](crate)). The store stops
/// when [`Storage::close`] is called or when the last clone is dropped; later calls return
/// [`Error::Closed`].
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// use store_redis::RedisStorage;
///
/// let store = RedisStorage::connect("redis://127.0.0.1:6379/0", "orders").await?;
/// let stored = store.put(Record::new("42", "paid")).await?;
/// assert_eq!(store.get("42").await?.version, stored.version);
/// assert_eq!(store.describe(), "redis 127.0.0.1:6379 prefix \"orders\"");
/// store.close().await?;
/// # Ok::<(), store_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct RedisStorage {
    inner: Arc<Inner>,
}

struct Inner {
    caller: RedisCaller,
    /// Single-key reads, in the caller's task (see `read.rs`).
    reader: Reader,
    server: Arc<Server>,
    watchers: Arc<Watchers>,
    address: String,
    prefix: String,
    page_size: usize,
    counters: Arc<Counters>,
    /// The change subscription's figures (its listener lives in the actor).
    listener: Arc<ListenerFigures>,
    reconnect_min: std::time::Duration,
    reconnect_max: std::time::Duration,
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage")
            .field("server", &self.inner.address)
            .field("prefix", &self.inner.prefix)
            .field("closed", &self.inner.caller.check_open().is_err())
            .finish()
    }
}

impl RedisStorage {
    /// Connects to the server at `url` (`redis://host[:port][/db]`) and opens the store
    /// `prefix` there, with the default [`RedisOptions`] otherwise.
    ///
    /// A prefix that is not a name (`[A-Za-z0-9._-]+`) is [`Error::InvalidName`]; a server
    /// that cannot be reached within the connect timeout is [`Error::Unavailable`] naming
    /// its address. Call it inside a tokio runtime: the store's actor is a task of it.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = store_redis::RedisStorage::connect("redis://127.0.0.1:6379/0", "orders").await?;
    /// # Ok::<(), store_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Self::connect_with(RedisOptions {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            ..RedisOptions::default()
        })
        .await
    }

    /// Connects with the given options (see [`RedisOptions`] for each one and its default).
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use store_redis::{RedisOptions, RedisStorage};
    ///
    /// let store = RedisStorage::connect_with(RedisOptions {
    ///     url: "redis://127.0.0.1:6379/0".into(),
    ///     prefix: "orders".into(),
    ///     request_timeout: Duration::from_secs(1),
    ///     ..Default::default()
    /// })
    /// .await?;
    /// # Ok::<(), store_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_with(options: RedisOptions) -> Result<Self> {
        validate_name(&options.prefix).map_err(|error| match error {
            Error::InvalidName(why) => Error::InvalidName(format!("(Redis prefix) {why}")),
            other => other,
        })?;
        let server = Arc::new(Server::new(&options.url)?);
        let counters = Arc::new(Counters::default());
        let mut links = Vec::with_capacity(options.connections.max(1));
        for _ in 0..options.connections.max(1) {
            let response_timeout = Some(options.request_timeout);
            let manager = server.connect(&options, response_timeout).await?;
            links.push(Arc::new(Link::new(
                server.clone(),
                manager,
                manager_config(&options, response_timeout),
                "commands",
                counters.clone(),
            )));
        }
        let mut lease = links[0].lease()?;
        load_script(&server, &mut lease.connection, &options).await?;
        // Before the first write: every write's deadline is a time on this clock.
        let clock = Arc::new(SharedClock::new(
            sample_clock(&server, &mut lease, options.request_timeout).await?,
        ));
        let layout = Layout::new(&options.prefix, server.db);
        // The reader bounds each read itself (see `read.rs`), so its connection needs no
        // timer of its own per command.
        let reader = Reader::new(
            Arc::new(Link::new(
                server.clone(),
                server.connect(&options, None).await?,
                manager_config(&options, None),
                "reads",
                counters.clone(),
            )),
            clock.clone(),
            &layout,
            options.request_timeout,
        );
        let watchers = Arc::new(Watchers::default());
        let subscription = subscription::open(
            server.clone(),
            &layout.channel,
            watchers.clone(),
            ListenerTiming {
                subscribe_timeout: options.request_timeout,
                ping_timeout: options.request_timeout,
                ping_every: subscription::ping_interval(options.request_timeout),
                backoff: Backoff::new(options.reconnect_min, options.reconnect_max),
            },
        )
        .await?;
        let listener = subscription.figures();
        let context = Arc::new(Context {
            server: server.clone(),
            layout,
            sha: script::sha(),
            tag: format!("{:08x}", rand::random::<u32>()),
            request_timeout: options.request_timeout,
            replicas_to_ack: options.replicas_to_ack,
            replica_ack_timeout: options.replica_ack_timeout,
            counters: counters.clone(),
            clock,
        });
        let timed_out = {
            let server = server.clone();
            let limit = options.request_timeout;
            Arc::new(move || server.timed_out("waiting for an answer", limit))
        };
        let (caller, inbox) = mailbox::mailbox(options.mailbox, options.request_timeout, timed_out);
        let actor = Actor::new(context, links, subscription, watchers.clone(), &options);
        tokio::spawn(actor.run(inbox));
        tracing::info!(server = %server.address, prefix = %options.prefix, "redis store connected");
        Ok(Self {
            inner: Arc::new(Inner {
                caller,
                reader,
                server: server.clone(),
                watchers,
                address: server.address.clone(),
                prefix: options.prefix,
                page_size: options.page_size.clamp(1, MAX_PAGE_SIZE),
                counters,
                listener,
                reconnect_min: options.reconnect_min,
                reconnect_max: options.reconnect_max,
            }),
        })
    }

    /// The server's address (`host:port`, with `/db` when not 0), as messages name it.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let store = store_redis::RedisStorage::connect("redis://127.0.0.1:6379/0", "orders").await.unwrap();
    /// assert_eq!(store.address(), "127.0.0.1:6379");
    /// # });
    /// ```
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The store's prefix.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let store = store_redis::RedisStorage::connect("redis://127.0.0.1:6379/0", "orders").await.unwrap();
    /// assert_eq!(store.prefix(), "orders");
    /// # });
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    async fn call(&self, op: Op) -> Result<Reply> {
        self.inner.caller.call(op).await
    }

    /// The live record under `key` (already validated), read in the caller's task.
    async fn read(&self, key: &str) -> Result<Option<Record>> {
        self.inner.caller.check_open()?;
        self.inner.reader.get(&self.inner.server, key).await
    }

    /// The live version and expiry of `key`, for waiters.
    async fn current(&self, key: &str) -> Result<watch::Current> {
        Ok(self
            .read(key)
            .await?
            .map(|record| (record.version, record.expires_at)))
    }

    /// [`current`](Self::current), retried with backoff while the server is unreachable.
    async fn current_retrying(&self, key: &str) -> Result<watch::Current> {
        let mut backoff = Backoff::new(self.inner.reconnect_min, self.inner.reconnect_max);
        loop {
            match self.current(key).await {
                Err(error) if error.is_retryable() => {
                    tracing::debug!(%error, "a waiter's re-check failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                other => return other,
            }
        }
    }

    async fn page(&self, min: Vec<u8>, max: Vec<u8>) -> Result<(Vec<String>, Option<String>)> {
        let count = self.inner.page_size;
        match self.call(Op::ListPage { min, max, count }).await? {
            Reply::Page { keys, next } => Ok((keys, next)),
            other => Err(unexpected("list_keys", other)),
        }
    }
}

/// Loads the script, so that the first batch does not pay for it, and so that a server
/// too old for it is reported at connect time.
async fn load_script(
    server: &Server,
    link: &mut redis::aio::ConnectionManager,
    options: &RedisOptions,
) -> Result<()> {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(script::SOURCE);
    let load = cmd.query_async::<String>(link);
    match tokio::time::timeout(options.request_timeout, load).await {
        Err(_) => Err(server.timed_out("loading the script", options.request_timeout)),
        Ok(Err(error)) if error.code() == Some("ERR") => Err(Error::Backend(format!(
            "redis {}: the server refused store-redis's script ({error}); store-redis needs \
             Redis 7.0 or newer (or a compatible server such as Valkey)",
            server.address
        ))),
        Ok(Err(error)) => Err(server.error("loading the script", &error)),
        Ok(Ok(_)) => Ok(()),
    }
}

fn unexpected(operation: &str, reply: Reply) -> Error {
    Error::Backend(format!(
        "store-redis: the actor sent an unexpected reply to {operation}: {reply:?}"
    ))
}

fn check_value(key: &str, value: &Bytes) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidValue(format!(
            "for key {key:?}: {} bytes; Redis stores values of at most {MAX_VALUE_LEN} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn check_record(record: &Record) -> Result<()> {
    validate_key(&record.key)?;
    check_value(&record.key, &record.value)
}

/// The bounds of the index range a pattern can match (Redis `ZRANGEBYLEX` syntax).
fn range(pattern: &Pattern) -> (Vec<u8>, Vec<u8>) {
    let bound = |mark: u8, text: &str, tail: Option<u8>| {
        let mut bound = Vec::with_capacity(text.len() + 2);
        bound.push(mark);
        bound.extend_from_slice(text.as_bytes());
        bound.extend(tail);
        bound
    };
    if let Some(key) = pattern.exact() {
        return (bound(b'[', key, None), bound(b'[', key, None));
    }
    match pattern.literal_prefix() {
        "" => (b"-".to_vec(), b"+".to_vec()),
        // 0xFF never occurs in UTF-8, so every key under the prefix sorts below prefix+0xFF.
        prefix => (bound(b'[', prefix, None), bound(b'(', prefix, Some(0xFF))),
    }
}

#[async_trait]
impl Storage for RedisStorage {
    async fn create(&self, record: Record) -> Result<String> {
        check_record(&record)?;
        match self.call(Op::Create(record)).await? {
            Reply::Created(Ok(version)) => Ok(version),
            Reply::Created(Err(live)) => Err(Error::AlreadyExists(live)),
            other => Err(unexpected("create", other)),
        }
    }

    async fn get(&self, key: &str) -> Result<Record> {
        validate_key(key)?;
        self.read(key).await?.ok_or(Error::NotFound)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Record>>> {
        for key in keys {
            validate_key(key)?;
        }
        if keys.is_empty() {
            self.inner.caller.check_open()?;
            return Ok(Vec::new());
        }
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        match self.call(Op::Get(keys)).await? {
            Reply::Records(records) => Ok(records),
            other => Err(unexpected("get_many", other)),
        }
    }

    async fn put(&self, record: Record) -> Result<Record> {
        check_record(&record)?;
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        match self.call(Op::Put(record)).await? {
            Reply::Version(version) => Ok(Record {
                key,
                value,
                version,
                expires_at: script::stored_expiry(expires_at),
            }),
            other => Err(unexpected("put", other)),
        }
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<()> {
        // Every record is checked before anything is sent: the batch is all or nothing.
        for record in &records {
            check_record(record)?;
        }
        if records.is_empty() {
            return self.inner.caller.check_open();
        }
        match self.call(Op::PutMany(records)).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected("put_many", other)),
        }
    }

    async fn cas_by_version(&self, record: Record) -> Result<Record> {
        check_record(&record)?;
        let (key, value, expires_at) =
            (record.key.clone(), record.value.clone(), record.expires_at);
        match self.call(Op::Cas(record)).await? {
            Reply::Version(version) => Ok(Record {
                key,
                value,
                version,
                expires_at: script::stored_expiry(expires_at),
            }),
            Reply::CasMissing => Err(Error::NotFound),
            Reply::CasConflict => Err(Error::Conflict),
            other => Err(unexpected("cas_by_version", other)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self.call(Op::Delete(key.to_owned())).await? {
            Reply::Deleted(true) => Ok(()),
            Reply::Deleted(false) => Err(Error::NotFound),
            other => Err(unexpected("delete", other)),
        }
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        validate_key(key)?;
        // The first read decides at once, and fails with `Unavailable` like any call when
        // the server cannot be reached. Later reads (after a message, a reconnect or the
        // record's expiry) are retried until the server answers: the key may have changed
        // while we could not tell, and giving up would turn an outage into a wrong answer
        // or a waiter that nothing wakes again.
        let mut first = true;
        let read = || {
            let retry = !std::mem::replace(&mut first, false);
            async move {
                if retry {
                    self.current_retrying(key).await
                } else {
                    self.current(key).await
                }
            }
        };
        watch::wait_for_version_change(&self.inner.watchers, key, version, read).await
    }

    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        let pattern = Arc::new(Pattern::new(pattern)?);
        let (min, max) = range(&pattern);
        // The first page is read now, so that a closed or unreachable store fails here.
        let (first, next) = self.page(min, max.clone()).await?;
        let fetch = {
            let store = self.clone();
            move |after: String| {
                let store = store.clone();
                let max = max.clone();
                async move {
                    let mut min = Vec::with_capacity(after.len() + 1);
                    min.push(b'(');
                    min.extend_from_slice(after.as_bytes());
                    store.page(min, max).await
                }
            }
        };
        // The server sends the keys in the range; the pattern runs here, in the lister's
        // task, with our gobwas matcher (Redis's glob syntax differs).
        let candidates = store_core::paging::key_stream(first, next, fetch);
        Ok(store_core::paging::matching(candidates, pattern))
    }

    async fn close(&self) -> Result<()> {
        let closed = self.inner.caller.call_unbounded(Op::Close).await;
        // The read connection goes too, whether this call closed the store or an earlier one.
        self.inner.reader.close();
        match closed? {
            Reply::Done => Ok(()),
            other => Err(unexpected("close", other)),
        }
    }

    fn describe(&self) -> String {
        format!(
            "redis {} prefix {:?}",
            self.inner.address, self.inner.prefix
        )
    }

    async fn stats(&self) -> Result<Stats> {
        let figures = match self.call(Op::Stats).await? {
            Reply::Stats(figures) => figures,
            other => return Err(unexpected("stats", other)),
        };
        let counters = &self.inner.counters;
        let listener = &self.inner.listener;
        let count = |counter| Figure::Count(Counters::get(counter));
        let pipelines = Counters::get(&counters.pipelines);
        let calls = Counters::get(&counters.calls);
        let component = ComponentStats::new(
            "redis",
            format!("{} prefix {:?}", self.inner.address, self.inner.prefix),
        )
        .with("keys", Figure::Count(figures.keys))
        .with("expiring_keys", Figure::Count(figures.expiring))
        .with("version_epoch", Figure::Text(figures.epoch))
        .with("versions_in_epoch", Figure::Count(figures.last_version))
        .with("late_writes_refused", Figure::Count(figures.late_writes))
        .with("pipelines", Figure::Count(pipelines))
        .with(
            "calls_per_pipeline",
            Figure::Ratio(if pipelines == 0 {
                0.0
            } else {
                calls as f64 / pipelines as f64
            }),
        )
        .with("failed_pipelines", count(&counters.failed_pipelines))
        .with(
            "replaced_connections",
            count(&counters.replaced_connections),
        )
        .with("script_loads", count(&counters.script_loads))
        .with(
            "writes_not_taken_by_replicas",
            count(&counters.unacknowledged_batches),
        )
        .with(
            "subscription",
            Figure::Text(
                if listener.is_connected() {
                    "up"
                } else {
                    "down (reconnecting)"
                }
                .to_owned(),
            ),
        )
        .with(
            "resubscribes",
            Figure::Count(listener.connects().saturating_sub(1)),
        )
        .with("change_messages", Figure::Count(listener.messages()))
        .with("reclaimed_by_this_instance", count(&counters.reclaimed))
        .with(
            "watched_keys",
            Figure::Count(self.inner.watchers.len() as u64),
        )
        .with(
            "queued_calls",
            Figure::Count(self.inner.caller.queued() as u64),
        );
        Ok(Stats {
            components: vec![component],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly_the_literal_prefix() {
        let r = |p: &str| range(&Pattern::new(p).unwrap());
        assert_eq!(r("*"), (b"-".to_vec(), b"+".to_vec()));
        assert_eq!(r("a/*"), (b"[a/".to_vec(), b"(a/\xff".to_vec()));
        assert_eq!(r("exact"), (b"[exact".to_vec(), b"[exact".to_vec()));
        assert_eq!(r("a\\*b?"), (b"[a*b".to_vec(), b"(a*b\xff".to_vec()));
    }
}
