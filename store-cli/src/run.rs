//! Running one parsed command against the stack its configuration describes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use store_compat::config::StoreConfig;
use store_compat::{
    DEFAULT_DATABASE, DEFAULT_TABLE, DeleteOptions, ListOptions, Order, ReadOptions, Record, Stack,
    WriteOptions,
};
use store_core::{Error, Storage};

use crate::cli::{Cli, Command, OrderArg, Output, Scope, TtlArg, ValueArg, VersionedScope};
use crate::error::{CliError, Result};
use crate::progress::Progress;
use crate::snapshot::{self, RecordLimit, RestoreOptions, Source};
use crate::value::{JsonValue, decode_base64, display};

/// Runs `cli` on its store and closes the store afterwards (so that every write is on disk
/// when storectl exits). Results go to `out`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use clap::Parser;
/// let dir = tempfile::tempdir().unwrap();
/// let config = dir.path().join("store.toml");
/// std::fs::write(&config, format!("backend = \"file\"\n[file]\ndir = {:?}\n", dir.path().join("data"))).unwrap();
/// let run = |args: &[&str]| {
///     let mut all = vec!["storectl", "--config", config.to_str().unwrap()];
///     all.extend_from_slice(args);
///     store_cli::Cli::parse_from(all)
/// };
/// store_cli::run(run(&["write", "k", "v"]), &mut Vec::new()).await.unwrap();
/// let mut out = Vec::new();
/// store_cli::run(run(&["read", "k", "--output", "json"]), &mut out).await.unwrap();
/// assert!(String::from_utf8(out).unwrap().contains("\"value\":\"v\""));
/// # });
/// ```
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let path = cli.config.clone().ok_or_else(|| {
        CliError::Usage(
            "no store configuration: pass --config FILE or set STORECTL_CONFIG".to_owned(),
        )
    })?;
    let config = StoreConfig::from_path(&path)?;
    let stack = config.build_stack().await?;
    let outcome = execute(&stack, cli.command, cli.output, out).await;
    let closed = match stack.close().await {
        Ok(()) | Err(Error::Closed) => Ok(()),
        Err(e) => Err(CliError::store("closing the store", e)),
    };
    outcome.and(closed)
}

/// The database and table a scope addresses, defaults filled in.
fn names(scope: &Scope) -> (String, String) {
    (
        scope
            .database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
        scope
            .table
            .clone()
            .unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
    )
}

/// The storage a versioned command addresses, and its name for messages.
fn versioned(stack: &Stack, scope: &VersionedScope) -> Result<(Arc<dyn Storage>, String)> {
    if scope.raw {
        return Ok((stack.storage(), "the whole stack".to_owned()));
    }
    let (database, table) = names(&scope.scope);
    let storage = stack
        .versioned(&database, &table)
        .map_err(|e| CliError::store("opening the scope", e))?;
    Ok((storage, format!("{database}/{table}")))
}

fn value_bytes(value: &ValueArg) -> Result<Bytes> {
    if value.base64 {
        decode_base64(&value.value)
            .map(Bytes::from)
            .map_err(|e| CliError::Usage(format!("VALUE with --base64: {e}")))
    } else {
        Ok(Bytes::from(value.value.clone()))
    }
}

fn order(order: OrderArg) -> Order {
    match order {
        OrderArg::Asc => Order::Ascending,
        OrderArg::Desc => Order::Descending,
    }
}

/// When a record written now with `ttl` expires. The parser keeps a TTL within 100 years,
/// which the clock can add; should it not fit all the same, the write is refused:
/// `Record::with_ttl` and the facade would store the record with no expiry at all.
fn expires_at(ttl: Duration) -> Result<SystemTime> {
    SystemTime::now().checked_add(ttl).ok_or_else(|| {
        CliError::Usage(format!(
            "--ttl {}: later than this system's clock can represent",
            humantime::format_duration(ttl)
        ))
    })
}

fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn human_ttl(ttl: Option<Duration>) -> String {
    match ttl {
        Some(d) => humantime::format_duration(Duration::from_secs(d.as_secs())).to_string(),
        None => "-".to_owned(),
    }
}

/// Prints results as a table or as JSON lines.
struct Printer<'a> {
    output: Output,
    out: &'a mut dyn Write,
    /// The column widths of the table being printed a row at a time (`watch`), from its
    /// header and first row; `None` until that header is printed.
    columns: Option<Vec<usize>>,
}

