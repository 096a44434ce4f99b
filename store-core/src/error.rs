//! [`Error`] and [`Result`]: every failure a storage or layer can report.

use crate::Record;

/// Everything that can go wrong in a storage call.
///
/// `NotFound` and `Conflict` are unit variants so that callers can match them directly
/// (`Err(Error::NotFound)`); the key is the one the caller passed, and the runtime's
/// `tracing` events name it. Every other variant's message names the key, pattern, name or
/// file involved and says what is accepted.
///
/// ```
/// use store_core::{Error, Record};
/// let err = Error::AlreadyExists(Box::new(Record::new("a", "b").with_version("3")));
/// assert_eq!(err.to_string(), "key \"a\" already exists (live version 3)");
/// ```
#[derive(Debug, thiserror::Error)]
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
    /// A namespace, database or table name is not accepted; the text names it and the rule.
    #[error("invalid name {0}")]
    InvalidName(String),
    /// A value the backend cannot store (for example, larger than its documented maximum).
    #[error("invalid value {0}")]
    InvalidValue(String),
    /// The storage has been closed, or its actor has stopped.
    #[error("storage is closed")]
    Closed,
    /// An I/O operation failed; `context` says which operation on which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or directory.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
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
            source,
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
