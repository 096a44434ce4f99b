//! The `redis` target's baseline (`redis-plain`): what a user writes with the `redis` crate
//! alone, on the same server, in the same run.
//!
//! One `redis::aio::ConnectionManager` (a multiplexed connection that pipelines the
//! requests of concurrent tasks) shared by every task, keys under a fresh random prefix:
//!
//! - get: `GET key`; put: `SET key value`.
//! - cas: the compare-and-set a Redis user writes: a small Lua script that sets the key only
//!   if it still holds the value read (the counter's values never repeat, so the value is
//!   the version).
//! - list: `ZRANGEBYLEX` over a sorted set of the keys, which `load` fills next to the
//!   values: an ordered index with no expiry check, the least an ordered listing costs.
//!
//! No versions, expiry, notifications or atomic batches: the gap to the target is the price
//! of those.

use bytes::Bytes;
use redis::aio::ConnectionManager;
use store_core::{Error, Result};

use crate::subject::{CasOutcome, Subject};

const CAS_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Plain GET/SET through the `redis` crate (see the module docs).
pub struct PlainRedis {
    connection: ConnectionManager,
    /// `bench-plain-<random>:`; every key the baseline writes starts with it.
    prefix: String,
    index: String,
    cas: redis::Script,
}

fn backend(error: redis::RedisError) -> Error {
    Error::Backend(format!("redis-plain baseline: {error}"))
}

impl PlainRedis {
    /// Connects to `url` and picks a fresh prefix.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(backend)?;
        let connection = ConnectionManager::new(client).await.map_err(|e| {
            Error::Unavailable(format!(
                "redis-plain baseline: no Redis at {url} ({e}); start one with \
                 redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" \
                 --appendonly no, or pass --redis-url"
            ))
        })?;
        let prefix = format!("bench-plain-{:016x}:", rand::random::<u64>());
        Ok(Self {
            connection,
            index: format!("{prefix}index"),
            prefix,
            cas: redis::Script::new(CAS_SCRIPT),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl Subject for PlainRedis {
    type Version = Bytes;
    const NAME: &'static str = "redis-plain";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let mut pipe = redis::pipe();
        for (key, value) in &entries {
            pipe.set(self.key(key), &value[..]).ignore();
            pipe.zadd(&self.index, key, 0).ignore();
        }
        pipe.exec_async(&mut self.connection.clone())
            .await
            .map_err(backend)
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        value.map(Bytes::from).ok_or(Error::NotFound)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<Bytes> {
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(&value[..])
            .exec_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        Ok(value)
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, Bytes)> {
        let value = self.get(key).await?;
        Ok((value.clone(), value))
    }

    async fn cas(&self, key: &str, expected: Bytes, value: Bytes) -> Result<CasOutcome> {
        let stored: i64 = self
            .cas
            .key(self.key(key))
            .arg(&expected[..])
            .arg(&value[..])
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        Ok(if stored == 1 {
            CasOutcome::Stored
        } else {
            CasOutcome::Conflict
        })
    }

    async fn list_prefix(&self, prefix: &str) -> Result<usize> {
        let mut max = format!("({prefix}").into_bytes();
        max.push(0xFF);
        let keys: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX")
            .arg(&self.index)
            .arg(format!("[{prefix}"))
            .arg(max)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        Ok(keys.len())
    }

    /// Removes every key the baseline wrote.
    async fn close(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut connection)
                .await
                .map_err(backend)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(&keys)
                    .exec_async(&mut connection)
                    .await
                    .map_err(backend)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(())
    }
}
