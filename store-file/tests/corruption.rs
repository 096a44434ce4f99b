//! Corruption tests: damaged files are never read as data and never make the store panic.
//! A torn or garbage tail is cut off (every complete record before it is kept); damage
//! anywhere else makes opening fail with `Error::Corrupt` naming the file and offset, or,
//! with `skip_corrupt_frames`, drops only the damaged frame.

mod common;

use std::path::{Path, PathBuf};

use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy};

use common::{fast, segment_files, Rng};

const RECORDS: usize = 12;

fn key(i: usize) -> String {
    format!("key/{i:03}")
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat(i * 7)).into_bytes()
}

/// The segment header's length (format version 2).
const HEADER: usize = 84;

/// A store with `RECORDS` records, one frame each, in one segment: the segment's name, its
/// bytes, where the last frame starts, and the store's manifest.
struct Built {
    name: String,
    bytes: Vec<u8>,
    last_start: usize,
    manifest: Vec<u8>,
}

async fn build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    for i in 0..RECORDS - 1 {
        store.put(Record::new(key(i), value(i))).await.unwrap();
    }
    store.close().await.unwrap();
    let last_start = std::fs::metadata(&segment_files(dir.path())[0])
        .unwrap()
        .len() as usize;
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    store
        .put(Record::new(key(RECORDS - 1), value(RECORDS - 1)))
        .await
        .unwrap();
    store.close().await.unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    Built {
        name,
        bytes: std::fs::read(&files[0]).unwrap(),
        last_start,
        manifest: std::fs::read(dir.path().join("MANIFEST")).unwrap(),
    }
}

/// A fresh directory holding the built store's manifest and its segment with `bytes`.
fn dir_with(built: &Built, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("MANIFEST"), &built.manifest).unwrap();
    let path = dir.path().join(&built.name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Every key the store has holds exactly what was written for it; returns which are there.
async fn present_keys(store: &FileStorage) -> Vec<usize> {
    let mut present = Vec::new();
    for i in 0..RECORDS {
        match store.get(&key(i)).await {
            Ok(record) => {
                assert_eq!(
                    &record.value[..],
                    &value(i)[..],
                    "{} holds wrong bytes",
                    key(i)
                );
                present.push(i);
            }
            Err(Error::NotFound) => {}
            Err(other) => panic!("get {}: {other}", key(i)),
        }
    }
    present
}

fn uncached() -> FileOptions {
    FileOptions {
        cache_values_up_to: 0,
        ..fast()
    }
}

#[tokio::test]
async fn cutting_the_log_at_every_offset_inside_the_last_record_keeps_the_others() {
    let built = build().await;
    let (bytes, last_start) = (&built.bytes, built.last_start);
    let all_but_last: Vec<usize> = (0..RECORDS - 1).collect();
    for cut in last_start..bytes.len() {
        let (dir, path) = dir_with(&built, &bytes[..cut]);
        let store = FileStorage::open_with(dir.path(), uncached())
            .await
            .unwrap_or_else(|e| panic!("cut at {cut}: open failed: {e}"));
        assert_eq!(present_keys(&store).await, all_but_last, "cut at {cut}");
        let stats = store.stats();
        assert_eq!(
            stats.truncated_bytes as usize,
            cut - last_start,
            "cut at {cut}"
        );
        assert_eq!(
            stats.recoveries,
            u64::from(cut > last_start),
            "cut at {cut}"
        );
        // The store goes on normally after the repair, and never hands out the version of
        // the record that was cut off (the manifest reserved it).
        let rewritten = store
            .put(Record::new(key(RECORDS - 1), value(RECORDS - 1)))
            .await
            .unwrap();
        assert_eq!(rewritten.version, (RECORDS + 1).to_string(), "cut at {cut}");
        store.close().await.unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            bytes.len(),
            "cut at {cut}: rewriting the record gives a file of the same size"
        );
        let store = FileStorage::open_with(dir.path(), uncached())
            .await
            .unwrap();
        assert_eq!(
            present_keys(&store).await.len(),
            RECORDS,
            "cut at {cut}, reopened"
        );
        assert_eq!(store.stats().recoveries, 0);
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn garbage_after_the_last_record_is_cut_off() {
    let built = build().await;
    let bytes = &built.bytes;
    let mut rng = Rng::new("garbage_after_the_last_record_is_cut_off");
    let mut garbages: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0; 4096],
        vec![0xff; 19],
        b"STFR".to_vec(),
        // A frame header with the right magic and a huge length, but no valid checksum.
        b"STFR\xff\xff\xff\x7f\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
    ];
    for len in [1, 3, 7, 20, 21, 100, 5000] {
        garbages.push(rng.bytes(len));
    }
    // A copy of a real frame, cut short: looks valid until its end.
    let last_start = built.last_start;
    garbages.push(bytes[last_start..bytes.len() - 1].to_vec());
    for garbage in garbages {
        let mut damaged = bytes.clone();
        damaged.extend_from_slice(&garbage);
        let (dir, path) = dir_with(&built, &damaged);
        let store = FileStorage::open_with(dir.path(), uncached())
            .await
            .unwrap();
        assert_eq!(
            present_keys(&store).await.len(),
            RECORDS,
            "garbage {garbage:?}"
        );
        let stats = store.stats();
        assert_eq!(stats.truncated_bytes as usize, garbage.len());
        assert_eq!(stats.recoveries, 1);
        store.close().await.unwrap();
        assert_eq!(&std::fs::read(&path).unwrap(), bytes);
    }
}

