//! The names a store uses in the database, and the server's address for messages.
//!
//! A store owns four objects in its schema: the table, its version sequence, its expiry
//! index, and one row in the shared format table. Every derived name contains a `:`,
//! which no table name may contain (names are `[A-Za-z0-9._-]+`), so no store's objects can
//! collide with another store's table, whatever the names. Identifiers are always quoted,
//! so case is kept and `a-b` and `a.b` stay two tables (go-micro's store maps both to
//! `a_b`). PostgreSQL cuts identifiers at 63 bytes without an error, which would make two
//! long names one table; a table name is therefore limited to [`MAX_TABLE_LEN`] bytes, so
//! every derived name fits.

use store_core::{Error, Result};

/// The longest table name, in bytes: PostgreSQL keeps 63 bytes of an identifier, and the
/// longest derived name (`<table>:expires`) and the notification channel must fit.
pub const MAX_TABLE_LEN: usize = 48;

/// The longest schema name, in bytes (PostgreSQL's identifier limit).
pub const MAX_SCHEMA_LEN: usize = 63;

/// The table shared by every store of a schema, recording each table's format version.
pub(crate) const FORMAT_TABLE: &str = "store_postgres:formats";

/// The table shared by every store of a schema, recording the server history each table's
/// versions were last handed out on (see `schema.rs`).
pub(crate) const HISTORY_TABLE: &str = "store_postgres:histories";

/// Checks a table name: a namespace name (see [`store_core::validate_name`]) of at most
/// [`MAX_TABLE_LEN`] bytes.
///
/// ```
/// assert!(store_postgres::validate_table("orders-2024.eu").is_ok());
/// assert!(store_postgres::validate_table("orders;drop").is_err());
/// assert!(store_postgres::validate_table(&"t".repeat(49)).is_err());
/// ```
pub fn validate_table(table: &str) -> Result<()> {
    validate_identifier("table", table, MAX_TABLE_LEN)
}

pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    validate_identifier("schema", schema, MAX_SCHEMA_LEN)
}

fn validate_identifier(what: &str, name: &str, max: usize) -> Result<()> {
    store_core::validate_name(name)
        .map_err(|error| Error::InvalidName(format!("{what} {}", strip_prefix(&error))))?;
    if name.len() > max {
        return Err(Error::InvalidName(format!(
            "{what} {name:?} ({} bytes): PostgreSQL {what} names for this store are at most \
             {max} bytes, since PostgreSQL would silently cut longer identifiers",
            name.len()
        )));
    }
    Ok(())
}

fn strip_prefix(error: &Error) -> String {
    match error {
        Error::InvalidName(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Quotes an identifier for SQL. Names are validated first, so this only adds the quotes;
/// a `"` is doubled anyway, so a quoted name can never end the identifier early.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Every name one store uses, quoted where SQL needs it.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub schema: String,
    pub table: String,
    /// `"schema"."table"`.
    pub qualified_table: String,
    /// `"schema"."table:version"`, the sequence versions come from.
    pub qualified_sequence: String,
    /// `"table:expires"` (index names take the table's schema).
    pub expiry_index: String,
    /// `"schema"."store_postgres:formats"`.
    pub qualified_formats: String,
    /// `"schema"."store_postgres:histories"`.
    pub qualified_histories: String,
    /// The LISTEN/NOTIFY channel, unquoted (it is passed to `pg_notify` as text).
    pub channel: String,
}

impl Names {
    pub fn new(schema: &str, table: &str) -> Result<Self> {
        validate_schema(schema)?;
        validate_table(table)?;
        let s = quote(schema);
        Ok(Self {
            schema: schema.to_owned(),
            table: table.to_owned(),
            qualified_table: format!("{s}.{}", quote(table)),
            qualified_sequence: format!("{s}.{}", quote(&format!("{table}:version"))),
            expiry_index: quote(&format!("{table}:expires")),
            qualified_formats: format!("{s}.{}", quote(FORMAT_TABLE)),
            qualified_histories: format!("{s}.{}", quote(HISTORY_TABLE)),
            channel: channel(schema, table),
        })
    }

    /// How the table is named in messages: `"orders"`, or `"sales"."orders"` outside
    /// `public`.
    pub fn display(&self) -> String {
        if self.schema == "public" {
            format!("{:?}", self.table)
        } else {
            format!("{:?}.{:?}", self.schema, self.table)
        }
    }
}

/// Channels are global to a database, not per schema, and at most 63 bytes. The channel is
/// `schema.table` when that fits; otherwise the table and a hash of the schema. A clash
/// (two schemas hashing alike) would only cost spurious wake-ups: a waiter re-reads its key
/// on every notification and trusts only the read.
fn channel(schema: &str, table: &str) -> String {
    let plain = format!("store:{schema}.{table}");
    if plain.len() <= 63 {
        return plain;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // 6 + 48 + 1 + 8 = 63 bytes at most.
    format!("store:{table}.{:08x}", (hash ^ (hash >> 32)) as u32)
}

/// The server as messages name it: `127.0.0.1:5432/test` (no user, no password).
pub(crate) fn address(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{hosts}/{database}")
}

/// `url` with its password replaced by `***`, for messages about a URL that did not parse.
pub(crate) fn redact(url: &str) -> String {
    // URL form: scheme://user:password@host...
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &rest[..colon],
                    &rest[at..]
                );
            }
        }
        return url.to_owned();
    }
    // Key/value form: password=... up to the next space.
    url.split(' ')
        .map(|part| {
            if part.starts_with("password=") {
                "password=***"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_are_quoted_and_cannot_collide_with_tables() {
        let names = Names::new("public", "a.b").unwrap();
        assert_eq!(names.qualified_table, "\"public\".\"a.b\"");
        assert_eq!(names.qualified_sequence, "\"public\".\"a.b:version\"");
        assert!(names.expiry_index.contains(':'));
        assert_eq!(names.channel, "store:public.a.b");
        assert_eq!(names.display(), "\"a.b\"");
        assert!(Names::new("public", "a:b").is_err());
        assert!(Names::new("pub lic", "a").is_err());
    }

    #[test]
    fn long_names_fit_postgres_identifiers() {
        let table = "t".repeat(MAX_TABLE_LEN);
        let schema = "s".repeat(MAX_SCHEMA_LEN);
        let names = Names::new(&schema, &table).unwrap();
        assert!(names.channel.len() <= 63, "{}", names.channel);
        assert!(format!("{table}:expires").len() <= 63);
        let other = Names::new(&"r".repeat(MAX_SCHEMA_LEN), &table).unwrap();
        assert_ne!(names.channel, other.channel);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(
            redact("host=db password=secret user=me"),
            "host=db password=*** user=me"
        );
    }

    #[test]
    fn addresses_name_host_port_and_database() {
        let config: tokio_postgres::Config = "postgres://u:p@127.0.0.1:5433/test".parse().unwrap();
        assert_eq!(address(&config), "127.0.0.1:5433/test");
        let config: tokio_postgres::Config = "host=db user=me".parse().unwrap();
        assert_eq!(address(&config), "db:5432/me");
    }
}
