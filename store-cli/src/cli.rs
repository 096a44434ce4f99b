//! The command line: every command and flag, with its help and an example.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use store_core::config::{DurationError, MAX_DURATION};

use crate::snapshot::RecordLimit;

/// `storectl -h`'s description.
const ABOUT: &str =
    "storectl: look inside a store, fix a record, move data between backends, back it up";

/// `storectl --help`'s description.
const LONG_ABOUT: &str = "storectl: look inside a store, fix a record, move data between \
    backends, back it up.\n\n\
    The store is the stack a TOML file describes (backend memory, file, redis or postgres, \
    with optional cache and namespace layers; see the store-compat configuration reference).";

/// storectl: look inside a store, fix a record, move data between backends, back it up.
///
/// The store is the stack a TOML file describes (backend memory, file, redis or postgres,
/// with optional cache and namespace layers; see the store-compat configuration reference).
///
/// ```
/// use clap::Parser;
/// let cli = store_cli::Cli::parse_from(["storectl", "-c", "store.toml", "read", "user/1", "-o", "json"]);
/// assert_eq!(cli.output, store_cli::cli::Output::Json);
/// assert!(matches!(cli.command, store_cli::cli::Command::Read { .. }));
/// ```
#[derive(Debug, Parser)]
// The help text is given here: without `about` and `long_about`, clap prints this doc
// comment, whose example is for rustdoc.
#[command(
    name = "storectl",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = "Examples:\n  storectl --config store.toml read user/1\n  \
                  STORECTL_CONFIG=store.toml storectl list --prefix user/ --output json\n  \
                  storectl --config old.toml snapshot backup.snap\n  \
                  storectl --config new.toml restore backup.snap --verify"
)]
pub struct Cli {
    /// The store configuration (TOML).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "STORECTL_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// How results are printed: a table for people, or one JSON object per line.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
///
/// ```
/// use clap::Parser;
/// let cli = store_cli::Cli::parse_from(["storectl", "list"]);
/// assert_eq!(cli.output, store_cli::cli::Output::Table);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns (values that are not UTF-8 as `base64:...`).
    Table,
    /// One JSON object per line (values that are not UTF-8 as `value_base64`).
    Json,
}

/// The facade's database and table (go-micro's `--database`/`--table`).
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::Command;
/// let cli = store_cli::Cli::parse_from(["storectl", "delete", "k", "--database", "shop", "-t", "orders"]);
/// let Command::Delete { scope, .. } = cli.command else { unreachable!() };
/// assert_eq!((scope.database.as_deref(), scope.table.as_deref()), (Some("shop"), Some("orders")));
/// ```
#[derive(Clone, Debug, Default, Args)]
pub struct Scope {
    /// The database (default: micro).
    #[arg(long, short = 'd', value_name = "D")]
    pub database: Option<String>,
    /// The table (default: micro).
    #[arg(long, short = 't', value_name = "T")]
    pub table: Option<String>,
}

/// Where the versioned commands work: a facade scope, or the whole stack.
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::Command;
/// let cli = store_cli::Cli::parse_from(["storectl", "get", "micro/micro/k", "--raw"]);
/// let Command::Get { scope, .. } = cli.command else { unreachable!() };
/// assert!(scope.raw);
/// assert!(store_cli::Cli::try_parse_from(["storectl", "get", "k", "--raw", "-t", "t"]).is_err());
/// ```
#[derive(Clone, Debug, Default, Args)]
pub struct VersionedScope {
    /// Where: the database and table.
    #[command(flatten)]
    pub scope: Scope,
    /// Address the whole stack below the facade (keys as stored: `database/table/key`,
    /// or anything written there directly) instead of one database and table.
    #[arg(long, conflicts_with_all = ["database", "table"])]
    pub raw: bool,
}

/// A value given on the command line.
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::Command;
/// let cli = store_cli::Cli::parse_from(["storectl", "put", "k", "AP8=", "--base64"]);
/// let Command::Put { value, .. } = cli.command else { unreachable!() };
/// assert!(value.base64);
/// ```
#[derive(Clone, Debug, Args)]
pub struct ValueArg {
    /// The value (UTF-8 text, or base64 with --base64).
    #[arg(value_name = "VALUE")]
    pub value: String,
    /// VALUE is standard base64 (for values that are not UTF-8).
    #[arg(long)]
    pub base64: bool,
}