/// One line of a table: each cell but the last padded to its column's width, then two
/// spaces (a cell wider than its column pushes the rest of its line right).
fn render(widths: &[usize], cells: &[&str]) -> String {
    let last = cells.len() - 1;
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        line.push_str(cell);
        if i != last {
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    line
}

impl Printer<'_> {
    fn io(e: std::io::Error) -> CliError {
        CliError::Io {
            context: "writing to",
            path: PathBuf::from("stdout"),
            source: e,
        }
    }

    fn json(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut *self.out, value)
            .map_err(|e| Self::io(std::io::Error::other(e)))?;
        self.out.write_all(b"\n").map_err(Self::io)
    }

    fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}").map_err(Self::io)
    }

    /// A table: a header, then rows in columns as wide as their widest cell.
    fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        self.line(&render(&widths, header))?;
        for row in rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            self.line(&render(&widths, &cells))?;
        }
        Ok(())
    }

    /// A row of a table whose rows come one at a time (`watch`, as changes happen): the
    /// header is printed once, before the first row, whose cells set the column widths.
    fn streamed_row(&mut self, header: &[&str], row: &[String]) -> Result<()> {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        let widths = match self.columns.take() {
            Some(widths) => widths,
            None => {
                let widths: Vec<usize> = header
                    .iter()
                    .zip(&cells)
                    .map(|(h, c)| h.chars().count().max(c.chars().count()))
                    .collect();
                self.line(&render(&widths, header))?;
                widths
            }
        };
        let line = render(&widths, &cells);
        self.columns = Some(widths);
        self.line(&line)
    }

    /// A key of a listing.
    fn key(&mut self, key: &str) -> Result<()> {
        match self.output {
            Output::Json => self.json(&json!({"key": key})),
            Output::Table => self.line(key),
        }
    }

    fn version(&mut self, key: &str, version: &str) -> Result<()> {
        match self.output {
            Output::Json => self.json(&json!({"key": key, "version": version})),
            Output::Table => self.line(version),
        }
    }
}

/// A facade record as a JSON line.
#[derive(Serialize)]
struct FacadeJson<'a> {
    database: &'a str,
    table: &'a str,
    key: &'a str,
    #[serde(flatten)]
    value: JsonValue,
    metadata: Map<String, Value>,
    ttl_ms: Option<u64>,
}

/// A versioned record as a JSON line.
#[derive(Serialize)]
struct VersionedJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(flatten)]
    value: Option<JsonValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
}

fn print_versioned(
    p: &mut Printer<'_>,
    event: Option<&str>,
    record: &store_core::Record,
) -> Result<()> {
    let ttl = record.ttl();
    match p.output {
        Output::Json => p.json(&VersionedJson {
            event,
            key: &record.key,
            version: Some(&record.version),
            value: Some(JsonValue::from_bytes(&record.value)),
            ttl_ms: ttl_ms(ttl),
        }),
        Output::Table => {
            let mut header = vec!["KEY", "VERSION", "EXPIRES IN", "VALUE"];
            let mut row = vec![
                record.key.clone(),
                record.version.clone(),
                human_ttl(ttl),
                display(&record.value),
            ];
            match event {
                // A watch's events are the rows of one table, with one header.
                Some(event) => {
                    header.insert(0, "EVENT");
                    row.insert(0, event.to_owned());
                    p.streamed_row(&header, &row)
                }
                None => p.table(&header, &[row]),
            }
        }
    }
}