/// Opens `bytes` (with one byte flipped at `at`) with and without `skip_corrupt_frames`.
async fn open_flipped(built: &Built, at: usize) {
    let (name, last_start) = (built.name.as_str(), built.last_start);
    let mut damaged = built.bytes.clone();
    damaged[at] ^= 0x20;
    let (dir, _) = dir_with(built, &damaged);
    match FileStorage::open_with(dir.path(), uncached()).await {
        Ok(store) => {
            // Only damage in the newest frame can look like a torn write.
            assert!(
                at >= last_start,
                "flip at {at}: damage mid-file was accepted"
            );
            let present = present_keys(&store).await;
            assert_eq!(
                present,
                (0..RECORDS - 1).collect::<Vec<_>>(),
                "flip at {at}"
            );
            store.close().await.unwrap();
        }
        Err(Error::Corrupt(message)) => {
            assert!(
                at < last_start,
                "flip at {at}: the torn tail should have been cut off"
            );
            assert!(
                message.contains(name),
                "flip at {at}: message does not name the file: {message}"
            );
        }
        Err(other) => panic!("flip at {at}: expected Error::Corrupt, got {other}"),
    }
    // With skip_corrupt_frames, only the damaged frame (one record) is lost; the segment
    // header has no frame to skip to, so damage there still fails.
    let (dir, _) = dir_with(built, &damaged);
    let options = FileOptions {
        skip_corrupt_frames: true,
        ..uncached()
    };
    match FileStorage::open_with(dir.path(), options).await {
        Ok(store) => {
            let present = present_keys(&store).await;
            assert_eq!(
                present.len(),
                RECORDS - 1,
                "flip at {at}: present {present:?}"
            );
            assert!(store.stats().recoveries >= 1);
            store.close().await.unwrap();
        }
        Err(Error::Corrupt(message)) => {
            assert!(at < HEADER, "flip at {at}: skip mode failed: {message}");
        }
        Err(other) => panic!("flip at {at}: {other}"),
    }
}

#[tokio::test]
async fn flipped_bytes_are_never_returned_as_data() {
    let built = build().await;
    let (bytes, last_start) = (&built.bytes, built.last_start);
    // Every byte of the segment header, and every byte of three frames: the first, one in
    // the middle, the last.
    let first_frame_end = HEADER + 20 + 36 + key(0).len() + value(0).len();
    let mid = RECORDS / 2;
    let mut positions: Vec<usize> = (0..first_frame_end).collect();
    let mid_start = HEADER
        + (0..mid)
            .map(|i| 20 + 36 + key(i).len() + value(i).len())
            .sum::<usize>();
    let mid_end = mid_start + 20 + 36 + key(mid).len() + value(mid).len();
    positions.extend(mid_start..mid_end);
    positions.extend(last_start..bytes.len());
    for at in positions {
        open_flipped(&built, at).await;
    }
}

