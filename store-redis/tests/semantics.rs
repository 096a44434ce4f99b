//! What the conformance kit does not check and Redis makes worth checking: isolation between
//! prefixes whatever the keys or patterns, keys that Redis or Lua could mangle, the reaper
//! (atomic, complete, publishing), connect errors, `describe` and `stats`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use store_core::{Error, Figure, Record, Storage};
use store_redis::testing::{self, test_store, test_store_with};
use store_redis::{RedisOptions, RedisStorage};

async fn keys(store: &dyn Storage, pattern: &str) -> Vec<String> {
    store
        .list_keys(pattern)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Keys that a careless backend mangles: Redis glob characters, Lua pattern characters,
/// separators of our own layout, NUL, quotes, percent signs, multi-byte text.
const AWKWARD: &[&str] = &[
    "*",
    "?",
    "[a]",
    "\\",
    "{x}",
    "}:r:",
    ":idx",
    "a\0b",
    "\0",
    "%s%d%%",
    "'quoted'",
    "\"double\"",
    "é",
    "日本語/キー",
    "🦀",
    "a b",
    "line\nbreak",
    "~",
    "\u{7f}",
    "z",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_keys_round_trip_and_list_in_byte_order() {
    let store = test_store("awkward").await;
    for (i, key) in AWKWARD.iter().enumerate() {
        store
            .put(Record::new(*key, format!("value {i}")))
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
    }
    for (i, key) in AWKWARD.iter().enumerate() {
        let record = store
            .get(key)
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e}"));
        assert_eq!(record.key, *key);
        assert_eq!(record.value, format!("value {i}").as_bytes());
    }
    let mut by_bytes: Vec<&str> = AWKWARD.to_vec();
    by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(&store, "*").await, by_bytes);
    // Patterns are ours, not Redis's: an escaped star finds the key "*" and nothing else,
    // and Redis glob syntax that gobwas lacks means nothing special.
    assert_eq!(keys(&store, "\\*").await, ["*"]);
    assert_eq!(keys(&store, "\\[a\\]").await, ["[a]"]);
    assert_eq!(keys(&store, "a?b").await, ["a\0b", "a b"]);
    assert_eq!(keys(&store, "{é,🦀}").await, ["é", "🦀"]);
    assert_eq!(keys(&store, "日本語/*").await, ["日本語/キー"]);
    // Each one deletes, and nothing is left behind.
    for key in AWKWARD {
        store
            .delete(key)
            .await
            .unwrap_or_else(|e| panic!("delete {key:?}: {e}"));
    }
    assert!(keys(&store, "*").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_different_prefixes_never_see_each_other() {
    // Prefixes that are prefixes of each other, as text and as Redis keys.
    let a = test_store("iso").await;
    let b = RedisStorage::connect(&testing::server_url(), &format!("{}.b", a.store().prefix()))
        .await
        .unwrap();
    let _b_guard = testing::PrefixGuard::new(&testing::server_url(), b.prefix());
    let c = RedisStorage::connect(&testing::server_url(), &format!("{}b", a.store().prefix()))
        .await
        .unwrap();
    let _c_guard = testing::PrefixGuard::new(&testing::server_url(), c.prefix());
    let stores: [&dyn Storage; 3] = [&a, &b, &c];
    for (i, store) in stores.iter().enumerate() {
        for key in AWKWARD {
            store.put(Record::new(*key, format!("{i}"))).await.unwrap();
        }
        store
            .put(Record::new(format!("only-{i}"), "x"))
            .await
            .unwrap();
    }
    for (i, store) in stores.iter().enumerate() {
        let expected: BTreeSet<String> = AWKWARD
            .iter()
            .map(|k| (*k).to_owned())
            .chain([format!("only-{i}")])
            .collect();
        for pattern in [
            "*", "**", "*\\{*", "\\{*", "?*", "[!a]*", "*:*", "*}*", "}:r:*", "\\*",
        ] {
            let listed: BTreeSet<String> = keys(*store, pattern).await.into_iter().collect();
            let pattern = store_core::Pattern::new(pattern).unwrap();
            let wanted: BTreeSet<String> = expected
                .iter()
                .filter(|k| pattern.matches(k))
                .cloned()
                .collect();
            assert_eq!(listed, wanted, "store {i}, pattern {:?}", pattern.as_str());
        }
        for key in AWKWARD {
            assert_eq!(
                store.get(key).await.unwrap().value,
                format!("{i}").as_bytes()
            );
        }
        for other in (0..3).filter(|o| *o != i) {
            assert!(matches!(
                store.get(&format!("only-{other}")).await,
                Err(Error::NotFound)
            ));
        }
    }
    // Deleting everything in one store leaves the others whole.
    for key in AWKWARD {
        a.delete(key).await.unwrap();
    }
    assert_eq!(keys(&b, "*").await.len(), AWKWARD.len() + 1);
    assert_eq!(keys(&c, "*").await.len(), AWKWARD.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_on_the_server_and_skips_what_expired() {
    let options = RedisOptions {
        page_size: 3,
        reaper_interval: None,
        ..Default::default()
    };
    let store = test_store_with("pages", options).await;
    let mut expected = Vec::new();
    for i in 0..50 {
        let key = format!("k/{i:03}");
        if i % 5 == 0 {
            // Expired, but nobody reaps in this test: the listing itself must skip them.
            store
                .put(Record::new(&key, "gone").with_ttl(Duration::from_millis(1)))
                .await
                .unwrap();
        } else {
            store.put(Record::new(&key, "here")).await.unwrap();
            expected.push(key);
        }
    }
    store.put(Record::new("other", "x")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(keys(&store, "k/*").await, expected);
    let below_20: Vec<String> = expected
        .iter()
        .filter(|k| k.as_str() < "k/020")
        .cloned()
        .collect();
    assert_eq!(keys(&store, "k/0[0-1]?").await, below_20);
    // Deleted keys leave the index.
    store.delete("k/001").await.unwrap();
    assert!(!keys(&store, "k/*").await.contains(&"k/001".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_reclaims_every_expired_key_once_and_publishes_it() {
    // Two instances reap the same store at a high rate; between them they reclaim every key
    // exactly once.
    let fast = RedisOptions {
        reaper_interval: Some(Duration::from_millis(5)),
        ..Default::default()
    };
    let one = test_store_with("reaper", fast.clone()).await;
    let two = one.another().await;
    // A raw subscriber on the store's channel sees the reclaims.
    let client = redis::Client::open(testing::server_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{{{}}}:changes@0", one.store().prefix()))
        .await
        .unwrap();
    const KEYS: usize = 600;
    let records: Vec<Record> = (0..KEYS)
        .map(|i| Record::new(format!("e/{i}"), "v").with_ttl(Duration::from_millis(200)))
        .collect();
    one.put_many(records).await.unwrap();
    let mut announced = BTreeSet::new();
    let mut messages = pubsub.on_message();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The put_many message names every key once; then the reclaims name them again.
    let mut seen_times = std::collections::HashMap::<String, u32>::new();
    while announced.len() < KEYS {
        let message =
            tokio::time::timeout_at(deadline.into(), futures::StreamExt::next(&mut messages))
                .await
                .expect("every reclaim is published within 20 s")
                .unwrap();
        let payload = message.get_payload_bytes().to_vec();
        let mut rest = &payload[..];
        while !rest.is_empty() {
            let colon = rest.iter().position(|b| *b == b':').unwrap();
            let len: usize = std::str::from_utf8(&rest[..colon])
                .unwrap()
                .parse()
                .unwrap();
            let key = String::from_utf8(rest[colon + 1..colon + 1 + len].to_vec()).unwrap();
            rest = &rest[colon + 1 + len..];
            let times = seen_times.entry(key.clone()).or_default();
            *times += 1;
            if *times == 2 {
                announced.insert(key);
            }
        }
    }
    let reclaimed =
        |stats: store_core::Stats| match stats.get("redis", "reclaimed_by_this_instance") {
            Some(Figure::Count(n)) => *n,
            other => panic!("no reclaimed figure: {other:?}"),
        };
    let total = reclaimed(one.stats().await.unwrap()) + reclaimed(two.stats().await.unwrap());
    assert_eq!(total, KEYS as u64, "every key reclaimed exactly once");
    assert!(
        seen_times.values().all(|n| *n == 2),
        "a key announced more than twice"
    );
    assert!(keys(&one, "*").await.is_empty());
    match one.stats().await.unwrap().get("redis", "keys") {
        Some(Figure::Count(0)) => {}
        other => panic!("the index still holds keys: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_in_another_instance_wakes_when_the_record_expires() {
    let one = test_store("expiry-wake").await;
    let two = one.another().await;
    let stored = one
        .put(Record::new("lease", "holder").with_ttl(Duration::from_millis(300)))
        .await
        .unwrap();
    let woke = tokio::time::timeout(
        Duration::from_secs(10),
        two.wait_for_version_change("lease", &stored.version),
    )
    .await
    .expect("the waiter wakes");
    assert!(matches!(woke, Err(Error::NotFound)), "{woke:?}");
    // Not before the expiry (the server's clock is this machine's; expiries are kept to the
    // microsecond).
    let expires_at = stored.expires_at.unwrap();
    assert!(
        std::time::SystemTime::now() + Duration::from_millis(1) >= expires_at,
        "woke before the record expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_stats_name_the_server_and_prefix() {
    let store = test_store("describe").await;
    let prefix = store.store().prefix().to_owned();
    let address = store.store().address().to_owned();
    assert_eq!(
        store.describe(),
        format!("redis {address} prefix {prefix:?}")
    );
    store.put(Record::new("a", "1")).await.unwrap();
    store
        .put(Record::new("b", "2").with_ttl(Duration::from_secs(60)))
        .await
        .unwrap();
    let stats = store.stats().await.unwrap();
    let redis = &stats.components[0];
    assert_eq!(redis.name, "redis");
    assert_eq!(redis.detail, format!("{address} prefix {prefix:?}"));
    assert_eq!(stats.get("redis", "keys"), Some(&Figure::Count(2)));
    assert_eq!(stats.get("redis", "expiring_keys"), Some(&Figure::Count(1)));
    assert_eq!(
        stats.get("redis", "versions_in_epoch"),
        Some(&Figure::Count(2))
    );
    assert_eq!(
        stats.get("redis", "subscription"),
        Some(&Figure::Text("up".into()))
    );
    store.close().await.unwrap();
    assert!(matches!(store.stats().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prefixes_and_urls_are_refused_with_the_reason() {
    for prefix in ["", "a/b", "a b", "{x}", "é", "a:b"] {
        let error = RedisStorage::connect(&testing::server_url(), prefix)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidName(_)),
            "{prefix:?}: {error:?}"
        );
        assert!(error.to_string().contains("prefix"), "{error}");
    }
    let error = RedisStorage::connect("http://example.invalid", "p")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("http://example.invalid"),
        "{error}"
    );
    assert!(error.to_string().contains("redis://"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_within_the_connect_timeout() {
    let port = store_testkit::free_port();
    let connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = RedisStorage::connect_with(RedisOptions {
        url: format!("redis://127.0.0.1:{port}/0"),
        prefix: "p".into(),
        connect_timeout,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(started.elapsed() < connect_timeout + Duration::from_secs(1));
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clone_shares_one_actor_and_close_stops_them_all() {
    let store = test_store("clones").await;
    let clone = store.store().clone();
    clone.put(Record::new("k", "v")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().value, "v".as_bytes());
    store.close().await.unwrap();
    assert!(matches!(clone.get("k").await, Err(Error::Closed)));
    assert!(matches!(clone.close().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_answers_its_pings_and_stays_up() {
    // With a short request timeout the subscription is pinged every second.
    let options = RedisOptions {
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let store = test_store_with("ping", options).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.get("redis", "subscription"),
        Some(&Figure::Text("up".into()))
    );
    assert_eq!(
        stats.get("redis", "resubscribes"),
        Some(&Figure::Count(0)),
        "{stats}"
    );
    // And it still carries changes.
    let stored = store.put(Record::new("k", "1")).await.unwrap();
    let other = store.another().await;
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_for_version_change("k", &stored.version).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    other.put(Record::new("k", "2")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_put_into_the_prefix_by_another_tool_are_reported_with_their_key() {
    let store = test_store("foreign").await;
    let root = format!("{{{}}}:r:", store.store().prefix());
    let client = redis::Client::open(testing::server_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    // A plain string (another tool's SET) and a hash (the shape records had before they
    // became one string), both where a record of this store would live.
    let (foreign, hash) = (format!("{root}foreign"), format!("{root}hash"));
    redis::cmd("SET")
        .arg(&foreign)
        .arg("not a record")
        .exec_async(&mut redis)
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(&hash)
        .arg("v")
        .arg("1")
        .exec_async(&mut redis)
        .await
        .unwrap();

    let error = store.get("foreign").await.unwrap_err();
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    assert!(error.to_string().contains("\"foreign\""), "{error}");
    let error = store.get_many(&["a", "foreign"]).await.unwrap_err();
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    assert!(error.to_string().contains("\"foreign\""), "{error}");
    let error = store.get("hash").await.unwrap_err();
    assert!(error.to_string().contains("\"hash\""), "{error}");
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");

    // Writes replace what is there, and the store reads its own record back.
    for key in ["foreign", "hash"] {
        let stored = store.put(Record::new(key, "ours")).await.unwrap();
        let read = store.get(key).await.unwrap();
        assert_eq!(
            (&read.value[..], read.version),
            (&b"ours"[..], stored.version)
        );
    }
    redis::cmd("DEL")
        .arg(&foreign)
        .arg(&hash)
        .exec_async(&mut redis)
        .await
        .unwrap();
}
