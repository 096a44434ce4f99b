//! Fencing: why a lock's token matters, shown on a holder that pauses past its lease.
//!
//! Run it with `cargo run -p examples --features sync --example fenced_counter`.
//!
//! No lease-based lock can stop a holder that was paused (a long GC pause, a stopped VM)
//! from waking up and acting on a lock it has lost in the meantime. What can stop it is
//! the resource refusing the late write. Here the resource is a record in the same store,
//! written only with `cas_by_version`, and every new holder first *claims* it: a CAS that
//! stores the holder's fencing token. The paused holder's write then names a resource
//! version that the next holder's claim has replaced, and is refused with `Conflict`.
//!
//! Holder A runs on a runtime of its own that the example blocks for a second (as a paused
//! process would be, renewal task included); holder B takes the lock once A's lease lapses.

use std::sync::Arc;
use std::time::Duration;

use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;
use store_sync::{Lock, LockGuard, LockOptions};

/// The protected resource: a counter and the token of the holder that wrote it last.
#[derive(Debug)]
struct Counter {
    value: u64,
    writer: String,
    version: String,
}

async fn read(store: &dyn Storage) -> Result<Counter, Error> {
    let record = store.get("counter").await?;
    let text = String::from_utf8_lossy(&record.value).into_owned();
    let (value, writer) = text.split_once(' ').unwrap_or((&text, ""));
    Ok(Counter {
        value: value.parse().unwrap_or(0),
        writer: writer.to_owned(),
        version: record.version,
    })
}

/// Writes the counter only if nobody wrote it since `seen` was read: the fenced write.
async fn write(
    store: &dyn Storage,
    guard: &LockGuard,
    seen: &Counter,
    value: u64,
) -> Result<Counter, Error> {
    let text = format!("{value} {}", guard.token());
    let record = Record::new("counter", text).with_version(seen.version.clone());
    let stored = store.cas_by_version(record).await?;
    Ok(Counter {
        value,
        writer: guard.token().to_owned(),
        version: stored.version,
    })
}

/// What every new holder does first: read the resource and stamp it with its token, so that
/// any write prepared by an earlier holder can no longer land.
async fn claim(store: &dyn Storage, guard: &LockGuard) -> Result<Counter, Error> {
    let seen = read(store).await?;
    write(store, guard, &seen, seen.value).await
}

fn options() -> LockOptions {
    LockOptions {
        lease: Duration::from_millis(200),
        ..Default::default()
    }
}

fn main() -> Result<(), Error> {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let runtime_a = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runtime_b = tokio::runtime::Runtime::new().expect("runtime");
    runtime_b.block_on(store.put(Record::new("counter", "0 nobody")))?;

    // A takes the lock, claims the counter and prepares its write from what it read...
    let (guard_a, seen_by_a) = runtime_a.block_on(async {
        let guard = Lock::new(store.clone(), "counter", options())
            .acquire()
            .await?;
        let seen = claim(store.as_ref(), &guard).await?;
        println!(
            "A holds the lock (token {}) and read {}",
            guard.token(),
            seen.value
        );
        Ok::<_, Error>((guard, seen))
    })?;

    // ...then pauses: its whole runtime stops, renewal task included. B gets in after the lease.
    std::thread::sleep(Duration::from_millis(600));
    runtime_b.block_on(async {
        let guard = Lock::new(store.clone(), "counter", options())
            .acquire()
            .await?;
        let seen = claim(store.as_ref(), &guard).await?;
        let done = write(store.as_ref(), &guard, &seen, seen.value + 10).await?;
        println!(
            "B holds the lock (token {}) and wrote {} over {}",
            guard.token(),
            done.value,
            seen.value
        );
        guard.release().await
    })?;

    // A wakes up. Its guard reports the loss as soon as A's runtime runs again, but suppose
    // A's code had already passed its last look at `lost()` and goes on to write.
    runtime_a.block_on(async {
        let noticed = tokio::time::timeout(Duration::from_secs(5), guard_a.lost())
            .await
            .is_ok();
        println!("A resumes; its guard reports the lock lost: {noticed}");
        assert!(noticed);
        match write(store.as_ref(), &guard_a, &seen_by_a, seen_by_a.value + 1).await {
            Err(Error::Conflict) => {
                println!("A's late write was refused (Conflict): fencing works")
            }
            Ok(written) => panic!("a stale holder overwrote the resource: {written:?}"),
            Err(other) => return Err(other),
        }
        // Nor can A release B's (or anyone's) lock: release only touches what A wrote.
        assert!(matches!(guard_a.release().await, Err(Error::Conflict)));
        Ok(())
    })?;

    let last = runtime_b.block_on(read(store.as_ref()))?;
    println!(
        "counter = {} (last written by token {})",
        last.value, last.writer
    );
    assert_eq!(last.value, 10, "the stale write must not land");
    runtime_b.block_on(store.close())
}