#[tokio::test]
async fn a_damaged_sealed_segment_fails_to_open_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        segment_size: 256,
        ..uncached()
    };
    let store = FileStorage::open_with(dir.path(), options.clone())
        .await
        .unwrap();
    for i in 0..RECORDS {
        store.put(Record::new(key(i), value(i))).await.unwrap();
    }
    store.close().await.unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    // The last byte of the first (sealed) segment: damage at its end is not a torn write,
    // since a segment is synced before the next one is started.
    let first = &files[0];
    let mut bytes = std::fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(first, &bytes).unwrap();
    match FileStorage::open_with(dir.path(), options.clone()).await {
        Err(Error::Corrupt(message)) => {
            let name = first.file_name().unwrap().to_str().unwrap();
            assert!(
                message.contains(name) && message.contains("offset"),
                "{message}"
            );
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    // Nothing was changed on disk by the refused open.
    assert_eq!(std::fs::read(first).unwrap(), bytes);
}

#[tokio::test]
async fn a_record_damaged_while_open_is_an_error_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), uncached())
        .await
        .unwrap();
    for i in 0..RECORDS {
        store.put(Record::new(key(i), value(i))).await.unwrap();
    }
    // Flip one byte of the last value on disk behind the store's back.
    let file = &segment_files(dir.path())[0];
    let mut bytes = std::fs::read(file).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 1;
    std::fs::write(file, &bytes).unwrap();
    match store.get(&key(RECORDS - 1)).await {
        Err(Error::Corrupt(message)) => {
            assert!(
                message.contains("checksum") && message.contains("offset"),
                "{message}"
            )
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let records = store.get_many(&[&key(0), &key(1)]).await.unwrap();
    assert!(records.iter().all(Option::is_some));
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_unknown_format_version_is_refused() {
    let built = build().await;
    let mut bytes = built.bytes.clone();
    bytes[8] = 3; // format version 3
    let crc = crc32fast::hash(&bytes[0..80]);
    bytes[80..84].copy_from_slice(&crc.to_le_bytes());
    let (dir, _) = dir_with(&built, &bytes);
    match FileStorage::open(dir.path()).await {
        Err(Error::Corrupt(message)) => {
            assert!(message.contains("format version 3"), "{message}");
            assert!(message.contains(&built.name), "{message}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn an_interrupted_segment_creation_is_cleaned_up() {
    let built = build().await;
    let bytes = &built.bytes;
    for partial in [0usize, 10, HEADER] {
        let (dir, _) = dir_with(&built, bytes);
        // The next segment the store would create, cut to `partial` bytes.
        let next: PathBuf = dir.path().join("seg-0000000000000002.log");
        let header = {
            let mut h = bytes[..HEADER].to_vec();
            h[16] = 2;
            h.truncate(partial);
            if partial == HEADER {
                h[20] ^= 1; // and with a bad checksum when whole
            }
            h
        };
        std::fs::write(&next, header).unwrap();
        let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
        assert_eq!(present_keys(&store).await.len(), RECORDS);
        assert_eq!(store.stats().recoveries, 1);
        store.put(Record::new("after", "x")).await.unwrap();
        store.close().await.unwrap();
        assert!(!next.exists() || std::fs::metadata(&next).unwrap().len() > HEADER as u64);
        let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
        assert_eq!(&store.get("after").await.unwrap().value[..], b"x");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn random_damage_never_panics_or_returns_wrong_bytes() {
    let built = build().await;
    let bytes = &built.bytes;
    let mut rng = Rng::new("random_damage_never_panics_or_returns_wrong_bytes");
    for _ in 0..60 {
        let mut damaged = bytes.clone();
        // A burst of random bytes somewhere, or a cut plus garbage.
        let at = rng.range(0, damaged.len() as u64) as usize;
        let len = rng.range(1, 64) as usize;
        for b in damaged.iter_mut().skip(at).take(len) {
            *b = rng.next_u64() as u8;
        }
        if rng.range(0, 2) == 0 {
            damaged.truncate(rng.range(at as u64, damaged.len() as u64 + 1) as usize);
        }
        for skip in [false, true] {
            let (dir, _) = dir_with(&built, &damaged);
            let options = FileOptions {
                skip_corrupt_frames: skip,
                ..uncached()
            };
            match FileStorage::open_with(dir.path(), options).await {
                Ok(store) => {
                    let present = present_keys(&store).await;
                    if !skip {
                        // Without skipping, only a tail can go missing.
                        let expected: Vec<usize> = (0..present.len()).collect();
                        assert_eq!(present, expected, "damage at {at}..{}", at + len);
                    }
                    store.close().await.unwrap();
                }
                Err(Error::Corrupt(_)) => {}
                Err(other) => panic!("damage at {at}: unexpected error {other}"),
            }
        }
    }
}

/// The segment file of a fresh store is only its header.
#[tokio::test]
async fn a_new_store_has_one_header_only_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(
        dir.path(),
        FileOptions {
            sync: SyncPolicy::Always,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store.close().await.unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), HEADER as u64);
    let _: &Path = dir.path();
}

/// A value may itself contain bytes that form a valid frame (say, a backup of a segment).
/// When the write of such a value is torn, or its frame damaged, the frame's own header
/// says where it ends, so recovery never mistakes the embedded frame for a later write.
#[tokio::test]
async fn a_torn_value_that_contains_a_valid_frame_is_still_a_torn_tail() {
    let built = build().await;
    let (name, bytes, last_start) = (&built.name, &built.bytes, built.last_start);
    let embedded = bytes[last_start..].to_vec(); // a complete, valid frame
    let mut value = vec![b'<'; 100];
    value.extend_from_slice(&embedded);
    value.extend_from_slice(&[b'>'; 100]);

    let (dir, _) = dir_with(&built, bytes);
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    store.put(Record::new("blob", value.clone())).await.unwrap();
    store.close().await.unwrap();
    let full = std::fs::read(dir.path().join(name)).unwrap();
    let blob_start = bytes.len();
    let embedded_end = full.len() - 100;

    // Torn after the embedded frame, and damaged inside the value with the tail intact.
    let mut flipped = full.clone();
    flipped[full.len() - 10] ^= 1;
    for damaged in [full[..embedded_end + 5].to_vec(), flipped] {
        let (dir, _) = dir_with(&built, &damaged);
        let store = FileStorage::open_with(dir.path(), uncached())
            .await
            .unwrap();
        assert_eq!(present_keys(&store).await.len(), RECORDS);
        assert!(matches!(store.get("blob").await, Err(Error::NotFound)));
        assert_eq!(
            store.stats().truncated_bytes as usize,
            damaged.len() - blob_start
        );
        store.close().await.unwrap();
    }
}
