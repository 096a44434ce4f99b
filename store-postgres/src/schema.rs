//! Creating a store's table and migrating it between format versions.
//!
//! A shared table per schema, `"store_postgres:formats"`, records each store table's
//! format version. Opening a store runs, in one transaction under a transaction-scoped
//! advisory lock (so two processes opening the same new table at once do not race on
//! `CREATE`): create the schema and the formats table if missing, read the table's format,
//! and apply every migration step from there to [`FORMAT`]. DDL is transactional in
//! PostgreSQL, so a failed step leaves nothing half made.
//!
//! A table that exists but is not recorded was not made by this crate: it is refused, never
//! altered or dropped. A table recorded with a format newer than this build knows is
//! refused too, with a message that says to upgrade.
//!
//! Format 1:
//! ```sql
//! CREATE SEQUENCE "t:version";                 -- versions: never reused, see below
//! CREATE TABLE "t" (key bytea PRIMARY KEY, value bytea NOT NULL,
//!                   version int8 NOT NULL, expires_at int8);
//! CREATE INDEX "t:expires" ON "t" (expires_at) WHERE expires_at IS NOT NULL;
//! ```
//! The sequence is not owned by the table, so dropping the table by hand does not reset
//! versions; a sequence only moves forward (it is WAL-logged ahead of use: after a crash it
//! may skip values, never repeat one a committed row holds), so a version is never handed
//! out twice, across deletes, restarts and crashes.

use tokio_postgres::Client;

use store_core::{Error, Result};

use crate::names::{quote, Names};

/// The format this build writes.
pub(crate) const FORMAT: i32 = 1;

/// Any fixed number: every migration of every store takes the same lock, which is held
/// only for the few statements of one migration.
const MIGRATION_LOCK: i64 = 0x5354_4f52_4550_4731; // "STOREPG1"

/// Creates or migrates the store's objects. `describe` names the server and table in
/// errors.
pub(crate) async fn migrate(client: &mut Client, names: &Names, describe: &str) -> Result<()> {
    let failed = |what: &str, error: tokio_postgres::Error| {
        crate::errors::from_postgres(&format!("{describe}: {what}"), &error)
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| failed("starting the migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed("taking the migration lock", e))?;
    let schema_exists = tx
        .query_opt(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[&names.schema],
        )
        .await
        .map_err(|e| failed("looking up the schema", e))?
        .is_some();
    if !schema_exists {
        tx.batch_execute(&format!("CREATE SCHEMA {}", quote(&names.schema)))
            .await
            .map_err(|e| failed("creating the schema", e))?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, format int4 NOT NULL, \
         created_at timestamptz NOT NULL DEFAULT now(), \
         migrated_at timestamptz NOT NULL DEFAULT now())",
        names.qualified_formats
    ))
    .await
    .map_err(|e| failed("creating the formats table", e))?;
    ensure_deadline_function(&tx, names)
        .await
        .map_err(|e| failed("creating the deadline check", e))?;
    ensure_history_function(&tx, names)
        .await
        .map_err(|e| failed("creating the history check", e))?;
    let recorded: Option<i32> = tx
        .query_opt(
            &format!(
                "SELECT format FROM {} WHERE table_name = $1",
                names.qualified_formats
            ),
            &[&names.table],
        )
        .await
        .map_err(|e| failed("reading the table's format", e))?
        .map(|row| row.get(0));
    let table_exists = tx
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&names.schema, &names.table],
        )
        .await
        .map_err(|e| failed("looking up the table", e))?
        .is_some();
    let from = match (recorded, table_exists) {
        (Some(format), true) => format,
        (None, false) => 0,
        (None, true) => {
            return Err(Error::Backend(format!(
                "{describe}: the table exists but was not created by store-postgres (it has \
                 no row in {}); choose another table name, or drop the table yourself if it \
                 is unused",
                names.qualified_formats
            )))
        }
        (Some(_), false) => {
            // Dropped by hand: start again at format 0. The sequence may have survived,
            // and then versions continue from where they were.
            tracing::warn!(
                table = %names.display(),
                "store-postgres: the table was dropped outside this crate; creating it again"
            );
            0
        }
    };
    if from > FORMAT {
        return Err(Error::Backend(format!(
            "{describe}: the table has format {from}, written by a newer store-postgres; \
             this build knows formats up to {FORMAT}: upgrade store-postgres"
        )));
    }
    for (step, migration) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch_execute(&migration(names))
            .await
            .map_err(|e| failed(&format!("migrating from format {step}"), e))?;
    }
    if from != FORMAT {
        tx.execute(
            &format!(
                "INSERT INTO {} (table_name, format) VALUES ($1, $2) \
                 ON CONFLICT (table_name) DO UPDATE SET format = EXCLUDED.format, \
                 migrated_at = now()",
                names.qualified_formats
            ),
            &[&names.table, &FORMAT],
        )
        .await
        .map_err(|e| failed("recording the format", e))?;
        tracing::info!(table = %names.display(), from, to = FORMAT, "store-postgres: table migrated");
    }
    tx.commit()
        .await
        .map_err(|e| failed("committing the migration", e))
}

/// Creates the schema's deadline check if it is missing: every write transaction ends with
/// it (see `batch.rs`), so that a write that reaches the server after its caller was told it
/// failed rolls back instead of committing. It raises SQLSTATE `SPD01` past the deadline
/// and otherwise returns the server's time, which the caller uses to sample the server's
/// clock. Shared by every store of the schema.
async fn ensure_deadline_function(
    tx: &tokio_postgres::Transaction<'_>,
    names: &Names,
) -> std::result::Result<(), tokio_postgres::Error> {
    create_function_if_missing(
        tx,
        names,
        crate::sql::DEADLINE_FUNCTION,
        "deadline int8",
        "int8",
        "int8",
        &format!(
            "DECLARE now_micros int8 := (extract(epoch from clock_timestamp()) * 1000000)::int8; \
             BEGIN \
               IF now_micros > deadline THEN \
                 RAISE EXCEPTION 'store-postgres: the write reached the server % microseconds \
                   after its deadline; it was rolled back', now_micros - deadline \
                   USING ERRCODE = '{state}'; \
               END IF; \
               RETURN now_micros; \
             END",
            state = crate::errors::DEADLINE_STATE,
        ),
    )
    .await
}