/// `--ttl`, and go-micro's `--expiry` refused with a usage error that points to it.
///
/// ```
/// use clap::Parser;
/// use std::time::Duration;
/// use store_cli::cli::TtlArg;
///
/// #[derive(Parser)]
/// struct Write {
///     #[command(flatten)]
///     ttl: TtlArg,
/// }
/// let write = Write::parse_from(["write", "--ttl", "1h 30m"]);
/// assert_eq!(write.ttl.ttl, Some(Duration::from_secs(5400)));
/// assert!(Write::try_parse_from(["write", "--expiry", "1h"]).is_err());
/// ```
#[derive(Clone, Debug, Args)]
pub struct TtlArg {
    /// Time to live, such as 30s, 1h or "1h 30m", at most 100 years (default: never
    /// expires).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// go-micro's name for --ttl: refused with a usage error that says so.
    #[arg(
        long,
        hide = true,
        value_parser = go_micro_expiry,
        num_args = 0..=1,
        default_missing_value = "",
        value_name = "DURATION"
    )]
    pub expiry: Option<Infallible>,
}

/// The order of a read.
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::{Command, OrderArg};
/// let cli = store_cli::Cli::parse_from(["storectl", "list", "--order", "desc"]);
/// let Command::List { paging, .. } = cli.command else { unreachable!() };
/// assert_eq!(paging.order, OrderArg::Desc);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Ascending by key bytes.
    Asc,
    /// Descending.
    Desc,
}

/// How many results of a `read` or `list`, and in which order (the same flags for both;
/// `list` says "keys" where `read` says "records" in their help).
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::{Command, OrderArg};
/// let cli = store_cli::Cli::parse_from(["storectl", "read", "user/", "--prefix", "--limit", "10", "--offset", "5", "--order", "desc"]);
/// let Command::Read { paging, .. } = cli.command else { unreachable!() };
/// assert_eq!((paging.limit, paging.offset, paging.order), (10, 5, OrderArg::Desc));
/// ```
#[derive(Clone, Copy, Debug, Args)]
pub struct Paging {
    /// At most N records (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub limit: usize,
    /// Skip the first N records.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
    /// Key order.
    #[arg(long, value_enum, default_value_t = OrderArg::Asc)]
    pub order: OrderArg,
}

