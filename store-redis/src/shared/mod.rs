//! Pieces that every network backend needs, not only Redis: the batching mailbox between
//! handles and the actor, and the reconnect backoff. They know nothing of Redis, and are
//! kept here, apart, so that they can move into store-core once the PostgreSQL backend
//! needs them too.

pub mod backoff;
pub mod mailbox;
