//! What network backends share (Redis, PostgreSQL): for now the [`ServerClock`] that turns
//! a caller's deadline into a time the server enforces, so that a write answered
//! [`Unavailable`](crate::Error::Unavailable) can never take effect later.

mod clock;

pub use clock::{ServerClock, MAX_DRIFT_PPM};
