//! The `postgres` target's baseline: what a user writes with tokio-postgres and a pool
//! instead of the store.
//!
//! [`PlainPostgres`] keeps `key text PRIMARY KEY, value bytea, version int8` in a table of
//! its own on the same server (a fresh table per run, dropped at the end), and runs each
//! operation as one prepared statement on a connection from a `deadpool-postgres` pool of
//! the same size as the store's (8), in autocommit:
//!
//! - get: `SELECT value FROM t WHERE key = $1`;
//! - put: `INSERT ... ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version =
//!   t.version + 1 RETURNING version`;
//! - cas: `SELECT value, version` then `UPDATE ... WHERE key = $1 AND version = $2`;
//! - put_many: one `INSERT ... SELECT FROM unnest($1, $2) ON CONFLICT DO UPDATE`.
//!
//! No notifications, no expiry, no batching across callers: the plain single-row cost.

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use store_core::{Error, Result};
use tokio_postgres::{NoTls, Row, Statement};

use crate::subject::{CasOutcome, Subject};

/// Connections in the baseline's pool: the store's default pool size.
pub const POOL_SIZE: usize = 8;

/// The server every postgres run uses: `STORE_BENCH_POSTGRES_URL` or the local test server.
pub fn server_url() -> String {
    std::env::var("STORE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A table name no other run uses.
pub fn fresh_table(what: &str) -> String {
    format!(
        "bench_{what}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The plain tokio-postgres baseline.
pub struct PlainPostgres {
    pool: Pool,
    table: String,
}

fn backend(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Backend(format!("tokio-postgres baseline: {what}: {error}"))
}

impl PlainPostgres {
    /// Creates a fresh table on the server at `url`.
    pub async fn create(url: &str) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| backend("url", e))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| backend("pool", e))?;
        let table = fresh_table("plain");
        let client = pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("tokio-postgres baseline: {url}: {e}")))?;
        client
            .batch_execute(&format!(
                "CREATE TABLE \"{table}\" (key text PRIMARY KEY, value bytea NOT NULL, \
                 version int8 NOT NULL)"
            ))
            .await
            .map_err(|e| backend("create table", e))?;
        Ok(Self { pool, table })
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| backend("pool", e))
    }

    /// A pooled connection with `sql` prepared on it; errors name `what`.
    async fn prepared(&self, what: &str, sql: &str) -> Result<(Object, Statement)> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| backend(what, e))?;
        Ok((client, statement))
    }

    /// The row of `key` with `columns`; `NotFound` when there is none.
    async fn row(&self, columns: &str, key: &str) -> Result<Row> {
        let sql = format!("SELECT {columns} FROM \"{}\" WHERE key = $1", self.table);
        let (client, statement) = self.prepared("get", &sql).await?;
        client
            .query_opt(&statement, &[&key])
            .await
            .map_err(|e| backend("get", e))?
            .ok_or(Error::NotFound)
    }
}

impl Subject for PlainPostgres {
    type Version = i64;
    const NAME: &'static str = "tokio-postgres";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        self.put_many(entries).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let row = self.row("value", key).await?;
        Ok(Bytes::from(row.get::<_, Vec<u8>>(0)))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<i64> {
        let sql = format!(
            "INSERT INTO \"{t}\" AS t (key, value, version) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = t.version + 1 \
             RETURNING version",
            t = self.table
        );
        let (client, statement) = self.prepared("put", &sql).await?;
        let row = client
            .query_one(&statement, &[&key, &&value[..]])
            .await
            .map_err(|e| backend("put", e))?;
        Ok(row.get(0))
    }

    async fn put_many(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let sql = format!(
            "INSERT INTO \"{t}\" AS t (key, value, version) \
             SELECT k, v, 1 FROM unnest($1::text[], $2::bytea[]) AS r(k, v) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = t.version + 1",
            t = self.table
        );
        let (client, statement) = self.prepared("put_many", &sql).await?;
        // Sorted and unique, as any careful batch writer does (no deadlock between
        // concurrent batches, no row hit twice).
        let mut entries = entries;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<&[u8]> = entries.iter().map(|(_, v)| &v[..]).collect();
        client
            .execute(&statement, &[&keys, &values])
            .await
            .map_err(|e| backend("put_many", e))?;
        Ok(())
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, i64)> {
        let row = self.row("value, version", key).await?;
        Ok((Bytes::from(row.get::<_, Vec<u8>>(0)), row.get(1)))
    }

    async fn cas(&self, key: &str, expected: i64, value: Bytes) -> Result<CasOutcome> {
        let sql = format!(
            "UPDATE \"{}\" SET value = $2, version = version + 1 WHERE key = $1 AND version = $3",
            self.table
        );
        let (client, statement) = self.prepared("cas", &sql).await?;
        let changed = client
            .execute(&statement, &[&key, &&value[..], &expected])
            .await
            .map_err(|e| backend("cas", e))?;
        Ok(if changed == 1 {
            CasOutcome::Stored
        } else {
            CasOutcome::Conflict
        })
    }

    async fn close(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.table))
            .await
            .map_err(|e| backend("drop table", e))?;
        drop(client);
        self.pool.close();
        Ok(())
    }
}
