//! The `file` target's measurements that are not rates: how long opening a big store takes
//! ([`reopen`]) and how much disk its records take before and after compaction ([`space`]).
//!
//! Uses `catalog`, `cli`, `workload` (value shapes) and `report` (figures); `targets` holds
//! goals on the figure names below (see the crate's "Structure").

use std::time::{Duration, Instant};

use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStats, FileStorage, SyncPolicy};

use crate::catalog::Workload;
use crate::cli::Settings;
use crate::report::Figure;
use crate::scratch::Scratch;
use crate::workload::Shapes;
use crate::BoxError;

/// [`Figure::name`] of the slowest of the timed opens.
pub const REOPEN_SECONDS: &str = "reopen_seconds";
/// [`Figure::name`] of file bytes / live bytes before `compact()`.
pub const SPACE_BEFORE: &str = "space_amplification_before_compact";
/// [`Figure::name`] of file bytes / live bytes after `compact()`.
pub const SPACE_AFTER: &str = "space_amplification_after_compact";

/// Timed opens of the populated store; the figure is the slowest.
const REOPENS: usize = 3;
/// Records per `put_many` while populating.
const CHUNK: usize = 10_000;
/// Times every `space` key is written.
pub const SPACE_WRITES: usize = 5;
/// One `space` key in this many is deleted at the end.
const SPACE_DELETE_EVERY: usize = 10;
/// A `compact()` that has not returned by then is reported as a failure, not waited for.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(300);

/// Options for stores that are only populated: no fsync per batch (durability is not what
/// is measured, and closing syncs everything), no automatic compaction (so `space` sees the
/// log as written until it calls `compact()` itself).
fn bulk_options() -> FileOptions {
    FileOptions {
        sync: SyncPolicy::Never,
        compact_garbage_ratio: 2.0,
        ..FileOptions::default()
    }
}

/// `reopen`: populates a store with `--reopen-records` records of `--value-size` bytes
/// (`put_many` in chunks of 10,000, `SyncPolicy::Never`), closes it, then opens it
/// `REOPENS` times with `FileStorage::open` (default options), each timed until `open`
/// returns (recovery done: every segment scanned and the index rebuilt), checking each
/// time that every record is there. The page cache is warm (the files were just written),
/// so this is recovery's CPU and memory cost, not the disk's read speed.
pub async fn reopen(settings: &Settings, scratch: &Scratch) -> Result<Vec<Figure>, BoxError> {
    let records = settings.reopen_records;
    let shapes = Shapes::new(1, settings.value_size);
    let dir = scratch.fresh("file-reopen")?;
    let store = FileStorage::open_with(dir.path(), bulk_options()).await?;
    let started = Instant::now();
    let mut next = 0;
    while next < records {
        let end = (next + CHUNK).min(records);
        let chunk = (next..end)
            .map(|i| Record::new(format!("bench/reopen/{i:08}"), shapes.value.clone()))
            .collect();
        store.put_many(chunk).await?;
        next = end;
    }
    store.close().await?;
    let populated = started.elapsed();

    let mut opens = Vec::with_capacity(REOPENS);
    let mut stats = FileStats::default();
    for _ in 0..REOPENS {
        let started = Instant::now();
        let store = FileStorage::open(dir.path()).await?;
        opens.push(started.elapsed());
        stats = store.stats();
        let probe = format!("bench/reopen/{:08}", records - 1);
        let found = store.get(&probe).await?;
        store.close().await?;
        if stats.records != records as u64 || found.value != shapes.value {
            return Err(format!(
                "reopen: the store holds {} records after opening, not {records}",
                stats.records
            )
            .into());
        }
    }
    let worst = opens.iter().max().copied().unwrap_or_default();
    let list = opens
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "open {:.3} s, the slowest of {REOPENS} opens ({list} s); {} records, {} in {} \
         segment{}, engine open {:.3} s; populated in {:.2} s ({})",
        worst.as_secs_f64(),
        stats.records,
        megabytes(stats.file_bytes),
        stats.segments,
        if stats.segments == 1 { "" } else { "s" },
        stats.open_micros as f64 / 1e6,
        populated.as_secs_f64(),
        per_second(records, populated),
    );
    Ok(vec![Figure {
        kind: "figure",
        workload: Workload::Reopen.name(),
        keys: records,
        target: "file",
        name: REOPEN_SECONDS,
        label: format!("reopen of {records} records, seconds"),
        value: round3(worst.as_secs_f64()),
        unit: "s",
        summary,
        details: serde_json::json!({
            "open_seconds": opens.iter().map(|d| round3(d.as_secs_f64())).collect::<Vec<_>>(),
            "engine_open_seconds": stats.open_micros as f64 / 1e6,
            "records": stats.records,
            "recovered_records": stats.recovered_records,
            "file_bytes": stats.file_bytes,
            "live_bytes": stats.live_bytes,
            "segments": stats.segments,
            "recoveries": stats.recoveries,
            "populate_seconds": round3(populated.as_secs_f64()),
        }),
    }])
}

