//! Runnable examples for the workspace; see `examples/examples/*.rs` and run one with
//! `cargo run -p examples --example NAME`.
//!
//! - `quickstart`: the versioned API on the in-memory backend: create, get, put,
//!   compare-and-set and a wait woken by a put.
//! - `distributed_lock`: `store_sync::Lock` shared by workers: contention, renewal in the
//!   background, a fencing token per acquisition, and a crashed holder's lease running out.
//! - `fenced_counter`: why the fencing token matters: a holder paused past its lease is
//!   refused by the resource it guards.
//! - `go_micro_port`: a go-micro session handler and its Rust port side by side (Go in
//!   comments) on the `store_compat::Store` facade, and a check-then-write race in the Go
//!   code closed with the versioned API of the same table (`Store::versioned`).
//! - `cache_over_file`: a namespaced cache-over-file stack read from
//!   `examples/cache_over_file.toml`, closed and reopened, with each layer's stats.
