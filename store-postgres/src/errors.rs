//! Turning driver and pool failures into [`store_core::Error`]s that name the server.
//!
//! The rule: anything that says the server could not be reached, went away, is starting or
//! stopping, or did not answer in time is [`Error::Unavailable`] (retryable); an error the
//! server raised about a statement is [`Error::Backend`] with its SQLSTATE. Either way the
//! message starts with `postgres <host:port/database>` so operators know which server.

use std::error::Error as _;

use store_core::Error;
use tokio_postgres::error::SqlState;

/// The SQLSTATE the deadline check raises (see `schema.rs`): a write transaction reached
/// the server after its deadline and was rolled back.
pub(crate) const DEADLINE_STATE: &str = "SPD01";

/// Whether `error` is the deadline check refusing a late write.
pub(crate) fn is_late(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.code().code() == DEADLINE_STATE)
}

/// An error from the driver, `context` saying which server and what was being done.
pub(crate) fn from_postgres(context: &str, error: &tokio_postgres::Error) -> Error {
    if let Some(db) = error.as_db_error() {
        let text = format!(
            "{context}: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        );
        if db.code() == &SqlState::READ_ONLY_SQL_TRANSACTION {
            // A standby (or a read-only session): every retry is refused alike.
            return Error::Backend(format!(
                "{text}: the server is a standby or read-only and refuses writes; connect to \
                 the primary (with several hosts, add target_session_attrs=read-write to the \
                 URL, which also follows a promotion)"
            ));
        }
        if db.code().code() == DEADLINE_STATE {
            return Error::Unavailable(format!(
                "{context}: the write reached the server after its deadline (the connection \
                 was slow or stalled); it was rolled back and not applied"
            ));
        }
        return if unavailable_state(db.code()) {
            Error::Unavailable(text)
        } else {
            Error::Backend(text)
        };
    }
    // Not the server's answer: the connection failed, closed or timed out.
    Error::Unavailable(format!("{context}: {}", chain(error)))
}

/// Whether a failed statement should be tried again alone: the server rolled the batch
/// back for a reason that has nothing to do with this statement (a deadlock between
/// batches, a serialization failure), or the statement itself failed. Both are answered by
/// running each call on its own; only a lost connection is not (its outcome is unknown).
pub(crate) fn is_statement_error(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| !unavailable_state(db.code()) && db.code().code() != DEADLINE_STATE)
}

/// SQLSTATEs that mean "the server, not the statement": shutting down, starting up, too
/// many connections, connection failures.
fn unavailable_state(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") // connection exception
        || code.starts_with("57P") // operator intervention: admin/crash shutdown, cannot connect now
        || code == SqlState::TOO_MANY_CONNECTIONS.code()
        || code == SqlState::CANNOT_CONNECT_NOW.code()
}

/// The error with its sources, which say what actually happened ("connection refused").
fn chain(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An error from the pool (it could not hand out a connection).
pub(crate) fn from_pool(context: &str, error: crate::pool::PoolError) -> Error {
    use deadpool::managed::PoolError;
    match error {
        PoolError::Backend(error) => from_postgres(context, &error),
        PoolError::Timeout(kind) => Error::Unavailable(format!(
            "{context}: no connection within the timeout ({kind:?})"
        )),
        PoolError::Closed => Error::Closed,
        other => Error::Unavailable(format!("{context}: {other}")),
    }
}

/// The message for a round of reads that did not finish in time.
pub(crate) fn timed_out(context: &str, timeout: std::time::Duration) -> Error {
    Error::Unavailable(format!(
        "{context}: no answer within {} (operation_timeout); the statements were cancelled \
         and the connection dropped",
        humantime::format_duration(timeout)
    ))
}

/// The message for a round of writes that did not finish in time, once its session was
/// dealt with (see `Context::end_session`).
pub(crate) fn writes_timed_out(
    context: &str,
    timeout: std::time::Duration,
    ended: &crate::context::Ended,
) -> Error {
    let after = match ended {
        crate::context::Ended::Terminated => {
            "its session was ended, so each write in it was applied before this answer or \
             never will be"
                .to_owned()
        }
        crate::context::Ended::Unknown(why) => format!(
            "its session could not be ended ({why}); the writes carry a deadline on the \
             server's clock, so none commits after it"
        ),
    };
    Error::Unavailable(format!(
        "{context}: no answer within {} (operation_timeout); {after}",
        humantime::format_duration(timeout)
    ))
}

/// A call that waited in the mailbox past its deadline (its start plus the operation
/// timeout), answered without being sent: it never happens.
pub(crate) fn queued_too_long(context: &str, timeout: std::time::Duration) -> Error {
    Error::Unavailable(format!(
        "{context}: the call waited longer than {} (operation_timeout) for its turn and was \
         not sent, so it never happens; the store is busier than it can serve",
        humantime::format_duration(timeout)
    ))
}
