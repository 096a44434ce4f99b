//! [`CliError`]: why a storectl command failed, and the exit status that says so.

use std::path::PathBuf;

use store_compat::config::ConfigError;

/// Why a command failed. [`CliError::exit_code`] is 2 for usage errors and 1 for everything
/// else; every message names the key, field, file or line involved.
///
/// ```
/// use store_cli::CliError;
/// let err = CliError::store("read micro/micro key \"k\"", store_core::Error::NotFound);
/// assert_eq!(err.exit_code(), 1);
/// assert!(err.to_string().starts_with("read micro/micro key \"k\": key not found"));
/// assert_eq!(CliError::Usage("bad".into()).exit_code(), 2);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line is wrong in a way the parser could not see (for example `--partial`
    /// with `--verify` on stdin). Exit status 2.
    #[error("{0}")]
    Usage(String),
    /// The configuration could not be read, parsed or built.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A store call failed; `context` says which command, scope and key.
    #[error("{context}: {source}")]
    Store {
        /// The command and what it addressed.
        context: String,
        /// The store's error.
        #[source]
        source: store_core::Error,
    },
    /// Reading or writing a local file (a snapshot, the terminal) failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file (`-` for stdin/stdout).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot file is malformed, damaged or truncated.
    #[error("snapshot {}: {message}", path.display())]
    Snapshot {
        /// The snapshot file (`-` for stdin).
        path: PathBuf,
        /// What is wrong, naming the line.
        message: String,
    },
    /// `restore --verify` found records that do not read back as the snapshot holds them.
    #[error("verify: {0}")]
    Verify(String),
}

impl CliError {
    /// A store error with what the command was doing.
    ///
    /// ```
    /// let err = store_cli::CliError::store("compact", store_core::Error::Closed);
    /// assert_eq!(err.to_string(), "compact: storage is closed");
    /// ```
    pub fn store(context: impl Into<String>, source: store_core::Error) -> Self {
        CliError::Store {
            context: context.into(),
            source,
        }
    }

    /// The process exit status for this error: 2 for usage errors, 1 otherwise.
    ///
    /// ```
    /// assert_eq!(store_cli::CliError::Verify("x".into()).exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;
