//! Issue 9: the store under hostile conditions. A file it did not write is never taken for
//! its own, lost files are noticed and never make a version repeat, forged versions are
//! corruption, a deleted directory is noticed, absurd options are refused, and a store can
//! be opened read-only.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy, MAX_SYNC_INTERVAL};

use common::{fast, file_names, segment_files};

fn small_segments() -> FileOptions {
    FileOptions {
        segment_size: 2 << 10,
        compact_garbage_ratio: 2.0,
        cache_values_up_to: 0,
        ..fast()
    }
}

/// The value `fill` writes for record `i`: every record of one prefix has the same size.
fn value(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}-{}", "x".repeat(100))
}

/// Writes `n` records (keys `prefix/i`) and returns every version handed out.
async fn fill(store: &FileStorage, prefix: &str, n: usize) -> HashSet<u64> {
    let mut versions = HashSet::new();
    for i in 0..n {
        let stored = store
            .put(Record::new(format!("{prefix}/{i:04}"), value(prefix, i)))
            .await
            .unwrap();
        versions.insert(stored.version.parse().unwrap());
    }
    versions
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    file_names(dir)
        .into_iter()
        .filter(|n| n != "LOCK")
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn expect_corrupt(result: Result<FileStorage, Error>, needles: &[&str]) -> String {
    match result {
        Err(Error::Corrupt(message)) => {
            for needle in needles {
                assert!(message.contains(needle), "{needle:?} not in: {message}");
            }
            message
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the store opened"),
    }
}

/// 9.2: a compacted segment copied in from another store is refused, naming the file, and
/// nothing of this store is deleted.
#[tokio::test]
async fn a_segment_of_another_store_is_refused_and_nothing_is_deleted() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let store_a = FileStorage::open_with(a.path(), small_segments())
        .await
        .unwrap();
    fill(&store_a, "a", 200).await;
    store_a.compact().await.unwrap();
    store_a.close().await.unwrap();
    let store_b = FileStorage::open_with(b.path(), small_segments())
        .await
        .unwrap();
    fill(&store_b, "b", 20).await;
    store_b.close().await.unwrap();
    // A's compacted segment has a higher number than any of B's and claims to cover them.
    let foreign = segment_files(a.path()).into_iter().next().unwrap();
    let name = foreign.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(segment_files(b.path())
        .iter()
        .all(|f| f.file_name().unwrap().to_str().unwrap() < name.as_str()));
    let before = snapshot(b.path());
    std::fs::copy(&foreign, b.path().join(&name)).unwrap();
    for skip in [false, true] {
        let options = FileOptions {
            skip_corrupt_frames: skip,
            ..small_segments()
        };
        expect_corrupt(
            FileStorage::open_with(b.path(), options).await,
            &[&name, "another store"],
        );
    }
    std::fs::remove_file(b.path().join(&name)).unwrap();
    assert_eq!(
        snapshot(b.path()),
        before,
        "the refused opens changed B's files"
    );
    let store_b = FileStorage::open_with(b.path(), small_segments())
        .await
        .unwrap();
    assert_eq!(store_b.stats().records, 20);
    assert!(matches!(store_b.get("a/0000").await, Err(Error::NotFound)));
    store_b.close().await.unwrap();
}

/// 9.3: names that only look like segments (upper case, other lengths) are unrelated files:
/// ignored at open, kept through compaction.
#[tokio::test]
async fn non_canonical_segment_names_are_unrelated_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), small_segments())
        .await
        .unwrap();
    fill(&store, "k", 50).await;
    store.close().await.unwrap();
    let strays = [
        "seg-00000000000000AB.log",
        "seg-0000000000000001.LOG",
        "seg-1.log",
        "seg-00000000000000AB.log.compact",
        "seg-notes.compact",
    ];
    for (i, stray) in strays.iter().enumerate() {
        std::fs::write(dir.path().join(stray), format!("someone else's file {i}")).unwrap();
    }
    // A lower-case twin of the upper-case name must not matter either.
    let store = FileStorage::open_with(dir.path(), small_segments())
        .await
        .unwrap();
    assert_eq!(store.stats().records, 50);
    assert_eq!(store.stats().recoveries, 0);
    fill(&store, "more", 50).await;
    store.compact().await.unwrap();
    store.close().await.unwrap();
    let store = FileStorage::open_with(dir.path(), small_segments())
        .await
        .unwrap();
    assert_eq!(store.stats().records, 100);
    store.close().await.unwrap();
    for (i, stray) in strays.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(stray)).unwrap(),
            format!("someone else's file {i}"),
            "{stray} was touched"
        );
    }
}

