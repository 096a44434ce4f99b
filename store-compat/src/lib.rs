//! go-micro's `store.Store`, for services ported from Go, over any `store-core` backend.
//!
//! A service written against go-micro's store (`Read` with prefix/suffix/limit/offset,
//! `Write` with expiry and metadata, `Delete`, `List`, database/table scoping) keeps the
//! same calls and the same behaviour here, minus the known bugs of the Go implementations:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use serde_json::json;
//! use store_compat::{ListOptions, ReadOptions, Record, Store, StoreAdapter, WriteOptions};
//!
//! let store: Arc<dyn Store> = Arc::new(StoreAdapter::new(store_memory::MemoryStorage::new()));
//!
//! // s.Write(&store.Record{Key: "user/1", Value: v, Metadata: m}, store.WriteTTL(time.Hour))
//! let record = Record::new("user/1", "alice").with_metadata("age", json!(37));
//! store.write(record, WriteOptions::default().ttl(Duration::from_secs(3600))).await?;
//! store.write(Record::new("user/2", "bob"), WriteOptions::default()).await?;
//!
//! // s.Read("user/", store.ReadPrefix(), store.ReadLimit(10))
//! let users = store.read("user/", ReadOptions::default().prefix().limit(10)).await?;
//! assert_eq!(users.len(), 2);
//! assert_eq!(users[0].metadata["age"], json!(37)); // still an integer
//! assert!(users[0].expiry.is_some() && users[1].expiry.is_none());
//!
//! // s.List(store.ListPrefix("user/"), store.ListOffset(1))
//! assert_eq!(store.list(ListOptions::default().prefix("user/").offset(1)).await?, ["user/2"]);
//! # Ok::<(), store_compat::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//!
//! - `store.rs`: the [`Store`] trait (async, object safe: `Arc<dyn Store>`), implemented
//!   for `Arc<S>` and `Box<S>` too.
//! - `options.rs`: [`Options`] (default database and table) and the per-call builders
//!   [`ReadOptions`], [`WriteOptions`], [`ListOptions`], [`DeleteOptions`], with [`Order`].
//! - `record.rs`: the facade's [`Record`] (key, value, metadata, expiry).
//! - `adapter.rs`: [`StoreAdapter`], the `Store` over any [`Storage`](store_core::Storage):
//!   scoping, listing, paging, expiry resolution.
//! - [`envelope`]: how metadata and value share one stored value.
//! - [`layout`]: where a record lives below the facade (`database/table/key`).
//! - `scope.rs`: [`Scoped`], go-micro's `store.Scope`: a handle bound to a database/table.
//! - `stack.rs`: [`Stack`], a built stack: the facade, the versioned API of any
//!   database/table, the whole storage, and the layers' stats.
//! - [`config`]: [`StoreConfig`](config::StoreConfig), the TOML configuration that builds a
//!   whole stack (backend, cache, namespace) and this facade over it. Each backend and layer
//!   is a cargo feature (`memory`, `file`, `cache` by default; `redis` and `postgres` with
//!   their crates), so a service compiles in only what it uses.
//!
//! # Below the facade
//!
//! go-micro's API has no conditional writes, so Go services check and then write, and race.
//! Here the versioned API of the same keys is one call away:
//! [`Store::versioned(database, table)`](Store::versioned) gives a
//! [`Storage`](store_core::Storage) on that table (`create`, `cas_by_version`,
//! `wait_for_version_change`), and [`Store::stats`] what each layer beneath reports:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use store_compat::{config::StoreConfig, Error, ReadOptions};
//!
//! let store = StoreConfig::from_toml_str("backend = \"memory\"").unwrap().build_store().await.unwrap();
//! let locks = store.versioned("", "locks")?;
//! // if _, err := s.Read("job-1"); err == store.ErrNotFound { s.Write(...) }   <- racy
//! match locks.create(store_core::Record::new("job-1", "worker-a")).await {
//!     Ok(_version) => println!("we hold job-1"),
//!     Err(Error::AlreadyExists(holder)) => println!("held by {:?}", holder.value),
//!     Err(other) => return Err(other),
//! }
//! assert_eq!(store.read("job-1", ReadOptions::default().table("locks")).await?.len(), 1);
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! Errors are `store-core`'s [`Error`] (re-exported), so `Err(Error::NotFound)` matches
//! go-micro's `store.ErrNotFound`.
//!
//! # Semantics
//!
//! go-micro's stores disagree with each other in places. These are the choices, with the
//! Go behaviour they were checked against (go-micro v2 `store/memory/memory.go`,
//! micro/micro `service/store/memory/memory.go` and `service/store/file/file.go`, go-micro
//! `store/options.go` and `store/scope.go`):
//!
//! - **Scoping.** Database and table default to `micro`/`micro` (micro/micro's memory and
//!   file stores, `DefaultDatabase`/`DefaultTable`). A record lives under the storage key
//!   `database/table/key`. Names must be `[A-Za-z0-9._-]+` (at most 255 bytes), else
//!   [`Error::InvalidName`] naming the database or table; Go validates nothing, and its file
//!   store turns the names into paths. Since names cannot contain `/`, scopes never overlap.
//!   In per-call options an empty database/table means the store's default, as in Go.
//!   [`Store::init`] replaces both defaults (an empty name there is an error, where go-micro
//!   v2's `TestMemoryReInit` allowed an empty table); it does not wipe the data (go-micro
//!   v2's memory `Init` flushed the whole store).
//! - **Exact reads** return `[record]` or [`Error::NotFound`]. Keys are non-empty
//!   ([`Error::InvalidKey`] otherwise).
//! - **Prefix and suffix** (reads with [`ReadOptions::prefix`]/[`ReadOptions::suffix`], lists
//!   with [`ListOptions::prefix`]/[`ListOptions::suffix`]) are literal text: glob characters
//!   (`*?[]{}\`, and `,!-`) match only themselves, as with Go's `strings.HasPrefix` (the
//!   pattern sent to the storage is built with [`Pattern::escape`](store_core::Pattern::escape)).
//!   With both, a key must start *and* end with the text, and may be shorter than both
//!   together: reading `foo` with prefix and suffix finds `foo` and `foofoo`, like every Go
//!   store. An empty read key with a prefix flag matches every key of the table.
//! - **Order, offset, limit.** Matching keys are sorted (ascending by bytes, or
//!   [`Order::Descending`]), *then* `offset` are skipped (an offset at or past the end gives
//!   `Ok(vec![])`), *then* at most `limit` are kept (0 means no limit). This is
//!   micro/micro's memory store. go-micro v2's memory store applied limit and offset before
//!   filtering by prefix and used the limit as an end index (`keys[offset:min(limit, n)]`,
//!   which panics when the offset exceeds the limit), and micro/micro's file store returns
//!   nothing when the limit is 0; neither is reproduced. A record that expires or is
//!   deleted between the listing and the value fetch of a read is left out, so such a page
//!   may be short.
//! - **Expiry.** [`WriteOptions::ttl`] wins over [`WriteOptions::expiry`], which wins over
//!   [`Record::expiry`] (go-micro `options.go`: "If Expiry and TTL are set TTL takes
//!   precedence", and v2 memory's `Write`; micro/micro's file store ignores both options,
//!   a bug). A zero TTL or record expiry means "not set", like Go's zero values. An expiry
//!   that is not in the future (an `expiry` option in the past) makes the write delete
//!   the key: the record is born expired and never readable, as in micro/micro's file
//!   store (go-micro's memory stores hand such a duration to go-cache, which treats a
//!   negative duration as "never expires"). Reads return the time left (`None` for records
//!   that never expire, where go-micro v2 reported a negative duration).
//! - **Delete** of a missing key is `Ok` (every Go store ignores it).
//! - **Metadata** round-trips exactly: integers stay integers, floats floats, nested
//!   objects and arrays survive, `null` too. (micro/micro's file store JSON-encodes
//!   metadata into `interface{}`, so every number comes back a `float64`.) See
//!   [`envelope`] for the stored format.
//! - **Shared stores.** Values written through the versioned API under `database/table/key`
//!   read back through the facade verbatim with empty metadata; facade values without
//!   metadata are stored raw, so the versioned API reads them verbatim too.
//! - **Disconnect** closes the storage stack; later calls fail with [`Error::Closed`]
//!   (go-micro's memory `Close` flushed the data and kept the store usable). Disconnecting
//!   twice is `Ok`.
//!
//! # The metadata envelope
//!
//! A record with metadata is stored as one value (all integers big-endian):
//!
//! ```text
//! magic "\xC1GME" (4) | format version 1 (1) | N: metadata length u32 (4)
//! | metadata JSON object (N) | value (M) | CRC-32 of everything before it u32 (4)
//! ```
//!
//! Stored bytes are read as an envelope only if magic, version, length, checksum and JSON
//! object all check out; anything else is a plain value with empty metadata. Details in
//! [`envelope`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adapter;
pub mod config;
pub mod envelope;
pub mod layout;
mod options;
mod record;
mod scope;
mod stack;
mod store;

pub use adapter::StoreAdapter;
pub use options::{
    DeleteOptions, ListOptions, Options, Order, ReadOptions, WriteOptions, DEFAULT_DATABASE,
    DEFAULT_TABLE,
};
pub use record::Record;
pub use scope::Scoped;
pub use stack::Stack;
pub use store::Store;
pub use store_core::{BoxFuture, Error, Result};
