//! `storectl`: the operator's command for any store stack a TOML file describes.
//!
//! ```text
//! storectl --config store.toml read user/1
//! storectl --config store.toml write user/1 alice --ttl 1h --metadata age=37
//! storectl --config store.toml snapshot backup.snap
//! storectl --config redis.toml restore backup.snap --verify
//! ```
//!
//! The binary parses its arguments into [`Cli`] and hands them to [`run`]; the pieces it
//! uses are public so that tests and other tools can use them in-process:
//!
//! - [`cli`]: every command and flag (`storectl help COMMAND` prints each with an example);
//! - [`snapshot`]: the snapshot format (versioned JSON lines with checksums), the streaming
//!   snapshot and the checked restore;
//! - [`scopes`]: `databases` and `tables` by skipping through the ordered listing;
//! - [`value`]: how values are shown (UTF-8 as text, anything else base64 with a marker);
//! - [`progress`]: the progress bar, drawn only on a terminal;
//! - [`CliError`]: failures and their exit status.
//!
//! # Exit status
//!
//! 0 on success; 1 when the store, the configuration, a file or a snapshot fails (the
//! message on stderr names the key, field, file or line); 2 on a usage error (an unknown
//! command or flag, a bad value for a flag, no configuration given).
//!
//! # Decisions
//!
//! - The go-micro commands (`read`, `write`, `delete`, `list`) work on one database and
//!   table (`--database`/`--table`, default `micro`/`micro`), like `micro store`. The
//!   versioned commands (`get`, `put`, `create`, `cas`, `keys`, `watch`) work on the same
//!   keys, or with `--raw` on the whole stack below the facade (keys as stored). A
//!   listing of one database and table (`keys`, `list`) that finds nothing says on stderr
//!   where it looked and what `--raw` would match (table output only).
//! - `--ttl` is at most 100 years (of 365 days), the configuration's rule for durations: a
//!   longer one is a usage error, never a record stored with no expiry. go-micro's
//!   `--expiry` is a usage error that points to `--ttl`.
//! - `snapshot` and `restore` work on the whole stack below the facade (every record, also
//!   those written there directly), or on one database/table with `snapshot --database`.
//! - A snapshot holds records of at most 16 MiB (value and metadata) unless the operator
//!   chooses another size, from 64 KiB to 1 GiB, with `--max-record-size` (bytes, or with
//!   a `KiB`, `MiB` or `GiB` suffix). `restore` has the same flag: it bounds the memory one
//!   line may take (four times the size), so that a damaged file costs no more than the
//!   operator allowed. A snapshot taken with another size names it in its header; `restore`
//!   reads the file with that size, and refuses it up front when it is more than allowed.
//! - `watch` ends when the record is deleted or expires (waiting for a missing key would
//!   need polling), and on a missing key fails with exit status 1. Its table has one
//!   header, printed with the first row.
//! - `write`, `delete`, `compact` print nothing on success; `put`, `create`, `cas` print
//!   the new version; `snapshot` and `restore` print a summary line on stderr (records,
//!   time, peak memory) and, with `--output json`, the summary as JSON on stdout.
//! - A restored record gets the time it had left when the snapshot was taken, counted
//!   from the restore, and a new version from the target (versions are the target's).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
mod error;
pub mod progress;
mod run;
pub mod scopes;
pub mod snapshot;
pub mod value;

pub use cli::Cli;
pub use error::{CliError, Result};
pub use run::run;