/// A store of several segments, closed; returns every version it handed out.
async fn several_segments(dir: &Path) -> HashSet<u64> {
    let store = FileStorage::open_with(dir, small_segments()).await.unwrap();
    let versions = fill(&store, "k", 120).await;
    store.close().await.unwrap();
    assert!(segment_files(dir).len() >= 5);
    versions
}

/// Opens with `skip_corrupt_frames`, checks the loss was counted, writes, and checks that
/// no version handed out before is handed out again.
async fn opens_with_loss_counted_and_fresh_versions(dir: &Path, handed_out: &HashSet<u64>) {
    let options = FileOptions {
        skip_corrupt_frames: true,
        ..small_segments()
    };
    let store = FileStorage::open_with(dir, options.clone()).await.unwrap();
    assert!(store.stats().lost_segments >= 1, "{:?}", store.stats());
    let fresh = fill(&store, "new", 30).await;
    assert!(
        fresh.is_disjoint(handed_out),
        "a version was handed out twice"
    );
    // Opening started a compaction that rewrites what is left and so mends the chain of
    // segments; this one waits for it (and runs one more).
    store.compact().await.unwrap();
    store.close().await.unwrap();
    // The damage was accepted once; the store now opens cleanly and keeps its versions.
    let store = FileStorage::open_with(dir, small_segments()).await.unwrap();
    let again = fill(&store, "again", 5).await;
    assert!(again.is_disjoint(handed_out) && again.is_disjoint(&fresh));
    store.close().await.unwrap();
}

/// 9.4: a deleted segment (oldest, middle or newest) is noticed: opening fails naming what
/// is missing; with `skip_corrupt_frames` it opens, counts it, and never reuses a version.
#[tokio::test]
async fn a_deleted_segment_is_detected_and_versions_are_never_reused() {
    for which in ["oldest", "middle", "newest"] {
        let dir = tempfile::tempdir().unwrap();
        let handed_out = several_segments(dir.path()).await;
        let files = segment_files(dir.path());
        let victim = match which {
            "oldest" => files[0].clone(),
            "middle" => files[files.len() / 2].clone(),
            _ => files[files.len() - 1].clone(),
        };
        std::fs::remove_file(&victim).unwrap();
        let before = snapshot(dir.path());
        expect_corrupt(
            FileStorage::open_with(dir.path(), small_segments()).await,
            &["missing"],
        );
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{which}: a refused open changed files"
        );
        opens_with_loss_counted_and_fresh_versions(dir.path(), &handed_out).await;
    }
}

/// 9.4: a sealed segment cut exactly at a frame boundary is noticed (its sealed length is
/// recorded in the next segment's header); the newest one cut at a frame boundary looks
/// like a crash, and its lost versions are still never handed out again.
#[tokio::test]
async fn a_segment_cut_at_a_frame_boundary_is_detected_or_keeps_its_versions() {
    let dir = tempfile::tempdir().unwrap();
    let handed_out = several_segments(dir.path()).await;
    let files = segment_files(dir.path());
    // Every record here takes one frame of the same size: cut the last one off exactly.
    let sealed = &files[1];
    let len = std::fs::metadata(sealed).unwrap().len();
    let frame = (20 + 36 + "k/0000".len() + value("k", 0).len()) as u64;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(sealed)
        .unwrap();
    file.set_len(len - frame).unwrap();
    drop(file);
    let name = sealed.file_name().unwrap().to_str().unwrap();
    expect_corrupt(
        FileStorage::open_with(dir.path(), small_segments()).await,
        &[name, "shortened"],
    );
    opens_with_loss_counted_and_fresh_versions(dir.path(), &handed_out).await;

    // The newest (active) segment cut at a frame boundary: indistinguishable from a crash
    // before that write, so it opens; the lost record's version is not reused.
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    let mut handed_out = fill(&store, "k", 10).await;
    store.close().await.unwrap();
    let active = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap();
    file.set_len(len - frame).unwrap();
    drop(file);
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    assert_eq!(store.stats().records, 9);
    let fresh = fill(&store, "new", 10).await;
    assert!(
        fresh.is_disjoint(&handed_out),
        "a version was handed out twice"
    );
    handed_out.extend(fresh);
    store.close().await.unwrap();
}

