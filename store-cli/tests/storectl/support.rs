//! Running storectl, writing configurations, opening and comparing stores in-process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use serde_json::{Value, json};
use store_compat::config::StoreConfig;
use store_compat::layout::split_storage_key;
use store_compat::{ReadOptions, Record, Stack, WriteOptions};
use store_core::Storage;

/// The binary under test.
pub fn storectl_path() -> &'static str {
    env!("CARGO_BIN_EXE_storectl")
}

/// A storectl command with no configuration from the environment.
pub fn storectl(config: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new(storectl_path());
    command.env_remove("STORECTL_CONFIG");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args);
    command.stdin(Stdio::null());
    command
}

/// Runs storectl and returns its output (any exit status).
pub fn run(config: Option<&Path>, args: &[&str]) -> Output {
    storectl(config, args).output().expect("storectl runs")
}

/// Runs storectl, expects success, returns stdout.
pub fn ok(config: &Path, args: &[&str]) -> String {
    let output = run(Some(config), args);
    assert!(
        output.status.success(),
        "storectl {args:?} failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs storectl, expects exit status `code`, returns stderr.
pub fn fails(config: Option<&Path>, args: &[&str], code: i32) -> String {
    let output = run(config, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "storectl {args:?}: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// The JSON lines of an output.
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Writes a configuration file.
pub fn config(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap();
    path
}

/// A file store configuration under `dir` (its data in `dir/<name>-data`).
pub fn file_config(dir: &Path, name: &str) -> PathBuf {
    let data = dir.join(format!("{name}-data"));
    config(
        dir,
        &format!("{name}.toml"),
        &format!("backend = \"file\"\n[file]\ndir = {data:?}\nsync = \"never\"\n"),
    )
}

/// Builds the stack a configuration file describes, in this process.
pub async fn open(config: &Path) -> Stack {
    StoreConfig::from_path(config)
        .unwrap()
        .build_stack()
        .await
        .unwrap()
}

/// Fills a store with records that exercise every corner of a snapshot: metadata of every
/// JSON kind, values that are not UTF-8, values that look like envelopes, keys outside the
/// facade layout, expiries, several databases and tables. Returns the number of records.
pub async fn populate(stack: &Stack) -> usize {
    let store = stack.store();
    let hour = Duration::from_secs(3600);
    let write = |record: Record, database: &str, table: &str, ttl: Option<Duration>| {
        let store = store.clone();
        let mut options = WriteOptions::default().database(database).table(table);
        options.ttl = ttl;
        async move { store.write(record, options).await.unwrap() }
    };
    let metadata = Record::new("user/1", "alice")
        .with_metadata("int", json!(37))
        .with_metadata("big", json!(u64::MAX))
        .with_metadata("neg", json!(-5))
        .with_metadata("float", json!(1.5))
        .with_metadata("tiny", json!(1e-300))
        .with_metadata("null", Value::Null)
        .with_metadata("nested", json!({"a": [1, "two", {"b": null}]}))
        .with_metadata("text", json!("ü \n \"quoted\""));
    write(metadata, "micro", "micro", Some(hour)).await;
    write(Record::new("user/2", "bob"), "micro", "micro", None).await;
    let binary =
        Record::new("bin", vec![0u8, 0xff, 0xc1, 0x80]).with_metadata("kind", json!("binary"));
    write(binary, "shop", "blobs", Some(hour * 2)).await;
    write(Record::new("empty", ""), "shop", "blobs", None).await;
    let forged = store_compat::envelope::wrap(
        &std::collections::HashMap::from([("x".to_owned(), json!(1))]),
        b"inner",
    )
    .unwrap();
    write(Record::new("forged", forged), "shop", "orders", None).await;
    write(
        Record::new("ü/glob*?[x]{a,b}\\", "odd key"),
        "shop",
        "orders",
        Some(hour),
    )
    .await;
    write(Record::new("a", "v"), "a-b", "t.1", None).await;
    // Below the facade: a key outside the layout, and an envelope the facade would not
    // write (empty metadata), stored verbatim.
    let raw = stack.storage();
    raw.put(store_core::Record::new("lock", "holder").with_ttl(hour))
        .await
        .unwrap();
    let odd = store_compat::envelope::wrap(&Default::default(), b"x").unwrap();
    raw.put(store_core::Record::new("micro/micro/odd-envelope", odd))
        .await
        .unwrap();
    9
}

/// Every live key of a storage.
pub async fn all_keys(storage: &dyn Storage) -> Vec<String> {
    storage
        .list_keys("*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Compares two stacks record by record: the same keys; through the versioned API the same
/// stored bytes and expiry; through the facade the same value, metadata and time left.
/// `later` is how much later the target's records may expire (the restore came after the
/// snapshot).
pub async fn assert_same(source: &Stack, target: &Stack, later: Duration) {
    let keys = all_keys(source.storage().as_ref()).await;
    assert!(!keys.is_empty());
    assert_eq!(
        keys,
        all_keys(target.storage().as_ref()).await,
        "the same keys"
    );
    for key in &keys {
        let want = source.storage().get(key).await.unwrap();
        let got = target.storage().get(key).await.unwrap();
        assert_eq!(got.value, want.value, "stored bytes of {key:?}");
        assert_expiry(key, want.expires_at, got.expires_at, later);
        if let Some((database, table, facade_key)) = split_storage_key(key) {
            let options = || ReadOptions::default().database(database).table(table);
            let want = source.store().read(facade_key, options()).await.unwrap();
            let got = target.store().read(facade_key, options()).await.unwrap();
            assert_eq!(got[0].value, want[0].value, "facade value of {key:?}");
            assert_eq!(got[0].metadata, want[0].metadata, "metadata of {key:?}");
            assert_eq!(got[0].expiry.is_some(), want[0].expiry.is_some());
        }
    }
}

/// The target's expiry is the source's, up to `later` after it (and a millisecond before,
/// for rounding).
pub fn assert_expiry(
    key: &str,
    want: Option<SystemTime>,
    got: Option<SystemTime>,
    later: Duration,
) {
    match (want, got) {
        (None, None) => {}
        (Some(want), Some(got)) => {
            let low = want - Duration::from_millis(2);
            let high = want + later;
            assert!(
                got >= low && got <= high,
                "expiry of {key:?}: {got:?} not within [{low:?}, {high:?}]"
            );
        }
        other => panic!("expiry of {key:?}: {other:?}"),
    }
}
