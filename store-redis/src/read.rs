//! Single-key reads in the caller's task: `get`, and a waiter's re-check, without the actor.
//!
//! ```text
//!  handle ──GET {p}:r:<key>──► Redis             (one command, like a plain GET)
//!     │  the record has an expiry?
//!     └──TIME, GET (one pipeline)──► Redis        (decide on the server's clock)
//! ```
//!
//! **Why this is linearizable.** Redis runs one command at a time, and every write is one
//! script call that runs atomically, so each command sees a state that some moment of the
//! server's single order had. A read sent after a write's answer arrived is run after that
//! write, whichever connection either used, so it sees it. What a read must add is the
//! expiry rule, which lives on the server's clock:
//!
//! - A record without an expiry is live as read: the answer is the state at the `GET`.
//!   A missing key is the same: no record at that moment.
//! - A record with an expiry is read again in a pipeline of `TIME` and then `GET`, and is
//!   live if its expiry is later than that `TIME` (`t0`, taken before the `GET` at `t1`).
//!   If the answer is "expired", it was: the record read at `t1` expired at or before
//!   `t0 ≤ t1`. If the answer is "live", the record read at `t1` was written at some `w`;
//!   with `w ≤ t0` it was live at `t0` (its expiry is after `t0`), and with `w > t0` it was
//!   live just after `w` (a write never stores a record that has already expired). Either
//!   moment lies inside the call. `TIME` after the `GET` would not do: a record rewritten
//!   between the two could be called expired although no moment of the call saw it so.
//!
//! The script (`script.lua`) applies the same rule with its own `TIME`, so a read here and
//! the same read in the script agree. `get_many` stays with the actor: one script call is
//! the only way to read several keys in one atomic step without a `MULTI` transaction.
//!
//! **Why not through the actor.** A read then costs a mailbox send, a wake-up of the actor
//! and one of the caller, and a script call on the server; a plain `GET` costs none of
//! that. The `redis` crate's multiplexed connection already pipelines the commands of many
//! tasks on one socket, which is the batching the actor would add. Writes keep going
//! through the actor, where one script call carries a whole batch.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Value};
use store_core::net::ServerClock;
use store_core::{Error, Record, Result};

use crate::actor::SharedClock;
use crate::layout::Layout;
use crate::link::{Lease, Link};
use crate::script;
use crate::server::Server;

/// Reads records on a connection of their own, in the caller's task.
pub(crate) struct Reader {
    link: Arc<Link>,
    clock: Arc<SharedClock>,
    record_root: Vec<u8>,
    request_timeout: Duration,
}

impl Reader {
    pub fn new(
        link: Arc<Link>,
        clock: Arc<SharedClock>,
        layout: &Layout,
        request_timeout: Duration,
    ) -> Self {
        Self {
            link,
            clock,
            record_root: layout.record_root.clone(),
            request_timeout,
        }
    }

    /// Drops the connection (when the store closes); later reads are `Closed`.
    pub fn close(&self) {
        self.link.close();
    }

    /// The live record under `key` (already validated), on the server's clock.
    pub async fn get(&self, server: &Server, key: &str) -> Result<Option<Record>> {
        let mut lease = self.link.lease()?;
        let read = async {
            let text = self
                .command(key)
                .query_async::<Value>(&mut lease.connection)
                .await
                .map_err(|e| server.error(&reading(key), &e))?;
            lease.answered();
            let record = script::decode_record(key, text)?;
            match record {
                Some(record) if record.expires_at.is_some() => {
                    self.get_on_server_clock(server, &mut lease, key).await
                }
                other => Ok(other),
            }
        };
        match tokio::time::timeout(self.request_timeout, read).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.link.timed_out(&lease);
                Err(server.timed_out(&reading(key), self.request_timeout))
            }
        }
    }

    /// `TIME`, then `GET`, in one pipeline: the record, unless it expired by that time.
    async fn get_on_server_clock(
        &self,
        server: &Server,
        lease: &mut Lease,
        key: &str,
    ) -> Result<Option<Record>> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME").add_command(self.command(key));
        let sent = Instant::now();
        let (time, text): (Value, Value) = pipe
            .query_async(&mut lease.connection)
            .await
            .map_err(|e| server.error(&reading(key), &e))?;
        lease.answered();
        let now = decode_time(time)?;
        self.clock
            .offer(ServerClock::sample(sent, micros(now), Instant::now()));
        let record = script::decode_record(key, text)?;
        Ok(record.filter(|record| record.expires_at.is_none_or(|at| at > now)))
    }

    /// `GET` of `key`'s record string.
    fn command(&self, key: &str) -> Cmd {
        let mut cmd = redis::cmd("GET");
        script::record_key(&mut cmd, &self.record_root, key);
        cmd
    }
}

/// Microseconds since the Unix epoch (0 before it).
pub(crate) fn micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Samples the server's clock with one `TIME` on `lease` (at connect, before any write).
pub(crate) async fn sample_clock(
    server: &Server,
    lease: &mut Lease,
    timeout: Duration,
) -> Result<ServerClock> {
    let sent = Instant::now();
    let time = tokio::time::timeout(
        timeout,
        redis::cmd("TIME").query_async::<Value>(&mut lease.connection),
    )
    .await
    .map_err(|_| server.timed_out("reading the server's clock", timeout))?
    .map_err(|e| server.error("reading the server's clock", &e))?;
    let received = Instant::now();
    lease.answered();
    Ok(ServerClock::sample(
        sent,
        micros(decode_time(time)?),
        received,
    ))
}

/// What a failed read was doing, for its error.
fn reading(key: &str) -> String {
    format!("reading the record of key {key:?}")
}

/// `TIME`'s `[seconds, microseconds]` as a time.
fn decode_time(time: Value) -> Result<SystemTime> {
    let parts = match &time {
        Value::Array(parts) if parts.len() == 2 => parts,
        _ => return Err(bad_time(&time)),
    };
    let number = |part: &Value| match part {
        Value::BulkString(text) => std::str::from_utf8(text).ok()?.parse::<u64>().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    match (number(&parts[0]), number(&parts[1])) {
        (Some(seconds), Some(micros)) => UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds) + Duration::from_micros(micros))
            .ok_or_else(|| bad_time(&time)),
        _ => Err(bad_time(&time)),
    }
}

fn bad_time(time: &Value) -> Error {
    Error::Backend(format!(
        "store-redis: the server answered TIME with {time:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn server_time_decodes_to_the_microsecond() {
        let time = Value::Array(vec![text("1764600000"), text("123456")]);
        assert_eq!(
            decode_time(time).unwrap(),
            UNIX_EPOCH + Duration::from_micros(1_764_600_000_123_456)
        );
        assert!(decode_time(Value::Array(vec![text("x"), text("1")])).is_err());
        assert!(decode_time(Value::Nil).is_err());
    }
}
