//! Acceptance test written only against the public names of DESIGN.md section 9:
//! `store_core::{Record, Error, Result, Storage, KeyStream, Namespaced}` and
//! `store_memory::MemoryStorage::new`.
//!
//! The scenario: two services share one memory store, each in its own namespace. In
//! `orders`, two workers elect a leader with `create`, the leader renews its lease with
//! `cas_by_version` while the follower waits for the lease to change, the leader hands
//! over by deleting the lease, and the follower takes over. The leader then queues jobs
//! with `put_many` and workers claim them with compare-and-set; `billing` sees none of it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use store_core::{Error, KeyStream, Namespaced, Record, Result, Storage};
use store_memory::MemoryStorage;

async fn collect(keys: KeyStream) -> Result<Vec<String>> {
    keys.collect::<Vec<Result<String>>>()
        .await
        .into_iter()
        .collect()
}

/// Tries to become leader; returns the lease version, or `None` with the current holder.
async fn campaign(store: &dyn Storage, node: &str) -> Result<std::result::Result<String, String>> {
    let lease = Record::new("leader", node.to_owned()).with_ttl(Duration::from_secs(30));
    match store.create(lease).await {
        Ok(version) => Ok(Ok(version)),
        Err(Error::AlreadyExists(holder)) => {
            Ok(Err(String::from_utf8_lossy(&holder.value).into_owned()))
        }
        Err(other) => Err(other),
    }
}

/// Claims a queued job by moving it from "queued" to "running:<worker>" with a CAS.
async fn claim(store: &dyn Storage, job: &str, worker: &str) -> Result<bool> {
    let current = store.get(job).await?;
    if &current.value[..] != b"queued" {
        return Ok(false);
    }
    let claimed = Record::new(job, format!("running:{worker}")).with_version(current.version);
    match store.cas_by_version(claimed).await {
        Ok(_) => Ok(true),
        Err(Error::Conflict) => Ok(false),
        Err(other) => Err(other),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_and_job_queue() -> Result<()> {
    let shared = MemoryStorage::new();
    let orders: Arc<dyn Storage> = Arc::new(Namespaced::new(shared.clone(), "orders")?);
    let billing = Namespaced::new(shared.clone(), "billing")?;
    assert!(matches!(
        Namespaced::new(shared.clone(), "orders/../billing"),
        Err(Error::InvalidName(_))
    ));

    // Election: the first create wins, the second learns who holds the lease.
    let lease = campaign(orders.as_ref(), "node-a")
        .await?
        .expect("node-a wins");
    assert_eq!(
        campaign(orders.as_ref(), "node-b").await?,
        Err("node-a".to_owned())
    );

    // node-b follows: it waits for the lease to change.
    let follower = {
        let orders = orders.clone();
        let seen = lease.clone();
        tokio::spawn(async move { orders.wait_for_version_change("leader", &seen).await })
    };
    // node-a renews its lease; the follower wakes up and sees the same leader.
    let renewed = orders
        .cas_by_version(
            Record::new("leader", "node-a")
                .with_version(lease.clone())
                .with_ttl(Duration::from_secs(30)),
        )
        .await?;
    tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower was not woken by the renewal")
        .expect("follower task")?;
    assert_eq!(&orders.get("leader").await?.value[..], b"node-a");
    // A stale renewal (with the old lease version) is refused.
    assert!(matches!(
        orders
            .cas_by_version(Record::new("leader", "node-a").with_version(lease))
            .await,
        Err(Error::Conflict)
    ));

    // node-a steps down; the follower is woken with NotFound and takes over.
    let follower = {
        let orders = orders.clone();
        tokio::spawn(async move {
            match orders
                .wait_for_version_change("leader", &renewed.version)
                .await
            {
                Err(Error::NotFound) => campaign(orders.as_ref(), "node-b").await,
                other => panic!("expected the lease to disappear, got {other:?}"),
            }
        })
    };
    orders.delete("leader").await?;
    let takeover = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower was not woken by the delete")
        .expect("follower task")?;
    assert!(takeover.is_ok(), "node-b should lead now: {takeover:?}");
    assert_eq!(&orders.get("leader").await?.value[..], b"node-b");

    // The leader queues ten jobs in one call; four workers claim them concurrently.
    let jobs: Vec<Record> = (1..=10)
        .map(|i| Record::new(format!("jobs/{i:04}"), "queued"))
        .collect();
    orders.put_many(jobs).await?;
    let queued = collect(orders.list_keys("jobs/*").await?).await?;
    assert_eq!(queued.len(), 10);
    assert!(
        queued.windows(2).all(|w| w[0] < w[1]),
        "jobs are listed in order"
    );

    let mut workers = Vec::new();
    for worker in ["w1", "w2", "w3", "w4"] {
        let orders = orders.clone();
        let queued = queued.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for job in &queued {
                if claim(orders.as_ref(), job, worker).await? {
                    mine.push(job.clone());
                }
            }
            Ok::<_, Error>(mine)
        }));
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.expect("worker task")?);
    }
    claimed.sort();
    assert_eq!(claimed, queued, "every job is claimed exactly once");
    let states = orders
        .get_many(&queued.iter().map(String::as_str).collect::<Vec<_>>())
        .await?;
    assert!(states
        .iter()
        .all(|r| r.as_ref().is_some_and(|r| r.value.starts_with(b"running:"))));

    // A finished job is removed; a removed job is gone for good.
    orders.delete("jobs/0001").await?;
    assert!(matches!(
        orders.get("jobs/0001").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        orders.delete("jobs/0001").await,
        Err(Error::NotFound)
    ));

    // Billing shares the store but sees none of the orders' keys, whatever the pattern.
    billing.put(Record::new("invoices/1", "due")).await?;
    assert_eq!(
        collect(billing.list_keys("*").await?).await?,
        ["invoices/1"]
    );
    assert!(collect(billing.list_keys("../orders/*").await?)
        .await?
        .is_empty());
    assert!(matches!(billing.get("leader").await, Err(Error::NotFound)));
    assert!(matches!(
        billing.list_keys("jobs/[").await,
        Err(Error::InvalidPattern(_))
    ));
    assert!(matches!(billing.get("").await, Err(Error::InvalidKey(_))));

    // Shutting down: closing one layer closes the shared store for everyone.
    orders.close().await?;
    assert!(matches!(
        billing.get("invoices/1").await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        shared.get("orders/leader").await,
        Err(Error::Closed)
    ));
    Ok(())
}
