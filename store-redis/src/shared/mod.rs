//! The batching mailbox between handles and the actor. It knows nothing of Redis; the
//! reconnect backoff that used to sit beside it is `store_core::backoff`, shared with
//! store-postgres.

pub mod mailbox;
