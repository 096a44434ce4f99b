//! The on-disk baselines of the `file` target's durable puts.
//!
//! - [`FsyncLog`] (`fdatasync-log`): what a naive durable store does. One log file behind a
//!   `std::sync::Mutex`; a put frames the record (length, CRC-32, version, key, value),
//!   appends it with `write` and calls `fdatasync` (`File::sync_data`) before it returns,
//!   all under the lock, so every acknowledged put is on disk and nothing is batched: one
//!   `fdatasync` per put, whatever the number of writers. An in-memory map of the latest
//!   values answers reads. The blocking part runs on tokio's blocking pool
//!   (`spawn_blocking`), as a user would run blocking file I/O from async code.
//! - [`RedbTable`] (`redb`): a peer embedded store. One `redb::Database`, one table; a put
//!   is `begin_write`, `insert`, `commit` with redb's default `Durability::Immediate`, so
//!   every put is its own durable transaction. redb serialises write transactions, so the
//!   N writer tasks call it through `spawn_blocking`.
//!
//! Neither supports `wait` or `list`; the runner never pairs them with those workloads.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use redb::TableDefinition;
use store_core::{Error, Result};

use crate::scratch::StoreDir;
use crate::subject::{CasOutcome, Subject};

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| Error::Backend(format!("a blocking baseline call failed: {join}")))?
}

/// Appends and fdatasyncs every record on its own (see the module docs).
pub struct FsyncLog {
    state: Arc<Mutex<LogState>>,
    _dir: StoreDir,
}

struct LogState {
    file: File,
    /// Latest value and version of every key.
    map: HashMap<String, (Bytes, u64)>,
    last_version: u64,
}

/// Length (u32) + CRC-32 of the rest (u32) + version (u64) + key length (u16).
const FRAME_HEADER: usize = 4 + 4 + 8 + 2;

/// Appends one framed record to `out`.
fn encode(out: &mut Vec<u8>, key: &str, version: u64, value: &[u8]) {
    let len = 8 + 2 + key.len() + value.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

impl FsyncLog {
    /// A new, empty log in `dir`.
    pub fn create(dir: StoreDir) -> Result<Self> {
        let path = dir.path().join("log");
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        // The new file's directory entry is made durable once, as a careful store would.
        File::open(dir.path())
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("syncing {}", dir.path().display()), e))?;
        Ok(Self {
            state: Arc::new(Mutex::new(LogState {
                file,
                map: HashMap::new(),
                last_version: 0,
            })),
            _dir: dir,
        })
    }

    fn lock(state: &Mutex<LogState>) -> MutexGuard<'_, LogState> {
        state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `value` under `key` durably; with `expected`, only if the key's version is
    /// still that (`Ok(None)` when it is not).
    async fn write(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<Option<u64>> {
        let state = Arc::clone(&self.state);
        let key = key.to_owned();
        blocking(move || {
            let mut guard = Self::lock(&state);
            let state = &mut *guard;
            if let Some(expected) = expected {
                match state.map.get(&key) {
                    None => return Err(Error::NotFound),
                    Some((_, version)) if *version != expected => return Ok(None),
                    Some(_) => {}
                }
            }
            let version = state.last_version + 1;
            let mut frame = Vec::with_capacity(FRAME_HEADER + key.len() + value.len());
            encode(&mut frame, &key, version, &value);
            state
                .file
                .write_all(&frame)
                .map_err(|e| Error::io("appending to the fdatasync-log baseline", e))?;
            state
                .file
                .sync_data()
                .map_err(|e| Error::io("fdatasync of the fdatasync-log baseline", e))?;
            state.last_version = version;
            state.map.insert(key, (value, version));
            Ok(Some(version))
        })
        .await
    }
}

