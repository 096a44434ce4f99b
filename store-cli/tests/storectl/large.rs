//! 100,000 records through snapshot and restore, with each process's peak memory measured
//! and bounded: both directions stream. And a record too large for the default limit,
//! refused by default and taken with a larger `--max-record-size`.

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use store_cli::snapshot::{SnapshotReader, SnapshotWriter};
use store_core::Record;

use crate::support::{config, json_lines, ok};

const RECORDS: usize = 100_000;
const VALUE_BYTES: usize = 400;

/// Runs storectl with `--output json` and returns the peak resident memory it reports
/// (`VmHWM` of its own process: what it held since it started, nothing inherited).
fn run_measured(config: &Path, args: &[&str]) -> u64 {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let summary = json_lines(&ok(config, &all));
    summary[0]["peak_memory_bytes"]
        .as_u64()
        .expect("storectl reports its peak memory on Linux")
}

fn value(i: usize) -> Vec<u8> {
    let mut value = format!("{i:08}-").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (i % 26) as u8);
    value
}

#[test]
fn a_hundred_thousand_records_stream_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let file_store = |name: &str| {
        let data = dir.path().join(name);
        // Values are not cached in memory, so what the process holds is the engine's key
        // index and what storectl itself keeps.
        config(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                "backend = \"file\"\n[file]\ndir = {data:?}\nsync = \"never\"\ncache_values_up_to = 0\n"
            ),
        )
    };
    let input = dir.path().join("input.snap");
    let mut writer = SnapshotWriter::new(
        BufWriter::new(std::fs::File::create(&input).unwrap()),
        "test",
        None,
        None,
    )
    .unwrap();
    for i in 0..RECORDS {
        writer
            .write_record(Record::new(format!("micro/micro/key{i:06}"), value(i)))
            .unwrap();
    }
    writer.finish().unwrap();
    let data_bytes = (RECORDS * VALUE_BYTES) as u64;
    let snapshot_bytes = std::fs::metadata(&input).unwrap().len();

    let store = file_store("store");
    let started = Instant::now();
    let restore_peak = run_measured(&store, &["restore", input.to_str().unwrap()]);
    let restore_time = started.elapsed();
    let output = dir.path().join("output.snap");
    let started = Instant::now();
    let snapshot_peak = run_measured(&store, &["snapshot", output.to_str().unwrap()]);
    let snapshot_time = started.elapsed();
    // What the store itself holds once open (the file engine keeps an index entry per
    // key): the same store, restoring an empty snapshot.
    let empty = dir.path().join("empty.snap");
    SnapshotWriter::new(std::fs::File::create(&empty).unwrap(), "test", None, None)
        .unwrap()
        .finish()
        .unwrap();
    let store_only = run_measured(&store, &["restore", empty.to_str().unwrap()]);
    eprintln!(
        "{RECORDS} records, {data_bytes} value bytes, snapshot file {snapshot_bytes} bytes: \
         restore {restore_time:?} peak {} KiB, snapshot {snapshot_time:?} peak {} KiB; \
         the open store alone peaks at {} KiB",
        restore_peak / 1024,
        snapshot_peak / 1024,
        store_only / 1024
    );
    // Streaming: what storectl holds beyond the store is a few batches, far below the data.
    for (what, peak) in [("restore", restore_peak), ("snapshot", snapshot_peak)] {
        let own = peak.saturating_sub(store_only);
        assert!(
            own < data_bytes / 8 && own < 16 << 20,
            "{what} peaked at {peak} bytes, {own} more than the open store, for {data_bytes} \
             bytes of values"
        );
    }

    // The same records came back out, byte for byte: the end lines (count and checksum of
    // every record line) agree, and the output checks out line by line.
    let end_line = |path: &Path| -> serde_json::Value {
        let text = std::fs::read(path).unwrap();
        let last = text[..text.len() - 1]
            .rsplit(|b| *b == b'\n')
            .next()
            .unwrap();
        serde_json::from_slice(last).unwrap()
    };
    let (want, got) = (end_line(&input), end_line(&output));
    assert_eq!(got["records"], RECORDS);
    assert_eq!(
        (&got["records"], &got["records_crc"]),
        (&want["records"], &want["records_crc"])
    );
    let mut reader = SnapshotReader::new(
        std::io::BufReader::new(std::fs::File::open(&output).unwrap()),
        &output,
    )
    .unwrap();
    assert_eq!(reader.check_rest(&|_, _| {}).unwrap(), RECORDS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_for_a_snapshot_is_named_and_no_file_is_left() {
    use store_cli::snapshot::MAX_RECORD_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let c = crate::support::file_config(dir.path(), "store");
    let stack = crate::support::open(&c).await;
    let storage = stack.storage();
    storage
        .put(Record::new("micro/micro/small", "v"))
        .await
        .unwrap();
    storage
        .put(Record::new(
            "micro/micro/huge",
            vec![b'h'; MAX_RECORD_BYTES + 1],
        ))
        .await
        .unwrap();
    stack.close().await.unwrap();
    let snap = dir.path().join("s.snap");
    let err = crate::support::fails(Some(&c), &["snapshot", snap.to_str().unwrap()], 1);
    assert!(
        err.contains("s.snap")
            && err.contains(&format!(
                "key \"micro/micro/huge\" holds {} bytes",
                MAX_RECORD_BYTES + 1
            ))
            && err.contains(&format!("at most {MAX_RECORD_BYTES} bytes")),
        "{err}"
    );
    assert!(!snap.exists(), "no snapshot file is left");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".storectl-snapshot-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_default_goes_both_ways_with_a_larger_max_record_size() {
    use crate::support::{fails, file_config, open};
    use std::time::Duration;
    const BIG: usize = 17 << 20;
    let dir = tempfile::tempdir().unwrap();
    let source = file_config(dir.path(), "source");
    let stack = open(&source).await;
    // Bytes that are not UTF-8, so the line holds them as base64.
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8 | 0x80).collect();
    let storage = stack.storage();
    storage
        .put(Record::new("micro/micro/big", big.clone()).with_ttl(Duration::from_secs(3600)))
        .await
        .unwrap();
    storage
        .put(Record::new("micro/micro/small", "v"))
        .await
        .unwrap();
    stack.close().await.unwrap();
    let snap = dir.path().join("big.snap");
    let snap_arg = snap.to_str().unwrap();

    // By default the record is refused, naming it and the flag that takes it.
    let err = fails(Some(&source), &["snapshot", snap_arg], 1);
    assert!(
        err.contains(&format!("key \"micro/micro/big\" holds {BIG} bytes"))
            && err.contains(
                "at most 16777216 bytes (16 MiB): pass --max-record-size 17MiB (or more) to take it"
            ),
        "{err}"
    );
    assert!(!snap.exists());
    ok(
        &source,
        &["snapshot", snap_arg, "--max-record-size", "20MiB"],
    );
    let header = std::fs::read_to_string(&snap).unwrap();
    let header = header.lines().next().unwrap();
    assert!(header.contains("\"max_record_bytes\":20971520"), "{header}");

    // Restoring it needs as much: without it the header is refused before any record is
    // read, naming both sizes and the flag, and nothing is restored.
    let target = file_config(dir.path(), "target");
    for args in [
        &["restore", snap_arg][..],
        &["restore", snap_arg, "--partial"],
        &["restore", snap_arg, "--max-record-size", "17MiB"],
    ] {
        let err = fails(Some(&target), args, 1);
        assert!(
            err.contains(&format!("snapshot {snap_arg}: line 1: the header says records of up to 20971520 bytes (20 MiB), and this restore allows"))
                && err.contains("pass --max-record-size 20MiB to read it"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(&target, &["keys", "*", "--raw"]), "", "nothing restored");
    // With it, or more, the file's own limit is used.
    for size in ["20MiB", "1GiB"] {
        ok(
            &target,
            &["restore", snap_arg, "--max-record-size", size, "--verify"],
        );
    }
    let stack = open(&target).await;
    let record = stack.storage().get("micro/micro/big").await.unwrap();
    assert_eq!(record.value, big);
    assert!(
        record
            .ttl()
            .is_some_and(|left| left > Duration::from_secs(3000))
    );
    stack.close().await.unwrap();
}
