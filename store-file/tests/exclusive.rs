//! Exclusivity and bad input: a directory is open in one place at a time (advisory lock,
//! checked from this process and from another one); a path that is not a usable directory
//! is a clear error; a write that fails for lack of space changes nothing and leaves the
//! store readable.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage};

use common::fast;

const CHILD_ENV: &str = "STORE_FILE_EXCLUSIVE_CHILD";

fn assert_locked(result: Result<FileStorage, Error>, dir: &Path) {
    match result {
        Err(Error::Io { context, source }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ResourceBusy);
            assert!(context.contains("already open"), "{context}");
            assert!(context.contains(&dir.display().to_string()), "{context}");
        }
        Err(other) => panic!("expected the lock error, got {other}"),
        Ok(_) => panic!("a second open of {} succeeded", dir.display()),
    }
}

#[tokio::test]
async fn a_second_open_in_the_same_process_fails() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    first.put(Record::new("k", "v")).await.unwrap();
    assert_locked(FileStorage::open_with(dir.path(), fast()).await, dir.path());
    // Through another spelling of the same path too.
    let other_path = dir.path().join(".");
    assert_locked(FileStorage::open(&other_path).await, &other_path);
    // The first store is untouched and goes on working.
    assert_eq!(&first.get("k").await.unwrap().value[..], b"v");
    first.put(Record::new("k2", "v2")).await.unwrap();
    first.close().await.unwrap();
    // close() releases the lock before it returns.
    let second = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    assert_eq!(&second.get("k2").await.unwrap().value[..], b"v2");
    second.close().await.unwrap();
}

/// In a child: try to open the directory, say what happened, then (if asked) hold it
/// until killed.
#[test]
fn exclusive_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, dir) = spec.split_once(';').unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        match FileStorage::open_with(dir, fast()).await {
            Ok(store) => {
                println!("\nOPENED");
                if mode == "hold" {
                    store.put(Record::new("from-child", "yes")).await.unwrap();
                    println!("HOLDING");
                    std::future::pending::<()>().await;
                }
                store.close().await.unwrap();
            }
            Err(e) => println!("\nFAILED {e}"),
        }
    });
}

fn child(mode: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exclusive_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{mode};{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The child's first line that says OPENED, FAILED or HOLDING.
fn answer(child: &mut std::process::Child, want: &str) -> String {
    let stdout = child.stdout.as_mut().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.starts_with(want) || line.starts_with("FAILED") {
            return line;
        }
    }
    panic!("the child ended without an answer");
}

#[tokio::test]
async fn a_second_open_from_another_process_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    let mut c = child("try", dir.path());
    let line = answer(&mut c, "OPENED");
    assert!(c.wait().unwrap().success());
    assert!(
        line.starts_with("FAILED") && line.contains("already open"),
        "{line}"
    );
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "names the holder: {line}"
    );
    store.close().await.unwrap();

    let mut c = child("try", dir.path());
    let line = answer(&mut c, "OPENED");
    assert!(c.wait().unwrap().success());
    assert_eq!(line, "OPENED");
}

#[tokio::test]
async fn a_killed_holder_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = child("hold", dir.path());
    assert_eq!(answer(&mut c, "HOLDING"), "HOLDING");
    assert_locked(FileStorage::open_with(dir.path(), fast()).await, dir.path());
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    let store = FileStorage::open_with(dir.path(), fast()).await.unwrap();
    assert_eq!(&store.get("from-child").await.unwrap().value[..], b"yes");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_regular_file_in_the_way_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    match FileStorage::open(&file).await {
        Err(Error::Io { context, source }) => {
            assert!(context.contains(&file.display().to_string()), "{context}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
        }
        other => panic!("expected an I/O error, got {:?}", other.map(|_| ())),
    }
    // A path below a regular file cannot be created either.
    let below = file.join("store");
    match FileStorage::open(&below).await {
        Err(Error::Io { context, .. }) => {
            assert!(context.contains(&below.display().to_string()), "{context}")
        }
        other => panic!("expected an I/O error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "x",
        "the file was not touched"
    );
}

#[tokio::test]
async fn open_creates_missing_parents() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    let store = FileStorage::open(&deep).await.unwrap();
    store.put(Record::new("k", "v")).await.unwrap();
    store.close().await.unwrap();
    assert!(deep.join("LOCK").exists());
}

#[tokio::test]
async fn a_directory_without_write_permission_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("ro");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "x").is_ok() {
        eprintln!("skipped: running with privileges that ignore directory permissions");
        return;
    }
    match FileStorage::open(&locked).await {
        Err(Error::Io { context, source }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(context.contains(&locked.display().to_string()), "{context}");
        }
        other => panic!("expected an I/O error, got {:?}", other.map(|_| ())),
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------
// Disk full, simulated with a file size limit (RLIMIT_FSIZE): `sh` sets `ulimit -f` and
// ignores SIGXFSZ, then runs the child, whose writes past the limit fail with EFBIG just as
// they would with ENOSPC.

const FULL_ENV: &str = "STORE_FILE_FULL_CHILD";

#[test]
fn disk_full_child() {
    let Ok(dir) = std::env::var(FULL_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = FileStorage::open_with(&dir, FileOptions::default())
            .await
            .unwrap();
        let value = vec![b'v'; 4000];
        let mut stored = 0u32;
        let error = loop {
            match store
                .put(Record::new(format!("k{stored:05}"), value.clone()))
                .await
            {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 100_000, "the file size limit is not in force");
        };
        assert!(matches!(error, Error::Io { .. }), "{error}");
        // The failed write is not visible, everything before it is.
        assert!(matches!(
            store.get(&format!("k{stored:05}")).await,
            Err(Error::NotFound)
        ));
        for k in 0..stored {
            assert_eq!(
                store.get(&format!("k{k:05}")).await.unwrap().value.len(),
                4000
            );
        }
        // Smaller writes that still fit go on working.
        let mut small = 0;
        while store
            .put(Record::new(format!("s{small}"), "x"))
            .await
            .is_ok()
        {
            small += 1;
            if small == 10 {
                break;
            }
        }
        println!("\nFULL {stored} {small} {error}");
        store.close().await.unwrap();
    });
}

#[tokio::test]
async fn a_full_disk_fails_the_write_and_keeps_the_store_readable() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 512 && exec \"$0\" --exact disk_full_child --nocapture --test-threads 1")
        .arg(&exe)
        .env(FULL_ENV, dir.path())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FULL "))
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    let words: Vec<&str> = line.split(' ').collect();
    let stored: u32 = words[1].parse().unwrap();
    let small: u32 = words[2].parse().unwrap();
    assert!(stored > 10, "{line}");
    assert!(line.contains("large") || line.contains("space"), "{line}");
    // Everything acknowledged is there after a reopen without the limit, and nothing else.
    let store = FileStorage::open(dir.path()).await.unwrap();
    assert_eq!(store.stats().records, u64::from(stored + small));
    for k in 0..stored {
        assert_eq!(
            store.get(&format!("k{k:05}")).await.unwrap().value.len(),
            4000
        );
    }
    assert!(matches!(
        store.get(&format!("k{stored:05}")).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        store.stats().truncated_bytes,
        0,
        "the failed write was cut off at once"
    );
    store.close().await.unwrap();
}