async fn execute(
    stack: &Stack,
    command: Command,
    output: Output,
    out: &mut dyn Write,
) -> Result<()> {
    let mut p = Printer {
        output,
        out,
        columns: None,
    };
    let store = stack.store();
    match command {
        Command::Read {
            key,
            prefix,
            suffix,
            paging,
            scope,
        } => {
            let (database, table) = names(&scope);
            let mut options = ReadOptions::default()
                .limit(paging.limit)
                .offset(paging.offset)
                .order(order(paging.order))
                .database(&database)
                .table(&table);
            options.prefix = prefix;
            options.suffix = suffix;
            let records = store
                .read(&key, options)
                .await
                .map_err(|e| CliError::store(format!("read {database}/{table} key {key:?}"), e))?;
            print_records(&mut p, &database, &table, &records)
        }
        Command::Write {
            key,
            value,
            ttl: TtlArg { ttl, .. },
            metadata,
            scope,
        } => {
            let (database, table) = names(&scope);
            let mut record = Record::new(key.clone(), value_bytes(&value)?);
            record.metadata = metadata.into_iter().collect();
            let mut options = WriteOptions::default().database(&database).table(&table);
            // The expiry itself rather than the TTL: the facade makes a TTL it cannot add
            // to the clock "never expires", and here that is an error.
            options.expiry = ttl.map(expires_at).transpose()?;
            store
                .write(record, options)
                .await
                .map_err(|e| CliError::store(format!("write {database}/{table} key {key:?}"), e))
        }
        Command::Delete { key, scope } => {
            let (database, table) = names(&scope);
            store
                .delete(
                    &key,
                    DeleteOptions::default().database(&database).table(&table),
                )
                .await
                .map_err(|e| CliError::store(format!("delete {database}/{table} key {key:?}"), e))
        }
        Command::List {
            prefix,
            suffix,
            paging,
            scope,
        } => {
            let (database, table) = names(&scope);
            let options = ListOptions::default()
                .prefix(&prefix)
                .suffix(&suffix)
                .limit(paging.limit)
                .offset(paging.offset)
                .order(order(paging.order))
                .database(&database)
                .table(&table);
            let keys = store
                .list(options)
                .await
                .map_err(|e| CliError::store(format!("list {database}/{table}"), e))?;
            if keys.is_empty() && paging.offset == 0 {
                let filter = match (prefix.is_empty(), suffix.is_empty()) {
                    (true, true) => String::new(),
                    (false, true) => format!(" with prefix {prefix:?}"),
                    (true, false) => format!(" with suffix {suffix:?}"),
                    (false, false) => format!(" with prefix {prefix:?} and suffix {suffix:?}"),
                };
                explain_empty(
                    p.output,
                    &format!("no key{filter}"),
                    &database,
                    &table,
                    "`storectl keys PATTERN --raw` lists the store's raw keys",
                );
            }
            for key in keys {
                p.key(&key)?;
            }
            Ok(())
        }
        Command::Databases => {
            for database in crate::scopes::databases(stack.storage().as_ref()).await? {
                match p.output {
                    Output::Json => p.json(&json!({"database": database}))?,
                    Output::Table => p.line(&database)?,
                }
            }
            Ok(())
        }
        Command::Tables { database } => {
            let database = database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
            for table in crate::scopes::tables(stack.storage().as_ref(), &database).await? {
                match p.output {
                    Output::Json => p.json(&json!({"database": database, "table": table}))?,
                    Output::Table => p.line(&table)?,
                }
            }
            Ok(())
        }
        Command::Get { key, scope } => {
            let (storage, place) = versioned(stack, &scope)?;
            let record = storage
                .get(&key)
                .await
                .map_err(|e| CliError::store(format!("get {place} key {key:?}"), e))?;
            print_versioned(&mut p, None, &record)
        }
        Command::Put {
            key,
            value,
            ttl: TtlArg { ttl, .. },
            scope,
        } => {
            let (storage, place, record) = versioned_write(stack, &scope, &key, &value, ttl)?;
            let stored = storage
                .put(record)
                .await
                .map_err(|e| CliError::store(format!("put {place} key {key:?}"), e))?;
            p.version(&key, &stored.version)
        }
        Command::Create {
            key,
            value,
            ttl: TtlArg { ttl, .. },
            scope,
        } => {
            let (storage, place, record) = versioned_write(stack, &scope, &key, &value, ttl)?;
            let version = storage
                .create(record)
                .await
                .map_err(|e| CliError::store(format!("create {place} key {key:?}"), e))?;
            p.version(&key, &version)
        }
        Command::Cas {
            key,
            value,
            version,
            ttl: TtlArg { ttl, .. },
            scope,
        } => {
            let (storage, place, record) = versioned_write(stack, &scope, &key, &value, ttl)?;
            let stored = storage
                .cas_by_version(record.with_version(version.clone()))
                .await
                .map_err(|e| {
                    CliError::store(format!("cas {place} key {key:?} at version {version:?}"), e)
                })?;
            p.version(&key, &stored.version)
        }
        Command::Keys { pattern, scope } => {
            let (storage, place) = versioned(stack, &scope)?;
            let context = || format!("keys {place} pattern {pattern:?}");
            let mut keys = storage
                .list_keys(&pattern)
                .await
                .map_err(|e| CliError::store(context(), e))?;
            let mut found = false;
            while let Some(key) = keys
                .try_next()
                .await
                .map_err(|e| CliError::store(context(), e))?
            {
                p.key(&key)?;
                found = true;
            }
            if !found && !scope.raw {
                let (database, table) = names(&scope.scope);
                explain_empty(
                    p.output,
                    &format!("no key matches {pattern:?}"),
                    &database,
                    &table,
                    "--raw matches the store's raw keys instead",
                );
            }
            Ok(())
        }
        Command::Watch { key, count, scope } => watch(&mut p, stack, &key, count, &scope).await,
        Command::Snapshot {
            file,
            database,
            table,
            max_record_size,
        } => {
            let (database, table) = (database.as_deref(), table.as_deref());
            snapshot(&mut p, stack, &file, database, table, max_record_size).await
        }
        Command::Restore {
            file,
            partial,
            verify,
            staging_dir,
            max_record_size,
        } => {
            let source = Source::from_arg(&file);
            let total = match &source {
                Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
                Source::Stdin => None,
            };
            let progress = Progress::new("restore", total);
            let options = RestoreOptions {
                partial,
                verify,
                staging_dir,
                max_record_bytes: max_record_size,
            };
            let summary = snapshot::restore(stack.storage(), &source, &options, &progress).await;
            progress.finish();
            let summary = summary?;
            let verified = summary
                .verified
                .map(|n| format!(", {n} verified"))
                .unwrap_or_default();
            eprintln!(
                "restored {} records from {} in {:.2}s{verified}{}",
                summary.records,
                file.display(),
                summary.seconds,
                memory_note(&summary)
            );
            if p.output == Output::Json {
                p.json(&summary)?;
            }
            Ok(())
        }
        Command::Stats => {
            let stats = stack
                .stats()
                .await
                .map_err(|e| CliError::store("stats", e))?;
            match p.output {
                Output::Table => {
                    p.line(&format!("stack: {}", stack.describe()))?;
                    for component in &stats.components {
                        p.line(&component.to_string())?;
                    }
                }
                Output::Json => {
                    for component in &stats.components {
                        let figures: Map<String, Value> = component
                            .figures
                            .iter()
                            .map(|(name, figure)| {
                                let value = match figure {
                                    store_core::Figure::Count(n)
                                    | store_core::Figure::Bytes(n)
                                    | store_core::Figure::Micros(n) => json!(n),
                                    store_core::Figure::Ratio(r) => json!(r),
                                    other => json!(other.to_string()),
                                };
                                (name.clone(), value)
                            })
                            .collect();
                        p.json(&json!({
                            "component": component.name,
                            "detail": component.detail,
                            "figures": figures,
                        }))?;
                    }
                }
            }
            Ok(())
        }
        Command::Compact => stack
            .storage()
            .compact()
            .await
            .map_err(|e| CliError::store("compact", e)),
    }
}

