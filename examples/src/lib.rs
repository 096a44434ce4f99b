//! Runnable examples for the workspace; see `examples/examples/*.rs`. Each one runs with one
//! command, with the feature of this crate it needs (cargo names the missing feature if it
//! is left out); the quickstart needs none, so it compiles only what it uses.
//!
//! - `quickstart` (`cargo run -p examples --example quickstart`): the versioned API on the
//!   in-memory backend: create, get, put, compare-and-set and a wait woken by a put.
//! - `distributed_lock` (`--features sync`): `store_sync::Lock` shared by workers:
//!   contention, renewal in the background, a fencing token per acquisition, and a crashed
//!   holder's lease running out.
//! - `fenced_counter` (`--features sync`): why the fencing token matters: a holder paused
//!   past its lease is refused by the resource it guards.
//! - `go_micro_port` (`--features compat`): a go-micro session handler and its Rust port
//!   side by side (Go in comments) on the `store_compat::Store` facade, and a
//!   check-then-write race in the Go code closed with the versioned API of the same table
//!   (`Store::versioned`).
//! - `cache_over_file` (`--features compat`): a namespaced cache-over-file stack read from
//!   `examples/cache_over_file.toml`, closed and reopened, with each layer's stats.
//! - `cache_over_redis` (`--features redis`, and a Redis server on 127.0.0.1:6379): the same
//!   stack with `backend = "redis"` (`examples/cache_over_redis.toml`), run as two copies of
//!   one service that claim and ship orders together.
//!
//! For example `cargo run -p examples --features sync --example distributed_lock`;
//! `--all-features` builds every example.
