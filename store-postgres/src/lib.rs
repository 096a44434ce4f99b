//! A [`Storage`](store_core::Storage) on PostgreSQL: one table per store, shared by every
//! process that opens the same table, with the whole contract of store-core across
//! processes (create-if-absent, exactly one CAS winner, atomic `put_many`, waits woken by
//! any process's writes, deletes and expiries, listings in byte order).
//!
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use store_core::{Record, Storage};
//!
//! let store = store_postgres::PostgresStorage::connect(
//!     "postgres://postgres@127.0.0.1:5432/test",
//!     "orders",
//! )
//! .await?;
//! store.put(Record::new("orders/1", "new")).await?;
//! assert_eq!(store.describe(), r#"postgres 127.0.0.1:5432/test table "orders""#);
//! # Ok::<(), store_core::Error>(())
//! # });
//! ```
//!
//! # Layout
//!
//! - [`storage`](PostgresStorage) (`storage.rs`): the handle and `connect`. It validates
//!   keys and patterns, sends commands to the actor, and runs waits and listings in the
//!   caller's task.
//! - `actor.rs`: the one task that owns the pool, the listening connection and the reaper;
//!   it drains the mailbox into a read queue and a write queue and keeps batches in flight.
//! - `batch.rs`: one batch on one connection: reads pipelined, writes as one transaction
//!   sent in one round trip, replayed call by call if the transaction fails.
//! - `sql.rs`: the statements, each call one statement (its notification included).
//! - `schema.rs`: creating the table and migrating its format.
//! - `listener.rs`: `LISTEN` as a protocol for store-core's shared `Listener` (which
//!   reconnects with backoff, pings, and makes every waiter re-check after a reconnect).
//! - `reaper.rs`: one run deleting expired rows, on every instance, with `SKIP LOCKED`;
//!   store-core's `ReaperSchedule` says when.
//! - `codec.rs`: keys, expiries, versions and notification payloads.
//! - `names.rs`: table and schema names, derived names, the server's address.
//! - `pool.rs`: pooled connections that carry their server session and clock sample.
//! - `errors.rs`: driver and pool failures as store-core errors naming the server.
//! - `options.rs` and `config.rs`: [`PostgresOptions`] and the serde section [`PostgresConfig`].
//! - The batching mailbox between handles and the actor is `store_core::net::mailbox` and
//!   the reconnect backoff `store_core::backoff`, shared with store-redis.
//!
//! # Decisions
//!
//! **Keys are `bytea`.** `text` cannot hold NUL, and its order depends on the database's
//! collation (go-micro's store sorts by it). `bytea` holds any key and compares bytes as
//! unsigned values, so every listing is in byte order on every server. A literal prefix is
//! the range `[prefix, prefix with its last byte + 1)`, an index range scan; no `LIKE`, so
//! `%` and `_` in keys mean nothing special (go-micro passes them to `LIKE` unescaped).
//! Patterns are matched by store-core's matcher in the lister's task, page by page.
//!
//! **Expiry is `bigint` microseconds, judged by the database's clock** in every statement,
//! so an expired row is invisible to all of them. A decision about a row uses
//! `clock_timestamp()` read when the row is looked at (after any wait for its lock), and a
//! read that meets an expired row reads again holding it `FOR SHARE`, so no read calls a
//! row expired that an uncommitted writer found live (`batch.rs`, "Expiry"). Listing pages
//! count expired rows as scanned and answer the live ones (go-micro filters expired rows
//! after `LIMIT/OFFSET`). The reaper only reclaims space and announces expiries.
//!
//! **Versions come from a sequence** per table (`"<table>:version"`). A sequence only moves
//! forward, also across restarts and crashes (it is WAL-logged ahead of use: after a crash
//! it may skip values, never repeat one that a committed row holds), and it is not owned by
//! the table, so a version is never reused for a key, not after delete and re-create, not
//! after a restart. A sequence moves forward on one server history only: an asynchronous
//! standby promoted before it received the old primary's last versions, or a cluster
//! restored from a backup, has it behind. So each connection's first write transaction
//! begins by comparing the server's history (system identifier and timeline) with the one the table's
//! versions were last handed out on (the schema's `"store_postgres:histories"` table), and
//! on a difference moves the sequence past every version the other history can have handed
//! out (at least 2^32 further, and at least the server's clock in microseconds; see
//! `schema.rs`). `stats()` counts these as `history_changes`. Writes lost with the old
//! primary are the replication's contract (a synchronous standby keeps them); a version
//! handed out twice never is.
//!
//! **One statement per call.** create is `INSERT ... ON CONFLICT DO UPDATE ... WHERE
//! expired` (a live row is returned as `AlreadyExists`, an expired one replaced); CAS locks
//! the row (`FOR UPDATE`, which waits for a concurrent writer and then sees its version)
//! and updates it only if the version matches, so exactly one of N concurrent CAS calls
//! wins, across processes; `put_many` is one `INSERT ... SELECT FROM unnest(...)`, atomic;
//! delete answers `NotFound` when no live row was deleted.
//!
//! **Notifications are part of the write.** Each write statement ends with `pg_notify` over
//! the rows it changed, so a write that changed nothing announces nothing and a write that
//! rolled back wakes nobody (PostgreSQL delivers notifications at commit). Waiters use
//! [`store_core::watch`]: register, read, re-read on every notification, on the record's
//! expiry (a local timer) and after the listening connection reconnects, so no wake-up is
//! lost and a message is never trusted alone.
//!
//! **Batches.** The actor sends the writes that queued while the previous write batch was
//! in flight as one transaction, in one pipelined round trip (`BEGIN`, one statement per
//! call, `COMMIT`): one commit, one WAL flush for all of them. If the transaction fails
//! (one call's statement failed, or a deadlock with another process), nothing of it
//! happened, and every call is run again alone, so one call's failure never fails or undoes
//! another's. Reads (gets as one `key = ANY($1)` statement, list pages) go out on other
//! connections meanwhile.
//!
//! **Faults.** Every round of statements is bounded by `operation_timeout`; a connection
//! that failed or timed out is dropped from the pool (it may be inside a transaction), and
//! its callers get [`Error::Unavailable`](store_core::Error::Unavailable) naming the
//! server. New connections are made on demand, so the first call after a server comes back
//! succeeds; the listening connection reconnects with exponential backoff and jitter.
//! Everything answered `Ok` is committed, and a write answered `Unavailable` was applied
//! before that answer or never is: every write transaction ends with a deadline check on
//! the server's clock, a transaction left waiting for its `COMMIT` is ended by the server
//! (`idle_in_transaction_session_timeout`), and a write round that times out has its
//! session ended before its callers are answered (`batch.rs`, "A write answered
//! `Unavailable` never lands later"). Requires PostgreSQL 14 or newer
//! (`pg_terminate_backend` with a wait) and PL/pgSQL (installed by default).
//!
//! **Replicas and failover.** Point the store at the primary. A standby refuses writes, and a
//! store opened on one fails with an error that says so (SQLSTATE 25006 is a configuration
//! error, never retried). With several hosts in the URL and `target_session_attrs=read-write`
//! (`postgres://user@a:5432,b:5432/db?target_session_attrs=read-write`) the pool connects to
//! whichever host accepts writes, so after a standby is promoted the store goes on writing
//! there with no change of configuration; calls fail with `Unavailable` meanwhile. Writes the
//! old primary had not yet sent to an asynchronous standby are lost with it (the replication's
//! contract; a synchronous standby keeps them), but no version is handed out twice (see
//! above). `tests/restart.rs` runs both through a real promotion.
//!
//! **Names.** The table and schema are validated like namespace names (and the table is at
//! most [`MAX_TABLE_LEN`] bytes, since PostgreSQL silently cuts long identifiers), always
//! quoted, and every derived name contains `:`, which no table name may, so stores never
//! collide (go-micro maps `a-b` and `a.b` to one table `a_b`). A table that exists but was
//! not created by this crate is refused, never altered or dropped.
//!
//! **Not supported:** TLS (connections use `NoTls`; `sslmode=require` fails to connect).
//!
//! # Tests
//!
//! All on a real PostgreSQL (`STORE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a fresh table dropped afterwards
//! (`testing`, feature `testkit`, built on store-testkit); a missing server fails with how
//! to start it. `tests/conformance.rs`: the whole kit (store-testkit) alone, namespaced and
//! cached, with a second `PostgresStorage` on the same table as the second handle (shared,
//! linearizability and durable cases). `tests/processes.rs`: the test binary runs itself
//! again as a second process with `store_testkit::process` (CAS winner, waits woken,
//! put_many never torn; a child that stops making progress fails). `tests/faults.rs`:
//! connections cut through store-testkit's `FaultProxy`, unreachable and silent servers, a
//! round past the operation timeout. `tests/restart.rs`: a private server
//! (`store_testkit::servers::postgres::PrivatePostgres`, initdb + pg_ctl) crashed and
//! started again. `tests/semantics.rs`: names, isolation, formats, the reaper, no-op writes,
//! one failing call in a batch.
//!
//! # Go stores compared
//!
//! go-micro's postgres and cockroach stores (one `sqlStore` shape): keys as `text` sorted by
//! the collation, `LIKE` with unescaped key text for prefix/suffix, `LIMIT/OFFSET` before
//! expired rows are dropped, expiry judged by the client's clock and reclaimed hourly (by
//! a loop that deletes from every table of the database with an `expiry` column), expired
//! rows deleted in a goroutine when read (which can delete a record rewritten meanwhile),
//! names sanitised so that different names collide. None of that here; go-micro's
//! metadata lives in the store-compat facade's envelope.

#![forbid(unsafe_code)]

mod actor;
mod batch;
mod codec;
mod command;
mod config;
mod context;
mod errors;
mod listener;
mod names;
mod options;
mod pool;
mod reaper;
mod schema;
mod sql;
mod storage;
#[cfg(feature = "testkit")]
pub mod testing;

pub use config::PostgresConfig;
pub use names::{validate_table, MAX_SCHEMA_LEN, MAX_TABLE_LEN};
pub use options::PostgresOptions;
pub use storage::PostgresStorage;