/// Says on stderr, after a listing of one database and table that found nothing, where it
/// looked: a key such as `micro/sync/lock` names a record of database `micro`, table `sync`
/// only with `--raw`, and keys written below the facade are only seen with `--raw`. Table
/// output only (a script reading JSON lines gets no prose).
fn explain_empty(output: Output, nothing: &str, database: &str, table: &str, raw: &str) {
    if output == Output::Table {
        eprintln!(
            "storectl: {nothing} in database {database:?}, table {table:?}: keys are matched \
             inside one database and table (choose them with --database and --table); {raw} \
             (database/table/key, and keys written below the facade)"
        );
    }
}

/// What `put`, `create` and `cas` share: the storage they address, its name for messages,
/// and the record to write there (no version yet).
fn versioned_write(
    stack: &Stack,
    scope: &VersionedScope,
    key: &str,
    value: &ValueArg,
    ttl: Option<Duration>,
) -> Result<(Arc<dyn Storage>, String, store_core::Record)> {
    let (storage, place) = versioned(stack, scope)?;
    let record = store_core::Record::new(key, value_bytes(value)?);
    let record = match ttl {
        Some(ttl) => record.with_expires_at(expires_at(ttl)?),
        None => record,
    };
    Ok((storage, place, record))
}

fn print_records(
    p: &mut Printer<'_>,
    database: &str,
    table: &str,
    records: &[Record],
) -> Result<()> {
    match p.output {
        Output::Json => {
            for record in records {
                p.json(&FacadeJson {
                    database,
                    table,
                    key: &record.key,
                    value: JsonValue::from_bytes(&record.value),
                    metadata: record
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    ttl_ms: ttl_ms(record.expiry),
                })?;
            }
            Ok(())
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|record| {
                    let metadata: Map<String, Value> = record
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    vec![
                        record.key.clone(),
                        human_ttl(record.expiry),
                        if metadata.is_empty() {
                            "-".to_owned()
                        } else {
                            Value::Object(metadata).to_string()
                        },
                        display(&record.value),
                    ]
                })
                .collect();
            p.table(&["KEY", "EXPIRES IN", "METADATA", "VALUE"], &rows)
        }
    }
}

