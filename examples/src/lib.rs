//! Runnable examples for the workspace; see `examples/examples/*.rs` and run one with
//! `cargo run -p examples --example NAME`.
//!
//! - `quickstart`: the versioned API on the in-memory backend: create, get, put,
//!   compare-and-set and a wait woken by a put.