/// `space`: writes each of `--space-keys` keys `SPACE_WRITES` times (`put_many` in chunks,
/// a round over all keys at a time), deletes one key in ten, and reads the store's
/// `file_bytes / live_bytes` (automatic compaction is off, so this is the log as written);
/// then calls `compact()` and reads it again.
pub async fn space(settings: &Settings, scratch: &Scratch) -> Result<Vec<Figure>, BoxError> {
    let keys = settings.space_keys;
    let shapes = Shapes::new(keys, settings.value_size);
    let dir = scratch.fresh("file-space")?;
    let store = FileStorage::open_with(dir.path(), bulk_options()).await?;
    let started = Instant::now();
    for _ in 0..SPACE_WRITES {
        for chunk in shapes.keys.chunks(CHUNK) {
            let records = chunk
                .iter()
                .map(|key| Record::new(key.clone(), shapes.value.clone()))
                .collect();
            store.put_many(records).await?;
        }
    }
    let mut deleted = 0;
    for key in shapes.keys.iter().step_by(SPACE_DELETE_EVERY) {
        store.delete(key).await?;
        deleted += 1;
    }
    let written = started.elapsed();
    // A round trip through the actor, so the counters include the last batch.
    settle(&store, &shapes.keys[1]).await?;
    let before = store.stats();

    let started = Instant::now();
    match tokio::time::timeout(COMPACT_TIMEOUT, store.compact()).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(format!(
                "space: compact() did not return within {COMPACT_TIMEOUT:?} ({:?})",
                store.stats()
            )
            .into())
        }
    }
    let compacted = started.elapsed();
    // As above: the counters then describe the store after the compaction's install.
    settle(&store, &shapes.keys[1]).await?;
    let after = store.stats();
    store.close().await?;

    let live = (keys - deleted) as u64;
    if before.records != live || after.records != live {
        return Err(format!(
            "space: {live} keys should be live, the store counts {} before compacting and {} \
             after",
            before.records, after.records
        )
        .into());
    }
    let amplification = |stats: &FileStats| {
        if stats.live_bytes == 0 {
            0.0
        } else {
            round3(stats.file_bytes as f64 / stats.live_bytes as f64)
        }
    };
    let details = |stats: &FileStats| {
        serde_json::json!({
            "file_bytes": stats.file_bytes,
            "live_bytes": stats.live_bytes,
            "records": stats.records,
            "segments": stats.segments,
            "garbage_ratio": round3(stats.garbage_ratio),
        })
    };
    let sizes = |stats: &FileStats| {
        format!(
            "file {}, live {}, {} segment{}",
            megabytes(stats.file_bytes),
            megabytes(stats.live_bytes),
            stats.segments,
            if stats.segments == 1 { "" } else { "s" }
        )
    };
    let workload = Workload::Space.name();
    Ok(vec![
        Figure {
            kind: "figure",
            workload,
            keys,
            target: "file",
            name: SPACE_BEFORE,
            label: "space amplification before compact (file/live bytes)".into(),
            value: amplification(&before),
            unit: "x",
            summary: format!(
                "file/live {:.2}x before compact: {keys} keys x {SPACE_WRITES} writes, {deleted} \
                 deleted, {} records live ({}), written in {:.2} s",
                amplification(&before),
                before.records,
                sizes(&before),
                written.as_secs_f64(),
            ),
            details: details(&before),
        },
        Figure {
            kind: "figure",
            workload,
            keys,
            target: "file",
            name: SPACE_AFTER,
            label: "space amplification after compact (file/live bytes)".into(),
            value: amplification(&after),
            unit: "x",
            summary: format!(
                "file/live {:.2}x after compact ({}), compact took {:.2} s",
                amplification(&after),
                sizes(&after),
                compacted.as_secs_f64(),
            ),
            details: {
                let mut details = details(&after);
                details["compact_seconds"] = round3(compacted.as_secs_f64()).into();
                details
            },
        },
    ])
}

/// A read through the actor: it is answered after the engine has published the counters
/// of everything before it.
async fn settle(store: &FileStorage, key: &str) -> Result<(), Error> {
    match store.get(key).await {
        Ok(_) | Err(Error::NotFound) => Ok(()),
        Err(error) => Err(error),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn per_second(count: usize, elapsed: Duration) -> String {
    let rate = count as f64 / elapsed.as_secs_f64().max(1e-9);
    if rate >= 1e6 {
        format!("{:.2}M records/s", rate / 1e6)
    } else {
        format!("{:.0}k records/s", rate / 1e3)
    }
}