/// 9.4: without its manifest the store cannot prove its highest version: it refuses to
/// open, or (with `skip_corrupt_frames`) rebuilds the manifest and skips far ahead.
#[tokio::test]
async fn a_deleted_manifest_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let handed_out = several_segments(dir.path()).await;
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    expect_corrupt(
        FileStorage::open_with(dir.path(), small_segments()).await,
        &["MANIFEST", "missing"],
    );
    opens_with_loss_counted_and_fresh_versions(dir.path(), &handed_out).await;
}

/// Appends to `path` a frame with valid checksums holding one put of `key` with `version`
/// (the format of the crate docs).
fn append_forged_frame(path: &Path, key: &str, version: u64) {
    let value = b"forged";
    let mut record = vec![0u8; 4];
    record.push(1); // put
    record.push(0); // no expiry
    record.extend_from_slice(&[0, 0]);
    record.extend_from_slice(&(key.len() as u32).to_le_bytes());
    record.extend_from_slice(&(value.len() as u32).to_le_bytes());
    record.extend_from_slice(&version.to_le_bytes());
    record.extend_from_slice(&0i64.to_le_bytes());
    record.extend_from_slice(&0u32.to_le_bytes());
    record.extend_from_slice(key.as_bytes());
    record.extend_from_slice(value);
    let crc = crc32fast::hash(&record[4..]);
    record[0..4].copy_from_slice(&crc.to_le_bytes());
    let mut frame = b"STFR".to_vec();
    frame.extend_from_slice(&(record.len() as u32).to_le_bytes());
    frame.extend_from_slice(&1u32.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&record).to_le_bytes());
    let header_crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&header_crc.to_le_bytes());
    frame.extend_from_slice(&record);
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(&frame);
    std::fs::write(path, bytes).unwrap();
}

/// 9.5: a forged frame whose version is impossible (`u64::MAX`, or anything above
/// `i64::MAX`) is corruption, not a torn tail and not data; skipping it leaves versions
/// counting on normally.
#[tokio::test]
async fn a_forged_impossible_version_is_corruption() {
    for forged in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
        let handed_out = fill(&store, "k", 3).await;
        store.close().await.unwrap();
        let active = segment_files(dir.path()).pop().unwrap();
        append_forged_frame(&active, "evil", forged);
        let name = active.file_name().unwrap().to_str().unwrap().to_owned();
        expect_corrupt(
            FileStorage::open_with(dir.path(), fast()).await,
            &[&name, "version"],
        );
        let options = FileOptions {
            skip_corrupt_frames: true,
            ..fast()
        };
        let store = FileStorage::open_with(dir.path(), options).await.unwrap();
        assert_eq!(store.stats().skipped_frames, 1);
        assert!(matches!(store.get("evil").await, Err(Error::NotFound)));
        let next = fill(&store, "after", 1).await;
        let next = *next.iter().next().unwrap();
        assert!(
            next > *handed_out.iter().max().unwrap() && next < 1 << 32,
            "{next}"
        );
        store.close().await.unwrap();
    }
}

