//! store-redis (crate docs to come)

#![forbid(unsafe_code)]

mod actor;
mod command;
mod handle;
mod layout;
mod options;
mod script;
mod server;
pub mod shared;
mod stats;
mod subscription;

pub use handle::{RedisStorage, MAX_VALUE_LEN};
pub use options::RedisOptions;
#[cfg(feature = "testkit")]
pub mod testing;
