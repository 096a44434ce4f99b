//! The statements, built once per store with its quoted names.
//!
//! Each call is one statement, so it is atomic on its own and can run alone after a batch
//! fails (see `batch.rs`). A write and its notification are one statement too: the
//! `pg_notify` runs over the rows the write's CTE returned, so a write that changes nothing
//! announces nothing, and a write that rolls back wakes nobody (notifications are sent at
//! commit).
//!
//! Expiry is judged by the database's clock in every statement, so an expired row is
//! invisible to all of them whatever the callers' clocks say. Which reading of the clock
//! matters (see "Expiry" in `batch.rs`): a decision about a row is made with
//! [`CLOCK`], `clock_timestamp()`, read when the row is looked at (after any wait for its
//! lock), never with the statement's start; only the reaper, which may delete a row as
//! soon as it has expired at any moment, uses the statement's time, [`NOW`], which an index
//! scan can use.

use crate::names::Names;

/// The database's clock when a row is looked at, in the unit of `expires_at`
/// (microseconds since the Unix epoch).
pub(crate) const CLOCK: &str = "(extract(epoch from clock_timestamp()) * 1000000)::int8";

/// The database's clock at the start of the statement (constant within it, so an index
/// range can use it): for the reaper only.
pub(crate) const NOW: &str = "(extract(epoch from statement_timestamp()) * 1000000)::int8";

/// The deadline check that ends every write transaction (see `schema.rs`), versioned so
/// that a later body gets a new name rather than replacing one an older build calls.
pub(crate) const DEADLINE_FUNCTION: &str = "store_postgres:deadline:1";

/// The history check each connection runs before its first write (see `schema.rs`),
/// versioned like the deadline check.
pub(crate) const HISTORY_FUNCTION: &str = "store_postgres:history:1";

/// Rows returned by one page of a listing.
pub(crate) const LIST_PAGE: i64 = 1000;

/// Rows deleted by one round of the reaper.
pub(crate) const REAP_BATCH: i64 = 1000;

/// The statements of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `$1 bytea[]` → `key, value, version, expires_at, expired` of every row among the
    /// keys, expired ones included (a reader that meets one reads again holding it).
    pub get: String,
    /// `$1 bytea[]` → `key, value, version, expires_at` of the live rows among the keys.
    pub get_live: String,
    /// `$1 bytea[]` → locks the rows among the keys `FOR SHARE`, in key order.
    pub lock: String,
    /// `$1 deadline (µs)` → the server's time (µs); fails with SQLSTATE
    /// [`DEADLINE_STATE`](crate::errors::DEADLINE_STATE) once the deadline has passed.
    pub deadline: String,
    /// `$1 key, $2 value, $3 expires_at, $4 channel, $5 payload` → `(true, version)` when
    /// stored; `(false, version, value, expires_at)` of the live record otherwise; no row
    /// when the conflicting row was committed after the statement's snapshot (read again).
    pub create: String,
    /// `$1 key, $2 value, $3 expires_at, $4 channel, $5 payload` → `version`.
    pub put: String,
    /// `$1 keys, $2 values, $3 expiries, $4 channel, $5 payloads` (keys unique) → one row
    /// per payload.
    pub put_many: String,
    /// `$1 key, $2 value, $3 expires_at, $4 expected, $5 channel, $6 payload` →
    /// `(found, new)`: no row when missing; `found` alone on a conflict; `new` when stored.
    pub cas: String,
    /// `$1 key, $2 channel, $3 payload` → one row when a live record was deleted.
    pub delete: String,
    /// `$1 from (inclusive), $2 to (exclusive), $3 limit` → `key, expired` of the rows in
    /// byte order, expired ones included.
    pub list: String,
    /// `$1 limit` → keys of expired rows deleted now.
    pub reap: String,
    /// `$1 channel, $2 payloads` → one row per payload.
    pub notify: String,
    /// → estimated rows, bytes of the table with its indexes.
    pub size: String,
    /// `$1 table, $2 sequence` → whether the server's history changed since the table's
    /// versions were last handed out (the sequence then moved past every earlier version).
    pub history: String,
}

impl Statements {
    /// The statements a connection prepares as it is made: every one a round may send.
    pub fn for_every_connection(&self) -> Vec<String> {
        [
            &self.get,
            &self.get_live,
            &self.lock,
            &self.deadline,
            &self.history,
            &self.create,
            &self.put,
            &self.put_many,
            &self.cas,
            &self.delete,
            &self.list,
        ]
        .into_iter()
        .cloned()
        .collect()
    }

