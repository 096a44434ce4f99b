//! Draining an actor's bounded mailbox in batches, with a cap on what is waiting to be
//! dispatched (back-pressure on callers). Nothing here knows PostgreSQL. The reconnect
//! backoff is `store_core::backoff`, shared with store-redis.

pub(crate) mod mailbox;
