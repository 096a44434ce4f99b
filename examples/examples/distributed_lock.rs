//! A lock shared by workers, with `store_sync::Lock`: a lease renewed in the background, a
//! fencing token per acquisition, waiting without polling, and a crashed holder's lease
//! running out.
//!
//! Run it with `cargo run -p examples --features sync --example distributed_lock`.
//!
//! One worker takes the lock and "crashes": its process (here: its own tokio runtime on its
//! own thread) stops, so nobody renews or releases its lock. Four workers then contend for
//! the lock to update a shared counter with a read-modify-write that would lose updates
//! without the lock; they get in once the crashed holder's lease has run out. The same code
//! works across processes on a shared backend (Redis, PostgreSQL): only the storage changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;
use store_sync::{Lock, LockOptions};

/// A read-modify-write that loses updates unless callers hold the lock.
async fn increment(store: &dyn Storage) -> Result<(), Error> {
    let current = match store.get("counter").await {
        Ok(record) => String::from_utf8_lossy(&record.value)
            .parse::<u64>()
            .unwrap_or(0),
        Err(Error::NotFound) => 0,
        Err(other) => return Err(other),
    };
    tokio::task::yield_now().await; // invite other tasks in, as real work would
    store
        .put(Record::new("counter", (current + 1).to_string()))
        .await?;
    Ok(())
}

fn options() -> LockOptions {
    LockOptions {
        lease: Duration::from_millis(300),
        ..Default::default()
    }
}

fn main() -> Result<(), Error> {
    // Made outside any runtime, the store's actor has a thread of its own, so it outlives
    // the "process" that crashes below.
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let started = Instant::now();

    // The doomed worker: its own runtime, dropped while it holds the lock.
    let crashed_at = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let guard =
                    runtime.block_on(Lock::new(store.clone(), "counter", options()).acquire())?;
                println!(
                    "[{:>4} ms] worker-crashy holds the lock (token {}) and crashes",
                    started.elapsed().as_millis(),
                    guard.token()
                );
                // Its renewal task dies with the runtime; the guard is never released.
                std::mem::forget(guard);
                drop(runtime);
                Ok::<_, Error>(Instant::now())
            })
            .join()
            .expect("the crashing worker panicked")
    })?;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let rounds = 20;
        let mut workers = Vec::new();
        for id in 0..4 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                let lock = Lock::new(store.clone(), "counter", options());
                let name = format!("worker-{id}");
                let mut first = None;
                for _ in 0..rounds {
                    // Waits for the holder without polling: woken by a release or a lapse.
                    let guard = lock.acquire().await?;
                    first.get_or_insert_with(Instant::now);
                    tokio::select! {
                        () = guard.lost() => return Err(Error::Conflict),
                        result = async {
                            increment(store.as_ref()).await?;
                            increment(store.as_ref()).await
                        } => result?,
                    }
                    guard.release().await?;
                }
                println!(
                    "[{:>4} ms] {name} first got the lock",
                    first.map_or(0, |t| (t - started).as_millis())
                );
                Ok::<_, Error>(first)
            }));
        }
        let mut earliest = None::<Instant>;
        for worker in workers {
            let first = worker.await.expect("worker panicked")?;
            earliest = match (earliest, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }

        let counter = store.get("counter").await?;
        let total = String::from_utf8_lossy(&counter.value)
            .parse::<u64>()
            .unwrap_or(0);
        println!(
            "[{:>4} ms] counter = {total} (expected {}); the lock is {}",
            started.elapsed().as_millis(),
            4 * rounds * 2,
            match store.get("lock/counter").await {
                Err(Error::NotFound) => "free".to_owned(),
                Ok(_) => "held".to_owned(),
                Err(e) => format!("unknown ({e})"),
            }
        );
        assert_eq!(total, 4 * rounds * 2, "the lock let two workers in at once");
        let waited = earliest.expect("some worker ran") - crashed_at;
        assert!(
            waited >= options().lease - Duration::from_millis(50),
            "a worker got the lock {waited:?} after the crash, before the lease ran out"
        );
        store.close().await
    })
}
