//! The store-core contract on a real Redis, across processes.
//!
//! Two processes that open the same prefix on the same server see one store, with every
//! guarantee of the `Storage` trait: `create` returns the live record on a conflict, exactly
//! one of N concurrent CAS calls wins (in any process), `put_many` is atomic, waiters are
//! woken by other processes' writes, deletes and expiries, listings are ascending by bytes
//! and paged on the server, versions are never reused (not even after a server restart that
//! lost every key), and every call is linearizable.
//!
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use store_core::{Error, Record, Storage};
//! use store_redis::RedisStorage;
//!
//! let store = RedisStorage::connect("redis://127.0.0.1:6379/0", "jobs").await?;
//! match store.create(Record::new("job/42/owner", "worker-a")).await {
//!     Ok(_version) => println!("we own job 42"),
//!     Err(Error::AlreadyExists(owner)) => println!("owned by {:?}", owner.value),
//!     Err(other) => return Err(other),
//! }
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! # Layout of the crate
//!
//! - `handle.rs`: [`RedisStorage`], the cloneable handle: validates every call, sends it to
//!   the actor (or, for a single-key read, to `read.rs`), and waits
//!   (`wait_for_version_change`) with `store_core::watch`.
//! - `read.rs`: single-key reads in the caller's task, one `GET` each, and why they are
//!   linearizable.
//! - `actor.rs`: the one task that owns the connections and the subscription. It drains its
//!   mailbox (`recv_many`), sends each batch as one pipeline, answers each call, and runs
//!   the reaper.
//! - `script.lua` and `script.rs`: the one Lua script that applies every operation, and its
//!   encoding and decoding.
//! - `layout.rs`: the Redis keys and channel of a prefix, and the change message.
//! - `subscription.rs`: the change channel as a protocol for store-core's shared
//!   `Listener` (which reconnects, pings, and makes every waiter re-check after a
//!   reconnect): how to subscribe, and which waiters a message wakes.
//! - `server.rs`: the parsed URL, the clients, and errors that name the address.
//! - `link.rs`: a connection that is replaced when it stops answering.
//! - `options.rs` ([`RedisOptions`]), `config.rs` ([`RedisConfig`], the `[redis]` section),
//!   `stats.rs` (counters for `stats()`), `command.rs` (what handles ask the actor).
//! - The batching mailbox between handles and the actor is `store_core::net::mailbox`, the
//!   reconnect backoff `store_core::backoff`: neither knows anything of Redis.
//! - `testing/` (feature `testkit`): test stores under random prefixes, and the two-process
//!   harness on them; built on store-testkit, which holds the private servers.
//!
//! # Design, and why
//!
//! **One script for every operation.** Every call is an operation of one Lua script
//! (`script.lua`), and a batch of calls is one `EVALSHA`. A script runs atomically: no other
//! client's command runs in between, so `create` checks and writes in one step (and can
//! return the live record on a conflict, which golibs' kvs Redis store cannot: it answers an
//! empty version and its lock spins), CAS compares and writes in one step (exactly one
//! winner, and a lost race is `Conflict`, not the generic error a `WATCH`/`MULTI` retry
//! gives), and a `put_many` of any size is one atomic step that assigns every record a
//! version (kvs's `MSET` path assigned none). The script also publishes the keys it changed,
//! in the same atomic step, so no write goes unannounced. Batching the whole mailbox into
//! one script call is the network version of group commit: the server parses one command
//! and sends one `PUBLISH` however many calls a batch carries.
//!
//! **Expiry on the server's clock.** The script reads `TIME` once per call and compares it
//! with each record's expiry (kept to the microsecond), so every process agrees on what has
//! expired whatever their own clocks say. Redis's own key expiry is not used: it would
//! remove records without telling waiters and leave them in the key index. Instead the keys
//! with an expiry sit in a sorted set scored by it, and a reaper that any instance may run
//! (every second by default, and when the next known expiry is due) reclaims due records in
//! one atomic script call: two instances reaping at once never reclaim a key twice, no due
//! key is missed, and every reclaim is published, so waiters in every process wake with
//! `NotFound`. Until it is reclaimed, an expired record is invisible to every operation.
//!
//! **An ordered key index.** Listing uses a sorted set of every key with score 0, read with
//! `ZRANGEBYLEX`, which compares bytes: keys come in ascending byte order, a pattern's
//! literal prefix becomes a range (`[prefix` to `(prefix\xff`; `0xFF` never occurs in UTF-8),
//! and the listing is paged on the server, a page per round trip, each page checked against
//! the records' expiry. The pattern itself is matched here with `store_core::Pattern` (the
//! gobwas semantics), never with Redis's `SCAN MATCH`, whose glob syntax differs and which
//! returns keys unordered and sometimes twice (the Go stores' bugs).
//!
//! **Versions that survive data loss.** A version is `<epoch>.<counter>`. The counter lives
//! in the store's meta hash together with the epoch and the `run_id` of the server process
//! that made the epoch. The script starts a new epoch when it finds that hash missing (a new
//! store, a server that restarted without persistence, a flush) and when the server
//! process is another one than the one that made the epoch: a server that restarted from a
//! snapshot older than the last versions it handed out, or a replica promoted before it
//! received them, holds the epoch with its counter behind, and would otherwise hand out
//! those versions a second time. A new epoch is the server's time in microseconds and a
//! random tag of the calling process, so it differs from every earlier one (a later time,
//! and a random tag in case the clock went back), and no version is ever reused, whatever
//! the server forgot. The script reads the `run_id` with `INFO server`, once per batch that
//! writes (about 4 µs of the server's time): the store's user must be allowed `INFO` (ACL
//! category `@dangerous`); a server that refuses it fails every write with a message that
//! says so, before changing anything.
//!
//! **Replicas.** Point the store at the primary. A replica answers writes with `READONLY`,
//! which is a configuration error naming the server (never retried: every retry would be
//! refused alike); reads work there. A replica promoted after a failover starts a new
//! version epoch at its first write (see above).
//!
//! **Push-based waits.** A waiter registers interest in its key, reads it, and re-reads on
//! every change message for the key, at the record's expiry (a local timer), and after the
//! subscription reconnects (messages may have been lost meanwhile). The read decides, never
//! the message, so no wake-up is lost and no stale message wakes anyone wrongly
//! (`store_core::watch`). One channel per store (not per key): subscribing is done once, at
//! connect, so a wait costs no subscription round trip; the price is that every instance
//! receives every change of the store, which is cheap next to the writes themselves. golibs'
//! kvs polls instead.
//!
//! **An actor like every backend.** One task owns the connections (a `redis` crate
//! connection manager, which reconnects with backoff) and the subscription; handles are
//! cheap clones that send calls through a bounded mailbox. Up to
//! `connections × pipelines_per_connection` pipelines are in flight; calls that arrive
//! meanwhile go in the next, larger, batch.
//!
//! **Single-key reads in the caller's task.** `get` (and a waiter's re-check) skips the
//! actor: it sends one `GET` of the record on a connection of its own, which the `redis`
//! crate multiplexes across tasks, and costs what a plain `GET` costs (the benchmark's
//! `redis-plain` baseline). A record with an expiry takes one more round trip, `TIME` then
//! `GET`, to judge it on the server's clock. There is still no local copy that could be
//! stale: the server is the single order, so a read sent after a write's answer sees it,
//! whichever connection either used (`read.rs` has the argument). `get_many` goes through
//! the actor, where one script call reads every key in one atomic step.
//!
//! **A record is one string.** `<expiry> <version> <value>` under `{prefix}:r:<key>`, not a
//! hash of three fields: a read is then answered with one bulk string, and the value is the
//! tail of the buffer it arrived in, with no copy. Parsing a three-field array cost the
//! client as much again as the rest of a read.
//!
//! **Faults never hang a caller.** Every call is bounded by the request timeout (time in
//! the mailbox included) and fails with `Unavailable` naming the address, and a call whose
//! caller gave up before it was sent is never sent.
//!
//! **A write answered `Unavailable` never lands later.** A write whose bytes are only
//! delayed (a stalled connection, a blackholed path) would otherwise run when they arrive,
//! after a newer write that was acknowledged, and silently undo it. So every write carries
//! its caller's deadline as a time on the server's clock (`store_core::net::ServerClock`,
//! sampled at connect and by every script answer, which carries the script's `TIME`), and
//! the script refuses a write that arrives after it: such a write was applied before its
//! caller's answer or never is. Refusals are counted (`late_writes_refused` in `stats()`).
//! This assumes the server's clock does not step backwards by more than the margin between
//! the two clocks.
//!
//! **A connection that stops answering is replaced** (`link.rs`): the connection manager
//! reconnects after errors, but a socket that simply goes silent fails nothing. A request
//! that times out on a connection that has received nothing since it was sent makes the
//! store open a new one, so one stuck socket costs at most one request timeout
//! (`replaced_connections` in `stats()`). The connection manager reconnects with
//! backoff; the script is loaded again when a restarted server has forgotten it; the
//! subscription reconnects with backoff and then makes every waiter re-check. A waiter
//! keeps waiting through an outage and re-checks when the server is back (its first read,
//! like any call, fails with `Unavailable` while the server cannot be reached). Nothing the
//! server acknowledged is lost by a dropped connection; what a server that restarts without
//! persistence forgets is gone, and the new version epoch makes sure that no version of the
//! lost data is ever handed out again.
//!
//! **Isolation.** The prefix is a name (`[A-Za-z0-9._-]+`); every Redis key of the store
//! starts with `{prefix}:`, which no other prefix's root starts with, and every user key and
//! pattern lives after that root. So no key or pattern reaches another store.
//!
//! # Requirements and limits
//!
//! - Redis 7.0 or newer (the script declares itself with a `#!lua` shebang, so the server
//!   refuses it up front when it is out of memory instead of failing halfway), or a
//!   compatible server such as Valkey. A standalone server or a primary; the hash tag in
//!   every key (`{prefix}`) keeps one store in one cluster slot, but cluster mode is not
//!   tested.
//! - Use `maxmemory-policy noeviction` (the default): an evicted record or index is lost
//!   data, as it would be for any Redis user.
//! - Values up to 512 MiB ([`MAX_VALUE_LEN`], Redis's limit), keys up to
//!   `store_core::MAX_KEY_LEN` bytes.
//! - Do not write to a store's keys with other tools. A read of a key that holds something
//!   other than a record fails with `Corrupt` (or the server's `WRONGTYPE`) naming the key;
//!   a write replaces it, but a key the store did not create stays out of its key index, so
//!   listings do not show it until it is deleted and written again.

#![forbid(unsafe_code)]

mod actor;
mod command;
mod config;
mod handle;
mod layout;
mod link;
mod options;
mod read;
mod script;
mod server;
mod stats;
mod subscription;
#[cfg(feature = "testkit")]
pub mod testing;

pub use config::RedisConfig;
pub use handle::{RedisStorage, MAX_VALUE_LEN};
pub use options::RedisOptions;
