//! Two copies of one service sharing a store on Redis, built from
//! `examples/cache_over_redis.toml` (the `cache_over_file` stack with `backend = "redis"`).
//!
//! Run it with `cargo run -p examples --features redis --example cache_over_redis` (the
//! `redis` feature compiles in the Redis client; the example needs a Redis server on
//! 127.0.0.1:6379). It seeds 40 orders, starts a second copy of itself, and the two copies
//! (workers `a` and `b`) claim and ship the orders at the same time: `create` makes every
//! claim exclusive across the processes, and `cas_by_version` ships each order once. The
//! second copy then waits until the first closes the shift, and is woken by that write
//! from the other process. Finally every key is removed again.
//!
//! The same by hand, in three terminals:
//!
//! ```text
//! cargo run -p examples --features redis --example cache_over_redis -- seed       # fresh orders, shift open
//! cargo run -p examples --features redis --example cache_over_redis -- worker a   # terminal 1
//! cargo run -p examples --features redis --example cache_over_redis -- worker b   # terminal 2, at once
//! cargo run -p examples --features redis --example cache_over_redis -- close      # wakes both workers
//! cargo run -p examples --features redis --example cache_over_redis -- clean      # removes every key
//! ```

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures::TryStreamExt;
use store_compat::config::StoreConfig;
use store_core::{Error, Record, Storage};

const ORDERS: u32 = 40;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cache_over_redis.toml");
    let config = StoreConfig::from_path(&path)?;
    let store = config.build().await.map_err(|e| {
        format!(
            "{e}\n(this example needs a Redis server on 127.0.0.1:6379; start one with\n    \
             redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no)"
        )
    })?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => demo(&store).await,
        ["seed"] => seed(&store).await,
        ["worker", name] => worker(&store, name).await.map(|_| ()),
        ["close"] => close_shift(&store).await,
        ["clean"] => clean(&store).await,
        _ => Err("usage: cache_over_redis [seed | worker NAME | close | clean]".into()),
    };
    store.close().await?;
    outcome
}

/// Both copies at once, checked.
async fn demo(store: &Arc<dyn Storage>) -> Result<(), Failure> {
    println!("stack: {}", store.describe());
    seed(store).await?;
    // The second copy of the service: this program again, as worker b.
    let mut child = Command::new(std::env::current_exe()?)
        .args(["worker", "b"])
        .stdout(Stdio::piped())
        .spawn()?;
    let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    // Copy b's output, shown as it comes and handed over line by line.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("  [copy b] {line}");
            let _ = tx.send(line);
        }
    });
    let mine = worker(store, "a").await?;
    // Copy b's claims, once it waits for the shift to close.
    let theirs = tokio::task::spawn_blocking(move || {
        let mut claims = None;
        for line in rx.iter() {
            if let Some(list) = line.strip_prefix("claimed ") {
                claims = Some(list.to_owned());
            }
            if line.starts_with("waiting") {
                break;
            }
        }
        claims
    })
    .await?
    .ok_or("copy b did not report its claims")?;
    let theirs: BTreeSet<u32> = theirs
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // Every order was claimed and shipped exactly once, by one copy or the other.
    assert!(mine.is_disjoint(&theirs), "an order was claimed twice");
    assert_eq!(mine.len() + theirs.len(), ORDERS as usize);
    for id in 1..=ORDERS {
        let shipper = if mine.contains(&id) { "a" } else { "b" };
        // Through this copy's cache, an order the other copy shipped may still read as
        // pending until the cache's ttl; the store below is always current.
        let order = store.get(&format!("order/{id:04}")).await?;
        let value = String::from_utf8_lossy(&order.value).into_owned();
        assert!(
            value == format!("shipped by {shipper}") || value == "pending",
            "order {id}: {value:?}"
        );
    }
    println!(
        "copy a shipped {} orders, copy b {}: each of the {ORDERS} exactly once",
        mine.len(),
        theirs.len()
    );
    close_shift(store).await?;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(status.success(), "copy b failed: {status}");
    reader.join().map_err(|_| "the reader thread panicked")?;
    clean(store).await?;
    Ok(())
}

/// Fresh orders, all pending, and an open shift.
async fn seed(store: &Arc<dyn Storage>) -> Result<(), Failure> {
    clean(store).await?;
    let orders = (1..=ORDERS)
        .map(|id| Record::new(format!("order/{id:04}"), "pending"))
        .chain([Record::new("shift", "open")])
        .collect();
    store.put_many(orders).await?;
    println!("seeded {ORDERS} pending orders; the shift is open");
    Ok(())
}

/// Claims what nobody has claimed yet, ships it, then waits for the shift to close.
async fn worker(store: &Arc<dyn Storage>, name: &str) -> Result<BTreeSet<u32>, Failure> {
    let shift = store.get("shift").await?;
    let mut claimed = BTreeSet::new();
    for id in 1..=ORDERS {
        match store
            .create(Record::new(format!("claim/{id:04}"), name.to_owned()))
            .await
        {
            Ok(_) => {
                ship(store, id, name).await?;
                claimed.insert(id);
            }
            // The other copy got there first; the error carries its claim.
            Err(Error::AlreadyExists(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let list: Vec<String> = claimed.iter().map(u32::to_string).collect();
    println!("claimed {}", list.join(","));
    if name != "a" {
        println!("waiting for the shift to close");
        // Woken by the other process's write, with no polling.
        match store.wait_for_version_change("shift", &shift.version).await {
            Ok(()) => println!(
                "the shift is {}",
                String::from_utf8_lossy(&store.get("shift").await?.value)
            ),
            Err(Error::NotFound) => println!("the shift was removed"),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(claimed)
}

/// Ships order `id` with a compare-and-set on the version read, retried on conflict.
async fn ship(store: &Arc<dyn Storage>, id: u32, name: &str) -> Result<(), Failure> {
    let key = format!("order/{id:04}");
    loop {
        let current = store.get(&key).await?;
        let shipped =
            Record::new(key.clone(), format!("shipped by {name}")).with_version(current.version);
        match store.cas_by_version(shipped).await {
            Ok(_) => return Ok(()),
            Err(Error::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
}

async fn close_shift(store: &Arc<dyn Storage>) -> Result<(), Failure> {
    store.put(Record::new("shift", "closed")).await?;
    println!("closed the shift");
    Ok(())
}

/// Removes every key of the example (under its namespace).
async fn clean(store: &Arc<dyn Storage>) -> Result<(), Failure> {
    let keys: Vec<String> = store.list_keys("*").await?.try_collect().await?;
    for key in &keys {
        match store.delete(key).await {
            Ok(()) | Err(Error::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}
