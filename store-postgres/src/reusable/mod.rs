//! Pieces every network backend needs, kept apart so they can move to store-core: nothing
//! here knows PostgreSQL.
//!
//! - [`backoff`]: the pause between reconnect attempts (exponential, capped, jittered).
//! - [`mailbox`]: draining an actor's bounded mailbox in batches, with a cap on what is
//!   waiting to be dispatched (back-pressure on callers).

pub(crate) mod backoff;
pub(crate) mod mailbox;