/// 9.6: the directory deleted under a running store: the next write fails with a clear
/// error, every later write is refused, the stats say so, and `close` reports it.
#[tokio::test]
async fn a_directory_deleted_under_a_running_store_fails_writes() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let store = FileStorage::open_with(
        &dir,
        FileOptions {
            sync: SyncPolicy::Always,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store.put(Record::new("before", "1")).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    match store.put(Record::new("after", "2")).await {
        Err(Error::ReadOnly(why)) => assert!(why.contains("deleted"), "{why}"),
        other => panic!("expected the write to fail, got {other:?}"),
    }
    assert!(matches!(
        store.put(Record::new("later", "3")).await,
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(store.get("after").await, Err(Error::NotFound)));
    assert_eq!(&store.get("before").await.unwrap().value[..], b"1");
    assert!(store.stats().read_only);
    assert!(matches!(store.compact().await, Err(Error::ReadOnly(_))));
    assert!(matches!(store.close().await, Err(Error::ReadOnly(_))));
}

/// 9.7: sync intervals that would overflow the clock are refused when opening, naming the
/// option; the longest accepted one works.
#[tokio::test]
async fn huge_sync_intervals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for d in [
        Duration::MAX,
        Duration::from_secs(400_000_000_000 * 365 * 86_400),
        MAX_SYNC_INTERVAL + Duration::from_nanos(1),
    ] {
        let options = FileOptions {
            sync: SyncPolicy::Interval(d),
            ..Default::default()
        };
        match FileStorage::open_with(dir.path(), options).await {
            Err(Error::InvalidValue(why)) => assert!(why.contains("FileOptions::sync"), "{why}"),
            other => panic!("{d:?}: expected InvalidValue, got {:?}", other.map(|_| ())),
        }
    }
    assert!(
        file_names(dir.path()).is_empty(),
        "a refused open created files"
    );
    let options = FileOptions {
        sync: SyncPolicy::Interval(MAX_SYNC_INTERVAL),
        ..Default::default()
    };
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    store.put(Record::new("k", "v")).await.unwrap();
    store.put(Record::new("k", "w")).await.unwrap();
    store.close().await.unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    assert_eq!(&store.get("k").await.unwrap().value[..], b"w");
    store.close().await.unwrap();
}

fn read_only() -> FileOptions {
    FileOptions {
        read_only: true,
        cache_values_up_to: 0,
        ..Default::default()
    }
}

/// 9.9: a read-only open serves reads, refuses every write, changes nothing on disk (not
/// even a torn tail), shares the lock with other readers and not with a writer.
#[tokio::test]
async fn a_read_only_open_reads_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), small_segments())
        .await
        .unwrap();
    fill(&store, "k", 60).await;
    // The writer holds the lock: a reader must wait for it to close.
    match FileStorage::open_with(dir.path(), read_only()).await {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ResourceBusy)
        }
        other => panic!("expected ResourceBusy, got {:?}", other.map(|_| ())),
    }
    store.close().await.unwrap();
    // A torn tail that a writable open would cut off.
    let active = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes.extend_from_slice(b"STFR torn");
    std::fs::write(&active, &bytes).unwrap();
    let before = snapshot(dir.path());

    let reader = FileStorage::open_with(dir.path(), read_only())
        .await
        .unwrap();
    let second = FileStorage::open_with(dir.path(), read_only())
        .await
        .unwrap();
    assert_eq!(reader.stats().records, 60);
    assert!(reader.stats().read_only);
    assert_eq!(
        reader.get("k/0007").await.unwrap().value,
        second.get("k/0007").await.unwrap().value
    );
    let keys: Vec<String> = reader
        .list_keys("k/*")
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await;
    assert_eq!(keys.len(), 60);
    for refused in [
        reader.put(Record::new("x", "y")).await.map(|_| ()),
        reader.delete("k/0001").await,
        reader.create(Record::new("x", "y")).await.map(|_| ()),
        reader.compact().await,
    ] {
        match refused {
            Err(Error::ReadOnly(why)) => assert!(why.contains("read_only"), "{why}"),
            other => panic!("expected ReadOnly, got {other:?}"),
        }
    }
    reader.close().await.unwrap();
    second.close().await.unwrap();
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only open changed the files"
    );

    // Without a LOCK file (as on a read-only mount where none was ever created) it still
    // opens; a missing directory is not created.
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    let reader = FileStorage::open_with(dir.path(), read_only())
        .await
        .unwrap();
    assert_eq!(reader.stats().records, 60);
    reader.close().await.unwrap();
    assert!(!file_names(dir.path()).contains(&"LOCK".to_owned()));
    let missing = dir.path().join("nope");
    assert!(FileStorage::open_with(&missing, read_only()).await.is_err());
    assert!(!missing.exists());
}

