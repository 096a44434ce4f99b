//! A lease-based lock built from the versioned API: `create` to acquire, `cas_by_version` to
//! renew, `wait_for_version_change` to queue behind the holder, `delete` to release, and a
//! TTL so that a holder that dies without releasing loses the lock when its lease runs out.
//!
//! Run it with `cargo run -p examples --example distributed_lock`.
//!
//! Five workers contend for one lock to update a shared counter with a read-modify-write
//! that would lose updates without the lock. One worker "crashes" while holding the lock:
//! it stops renewing and never releases, and the others take over once its lease expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;

/// A named lock in a shared store.
#[derive(Clone)]
struct LeaseLock {
    store: Arc<dyn Storage>,
    key: String,
    lease: Duration,
}

/// Proof of holding the lock: the version of the lock record we wrote last.
struct Lease {
    owner: String,
    version: String,
}

impl LeaseLock {
    /// Waits until the lock is ours.
    async fn acquire(&self, owner: &str) -> Result<Lease, Error> {
        loop {
            let claim = Record::new(self.key.clone(), owner.to_owned()).with_ttl(self.lease);
            match self.store.create(claim).await {
                Ok(version) => {
                    return Ok(Lease {
                        owner: owner.to_owned(),
                        version,
                    })
                }
                Err(Error::AlreadyExists(holder)) => {
                    // Sleep until the holder renews, releases or expires; then try again.
                    // The timeout is a safety net for holders in other processes whose
                    // expiry this store would reclaim anyway.
                    let change = self
                        .store
                        .wait_for_version_change(&self.key, &holder.version);
                    match tokio::time::timeout(self.lease, change).await {
                        Ok(Ok(())) | Ok(Err(Error::NotFound)) | Err(_) => continue,
                        Ok(Err(other)) => return Err(other),
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Extends the lease; fails with `Conflict` or `NotFound` if the lock was lost.
    async fn renew(&self, lease: &mut Lease) -> Result<(), Error> {
        let renewal = Record::new(self.key.clone(), lease.owner.clone())
            .with_ttl(self.lease)
            .with_version(lease.version.clone());
        lease.version = self.store.cas_by_version(renewal).await?.version;
        Ok(())
    }

    /// Releases the lock if we still hold it.
    async fn release(&self, lease: Lease) -> Result<(), Error> {
        // Mark it released with CAS first: that proves we still hold it, and nobody else can
        // create the key while the marked record is live, so the delete removes our record.
        let released = Record::new(self.key.clone(), "released")
            .with_ttl(self.lease)
            .with_version(lease.version);
        self.store.cas_by_version(released).await?;
        self.store.delete(&self.key).await
    }
}

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

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let lock = LeaseLock {
        store: store.clone(),
        key: "locks/counter".into(),
        lease: Duration::from_millis(300),
    };
    let started = Instant::now();

    // The doomed worker takes the lock first and then stops responding.
    let crashed = lock.acquire("worker-crashy").await?;
    println!(
        "[{:>4} ms] worker-crashy holds the lock (version {}) and crashes",
        started.elapsed().as_millis(),
        crashed.version
    );
    drop(crashed); // no renewal, no release: only the lease's expiry frees the lock

    let rounds = 20;
    let mut workers = Vec::new();
    for id in 0..4 {
        let lock = lock.clone();
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("worker-{id}");
            for round in 0..rounds {
                let mut lease = lock.acquire(&name).await?;
                if round == 0 {
                    println!(
                        "[{:>4} ms] {name} acquired the lock for the first time",
                        started.elapsed().as_millis()
                    );
                }
                increment(store.as_ref()).await?;
                // A long critical section renews its lease halfway through.
                lock.renew(&mut lease).await?;
                increment(store.as_ref()).await?;
                lock.release(lease).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for worker in workers {
        worker.await.expect("worker panicked")?;
    }

    let counter = store.get("counter").await?;
    let total = String::from_utf8_lossy(&counter.value)
        .parse::<u64>()
        .unwrap_or(0);
    println!(
        "[{:>4} ms] counter = {total} (expected {}); the lock is {}",
        started.elapsed().as_millis(),
        4 * rounds * 2,
        match store.get("locks/counter").await {
            Err(Error::NotFound) => "free".to_owned(),
            Ok(r) => format!("held by {}", String::from_utf8_lossy(&r.value)),
            Err(e) => format!("unknown ({e})"),
        }
    );
    assert_eq!(total, 4 * rounds * 2, "the lock let two workers in at once");
    assert!(
        started.elapsed() >= lock.lease,
        "nobody may take the lock before the crashed holder's lease runs out"
    );
    store.close().await
}
