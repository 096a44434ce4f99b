//! Crash tests: a child process writes with `SyncPolicy::Always` and prints every write it
//! got an answer for; the parent kills it with SIGKILL at a random moment, reopens the
//! store and checks that every acknowledged write is there, that nothing half-done is
//! visible (a `put_many` is all or nothing), and that what one reopen showed never changes
//! at a later one. The child is this test binary, re-executed with `--exact crash_child`
//! and the job in an environment variable.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy};

use common::Rng;

const CHILD_ENV: &str = "STORE_FILE_CRASH_CHILD";
const WRITERS: u64 = 8;

// ---------------------------------------------------------------------------------------
// The child.

/// Does nothing in a normal test run; in a child started by the tests below it writes
/// until it is killed.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ';');
    let mode = parts.next().unwrap().to_owned();
    let round: u64 = parts.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(parts.next().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(child(mode, round, dir));
}

fn child_options() -> FileOptions {
    FileOptions {
        sync: SyncPolicy::Always,
        segment_size: 32 << 10,
        compact_garbage_ratio: 0.3,
        compact_min_bytes: 16 << 10,
        ..Default::default()
    }
}

/// One line per acknowledged write, written whole so lines never interleave.
fn say(out: &Mutex<std::io::Stdout>, line: String) {
    let mut out = out.lock().unwrap();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

async fn child(mode: String, round: u64, dir: PathBuf) {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let store = FileStorage::open_with(&dir, child_options())
        .await
        .expect("child: open");
    if mode == "bigcompact" {
        big_compaction_child(store, out).await;
        return;
    }
    say(&out, "READY".into());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let ack = write_op(&store, round, w, i).await;
                say(&out, format!("ACK {w} {i} {ack}"));
            }
        }));
    }
    if mode == "compact" {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                store.compact().await.expect("child: compact");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn prefix(round: u64, w: u64) -> String {
    format!("r{round:03}/w{w}/")
}

/// The value written by op `i` (deterministic, with a length that varies).
fn value_of(tag: &str, round: u64, w: u64, i: u64) -> String {
    let pad = (i * 37 + w * 11) % 180;
    format!("{tag}.{round}.{w}.{i}.{}", "x".repeat(pad as usize))
}

/// Op `i` of writer `w`; returns the rest of its ACK line.
async fn write_op(store: &FileStorage, round: u64, w: u64, i: u64) -> String {
    let p = prefix(round, w);
    match i % 10 {
        0..=5 => {
            let key = format!("{p}k{i:05}");
            let r = store
                .put(Record::new(key.clone(), value_of("v", round, w, i)))
                .await
                .expect("child: put");
            format!("P {key} {}", r.version)
        }
        6 => {
            let records = (0..3)
                .map(|j| {
                    Record::new(
                        format!("{p}m{i:05}.{j}"),
                        value_of(&format!("m{j}"), round, w, i),
                    )
                })
                .collect();
            store.put_many(records).await.expect("child: put_many");
            "M".to_owned()
        }
        7 => {
            let key = format!("{p}counter");
            let r = store
                .put(Record::new(key.clone(), i.to_string()))
                .await
                .expect("child: counter");
            format!("C {key} {}", r.version)
        }
        8 if i >= 8 => {
            let key = format!("{p}k{:05}", i - 8);
            store.delete(&key).await.expect("child: delete");
            format!("D {key}")
        }
        8 => "N".to_owned(),
        _ => {
            let key = format!("{p}n{i:05}");
            let version = store
                .create(Record::new(key.clone(), value_of("n", round, w, i)))
                .await
                .expect("child: create");
            format!("P {key} {version}")
        }
    }
}

// ---------------------------------------------------------------------------------------
// The parent.

/// Runs one child until it has been killed; returns its stdout lines.
fn run_child(mode: &str, round: u64, dir: &Path, rng: &mut Rng, max_delay_ms: u64) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{mode};{round};{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.ends_with("READY") {
                let _ = tx.send(line.clone());
            }
            lines.push(line);
        }
        lines
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(_) => {}
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("round {round}: the child did not get ready (see its stderr above)");
        }
    }
    let delay = rng.range(10, max_delay_ms);
    std::thread::sleep(Duration::from_millis(delay));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().expect("SIGKILL the child"); // std sends SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        still_running,
        "round {round}: the child exited by itself ({status:?}) instead of being killed"
    );
    reader.join().unwrap()
}