impl Subject for FsyncLog {
    type Version = u64;
    const NAME: &'static str = "fdatasync-log";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let state = Arc::clone(&self.state);
        blocking(move || {
            let mut guard = Self::lock(&state);
            let state = &mut *guard;
            let mut frames = Vec::new();
            for (key, value) in entries {
                state.last_version += 1;
                encode(&mut frames, &key, state.last_version, &value);
                state.map.insert(key, (value, state.last_version));
            }
            state
                .file
                .write_all(&frames)
                .and_then(|()| state.file.sync_data())
                .map_err(|e| Error::io("loading the fdatasync-log baseline", e))
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let state = Self::lock(&self.state);
        state
            .map
            .get(key)
            .map(|(value, _)| value.clone())
            .ok_or(Error::NotFound)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64> {
        let version = self.write(key, value, None).await?;
        version.ok_or_else(|| unreachable!("an unconditional write cannot conflict"))
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, u64)> {
        let state = Self::lock(&self.state);
        state.map.get(key).cloned().ok_or(Error::NotFound)
    }

    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<CasOutcome> {
        Ok(match self.write(key, value, Some(expected)).await? {
            Some(_) => CasOutcome::Stored,
            None => CasOutcome::Conflict,
        })
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// The one table of the redb baseline.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("bench");

fn redb_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Backend(format!("redb {what}: {error}"))
}

/// One durable redb write transaction per put (see the module docs).
pub struct RedbTable {
    db: Arc<redb::Database>,
    _dir: StoreDir,
}

impl RedbTable {
    /// A new database with one empty table in `dir`.
    pub fn create(dir: StoreDir) -> Result<Self> {
        let db = redb::Database::create(dir.path().join("bench.redb"))
            .map_err(|e| redb_error("create", e))?;
        let txn = db.begin_write().map_err(|e| redb_error("begin_write", e))?;
        txn.open_table(TABLE)
            .map_err(|e| redb_error("open_table", e))?;
        txn.commit().map_err(|e| redb_error("commit", e))?;
        Ok(Self {
            db: Arc::new(db),
            _dir: dir,
        })
    }

    /// Inserts `entries` in one durable write transaction.
    fn insert_all(db: &redb::Database, entries: &[(String, Bytes)]) -> Result<()> {
        let txn = db.begin_write().map_err(|e| redb_error("begin_write", e))?;
        {
            let mut table = txn
                .open_table(TABLE)
                .map_err(|e| redb_error("open_table", e))?;
            for (key, value) in entries {
                table
                    .insert(key.as_str(), value.as_ref())
                    .map_err(|e| redb_error("insert", e))?;
            }
        }
        txn.commit().map_err(|e| redb_error("commit", e))
    }
}

impl Subject for RedbTable {
    type Version = ();
    const NAME: &'static str = "redb";

    async fn load(&self, entries: Vec<(String, Bytes)>) -> Result<()> {
        let db = Arc::clone(&self.db);
        blocking(move || Self::insert_all(&db, &entries)).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        // A read transaction does not block on writers and is short: run it inline.
        let txn = self
            .db
            .begin_read()
            .map_err(|e| redb_error("begin_read", e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| redb_error("open_table", e))?;
        let value = table.get(key).map_err(|e| redb_error("get", e))?;
        value
            .map(|guard| Bytes::copy_from_slice(guard.value()))
            .ok_or(Error::NotFound)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<()> {
        let db = Arc::clone(&self.db);
        let entry = [(key.to_owned(), value)];
        blocking(move || Self::insert_all(&db, &entry)).await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    #[tokio::test]
    async fn the_log_writes_one_frame_per_put_and_answers_reads() {
        let parent = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(parent.path().to_path_buf());
        let dir = scratch.fresh("log").unwrap();
        let path = dir.path().join("log");
        let log = FsyncLog::create(dir).unwrap();
        let v1 = log.put("k", Bytes::from_static(b"one")).await.unwrap();
        log.put("k", Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(&log.get("k").await.unwrap()[..], b"two");
        assert_eq!(
            log.cas("k", v1, Bytes::new()).await.unwrap(),
            CasOutcome::Conflict
        );
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.len(), 2 * (FRAME_HEADER + 1 + 3));
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&bytes[8..FRAME_HEADER + 4]));
    }

    #[tokio::test]
    async fn redb_puts_are_readable() {
        let parent = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(parent.path().to_path_buf());
        let table = RedbTable::create(scratch.fresh("redb").unwrap()).unwrap();
        table
            .load(vec![("a".into(), Bytes::from_static(b"1"))])
            .await
            .unwrap();
        table.put("b", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(&table.get("a").await.unwrap()[..], b"1");
        assert_eq!(&table.get("b").await.unwrap()[..], b"2");
        assert!(matches!(table.get("c").await, Err(Error::NotFound)));
    }
}
