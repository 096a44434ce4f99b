//! [`PostgresOptions`]: everything `connect_with` needs, with documented defaults.

use std::time::Duration;

/// How [`PostgresStorage::connect_with`](crate::PostgresStorage::connect_with) connects and
/// which table it uses.
///
/// A plain struct with public fields, so callers write only what differs from the defaults:
///
/// ```
/// use std::time::Duration;
/// use store_postgres::PostgresOptions;
///
/// let options = PostgresOptions {
///     url: "postgres://postgres@127.0.0.1:5432/test".into(),
///     table: "orders".into(),
///     pool_size: 4,
///     ..Default::default()
/// };
/// assert_eq!(options.schema, "public");
/// assert_eq!(options.operation_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The server, as a URL (`postgres://user:password@host:port/database?options`) or a
    /// libpq key/value string (`host=... user=... dbname=...`). Default
    /// `postgres://postgres@127.0.0.1:5432/postgres`.
    pub url: String,
    /// The table that holds this store: `[A-Za-z0-9._-]+`, at most
    /// [`MAX_TABLE_LEN`](crate::MAX_TABLE_LEN) bytes, always quoted (so `Orders` and
    /// `orders` are two tables). Created if missing. Default `micro` (go-micro's default
    /// table).
    pub table: String,
    /// The PostgreSQL schema the table lives in, named like the table; created if missing.
    /// Default `public`.
    pub schema: String,
    /// Connections in the pool that runs reads and writes (the listening connection comes
    /// on top). At least 2: one write batch and at least one read batch are in flight at a
    /// time. Default 8.
    pub pool_size: usize,
    /// How long connecting to the server may take before the call fails with
    /// [`Error::Unavailable`](store_core::Error::Unavailable). Default 5 s.
    pub connect_timeout: Duration,
    /// How long one round of statements may take before its callers get
    /// [`Error::Unavailable`](store_core::Error::Unavailable) and its connection is
    /// dropped. Default 5 s.
    pub operation_timeout: Duration,
    /// How often this instance deletes expired rows (expired rows are invisible at once;
    /// this only reclaims their space and wakes waiters in other processes whose clock
    /// lags). Every instance on the table runs the reaper; they skip each other's rows.
    /// Default 1 s.
    pub reaper_interval: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            table: "micro".into(),
            schema: "public".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            reaper_interval: Duration::from_secs(1),
        }
    }
}
