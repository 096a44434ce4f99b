//! [`Error`] and [`Result`]: every failure a storage or layer can report.

use std::sync::Arc;

use crate::Record;

/// Everything that can go wrong in a storage call.
///
/// `NotFound` and `Conflict` are unit variants so that callers can match them directly
/// (`Err(Error::NotFound)`); the key is the one the caller passed, and the runtime's
/// `tracing` events name it. Every other variant's message names the key, pattern, name,
/// file or address involved and says what is accepted.
///
/// `Error` is `Clone` (I/O sources are shared through an [`Arc`]), so one failure can be
/// handed to every caller of a batch unchanged, with its source chain intact.
///
/// ```
/// use store_core::{Error, Record};
/// let err = Error::AlreadyExists(Box::new(Record::new("a", "b").with_version("3")));
/// assert_eq!(err.to_string(), "key \"a\" already exists (live version 3)");
/// assert!(!err.is_retryable());
/// assert!(Error::Unavailable("redis 127.0.0.1:6379: connection refused".into()).is_retryable());
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key does not exist, or its record has expired.
    #[error("key not found (it does not exist or has expired)")]
    NotFound,
    /// `create` found a live record under the key; it carries that record.
    #[error("key {:?} already exists (live version {})", .0.key, .0.version)]
    AlreadyExists(Box<Record>),
    /// `cas_by_version`: the stored version is not the expected one.
    #[error("version conflict: the stored version is not the expected one")]
    Conflict,
    /// The key is empty, too long or otherwise unusable; the text names the key and the rule.
    #[error("invalid key {0}")]
    InvalidKey(String),
    /// A `list_keys` pattern does not compile; the text names the pattern and the problem.
    #[error("invalid pattern {0}")]
    InvalidPattern(String),
    /// A namespace, database, table or prefix name is not accepted; the text names it and the rule.
    #[error("invalid name {0}")]
    InvalidName(String),
    /// A value the backend cannot store (for example, larger than its documented maximum).
    #[error("invalid value {0}")]
    InvalidValue(String),
    /// The storage has been closed with [`Storage::close`](crate::Storage::close).
    #[error("storage is closed")]
    Closed,
    /// The storage stopped without being closed, and will not serve again: its actor
    /// panicked, the tokio runtime that ran it shut down, or it failed for good. The text
    /// says which and what to do.
    #[error("storage stopped: {0}")]
    Stopped(String),
    /// A server could not be reached or did not answer in time; the text names the address.
    /// Retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The store refuses writes after a failure that made its durability unknown (for
    /// example a failed `fdatasync`); reads go on. The text says what failed and what to do.
    #[error("store refuses writes: {0}")]
    ReadOnly(String),
    /// The operation is not offered by this backend or stack (for example `compact` on a
    /// store that has nothing to compact); the text names it.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// An I/O operation failed; `context` says which operation on which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or directory.
        context: String,
        /// The operating system's error, shared so that the error can be cloned.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Stored data failed a check (checksum, format); the text says where.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A backend-specific failure (for example a server's error reply).
    #[error("backend error: {0}")]
    Backend(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    ///
    /// ```
    /// let e = store_core::Error::io("opening /nope", std::io::ErrorKind::NotFound.into());
    /// assert!(e.to_string().starts_with("opening /nope: "));
    /// ```
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the same call may succeed if it is simply tried again later: a server that was
    /// unreachable or slow ([`Error::Unavailable`]), or an I/O error of a transient kind
    /// (interrupted, timed out, would block). Answers such as `NotFound` and `Conflict` are
    /// not failures to retry: they describe the data, and retrying returns them again.
    ///
    /// ```
    /// use store_core::Error;
    /// assert!(Error::io("reading", std::io::ErrorKind::TimedOut.into()).is_retryable());
    /// assert!(!Error::io("reading", std::io::ErrorKind::PermissionDenied.into()).is_retryable());
    /// assert!(!Error::Conflict.is_retryable());
    /// assert!(!Error::Closed.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            Error::Unavailable(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                Interrupted
                    | TimedOut
                    | WouldBlock
                    | ConnectionReset
                    | ConnectionAborted
                    | ConnectionRefused
                    | NotConnected
                    | BrokenPipe
                    | UnexpectedEof
            ),
            _ => false,
        }
    }

    /// Whether the storage will not serve any more calls: it was closed
    /// ([`Error::Closed`]) or it stopped ([`Error::Stopped`]).
    ///
    /// ```
    /// use store_core::Error;
    /// assert!(Error::Closed.is_closed());
    /// assert!(Error::Stopped("the actor panicked".into()).is_closed());
    /// assert!(!Error::NotFound.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed | Error::Stopped(_))
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