    pub fn new(names: &Names) -> Self {
        let t = &names.qualified_table;
        let seq = &names.qualified_sequence;
        let live =
            |alias: &str| format!("({alias}.expires_at IS NULL OR {alias}.expires_at > {CLOCK})");
        let expired = |alias: &str| {
            format!("({alias}.expires_at IS NOT NULL AND {alias}.expires_at <= {CLOCK})")
        };
        let upsert_set = "value = EXCLUDED.value, version = EXCLUDED.version, \
                          expires_at = EXCLUDED.expires_at";
        Self {
            get: format!(
                "SELECT t.key, t.value, t.version, t.expires_at, {} AS expired FROM {t} AS t \
                 WHERE t.key = ANY($1::bytea[])",
                expired("t")
            ),
            get_live: format!(
                "SELECT t.key, t.value, t.version, t.expires_at FROM {t} AS t \
                 WHERE t.key = ANY($1::bytea[]) AND {}",
                live("t")
            ),
            lock: format!(
                "SELECT 1 FROM {t} AS t WHERE t.key = ANY($1::bytea[]) ORDER BY t.key FOR SHARE"
            ),
            deadline: format!(
                "SELECT {}.{}($1::int8)",
                crate::names::quote(&names.schema),
                crate::names::quote(DEADLINE_FUNCTION)
            ),
            history: format!(
                "SELECT {}.{}($1::text, $2::text::regclass)",
                crate::names::quote(&names.schema),
                crate::names::quote(HISTORY_FUNCTION)
            ),
            // ON CONFLICT ... DO UPDATE ... WHERE expired: a live row is left alone (and
            // locked until commit, so the read below cannot be overtaken by a delete);
            // an expired row is replaced as if it were not there.
            create: format!(
                "WITH ins AS ( \
                   INSERT INTO {t} AS t (key, value, version, expires_at) \
                   VALUES ($1::bytea, $2::bytea, nextval('{seq_text}'), $3::int8) \
                   ON CONFLICT (key) DO UPDATE SET {upsert_set} \
                   WHERE {} \
                   RETURNING t.version) \
                 SELECT true AS stored, ins.version, NULL::bytea AS value, NULL::int8 AS expires_at, \
                        pg_notify($4::text, $5::text)::text AS notified FROM ins \
                 UNION ALL \
                 SELECT false, t.version, t.value, t.expires_at, NULL FROM {t} AS t \
                 WHERE t.key = $1::bytea AND {} AND NOT EXISTS (SELECT 1 FROM ins)",
                expired("t"),
                live("t"),
                seq_text = sequence_literal(seq),
            ),
            put: format!(
                "WITH w AS ( \
                   INSERT INTO {t} AS t (key, value, version, expires_at) \
                   VALUES ($1::bytea, $2::bytea, nextval('{seq_text}'), $3::int8) \
                   ON CONFLICT (key) DO UPDATE SET {upsert_set} \
                   RETURNING t.version) \
                 SELECT w.version, pg_notify($4::text, $5::text)::text FROM w",
                seq_text = sequence_literal(seq),
            ),
            // The keys arrive sorted and unique, so concurrent put_many calls lock rows in
            // the same order (no deadlock between them) and no row is hit twice.
            put_many: format!(
                "WITH w AS ( \
                   INSERT INTO {t} AS t (key, value, version, expires_at) \
                   SELECT r.k, r.v, nextval('{seq_text}'), r.e \
                   FROM unnest($1::bytea[], $2::bytea[], $3::int8[]) AS r(k, v, e) \
                   ON CONFLICT (key) DO UPDATE SET {upsert_set} \
                   RETURNING 1) \
                 SELECT pg_notify($4::text, p)::text FROM unnest($5::text[]) AS p",
                seq_text = sequence_literal(seq),
            ),
            // FOR UPDATE waits for a concurrent writer of the row and then sees its
            // latest version (re-checking liveness), so of N concurrent CAS calls
            // expecting one version exactly one finds it; the others see the winner's.
            cas: format!(
                "WITH cur AS ( \
                   SELECT t.version FROM {t} AS t WHERE t.key = $1::bytea AND {} FOR UPDATE), \
                 upd AS ( \
                   UPDATE {t} AS t SET value = $2::bytea, version = nextval('{seq_text}'), \
                          expires_at = $3::int8 \
                   FROM cur WHERE t.key = $1::bytea AND cur.version = $4::int8 \
                   RETURNING t.version) \
                 SELECT cur.version AS found, NULL::int8 AS new, NULL::text AS notified FROM cur \
                 WHERE NOT EXISTS (SELECT 1 FROM upd) \
                 UNION ALL \
                 SELECT NULL, upd.version, pg_notify($5::text, $6::text)::text FROM upd",
                live("t"),
                seq_text = sequence_literal(seq),
            ),
            delete: format!(
                "WITH d AS (DELETE FROM {t} AS t WHERE t.key = $1::bytea AND {} RETURNING 1) \
                 SELECT pg_notify($2::text, $3::text)::text FROM d",
                live("t")
            ),
            list: format!(
                "SELECT t.key, {} AS expired FROM {t} AS t \
                 WHERE t.key >= $1::bytea AND t.key < $2::bytea \
                 ORDER BY t.key LIMIT $3::int8",
                expired("t")
            ),
            // SKIP LOCKED: reapers of several instances (and writers holding a row) never
            // wait for each other; a row skipped now is taken by the next round. FOR UPDATE
            // re-checks the expiry on the row's latest version, so a row rewritten
            // meanwhile is not deleted.
            reap: format!(
                "WITH doomed AS ( \
                   SELECT t.key FROM {t} AS t \
                   WHERE t.expires_at IS NOT NULL AND t.expires_at <= {NOW} \
                   ORDER BY t.expires_at LIMIT $1::int8 FOR UPDATE SKIP LOCKED) \
                 DELETE FROM {t} AS t USING doomed WHERE t.key = doomed.key RETURNING t.key"
            ),
            notify: "SELECT pg_notify($1::text, p)::text FROM unnest($2::text[]) AS p".into(),
            size: format!(
                "SELECT c.reltuples::int8, pg_total_relation_size(c.oid)::int8 FROM pg_class AS c \
                 WHERE c.oid = '{}'::regclass",
                sequence_literal(t)
            ),
        }
    }
}

/// A quoted, qualified name as a string literal (for `nextval('...')` and `::regclass`).
fn sequence_literal(qualified: &str) -> String {
    qualified.replace('\'', "''")
}
