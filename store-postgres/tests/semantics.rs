//! What is particular to the PostgreSQL backend, beyond the conformance kit: names and
//! isolation, the table's format record, keys that `LIKE` would misread, the reaper, writes
//! that change nothing announcing nothing, one failing call in a batch, describe and stats.

use std::time::{Duration, Instant};

use futures::StreamExt;
use store_core::{Error, Figure, Record, Storage};
use store_postgres::testing::{self, TestStore};
use store_postgres::{PostgresOptions, PostgresStorage};

async fn raw() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&testing::server_url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL: {e}. {}", testing::HOW_TO_START));
    tokio::spawn(connection);
    client
}

async fn keys<S: Storage + ?Sized>(store: &S, pattern: &str) -> Vec<String> {
    store
        .list_keys(pattern)
        .await
        .unwrap()
        .map(|key| key.unwrap())
        .collect()
        .await
}

fn table_of(options: &PostgresOptions) -> String {
    format!("\"{}\".\"{}\"", options.schema, options.table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_with_different_names_never_see_each_other() {
    // go-micro turned both `a-b` and `a.b` into `a_b`; case matters too once quoted.
    let suffix = testing::fresh_table();
    let names = [
        format!("{suffix}-a-b"),
        format!("{suffix}-a.b"),
        format!("{suffix}-A-B"),
    ];
    let mut stores = Vec::new();
    for name in &names {
        stores.push(
            TestStore::with_options(PostgresOptions {
                table: name.clone(),
                ..testing::fresh_options()
            })
            .await,
        );
    }
    for (i, store) in stores.iter().enumerate() {
        store
            .put(Record::new("shared", i.to_string()))
            .await
            .unwrap();
        store
            .put(Record::new(format!("only/{i}"), ""))
            .await
            .unwrap();
    }
    let version = stores[0].get("shared").await.unwrap().version;
    let waiter = {
        let first = stores[0].clone();
        tokio::spawn(async move { first.wait_for_version_change("shared", &version).await })
    };
    stores[1].put(Record::new("shared", "again")).await.unwrap();
    stores[2].delete("shared").await.unwrap();
    for (i, store) in stores.iter().enumerate() {
        let expected_shared = if i == 2 {
            vec![]
        } else {
            vec!["shared".to_owned()]
        };
        let mut expected = vec![format!("only/{i}")];
        expected.extend(expected_shared);
        assert_eq!(keys(store, "*").await, expected, "table {}", names[i]);
        for pattern in ["only/*", "{only,shared}*", "*/[0-9]", "\\*"] {
            for key in keys(store, pattern).await {
                assert!(
                    key == "shared" || key == format!("only/{i}"),
                    "{}: {pattern} listed {key}",
                    names[i]
                );
            }
        }
    }
    assert_eq!(&stores[0].get("shared").await.unwrap().value[..], b"0");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "another table's writes woke the waiter"
    );
    waiter.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_before_connecting() {
    for table in ["", "a b", "a;b", "a\"b", "ä", "a:b", &"t".repeat(49)] {
        let error = PostgresStorage::connect(&testing::server_url(), table)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidName(_)),
            "{table:?}: {error:?}"
        );
    }
    let error = PostgresStorage::connect_with(PostgresOptions {
        schema: "bad schema".into(),
        ..testing::fresh_options()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, Error::InvalidName(_)), "{error:?}");
    let error = PostgresStorage::connect_with(PostgresOptions {
        pool_size: 1,
        ..testing::fresh_options()
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("pool_size"), "{error}");
    let error = PostgresStorage::connect("postgres://me:secret@[nonsense", "t")
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("secret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_format_is_recorded_and_a_foreign_table_is_refused() {
    let store = TestStore::fresh().await;
    let client = raw().await;
    let format: i32 = client
        .query_one(
            "SELECT format FROM \"public\".\"store_postgres:formats\" WHERE table_name = $1",
            &[&store.options().table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(format, 1);
    // Opening again migrates nothing and keeps the data.
    store.put(Record::new("k", "v")).await.unwrap();
    let again = store.open_again().await;
    assert_eq!(&again.get("k").await.unwrap().value[..], b"v");

    // A table this crate did not make is neither used nor dropped.
    let foreign = testing::fresh_table();
    client
        .batch_execute(&format!("CREATE TABLE \"{foreign}\" (id int)"))
        .await
        .unwrap();
    let options = PostgresOptions {
        table: foreign.clone(),
        ..testing::fresh_options()
    };
    let error = PostgresStorage::connect_with(options.clone())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not created by store-postgres"),
        "{error}"
    );
    assert!(!PostgresStorage::drop_table(&options).await.unwrap());
    let still_there = client
        .query_opt(&format!("SELECT 1 FROM \"{foreign}\""), &[])
        .await;
    assert!(still_there.is_ok(), "the foreign table was dropped");
    client
        .batch_execute(&format!("DROP TABLE \"{foreign}\""))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn like_wildcards_and_nul_in_keys_are_plain_characters() {
    let store = TestStore::fresh().await;
    for key in ["a%b", "a_b", "axb", "a%", "a\0b", "a", "ab"] {
        store.put(Record::new(key, key)).await.unwrap();
    }
    assert_eq!(keys(&store, "a%*").await, ["a%", "a%b"]);
    assert_eq!(keys(&store, "a_*").await, ["a_b"]);
    assert_eq!(keys(&store, "a\0*").await, ["a\0b"]);
    // Byte order: NUL (0x00), '%' (0x25), '_' (0x5f), 'b' (0x62), 'x' (0x78).
    assert_eq!(
        keys(&store, "a?*").await,
        ["a\0b", "a%", "a%b", "a_b", "ab", "axb"]
    );
    assert_eq!(&store.get("a\0b").await.unwrap().value[..], b"a\0b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_expired_rows() {
    let store = TestStore::with_options(PostgresOptions {
        reaper_interval: Duration::from_millis(100),
        ..testing::fresh_options()
    })
    .await;
    let ttl = Duration::from_millis(50);
    store
        .put_many(
            (0..50)
                .map(|i| Record::new(format!("short/{i}"), "").with_ttl(ttl))
                .collect(),
        )
        .await
        .unwrap();
    store.put(Record::new("long", "")).await.unwrap();
    let client = raw().await;
    let table = table_of(store.options());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        if rows == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{rows} rows left: the reaper did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.get("postgres", "reaped"), Some(&Figure::Count(50)));
}

/// The notifications `watcher` has received so far.
async fn notifications<S: Storage + ?Sized>(watcher: &S) -> u64 {
    match watcher
        .stats()
        .await
        .unwrap()
        .get("postgres", "notifications")
    {
        Some(Figure::Count(n)) => *n,
        other => panic!("no notification count: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_change_nothing_announce_nothing() {
    let writer = TestStore::fresh().await;
    let watcher = writer.open_again().await;
    let live = writer.put(Record::new("k", "v")).await.unwrap();
    // The watcher listens from its connect on, so this put's notification is its first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while notifications(&watcher).await < 1 {
        assert!(
            Instant::now() < deadline,
            "the first put's notification never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = notifications(&watcher).await;
    assert_eq!(before, 1);
    // None of these changes anything.
    let _ = writer.create(Record::new("k", "x")).await.unwrap_err();
    let stale = format!("{}0", live.version);
    let _ = writer
        .cas_by_version(Record::new("k", "x").with_version(stale))
        .await
        .unwrap_err();
    let _ = writer
        .cas_by_version(Record::new("missing", "x").with_version(live.version.clone()))
        .await
        .unwrap_err();
    let _ = writer.delete("missing").await.unwrap_err();
    // A sentinel write: notifications arrive in commit order, so once its own arrives,
    // any from the calls above would have arrived before it.
    writer.put(Record::new("sentinel", "")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = notifications(&watcher).await;
        if now > before {
            assert_eq!(
                now,
                before + 1,
                "a write that changed nothing was announced"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel's notification never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_call_in_a_batch_fails_alone() {
    let store = TestStore::fresh().await;
    let table = table_of(store.options());
    let trigger = format!("{}_poison", store.options().table);
    let client = raw().await;
    // A row-level trigger that refuses one key: a statement error in the middle of a batch.
    client
        .batch_execute(&format!(
            "CREATE FUNCTION \"{trigger}\"() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.key = convert_to('poison', 'UTF8') THEN \
             RAISE EXCEPTION 'poisoned key'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER \"{trigger}\" BEFORE INSERT OR UPDATE ON {table} \
             FOR EACH ROW EXECUTE FUNCTION \"{trigger}\"();"
        ))
        .await
        .unwrap();
    store.put(Record::new("blocker", "0")).await.unwrap();
    // Hold the row of "blocker" so that the write in flight waits, and every write queued
    // behind it goes out as one batch once it is released.
    let mut locker = raw().await;
    let tx = locker.transaction().await.unwrap();
    tx.query(
        &format!("SELECT 1 FROM {table} WHERE key = $1 FOR UPDATE"),
        &[&b"blocker".as_slice()],
    )
    .await
    .unwrap();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.put(Record::new("blocker", "1")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut calls = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        calls.push(tokio::spawn(async move {
            store
                .put(Record::new(format!("fine/{i}"), "v"))
                .await
                .map(drop)
        }));
    }
    let poisoned = {
        let store = store.clone();
        tokio::spawn(async move { store.put(Record::new("poison", "v")).await })
    };
    let poisoned_batch = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .put_many(vec![Record::new("many/1", "v"), Record::new("poison", "v")])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.rollback().await.unwrap();
    blocked.await.unwrap().unwrap();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let error = poisoned.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("poisoned key"), "{error}");
    let error = poisoned_batch.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("poisoned key"), "{error}");
    assert!(
        matches!(store.get("many/1").await, Err(Error::NotFound)),
        "put_many was split"
    );
    for i in 0..10 {
        assert!(store.get(&format!("fine/{i}")).await.is_ok());
    }
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.get("postgres", "replayed_batches"),
        Some(&Figure::Count(1))
    );
    client
        .batch_execute(&format!(
            "DROP TRIGGER \"{trigger}\" ON {table}; DROP FUNCTION \"{trigger}\"();"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_stats_name_the_server_and_table() {
    let store = TestStore::fresh().await;
    let table = &store.options().table;
    let description = store.describe();
    assert!(description.starts_with("postgres "), "{description}");
    assert!(
        description.ends_with(&format!("table \"{table}\"")),
        "{description}"
    );
    store.put(Record::new("k", "v")).await.unwrap();
    store.get("k").await.unwrap();
    let stats = store.stats().await.unwrap();
    let component = &stats.components[0];
    assert_eq!(component.name, "postgres");
    assert!(component.detail.contains(table.as_str()));
    for figure in [
        "pool_size",
        "writes",
        "reads",
        "table_bytes",
        "notifications",
    ] {
        assert!(
            stats.get("postgres", figure).is_some(),
            "{figure} missing: {stats}"
        );
    }
    assert_eq!(stats.get("postgres", "pool_size"), Some(&Figure::Count(8)));
}

/// What a store finds after an asynchronous standby that lagged was promoted: another
/// server history, with the version sequence behind the last versions the old primary
/// handed out. Simulated on one server: the table's recorded history is made another one,
/// and the sequence is set back to where it was five versions ago. A new handle (new
/// connections, as after a failover) must hand out none of the versions from before
/// (without the history check, the five after the set-back point came out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_continue_past_another_server_history() {
    let first = TestStore::fresh().await;
    let mut seen = std::collections::HashSet::new();
    let mut versions = Vec::new();
    for i in 0..10 {
        let version = first
            .put(Record::new(format!("k{i}"), "v"))
            .await
            .unwrap()
            .version;
        assert!(seen.insert(version.clone()));
        versions.push(version);
    }
    let options = first.options().clone();
    let second = first.open_again().await;
    first.store().close().await.unwrap();

    let raw = raw().await;
    let histories = format!("\"{}\".\"store_postgres:histories\"", options.schema);
    raw.execute(
        &format!(
            "INSERT INTO {histories} (table_name, history) VALUES ($1, 'another/00000009') \
             ON CONFLICT (table_name) DO UPDATE SET history = EXCLUDED.history"
        ),
        &[&options.table],
    )
    .await
    .unwrap();
    let behind: i64 = versions[4].parse().unwrap();
    let sequence = format!("\"{}\".\"{}:version\"", options.schema, options.table);
    raw.execute(
        "SELECT setval($1::text::regclass, $2)",
        &[&sequence, &behind],
    )
    .await
    .unwrap();

    let third = second.open_again().await;
    for i in 0..10 {
        let version = third
            .put(Record::new(format!("k{i}"), "again"))
            .await
            .unwrap()
            .version;
        assert!(
            seen.insert(version.clone()),
            "version {version} handed out twice"
        );
    }
    let stats = third.stats().await.unwrap();
    assert_eq!(
        stats.get("postgres", "history_changes"),
        Some(&Figure::Count(1)),
        "{stats:?}"
    );
    // The history is recorded again: a later handle starts no new one.
    let fourth = third.open_again().await;
    fourth.put(Record::new("k0", "once more")).await.unwrap();
    assert_eq!(
        fourth
            .stats()
            .await
            .unwrap()
            .get("postgres", "history_changes"),
        Some(&Figure::Count(0))
    );
}