/// What the children of one round acknowledged.
#[derive(Default)]
struct RoundAcks {
    /// Per writer: op index -> the ACK's words after the op index.
    ops: BTreeMap<u64, BTreeMap<u64, Vec<String>>>,
}

fn parse_acks(lines: &[String]) -> RoundAcks {
    let mut acks = RoundAcks::default();
    for line in lines {
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let words: Vec<String> = rest.split(' ').map(str::to_owned).collect();
        let w: u64 = words[0].parse().unwrap();
        let i: u64 = words[1].parse().unwrap();
        acks.ops
            .entry(w)
            .or_default()
            .insert(i, words[2..].to_vec());
    }
    acks
}

type Snapshot = BTreeMap<String, (Vec<u8>, String)>;

async fn snapshot(store: &FileStorage, pattern: &str) -> Snapshot {
    let keys: Vec<String> = store
        .list_keys(pattern)
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await;
    let mut out = Snapshot::new();
    for chunk in keys.chunks(256) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let records = store.get_many(&refs).await.unwrap();
        for (key, record) in chunk.iter().zip(records) {
            let record = record.unwrap_or_else(|| panic!("listed key {key} has no record"));
            out.insert(key.clone(), (record.value.to_vec(), record.version));
        }
    }
    out
}

/// Checks round `round`'s keys against what its child acknowledged.
fn check_round(round: u64, acks: &RoundAcks, state: &Snapshot, versions: &mut HashSet<u64>) {
    for w in 0..WRITERS {
        let p = prefix(round, w);
        let ops = acks.ops.get(&w).cloned().unwrap_or_default();
        // Ops run one after the other: everything up to `last` was acknowledged, op
        // `last + 1` may or may not have happened, nothing after it was started.
        let next = ops.keys().next_back().map_or(0, |l| l + 1);
        assert_eq!(
            ops.len() as u64,
            next,
            "round {round} writer {w}: acknowledgements are not contiguous"
        );
        let mine: BTreeMap<&String, &(Vec<u8>, String)> =
            state.iter().filter(|(k, _)| k.starts_with(&p)).collect();
        let mut expected_keys: HashSet<String> = HashSet::new();
        let mut maybe_keys: HashSet<String> = HashSet::new();
        for i in 0..=next {
            let acked = ops.get(&i);
            match i % 10 {
                0..=5 | 9 => {
                    let tag = if i % 10 == 9 { "n" } else { "v" };
                    let key = if tag == "n" {
                        format!("{p}n{i:05}")
                    } else {
                        format!("{p}k{i:05}")
                    };
                    let deleted_by = i + 8;
                    let delete_acked = i % 10 == 0 && ops.contains_key(&deleted_by);
                    let delete_in_flight = i % 10 == 0 && deleted_by == next;
                    let got = state.get(&key);
                    if delete_acked {
                        assert!(
                            got.is_none(),
                            "round {round}: {key} was deleted (acknowledged) but is back"
                        );
                        continue;
                    }
                    if let Some((value, version)) = got {
                        assert_eq!(
                            value,
                            value_of(tag, round, w, i).as_bytes(),
                            "round {round}: {key} holds the wrong bytes"
                        );
                        if let Some(words) = acked {
                            assert_eq!(
                                &words[2], version,
                                "round {round}: {key} has another version than acknowledged"
                            );
                        }
                        maybe_keys.insert(key.clone());
                    } else if acked.is_some() && !delete_in_flight {
                        panic!("round {round}: acknowledged write of {key} is lost");
                    }
                    if acked.is_some() && !delete_in_flight {
                        expected_keys.insert(key);
                    }
                }
                6 => {
                    let keys: Vec<String> = (0..3).map(|j| format!("{p}m{i:05}.{j}")).collect();
                    let present: Vec<bool> = keys.iter().map(|k| state.contains_key(k)).collect();
                    if acked.is_some() {
                        assert!(present.iter().all(|p| *p), "round {round}: acknowledged put_many {keys:?} is not all there: {present:?}");
                    } else {
                        assert!(
                            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
                            "round {round}: put_many {keys:?} is half applied: {present:?}"
                        );
                    }
                    for (j, key) in keys.iter().enumerate() {
                        if let Some((value, _)) = state.get(key) {
                            assert_eq!(
                                value,
                                value_of(&format!("m{j}"), round, w, i).as_bytes(),
                                "round {round}: {key} holds the wrong bytes"
                            );
                            maybe_keys.insert(key.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        // The counter: at least the last acknowledged value, at most the in-flight one.
        let counter_key = format!("{p}counter");
        let last_acked = ops
            .iter()
            .filter(|(i, _)| *i % 10 == 7)
            .map(|(i, words)| (*i, words[2].clone()))
            .next_back();
        match (state.get(&counter_key), &last_acked) {
            (None, None) => {}
            (None, Some((i, _))) => {
                panic!("round {round}: acknowledged counter write {i} of {counter_key} is lost")
            }
            (Some((value, version)), _) => {
                let n: u64 = std::str::from_utf8(value).unwrap().parse().unwrap();
                assert_eq!(
                    n % 10,
                    7,
                    "round {round}: {counter_key} holds {n}, never written"
                );
                assert!(
                    n <= next,
                    "round {round}: {counter_key} holds {n}, written after op {next}?"
                );
                if let Some((i, v)) = &last_acked {
                    assert!(
                        n >= *i,
                        "round {round}: {counter_key} went back from {i} to {n}"
                    );
                    if n == *i {
                        assert_eq!(
                            version, v,
                            "round {round}: {counter_key} has another version than acknowledged"
                        );
                    }
                }
                maybe_keys.insert(counter_key.clone());
            }
        }
        for key in &expected_keys {
            assert!(mine.contains_key(key), "round {round}: {key} missing");
        }
        for key in mine.keys() {
            assert!(
                maybe_keys.contains(*key),
                "round {round}: unexpected key {key}"
            );
        }
        for (_, (_, version)) in mine {
            let v: u64 = version.parse().unwrap();
            assert!(
                versions.insert(v),
                "round {round}: version {v} is used twice"
            );
        }
    }
}

/// Opens the store in the parent, reading values from disk.
async fn reopen(dir: &Path) -> FileStorage {
    FileStorage::open_with(
        dir,
        FileOptions {
            cache_values_up_to: 0,
            ..child_options()
        },
    )
    .await
    .expect("the store must reopen after a crash")
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut rng = Rng::new("acknowledged_writes_survive_sigkill");
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut max_version_so_far = 0u64;
    let mut total_acks = 0usize;
    let mut repaired_rounds = 0;
    const ROUNDS: u64 = 24;
    for round in 0..ROUNDS {
        let mode = if round % 2 == 1 { "compact" } else { "plain" };
        let lines = run_child(mode, round, dir.path(), &mut rng, 250);
        let acks = parse_acks(&lines);
        total_acks += acks.ops.values().map(BTreeMap::len).sum::<usize>();
        runtime.block_on(async {
            let store = reopen(dir.path()).await;
            if store.stats().recoveries > 0 {
                repaired_rounds += 1;
            }
            // Earlier rounds: exactly what an earlier reopen showed.
            for (r, earlier) in snapshots.iter().enumerate() {
                let now = snapshot(&store, &format!("r{r:03}/*")).await;
                assert!(
                    &now == earlier,
                    "round {round}: the keys of round {r} changed after a later crash"
                );
            }
            let state = snapshot(&store, &format!("r{round:03}/*")).await;
            let mut versions = HashSet::new();
            check_round(round, &acks, &state, &mut versions);
            // Versions handed out after a restart are above every earlier one.
            let min = versions.iter().min().copied().unwrap_or(u64::MAX);
            assert!(
                min > max_version_so_far,
                "round {round}: version {min} is not above {max_version_so_far} from earlier rounds"
            );
            max_version_so_far =
                max_version_so_far.max(versions.iter().max().copied().unwrap_or(0));
            snapshots.push(state);
            store.close().await.unwrap();
        });
    }
    eprintln!(
        "crash test: {ROUNDS} rounds, {total_acks} acknowledged writes checked, {repaired_rounds} reopens repaired a torn tail or leftovers"
    );
    assert!(
        total_acks > (ROUNDS as usize) * 10,
        "the children wrote too little to prove anything"
    );
}

// ---------------------------------------------------------------------------------------
// Killed during compaction.

const BASE_KEYS: u64 = 6000;

fn base_value(key: u64, generation: u64) -> String {
    format!("base.{key}.gen{generation}.{}", "b".repeat(300))
}

/// Child: fills a large base set once, then overwrites base keys while compacting in a
/// loop, so that most kills land inside a compaction.
async fn big_compaction_child(store: FileStorage, out: Arc<Mutex<std::io::Stdout>>) {
    if matches!(store.get("base/00000").await, Err(Error::NotFound)) {
        for chunk in 0..BASE_KEYS / 500 {
            let records = (chunk * 500..(chunk + 1) * 500)
                .map(|k| Record::new(format!("base/{k:05}"), base_value(k, 0)))
                .collect();
            store.put_many(records).await.expect("child: base");
        }
    }
    say(&out, "READY".into());
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let store = store.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(w ^ std::process::id() as u64);
            loop {
                let k = rng.range(0, BASE_KEYS);
                let key = format!("base/{k:05}");
                let current = store.get(&key).await.expect("child: get base");
                let text = String::from_utf8(current.value.to_vec()).unwrap();
                let generation: u64 = text.split('.').nth(2).unwrap()[3..].parse().unwrap();
                let next = Record::new(key.clone(), base_value(k, generation + 1))
                    .with_version(current.version);
                match store.cas_by_version(next).await {
                    Ok(r) => say(&out, format!("OVER {key} {} {}", generation + 1, r.version)),
                    Err(Error::Conflict) => {}
                    Err(e) => panic!("child: cas: {e}"),
                }
            }
        }));
    }
    let compactor = store.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            say(&out, "COMPACT_START".into());
            compactor.compact().await.expect("child: compact");
            say(&out, "COMPACT_END".into());
        }
    }));
    for task in tasks {
        task.await.unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_during_compaction() {
    let mut rng = Rng::new("acknowledged_writes_survive_sigkill_during_compaction");
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // For every base key: the highest generation acknowledged, and its version.
    let mut acked: HashMap<String, (u64, String)> = HashMap::new();
    let mut killed_mid_compaction = 0;
    const ROUNDS: u64 = 8;
    for round in 0..ROUNDS {
        let lines = run_child("bigcompact", round, dir.path(), &mut rng, 400);
        let mut compacting = false;
        for line in &lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words[0] {
                "COMPACT_START" => compacting = true,
                "COMPACT_END" => compacting = false,
                "OVER" => {
                    let generation: u64 = words[2].parse().unwrap();
                    let slot = acked
                        .entry(words[1].to_owned())
                        .or_insert((0, String::new()));
                    if generation > slot.0 {
                        *slot = (generation, words[3].to_owned());
                    }
                }
                _ => {}
            }
        }
        if compacting {
            killed_mid_compaction += 1;
        }
        runtime.block_on(async {
            let store = reopen(dir.path()).await;
            let state = snapshot(&store, "base/*").await;
            assert_eq!(
                state.len() as u64,
                BASE_KEYS,
                "round {round}: base keys lost"
            );
            for (key, (value, version)) in &state {
                let text = String::from_utf8(value.clone()).unwrap();
                let k: u64 = key[5..].parse().unwrap();
                let generation: u64 = text.split('.').nth(2).unwrap()[3..].parse().unwrap();
                assert_eq!(
                    text,
                    base_value(k, generation),
                    "round {round}: {key} holds the wrong bytes"
                );
                if let Some((g, v)) = acked.get(key) {
                    assert!(
                        generation >= *g,
                        "round {round}: {key} went back from generation {g} to {generation}"
                    );
                    if generation == *g {
                        assert_eq!(
                            version, v,
                            "round {round}: {key} has another version than acknowledged"
                        );
                    }
                }
            }
            let stats = store.stats();
            assert!(
                stats.file_bytes < 40 << 20,
                "round {round}: compaction does not keep the files small: {stats:?}"
            );
            store.close().await.unwrap();
        });
    }
    eprintln!(
        "compaction crash test: {ROUNDS} rounds, {} keys overwritten and acknowledged, {killed_mid_compaction} kills landed inside a compaction",
        acked.len()
    );
}