/// Every command.
///
/// ```
/// use clap::Parser;
/// use store_cli::cli::Command;
/// let cli = store_cli::Cli::parse_from(["storectl", "restore", "-", "--verify"]);
/// assert!(matches!(cli.command, Command::Restore { verify: true, .. }));
/// ```
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a record, or the records whose key starts (--prefix) or ends (--suffix) with KEY.
    #[command(after_help = "Examples:\n  storectl -c store.toml read user/1\n  \
                            storectl -c store.toml read user/ --prefix --limit 10 --order desc -t users")]
    Read {
        /// The key (with --prefix/--suffix: the text keys start/end with; may be empty).
        key: String,
        /// Read every record whose key starts with KEY.
        #[arg(long)]
        prefix: bool,
        /// Read every record whose key ends with KEY.
        #[arg(long)]
        suffix: bool,
        /// How many records, and in which order.
        #[command(flatten)]
        paging: Paging,
        /// Where: the database and table.
        #[command(flatten)]
        scope: Scope,
    },
    /// Write a record (value, metadata, expiry), replacing any record under KEY.
    #[command(
        after_help = "Example:\n  storectl -c store.toml write user/1 alice --ttl 1h --metadata age=37 --metadata 'tags=[\"admin\"]'"
    )]
    Write {
        /// The key.
        key: String,
        /// The value.
        #[command(flatten)]
        value: ValueArg,
        /// The record's time to live.
        #[command(flatten)]
        ttl: TtlArg,
        /// A metadata entry NAME=JSON (a JSON value; text that is not JSON is taken as a
        /// string). Repeat for more.
        #[arg(long, short = 'm', value_parser = parse_metadata, value_name = "NAME=JSON")]
        metadata: Vec<(String, Value)>,
        /// Where: the database and table.
        #[command(flatten)]
        scope: Scope,
    },
    /// Delete a record (a missing key is not an error, as in go-micro).
    #[command(after_help = "Example:\n  storectl -c store.toml delete user/1 --table users")]
    Delete {
        /// The key.
        key: String,
        /// Where: the database and table.
        #[command(flatten)]
        scope: Scope,
    },
    /// List keys, optionally those with a prefix and/or suffix.
    #[command(
        after_help = "Example:\n  storectl -c store.toml list --prefix user/ --limit 100",
        // The paging flags count keys here, not records.
        mut_arg("limit", |arg| arg.help("At most N keys (0: no limit)")),
        mut_arg("offset", |arg| arg.help("Skip the first N keys"))
    )]
    List {
        /// Only keys that start with P.
        #[arg(long, default_value = "", value_name = "P")]
        prefix: String,
        /// Only keys that end with S.
        #[arg(long, default_value = "", value_name = "S")]
        suffix: String,
        /// How many keys, and in which order.
        #[command(flatten)]
        paging: Paging,
        /// Where: the database and table.
        #[command(flatten)]
        scope: Scope,
    },
    /// List the databases that hold records.
    #[command(after_help = "Example:\n  storectl -c store.toml databases")]
    Databases,
    /// List the tables of a database that hold records.
    #[command(after_help = "Example:\n  storectl -c store.toml tables --database shop")]
    Tables {
        /// The database (default: micro).
        #[arg(long, short = 'd', value_name = "D")]
        database: Option<String>,
    },
    /// Versioned API: a record with its version and expiry (value bytes as stored).
    #[command(
        after_help = "Examples:\n  storectl -c store.toml get job-7 --table jobs\n  \
                            storectl -c store.toml get micro/micro/user/1 --raw"
    )]
    Get {
        /// The key.
        key: String,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Versioned API: store a value (replacing any), print its new version.
    #[command(
        after_help = "Example:\n  storectl -c store.toml put job-7 queued --ttl 10m --table jobs"
    )]
    Put {
        /// The key.
        key: String,
        /// The value.
        #[command(flatten)]
        value: ValueArg,
        /// The record's time to live.
        #[command(flatten)]
        ttl: TtlArg,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Versioned API: store a value only if KEY has no live record; print its version.
    #[command(after_help = "Example:\n  storectl -c store.toml create lock/backup me --ttl 1h")]
    Create {
        /// The key.
        key: String,
        /// The value.
        #[command(flatten)]
        value: ValueArg,
        /// The record's time to live.
        #[command(flatten)]
        ttl: TtlArg,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Versioned API: replace KEY's value only if its version is still V; print the new one.
    /// The expiry is replaced too (none unless --ttl).
    #[command(
        after_help = "Example:\n  storectl -c store.toml cas job-7 running --version 12 --table jobs"
    )]
    Cas {
        /// The key.
        key: String,
        /// The value.
        #[command(flatten)]
        value: ValueArg,
        /// The version the record must still have.
        #[arg(long, value_name = "V")]
        version: String,
        /// The record's time to live.
        #[command(flatten)]
        ttl: TtlArg,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Versioned API: keys matching a glob, in ascending order.
    // The help text names the glob's syntax, which rustdoc would take for links.
    #[command(
        about = "Versioned API: keys matching a glob (* ? [abc] [a-z] [!a] {a,b} \\ escapes), ascending"
    )]
    #[command(after_help = "Examples:\n  storectl -c store.toml keys 'user/*'\n  \
                            storectl -c store.toml keys '*' --raw")]
    Keys {
        /// The glob pattern.
        pattern: String,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Versioned API: print KEY's record, then each change as it happens (a write, or the
    /// deletion or expiry that ends the watch). Quick changes may be seen as one.
    #[command(
        after_help = "Example:\n  storectl -c redis.toml watch leader --table elections --count 1"
    )]
    Watch {
        /// The key.
        key: String,
        /// Stop after N changes (default: watch until the record is gone).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Where: the database and table.
        #[command(flatten)]
        scope: VersionedScope,
    },
    /// Write every live record (value bytes, metadata, time left) to FILE (`-`: stdout).
    #[command(
        after_help = "Examples:\n  storectl -c store.toml snapshot backup.snap\n  \
                            storectl -c store.toml snapshot - --database shop | gzip > shop.snap.gz\n  \
                            storectl -c file.toml snapshot media.snap --max-record-size 256MiB\n\n\
                            The format is versioned JSON lines with a checksum per line and an end \
                            line with the count (see the store-cli docs). A file is written under a \
                            temporary name and renamed when complete. Records of more than 16 MiB \
                            (value and metadata) need a larger --max-record-size, here and to \
                            restore the snapshot."
    )]
    Snapshot {
        /// The snapshot file, or `-` for stdout.
        file: PathBuf,
        /// Only this database.
        #[arg(long, short = 'd', value_name = "D")]
        database: Option<String>,
        /// Only this table (with --database).
        #[arg(long, short = 't', value_name = "T", requires = "database")]
        table: Option<String>,
        /// The largest record to take, value and metadata as stored (bytes, or with a KiB,
        /// MiB or GiB suffix; 64KiB to 1GiB). A larger one stops the snapshot, naming its
        /// key. A size other than the default is written in the snapshot's header: restoring
        /// it needs at least as much.
        #[arg(
            long,
            value_parser = parse_record_limit,
            default_value = "16MiB",
            value_name = "SIZE"
        )]
        max_record_size: RecordLimit,
    },
    /// Restore a snapshot from FILE (`-`: stdin): checked whole first, nothing written if bad.
    #[command(
        after_help = "Examples:\n  storectl -c redis.toml restore backup.snap --verify\n  \
                            gunzip -c shop.snap.gz | storectl -c store.toml restore -\n\n\
                            Records replace those with the same keys; others are left alone. \
                            Each record gets the time it had left when the snapshot was taken. \
                            From stdin the snapshot is staged in a temporary file (see \
                            --staging-dir) while it is checked. A snapshot taken with a \
                            --max-record-size above 16 MiB says so in its header and needs at \
                            least as much here, such as:\n  \
                            storectl -c redis.toml restore media.snap --max-record-size 256MiB"
    )]
    Restore {
        /// The snapshot file, or `-` for stdin.
        file: PathBuf,
        /// Restore while reading and stop at the first bad line, keeping the records before
        /// it (default: check the whole snapshot first and restore nothing if it is bad).
        #[arg(long)]
        partial: bool,
        /// Read every record back afterwards and compare it with the snapshot.
        #[arg(long)]
        verify: bool,
        /// Where a snapshot read from stdin is staged (default: the temporary directory).
        #[arg(long, value_name = "DIR")]
        staging_dir: Option<PathBuf>,
        /// The largest record to accept (bytes, or with a KiB, MiB or GiB suffix; 64KiB to
        /// 1GiB); a line of the snapshot may take four times as much memory. A snapshot
        /// whose header names a larger size is refused before any record is read; one that
        /// names a smaller size is read with that one.
        #[arg(
            long,
            value_parser = parse_record_limit,
            default_value = "16MiB",
            value_name = "SIZE"
        )]
        max_record_size: RecordLimit,
    },
    /// What each layer of the stack reports (cache hits, file segments, ...).
    #[command(after_help = "Example:\n  storectl -c store.toml stats --output json")]
    Stats,
    /// Reclaim the space of overwritten, deleted and expired records now (file backend).
    #[command(after_help = "Example:\n  storectl -c store.toml compact")]
    Compact,
}