/// Creates the schema's function `name(parameters) RETURNS returns` with the plpgsql
/// `body` unless a function of that name taking `signature` exists. The name carries a
/// version, so a later body is a new function and never replaces one that running
/// instances call.
async fn create_function_if_missing(
    tx: &tokio_postgres::Transaction<'_>,
    names: &Names,
    name: &str,
    parameters: &str,
    signature: &str,
    returns: &str,
    body: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    let function = format!("{}.{}", quote(&names.schema), quote(name));
    let exists = tx
        .query_one(
            "SELECT to_regprocedure($1) IS NOT NULL",
            &[&format!("{function}({signature})")],
        )
        .await?
        .get::<_, bool>(0);
    if !exists {
        tx.batch_execute(&format!(
            "CREATE FUNCTION {function}({parameters}) RETURNS {returns} \
             LANGUAGE plpgsql VOLATILE AS $store_postgres$ {body} $store_postgres$"
        ))
        .await?;
    }
    Ok(())
}

/// Creates the schema's history table and check if they are missing.
///
/// A version must never be handed out twice, and a sequence only moves forward on one
/// server history. A server on another history may have the sequence behind what was
/// handed out: an asynchronous standby promoted before it received the last versions of
/// the old primary (the timeline changes), or a cluster restored from a backup (the system
/// identifier changes). So every connection's first write transaction begins by comparing
/// the server's history (`<system identifier>/<timeline>`) with the one the table's versions
/// were last handed out on, and on a difference moves the sequence past every version the
/// other history can have handed out: at least 2^32 beyond what this server knows (more
/// versions than any server issues in the hours a standby may lag), and at least the
/// server's clock in microseconds (versions come from a counter that started below the
/// clock and grows more slowly than one per microsecond, so every version handed out
/// before now is below it; this covers a restore from an old backup).
///
/// A primary's history never changes while it runs (only a standby's promotion starts a
/// timeline), and a standby refuses writes, so once per connection is enough. Shared by
/// every store of the schema.
async fn ensure_history_function(
    tx: &tokio_postgres::Transaction<'_>,
    names: &Names,
) -> std::result::Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, history text NOT NULL, \
         changed_at timestamptz NOT NULL DEFAULT now())",
        names.qualified_histories
    ))
    .await?;
    create_function_if_missing(
        tx,
        names,
        crate::sql::HISTORY_FUNCTION,
        "store text, versions regclass",
        "text,regclass",
        "bool",
        &format!(
            "DECLARE \
               here text := (SELECT system_identifier FROM pg_control_system())::text || '/' || \
                            substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8); \
               seen text; \
               last int8; \
             BEGIN \
               SELECT h.history INTO seen FROM {histories} AS h \
                 WHERE h.table_name = store FOR UPDATE; \
               IF seen = here THEN RETURN false; END IF; \
               EXECUTE format('SELECT last_value FROM %s', versions) INTO last; \
               PERFORM setval(versions, greatest(last + 4294967296, \
                 (extract(epoch from clock_timestamp()) * 1000000)::int8)); \
               INSERT INTO {histories} AS h (table_name, history) VALUES (store, here) \
                 ON CONFLICT (table_name) DO UPDATE SET history = EXCLUDED.history, \
                   changed_at = now(); \
               RETURN true; \
             END",
            histories = names.qualified_histories,
        ),
    )
    .await
}

/// The statements that take a table from format `i` to `i + 1`, for each `i`. A later
/// format adds a function here (and [`FORMAT`] follows).
const MIGRATIONS: [fn(&Names) -> String; FORMAT as usize] = [format_1];

fn format_1(names: &Names) -> String {
    format!(
        "CREATE SEQUENCE IF NOT EXISTS {seq} AS int8; \
             CREATE TABLE {t} (key bytea PRIMARY KEY, value bytea NOT NULL, \
                               version int8 NOT NULL, expires_at int8); \
             CREATE INDEX {index} ON {t} (expires_at) WHERE expires_at IS NOT NULL;",
        seq = names.qualified_sequence,
        t = names.qualified_table,
        index = names.expiry_index,
    )
}

/// Drops a store's table, sequence and format row, if the formats table records the table
/// (so a table this crate did not create is never dropped). Returns whether it dropped.
pub(crate) async fn drop_store(
    client: &mut Client,
    names: &Names,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let formats_exist = tx
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&names.schema, &crate::names::FORMAT_TABLE],
        )
        .await?
        .is_some();
    if !formats_exist {
        return Ok(false);
    }
    let recorded = tx
        .execute(
            &format!(
                "DELETE FROM {} WHERE table_name = $1",
                names.qualified_formats
            ),
            &[&names.table],
        )
        .await?;
    if recorded == 0 {
        return Ok(false);
    }
    let histories_exist = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&names.qualified_histories],
        )
        .await?
        .get::<_, bool>(0);
    if histories_exist {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE table_name = $1",
                names.qualified_histories
            ),
            &[&names.table],
        )
        .await?;
    }
    tx.batch_execute(&format!(
        "DROP TABLE IF EXISTS {}; DROP SEQUENCE IF EXISTS {};",
        names.qualified_table, names.qualified_sequence
    ))
    .await?;
    tx.commit().await?;
    Ok(true)
}
