//! Faults: connections cut under load, a server that refuses or never answers, a lock that
//! outlasts the operation timeout. No caller hangs, every error is `Unavailable` naming the
//! server, the store recovers, nothing acknowledged is lost, and waiters are re-checked
//! once the listening connection is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_core::{Error, Record, Storage};
use store_postgres::testing::{self, TestStore};
use store_postgres::{PostgresOptions, PostgresStorage};
use store_testkit::fault_proxy::FaultProxy;

/// The server's address, from the test URL.
fn server_addr() -> SocketAddr {
    let config: tokio_postgres::Config = testing::server_url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = if host == "localhost" {
        "127.0.0.1".into()
    } else {
        host
    };
    format!("{host}:{port}").parse().unwrap()
}

/// The test URL with its host and port replaced by the proxy's.
fn through(proxy: &FaultProxy) -> String {
    let config: tokio_postgres::Config = testing::server_url().parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let database = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}@{}/{database}", proxy.addr())
}

fn short_timeouts(url: String, table: &str) -> PostgresOptions {
    PostgresOptions {
        url,
        table: table.to_owned(),
        connect_timeout: Duration::from_millis(1500),
        operation_timeout: Duration::from_millis(1500),
        ..PostgresOptions::default()
    }
}

/// Longest any call may take while connections are cut: a connect and a round, plus slack.
const BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_fail_calls_briefly_and_lose_nothing_acknowledged() {
    let direct = TestStore::fresh().await;
    let proxy = FaultProxy::start(server_addr()).await.unwrap();
    let via_proxy = Arc::new(
        PostgresStorage::connect_with(short_timeouts(through(&proxy), &direct.options().table))
            .await
            .unwrap(),
    );
    let address = proxy.addr().to_string();
    const WRITERS: usize = 6;
    const WRITES: u64 = 150;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = via_proxy.clone();
            let address = address.clone();
            tokio::spawn(async move {
                let key = format!("writer/{w}");
                let mut acknowledged = 0u64;
                let mut failures = 0u64;
                for n in 1..=WRITES {
                    let started = Instant::now();
                    let outcome = tokio::time::timeout(
                        BOUND,
                        store.put(Record::new(key.clone(), n.to_string())),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("writer {w}: a put hung across a cut"));
                    assert!(started.elapsed() < BOUND);
                    match outcome {
                        Ok(_) => acknowledged = n,
                        Err(Error::Unavailable(message)) => {
                            assert!(
                                message.contains(&address),
                                "the error does not name the server: {message}"
                            );
                            failures += 1;
                        }
                        Err(other) => panic!("writer {w}: unexpected {other:?}"),
                    }
                    if w % 2 == 0 {
                        // Readers too: a get is bounded and answers Ok or Unavailable.
                        match tokio::time::timeout(BOUND, store.get(&key)).await {
                            Ok(Ok(_))
                            | Ok(Err(Error::NotFound))
                            | Ok(Err(Error::Unavailable(_))) => {}
                            Ok(Err(other)) => panic!("reader {w}: unexpected {other:?}"),
                            Err(_) => panic!("reader {w}: a get hung across a cut"),
                        }
                    }
                }
                (key, acknowledged, failures)
            })
        })
        .collect();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        proxy.cut();
    }
    let mut failures = 0;
    for writer in writers {
        let (key, acknowledged, failed) = writer.await.unwrap();
        failures += failed;
        // Nothing acknowledged is lost: the stored value is the last acknowledged one, or a
        // later one whose answer was lost in a cut.
        let stored: u64 = std::str::from_utf8(&direct.get(&key).await.unwrap().value)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            stored >= acknowledged,
            "{key}: {stored} stored, but {acknowledged} was acknowledged"
        );
    }
    // After the cuts the store works again through the proxy.
    testing::until_available(via_proxy.as_ref(), BOUND)
        .await
        .unwrap();
    via_proxy.put(Record::new("after", "cuts")).await.unwrap();
    assert_eq!(&direct.get("after").await.unwrap().value[..], b"cuts");
    eprintln!("{failures} calls failed with Unavailable across the cuts");
    via_proxy.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_rechecked_after_the_listening_connection_comes_back() {
    let direct = TestStore::fresh().await;
    let proxy = FaultProxy::start(server_addr()).await.unwrap();
    let via_proxy = Arc::new(
        PostgresStorage::connect_with(short_timeouts(through(&proxy), &direct.options().table))
            .await
            .unwrap(),
    );
    let version = direct.put(Record::new("k", "1")).await.unwrap().version;
    let waiter = {
        let store = via_proxy.clone();
        tokio::spawn(async move { store.wait_for_version_change("k", &version).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter returned before any change"
    );
    // The listening connection is cut and cannot come back while the write happens, so
    // its notification is lost for good: only the re-check after reconnecting can see it.
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    direct.put(Record::new("k", "2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter returned while its server was unreachable: {:?}",
        waiter.await
    );
    proxy.refuse(false);
    let woken = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiter was not re-checked after the listening connection came back")
        .unwrap();
    assert!(woken.is_ok(), "{woken:?}");
    assert_eq!(&via_proxy.get("k").await.unwrap().value[..], b"2");
    via_proxy.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_at_connect_is_unavailable_naming_it() {
    // Refused at once.
    let proxy = FaultProxy::start(server_addr()).await.unwrap();
    proxy.refuse(true);
    let started = Instant::now();
    let error = PostgresStorage::connect_with(short_timeouts(through(&proxy), "never_created"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(
        error.to_string().contains(&proxy.addr().to_string()),
        "{error}"
    );
    assert!(started.elapsed() < BOUND);

    // Accepted but never answered: the connect timeout bounds it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let error = PostgresStorage::connect_with(PostgresOptions {
        connect_timeout: Duration::from_millis(500),
        ..short_timeouts(format!("postgres://postgres@{addr}/test"), "never_created")
    })
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
    assert!(took < Duration::from_secs(3), "connect took {took:?}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_outlasts_the_operation_timeout_is_unavailable_and_the_store_recovers() {
    let store = TestStore::with_options(PostgresOptions {
        operation_timeout: Duration::from_millis(400),
        ..testing::fresh_options()
    })
    .await;
    store.put(Record::new("locked", "1")).await.unwrap();
    store.put(Record::new("free", "1")).await.unwrap();
    // Another session holds the row, so the next write of it waits on the lock.
    let (mut locker, connection) =
        tokio_postgres::connect(&testing::server_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let table = format!("\"public\".\"{}\"", store.options().table);
    let tx = locker.transaction().await.unwrap();
    tx.query(
        &format!("SELECT 1 FROM {table} WHERE key = $1 FOR UPDATE"),
        &[&b"locked".as_slice()],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let error = store.put(Record::new("locked", "2")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("operation_timeout"), "{error}");
    assert!(took < Duration::from_secs(3), "the put took {took:?}");
    // Other keys are served meanwhile.
    store.put(Record::new("free", "2")).await.unwrap();
    assert_eq!(&store.get("free").await.unwrap().value[..], b"2");
    // The timed-out statement was cancelled on the server: nobody waits on the lock now,
    // so releasing it cannot let the abandoned write commit behind the next one.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let waiting = tx
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND datname = current_database() AND position($1 in query) > 0",
                &[&store.options().table],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out statement still waits on the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.rollback().await.unwrap();
    // And the key itself once the lock is gone.
    let written = store.put(Record::new("locked", "3")).await.unwrap();
    assert_eq!(&store.get("locked").await.unwrap().value[..], b"3");
    assert_eq!(store.get("locked").await.unwrap().version, written.version);
}

/// The sequence's last value: it moves whenever a write statement runs, committed or not,
/// which tells a test that a delayed statement has reached the server.
async fn sequence_value(table: &str) -> i64 {
    let (client, connection) =
        tokio_postgres::connect(&testing::server_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
        .query_one(
            &format!("SELECT last_value FROM \"public\".\"{table}:version\""),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A stat of `store`, as a count.
async fn count(store: &PostgresStorage, name: &str) -> u64 {
    match store.stats().await.unwrap().get("postgres", name) {
        Some(store_core::Figure::Count(n)) => *n,
        other => panic!("stats has no {name}: {other:?}"),
    }
}

/// The ghost write of issue 21: a put answered `Unavailable` because its connection stalled
/// must never land after a later acknowledged put once the stall ends. Here the server is
/// reachable when the put times out, so its session is ended before the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_timed_out_in_a_stall_never_lands_after_a_later_one() {
    let direct = TestStore::fresh().await;
    let proxy = FaultProxy::start(server_addr()).await.unwrap();
    let store =
        PostgresStorage::connect_with(short_timeouts(through(&proxy), &direct.options().table))
            .await
            .unwrap();
    store.put(Record::new("k", "A")).await.unwrap();

    proxy.stall();
    let ghost = tokio::time::timeout(BOUND, store.put(Record::new("k", "X")))
        .await
        .expect("the stalled put hangs");
    let message = match ghost {
        Err(Error::Unavailable(message)) => message,
        other => panic!("the stalled put answered {other:?}"),
    };
    assert!(message.contains("session was ended"), "{message}");
    let acknowledged = store.put(Record::new("k", "Y")).await.unwrap();
    proxy.resume();

    // Whatever the stalled connection still delivers now goes to a session that is gone.
    let after = direct.get("k").await.unwrap();
    assert_eq!(
        (&after.value[..], &after.version),
        (&b"Y"[..], &acknowledged.version)
    );
    assert!(count(&store, "sessions_ended").await >= 1);
    store.close().await.unwrap();
}

/// The same stall, but the server cannot be reached when the put times out, so its session
/// cannot be ended: when the stall ends, the delayed transaction reaches its deadline check
/// late and rolls back, after a later put was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_session_cannot_be_ended_is_refused_by_the_server_as_late() {
    let direct = TestStore::fresh().await;
    let table = direct.options().table.clone();
    let proxy = FaultProxy::start(server_addr()).await.unwrap();
    let store = PostgresStorage::connect_with(short_timeouts(through(&proxy), &table))
        .await
        .unwrap();
    store.put(Record::new("k", "A")).await.unwrap();

    proxy.stall();
    proxy.refuse(true);
    let ghost = tokio::time::timeout(BOUND + BOUND, store.put(Record::new("k", "X")))
        .await
        .expect("the stalled put hangs");
    let message = match ghost {
        Err(Error::Unavailable(message)) => message,
        other => panic!("the stalled put answered {other:?}"),
    };
    assert!(message.contains("could not be ended"), "{message}");
    proxy.refuse(false);
    let acknowledged = store.put(Record::new("k", "Y")).await.unwrap();
    let before = sequence_value(&table).await;
    proxy.resume();

    // The delayed put now runs on the server (its statement takes a version, which moves
    // the sequence even if it rolls back) and must roll back at its deadline check.
    let waited = Instant::now();
    while sequence_value(&table).await == before {
        let now = direct.get("k").await.unwrap();
        assert_eq!(
            &now.value[..],
            b"Y",
            "a put reported as failed landed later"
        );
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the stalled put never reached the server after the stall ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its transaction has ended one way or the other once its session is idle or gone.
    let (client, connection) =
        tokio_postgres::connect(&testing::server_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    loop {
        let in_transaction: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'store-postgres' \
                 AND state IN ('active', 'idle in transaction') AND position($1 in query) > 0",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        if in_transaction == 0 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the delayed transaction never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = direct.get("k").await.unwrap();
    assert_eq!(
        (&after.value[..], &after.version),
        (&b"Y"[..], &acknowledged.version),
        "a put reported as failed landed after a later acknowledged one"
    );
    store.close().await.unwrap();
}
