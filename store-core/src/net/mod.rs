//! What network backends share (Redis, PostgreSQL):
//!
//! - the [`mailbox`] between a store's handles and its actor (bounded, each call with a
//!   deadline counted from its caller's start, calls whose caller gave up never sent, stop
//!   reasons);
//! - the [`Link`], a connection that is replaced when it stops answering, so one stuck
//!   socket costs at most one request timeout;
//! - the [`ServerClock`] that turns a caller's deadline into a time the server enforces, so
//!   that a write answered [`Unavailable`](crate::Error::Unavailable) can never take effect
//!   later.

mod clock;
mod link;
pub mod mailbox;

pub use clock::{ServerClock, MAX_DRIFT_PPM};
pub use link::{Lease, Link};