/// 9.9: a live `list_keys` stream holds a handle, so it keeps the store open (and its
/// directory locked) after every other handle is dropped; dropping the stream closes it.
#[tokio::test]
async fn a_live_listing_keeps_the_store_open_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    fill(&store, "k", 10).await;
    let mut stream = store.list_keys("k/*").await.unwrap();
    drop(store);
    assert!(stream.next().await.is_some(), "the stream goes on");
    assert!(
        FileStorage::open_with(dir.path(), fast()).await.is_err(),
        "still locked"
    );
    drop(stream);
    // The actor stops moments after its last handle is gone.
    let mut reopened = None;
    for _ in 0..200 {
        if let Ok(store) = FileStorage::open_with(dir.path(), fast()).await {
            reopened = Some(store);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let store = reopened.expect("the store was not released after the stream was dropped");
    assert_eq!(store.stats().records, 10);
    store.close().await.unwrap();

    // `close` ends a live listing: its next page is `Closed`.
    let options = FileOptions {
        runtime: store_core::runtime::RuntimeOptions::default().page_size(2),
        ..fast()
    };
    let store = FileStorage::open_with(dir.path(), options).await.unwrap();
    let mut stream = store.list_keys("k/*").await.unwrap();
    store.close().await.unwrap();
    let rest: Vec<Result<String, Error>> = stream.by_ref().collect().await;
    assert!(rest.len() <= 3, "{rest:?}");
    assert!(matches!(rest.last(), Some(Err(Error::Closed))), "{rest:?}");
    assert!(FileStorage::open_with(dir.path(), fast()).await.is_ok());
}

/// Files under `dir` that this process holds open although they were deleted.
#[cfg(target_os = "linux")]
fn deleted_but_open(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with(&dir.display().to_string()) && p.ends_with("(deleted)"))
        .collect()
}

/// 9.9 and issue 15: compaction republishes the read view's handles on the output, so the
/// replaced segments' files are closed once compaction is done: descriptors stay at one
/// per live segment.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn compaction_lets_go_of_the_replaced_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), small_segments())
        .await
        .unwrap();
    fill(&store, "k", 200).await;
    fill(&store, "k", 200).await;
    assert!(store.stats().segments > 10);
    store.compact().await.unwrap();
    // Values are read from the output now.
    for i in (0..200).step_by(17) {
        let key = format!("k/{i:04}");
        assert_eq!(store.get(&key).await.unwrap().value, value("k", i));
    }
    assert_eq!(deleted_but_open(dir.path()), Vec::<String>::new());
    store.close().await.unwrap();
}

/// A store of format 1 (no identity, no manifest) is refused with a message naming the
/// file and the version, and is left as it was.
#[tokio::test]
async fn a_format_1_store_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = vec![0u8; 44];
    header[0..8].copy_from_slice(b"STFSEG\r\n");
    header[8..10].copy_from_slice(&1u16.to_le_bytes());
    header[16..24].copy_from_slice(&1u64.to_le_bytes());
    header[24..32].copy_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&header[0..40]);
    header[40..44].copy_from_slice(&crc.to_le_bytes());
    let name = "seg-0000000000000001.log";
    std::fs::write(dir.path().join(name), &header).unwrap();
    let before = snapshot(dir.path());
    expect_corrupt(
        FileStorage::open(dir.path()).await,
        &[name, "format version 1"],
    );
    assert_eq!(snapshot(dir.path()), before);
}
