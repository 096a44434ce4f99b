//! A private server (initdb + pg_ctl on a random port, as the `postgres` user) crashed and
//! started again under a connected store: calls during the outage fail with `Unavailable`
//! at once, the store reconnects by itself, every acknowledged write is there, versions go
//! on increasing (never reused), and a waiter from before the crash is woken by a write
//! made after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Error, Record, Storage};
use store_postgres::testing;
use store_postgres::PostgresOptions;
use store_testkit::servers::postgres::PrivatePostgres;

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_and_restarted_server_loses_nothing_acknowledged() {
    let server = Arc::new(
        blocking(PrivatePostgres::start)
            .await
            .unwrap_or_else(|e| panic!("a private PostgreSQL server is needed: {e}")),
    );
    let options = PostgresOptions {
        url: server.url(),
        table: "restart".into(),
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let store = Arc::new(testing::connect(&options).await);
    let other = testing::connect(&options).await;

    let mut acknowledged = Vec::new();
    for i in 0..50 {
        acknowledged.push(
            store
                .put(Record::new(format!("k/{i:02}"), i.to_string()))
                .await
                .unwrap(),
        );
    }
    let batch: Vec<Record> = (0..20)
        .map(|i| Record::new(format!("batch/{i:02}"), "b"))
        .collect();
    store.put_many(batch).await.unwrap();
    let highest = acknowledged
        .iter()
        .map(|r| r.version.parse::<i64>().unwrap())
        .max()
        .unwrap();
    let watched = store.put(Record::new("w", "before")).await.unwrap().version;
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_for_version_change("w", &watched).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());

    // A crash: clients are cut off, recovery runs on the next start.
    let stopping = server.clone();
    blocking(move || stopping.stop(true)).await.unwrap();
    let started = Instant::now();
    let during = store.get("k/00").await;
    assert!(matches!(during, Err(Error::Unavailable(_))), "{during:?}");
    assert!(during
        .unwrap_err()
        .to_string()
        .contains(&server.port().to_string()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a call hung on a stopped server"
    );
    assert!(
        !waiter.is_finished(),
        "the outage is not a change of the key"
    );

    let starting = server.clone();
    blocking(move || starting.start_again()).await.unwrap();
    testing::until_available(store.as_ref(), Duration::from_secs(20))
        .await
        .unwrap();

    for record in &acknowledged {
        let stored = store.get(&record.key).await.unwrap();
        assert_eq!(stored.value, record.value, "{}", record.key);
        assert_eq!(stored.version, record.version, "{}", record.key);
    }
    let keys: Vec<String> = (0..20).map(|i| format!("batch/{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(store
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .all(Option::is_some));
    let after = store.put(Record::new("k/00", "after")).await.unwrap();
    assert!(
        after.version.parse::<i64>().unwrap() > highest,
        "a version was handed out again after the restart: {} <= {highest}",
        after.version
    );

    // The waiter from before the crash is woken by a write from another handle after it.
    testing::until_available(&other, Duration::from_secs(20))
        .await
        .unwrap();
    other.put(Record::new("w", "after")).await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter from before the crash was never woken")
        .unwrap();
    assert!(woken.is_ok(), "{woken:?}");
    store.close().await.unwrap();
    other.close().await.unwrap();
}

/// A private primary and a streaming standby of it on replication slot `slot`.
async fn primary_and_standby(slot: &'static str) -> (Arc<PrivatePostgres>, Arc<PrivatePostgres>) {
    let primary = Arc::new(
        blocking(PrivatePostgres::start)
            .await
            .unwrap_or_else(|e| panic!("a private PostgreSQL server is needed: {e}")),
    );
    let standby = Arc::new(
        blocking({
            let primary = primary.clone();
            move || primary.start_standby(slot)
        })
        .await
        .unwrap_or_else(|e| panic!("a standby of the private server is needed: {e}")),
    );
    (primary, standby)
}

/// Options for a store on `table` at `url` with timeouts short enough for a failover test.
fn failover_options(url: String, table: &str) -> PostgresOptions {
    PostgresOptions {
        url,
        table: table.into(),
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        ..PostgresOptions::default()
    }
}

/// A failover to an asynchronous standby promoted before it received the last versions:
/// the primary hands out versions the standby replays, the standby is promoted (a new
/// timeline), the old primary hands out a hundred more (beyond the 32 values a sequence
/// logs ahead) that the standby never gets, and stops. On the promoted standby the
/// sequence is behind; every version it hands out must differ from all of them (without
/// the history check, the old primary's last versions came out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_never_hands_out_a_version_twice() {
    let (primary, standby) = primary_and_standby("failover").await;
    let options = |url: String| failover_options(url, "failover");
    let mut seen = std::collections::HashSet::new();
    let mut put = async |store: &store_postgres::PostgresStorage, value: String| {
        let version = store.put(Record::new("k", value)).await.unwrap().version;
        assert!(
            seen.insert(version.clone()),
            "version {version} handed out twice"
        );
    };

    let store = testing::connect(&options(primary.url())).await;
    for i in 0..10 {
        put(&store, format!("replicated {i}")).await;
    }
    blocking({
        let (primary, standby) = (primary.clone(), standby.clone());
        move || {
            standby.wait_for_replay(&primary)?;
            standby.promote()
        }
    })
    .await
    .unwrap_or_else(|e| panic!("promoting the standby: {e}"));
    for i in 0..100 {
        put(&store, format!("lost {i}")).await;
    }
    store.close().await.unwrap();
    blocking({
        let primary = primary.clone();
        move || primary.stop(true)
    })
    .await
    .unwrap_or_else(|e| panic!("stopping the old primary: {e}"));

    let store = testing::connect(&options(standby.url())).await;
    assert_eq!(&store.get("k").await.unwrap().value[..], b"replicated 9");
    for i in 0..150 {
        put(&store, format!("promoted {i}")).await;
    }
    store.close().await.unwrap();
}

/// A store pointed at a standby fails to open with a configuration error that names the
/// server and says to connect to the primary. With both hosts in the URL and
/// `target_session_attrs=read-write` it finds the primary, and after the primary dies and the
/// standby is promoted it goes on writing there with no change of configuration, handing out
/// no version twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_follows_a_promotion_and_a_standby_alone_is_refused() {
    let (primary, standby) = primary_and_standby("multihost").await;
    let options = |url: String| failover_options(url, "multihost");
    // The table exists (made on the primary and replayed), so opening on the standby gets
    // as far as its first statement that writes.
    let store = testing::connect(&options(primary.url())).await;
    store.put(Record::new("k", "v")).await.unwrap();
    blocking({
        let (primary, standby) = (primary.clone(), standby.clone());
        move || standby.wait_for_replay(&primary)
    })
    .await
    .unwrap();
    match store_postgres::PostgresStorage::connect_with(options(standby.url())).await {
        Err(Error::Backend(message)) => assert!(
            message.contains(&format!("127.0.0.1:{}", standby.port()))
                && message.contains("standby")
                && message.contains("primary"),
            "{message}"
        ),
        Err(other) => panic!("opening on a standby failed with {other:?}"),
        Ok(_) => panic!("a store opened on a standby"),
    }
    store.close().await.unwrap();

    let both = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        standby.port(),
        primary.port()
    );
    let store = testing::connect(&options(both)).await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..10 {
        let version = store
            .put(Record::new("k", format!("before {i}")))
            .await
            .unwrap()
            .version;
        assert!(
            seen.insert(version.clone()),
            "version {version} handed out twice"
        );
    }
    blocking({
        let (primary, standby) = (primary.clone(), standby.clone());
        move || {
            standby.wait_for_replay(&primary)?;
            primary.stop(true)?;
            standby.promote()
        }
    })
    .await
    .unwrap_or_else(|e| panic!("failing over: {e}"));
    // Calls fail with Unavailable until the pool connects to the new primary.
    testing::until_available(&store, Duration::from_secs(30))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acknowledged = 0;
    while acknowledged < 10 {
        match store
            .put(Record::new("k", format!("after {acknowledged}")))
            .await
        {
            Ok(record) => {
                assert!(
                    seen.insert(record.version.clone()),
                    "version {} handed out twice",
                    record.version
                );
                acknowledged += 1;
            }
            // A connection to the old primary, found dead by this call.
            Err(error) if error.is_retryable() && Instant::now() < deadline => {}
            Err(error) => panic!("a put after the promotion: {error:?}"),
        }
    }
    assert_eq!(&store.get("k").await.unwrap().value[..], b"after 9");
    store.close().await.unwrap();
}