/// A time to live: a humantime duration above zero and at most [`MAX_DURATION`] (100
/// years), the configuration's rule. A longer one would overflow the clock it is added to,
/// and a record stored with no expiry instead would be the opposite of what was asked.
fn parse_duration(text: &str) -> Result<Duration, String> {
    store_core::config::parse_duration(text).map_err(|error| match error {
        DurationError::Syntax(reason) => {
            format!("{reason} (accepted: a duration such as 30s, 5m, 1h or \"1h 30m\")")
        }
        DurationError::Zero => {
            "accepted is a duration above zero (leave the flag out for a record that never \
             expires)"
                .to_owned()
        }
        DurationError::TooLong => format!(
            "accepted is a duration of at most {}days ({} years of 365 days; leave the flag \
             out for a record that never expires)",
            MAX_DURATION.as_secs() / 86_400,
            MAX_DURATION.as_secs() / (365 * 86_400)
        ),
        other => other.to_string(),
    })
}

/// A size in bytes: a whole number, optionally followed by `KiB`, `MiB` or `GiB` (1024,
/// 1024², 1024³; any case, a space allowed before the unit). Decimal units (`KB`, `MB`,
/// `GB`) and bare `K`/`M`/`G` are refused rather than guessed at.
fn parse_size(text: &str) -> Result<u64, String> {
    const ACCEPTED: &str = "accepted: bytes as a whole number, or with a KiB, MiB or GiB \
                            suffix, such as 65536, 64KiB, 16MiB or 1GiB";
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "{text:?} does not start with a whole number ({ACCEPTED})"
        ));
    }
    let too_large = || format!("{text:?} is too large ({ACCEPTED})");
    let number: u64 = number.parse().map_err(|_| too_large())?;
    let unit = unit.trim_start();
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "k" | "kb" | "m" | "mb" | "g" | "gb" => {
            return Err(format!(
                "{text:?}: {unit:?} could mean powers of 1000 or of 1024; write KiB, MiB or \
                 GiB (powers of 1024)"
            ));
        }
        _ => return Err(format!("{text:?}: unknown unit {unit:?} ({ACCEPTED})")),
    };
    number.checked_mul(1 << shift).ok_or_else(too_large)
}