async fn watch(
    p: &mut Printer<'_>,
    stack: &Stack,
    key: &str,
    count: Option<u64>,
    scope: &VersionedScope,
) -> Result<()> {
    let (storage, place) = versioned(stack, scope)?;
    let context = || format!("watch {place} key {key:?}");
    let mut current = storage
        .get(key)
        .await
        .map_err(|e| CliError::store(context(), e))?;
    print_versioned(p, Some("current"), &current)?;
    p.out.flush().map_err(Printer::io)?;
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let changed = match storage.wait_for_version_change(key, &current.version).await {
            Ok(()) => match storage.get(key).await {
                Ok(record) => Some(record),
                Err(Error::NotFound) => None,
                Err(e) => return Err(CliError::store(context(), e)),
            },
            Err(Error::NotFound) => None,
            Err(e) => return Err(CliError::store(context(), e)),
        };
        seen += 1;
        match changed {
            Some(record) => {
                print_versioned(p, Some("changed"), &record)?;
                current = record;
            }
            None => {
                match p.output {
                    Output::Json => p.json(&VersionedJson {
                        event: Some("deleted"),
                        key,
                        version: None,
                        value: None,
                        ttl_ms: None,
                    })?,
                    Output::Table => p.line(&format!("deleted (or expired): {key}"))?,
                }
                break;
            }
        }
        p.out.flush().map_err(Printer::io)?;
    }
    Ok(())
}

async fn snapshot(
    p: &mut Printer<'_>,
    stack: &Stack,
    file: &Path,
    database: Option<&str>,
    table: Option<&str>,
    limit: RecordLimit,
) -> Result<()> {
    let progress = Progress::new("snapshot", None);
    let io = |context, path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io {
            context,
            path,
            source,
        }
    };
    // The library names the output `(output)`; storectl knows the file.
    let name_file = |error| match error {
        CliError::Io {
            context, source, ..
        } => CliError::Io {
            context,
            path: file.to_owned(),
            source,
        },
        other => other,
    };
    let summary = if file == Path::new("-") {
        let stdout = std::io::BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
        let (_, summary) =
            snapshot::snapshot(stack.storage(), database, table, limit, stdout, &progress)
                .await
                .map_err(name_file)?;
        summary
    } else if std::fs::metadata(file).is_ok_and(|m| !m.is_file()) {
        // A device or a pipe: written in place (renaming over it would replace it).
        let out = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(io("opening", file))?;
        let writer = std::io::BufWriter::with_capacity(256 << 10, out);
        let (_, summary) =
            snapshot::snapshot(stack.storage(), database, table, limit, writer, &progress)
                .await
                .map_err(name_file)?;
        summary
    } else {
        // A regular file is written under a temporary name next to FILE, and renamed once
        // complete and on disk: FILE is never left half written.
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".storectl-snapshot-")
            .tempfile_in(&dir)
            .map_err(io("creating a temporary file in", &dir))?;
        let writer = std::io::BufWriter::with_capacity(256 << 10, temp);
        let (writer, summary) =
            snapshot::snapshot(stack.storage(), database, table, limit, writer, &progress)
                .await
                .map_err(name_file)?;
        let temp = writer
            .into_inner()
            .map_err(|e| io("writing", file)(e.into_error()))?;
        temp.as_file().sync_all().map_err(io("syncing", file))?;
        temp.persist(file)
            .map_err(|e| io("renaming the finished snapshot to", file)(e.error))?;
        summary
    };
    progress.finish();
    eprintln!(
        "snapshot of {} records ({} bytes) to {} in {:.2}s{}",
        summary.records,
        summary.bytes,
        file.display(),
        summary.seconds,
        memory_note(&summary)
    );
    if p.output == Output::Json && file != Path::new("-") {
        p.json(&summary)?;
    }
    Ok(())
}

/// `, peak memory N MiB` when the system tells.
fn memory_note(summary: &snapshot::Summary) -> String {
    summary
        .peak_memory_bytes
        .map(|bytes| format!(", peak memory {:.1} MiB", bytes as f64 / (1 << 20) as f64))
        .unwrap_or_default()
}