/// `--max-record-size`: a size ([`parse_size`]) within the limits a snapshot takes.
fn parse_record_limit(text: &str) -> Result<RecordLimit, String> {
    RecordLimit::new(parse_size(text)?).map_err(|reason| format!("{text:?} is {reason}"))
}

/// go-micro's `--expiry`, which is `--ttl` here: always a usage error that says so (without
/// it, clap would suggest passing `--expiry` as a value with `-- --expiry`).
fn go_micro_expiry(text: &str) -> Result<Infallible, String> {
    let duration = if text.is_empty() { "DURATION" } else { text };
    Err(format!(
        "go-micro's --expiry is --ttl in storectl: use --ttl {duration}"
    ))
}

/// `NAME=JSON`; text after `=` that is not JSON is a string.
fn parse_metadata(text: &str) -> Result<(String, Value), String> {
    let (name, json) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=JSON (such as age=37 or name=alice)"))?;
    if name.is_empty() {
        return Err(format!("{text:?}: the name before '=' is empty"));
    }
    let value = serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned()));
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        for command in Cli::command().get_subcommands() {
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("storectl"),
                "{} has no example",
                command.get_name()
            );
        }
    }

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("0", 0),
            ("65536", 65536),
            ("64KiB", 64 << 10),
            ("16MiB", 16 << 20),
            ("16 mib", 16 << 20),
            (" 20MIB ", 20 << 20),
            ("1GiB", 1 << 30),
            ("512b", 512),
            ("17179869183GiB", 17179869183 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for (text, says) in [
            ("", "does not start with a whole number"),
            ("MiB", "does not start with a whole number"),
            ("-1", "does not start with a whole number"),
            ("1.5GiB", "unknown unit \".5GiB\""),
            ("16MB", "\"MB\" could mean powers of 1000 or of 1024"),
            ("16M", "write KiB, MiB or GiB"),
            ("16 TiB", "unknown unit \"TiB\""),
            ("1GiB1", "unknown unit"),
            ("17179869184GiB", "too large"),
            ("99999999999999999999", "too large"),
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn record_limits() {
        assert_eq!(
            parse_record_limit("20MiB").unwrap(),
            RecordLimit::new(20 << 20).unwrap()
        );
        assert_eq!(parse_record_limit("1GiB").unwrap(), RecordLimit::LARGEST);
        assert_eq!(parse_record_limit("64KiB").unwrap(), RecordLimit::SMALLEST);
        for text in ["2GiB", "1073741825", "63KiB", "0"] {
            let err = parse_record_limit(text).unwrap_err();
            assert!(
                err.contains("accepted is a size from 64 KiB (65536) to 1 GiB (1073741824 bytes"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn metadata_values() {
        assert_eq!(parse_metadata("n=37").unwrap().1, serde_json::json!(37));
        assert_eq!(
            parse_metadata("n=alice").unwrap().1,
            serde_json::json!("alice")
        );
        assert_eq!(
            parse_metadata("n={\"a\":[1]}").unwrap().1,
            serde_json::json!({"a": [1]})
        );
        assert!(parse_metadata("n").is_err());
        assert!(parse_metadata("=1").is_err());
    }
}
