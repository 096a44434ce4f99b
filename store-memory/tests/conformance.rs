//! The conformance kit (store-testkit), run on `MemoryStorage` alone and under a namespace
//! (with the two-handle cases: a clone, and a second namespace over the same store), plus
//! the namespace layer's isolation rules over one shared memory store.
//!
//! It is called as `store_core::conformance_tests!`, which forwards to
//! `store_testkit::conformance_tests!`: the form a third-party backend may keep, tested here.

use std::time::Duration;

use futures::StreamExt;
use store_core::{Error, Namespaced, Record, Storage};
use store_memory::MemoryStorage;

mod memory {
    use store_memory::MemoryStorage;

    store_core::conformance_tests!(
        || async { MemoryStorage::new() },
        second_handle = |first: &MemoryStorage| async { first.clone() },
    );
}

mod namespaced {
    use store_core::Namespaced;
    use store_memory::MemoryStorage;

    store_core::conformance_tests!(
        || async { Namespaced::new(MemoryStorage::new(), "tenant").unwrap() },
        // Not a clone: a second namespace layer of the same name over the same store.
        second_handle = |first: &Namespaced<MemoryStorage>| async {
            Namespaced::new(first.inner().clone(), "tenant").unwrap()
        },
    );
}

async fn keys<S: Storage>(store: &S, pattern: &str) -> Vec<String> {
    let stream = store
        .list_keys(pattern)
        .await
        .unwrap_or_else(|e| panic!("list_keys({pattern:?}): {e}"));
    stream
        .map(|k| k.unwrap_or_else(|e| panic!("list_keys({pattern:?}) item: {e}")))
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_isolated() {
    let shared = MemoryStorage::new();
    let alpha = Namespaced::new(shared.clone(), "alpha").unwrap();
    let beta = Namespaced::new(shared.clone(), "beta").unwrap();
    // A name that is a prefix of another must not see the other's keys.
    let alph = Namespaced::new(shared.clone(), "alph").unwrap();

    let a = alpha.put(Record::new("k", "A")).await.unwrap();
    let b = beta.put(Record::new("k", "B")).await.unwrap();
    alpha.put(Record::new("only-a", "A")).await.unwrap();
    alpha.put(Record::new("a", "A")).await.unwrap();
    // Keys that look like paths out of the namespace stay inside it.
    alpha.put(Record::new("../beta/k", "evil")).await.unwrap();
    alpha.put(Record::new("/beta/k", "evil")).await.unwrap();
    beta.put(Record::new("b", "B")).await.unwrap();

    assert_eq!(a.key, "k", "put returns the caller's key");
    assert_eq!(&alpha.get("k").await.unwrap().value[..], b"A");
    assert_eq!(&beta.get("k").await.unwrap().value[..], b"B");
    assert!(matches!(beta.get("only-a").await, Err(Error::NotFound)));
    assert!(matches!(alph.get("a/k").await, Err(Error::NotFound)));
    assert!(matches!(alph.get("k").await, Err(Error::NotFound)));

    let alpha_keys = ["../beta/k", "/beta/k", "a", "k", "only-a"];
    assert_eq!(keys(&alpha, "*").await, alpha_keys);
    assert_eq!(keys(&beta, "*").await, ["b", "k"]);
    assert!(keys(&alph, "*").await.is_empty(), "alph sees alpha's keys");
    for pattern in [
        "../*",
        "../beta/*",
        "{a,b}",
        "{*,../beta/*}",
        "**",
        "?*",
        "/*",
        "\\*",
        "*k",
        "[!x]*",
    ] {
        for key in keys(&alpha, pattern).await {
            assert!(
                alpha_keys.contains(&key.as_str()),
                "alpha's list_keys({pattern:?}) returned {key:?}, which is not alpha's"
            );
        }
        for key in keys(&beta, pattern).await {
            assert!(
                ["b", "k"].contains(&key.as_str()),
                "beta's list_keys({pattern:?}) returned {key:?}, which is not beta's"
            );
        }
    }
    assert_eq!(keys(&alpha, "{a,b}").await, ["a"]);
    assert_eq!(keys(&beta, "{a,b}").await, ["b"]);
    assert_eq!(keys(&alpha, "../*").await, ["../beta/k"]);

    // The shared store holds everything under the prefixes.
    assert_eq!(
        keys(&shared, "*").await,
        [
            "alpha/../beta/k",
            "alpha//beta/k",
            "alpha/a",
            "alpha/k",
            "alpha/only-a",
            "beta/b",
            "beta/k"
        ]
    );

    // Writes through one namespace never touch the other.
    assert!(matches!(
        alpha
            .cas_by_version(Record::new("k", "x").with_version(b.version.clone()))
            .await,
        Err(Error::Conflict)
    ));
    alpha.delete("k").await.unwrap();
    assert_eq!(&beta.get("k").await.unwrap().value[..], b"B");
    assert!(matches!(alpha.delete("b").await, Err(Error::NotFound)));
    match alpha.create(Record::new("only-a", "again")).await {
        Err(Error::AlreadyExists(live)) => assert_eq!(live.key, "only-a"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    // A waiter in one namespace is not woken by a write to the same key in another.
    let version = alpha.put(Record::new("w", "1")).await.unwrap().version;
    let waiter = {
        let alpha = alpha.clone();
        tokio::spawn(async move { alpha.wait_for_version_change("w", &version).await })
    };
    beta.put(Record::new("w", "2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!waiter.is_finished(), "beta's write woke alpha's waiter");
    alpha.put(Record::new("w", "3")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("alpha's waiter was not woken")
        .unwrap()
        .unwrap();

    // Namespaces nest.
    let nested =
        Namespaced::new(Namespaced::new(shared.clone(), "alpha").unwrap(), "inner").unwrap();
    nested.put(Record::new("n", "v")).await.unwrap();
    assert!(shared.get("alpha/inner/n").await.is_ok());
    assert!(keys(&alpha, "inner/*").await == ["inner/n"]);

    // Closing the top of a stack closes what is under it.
    alpha.close().await.unwrap();
    assert!(matches!(shared.get("beta/k").await, Err(Error::Closed)));
    assert!(matches!(beta.get("k").await, Err(Error::Closed)));
}

#[tokio::test]
async fn invalid_namespace_names_are_rejected() {
    let shared = MemoryStorage::new();
    let too_long = "x".repeat(256);
    for name in [
        "", "a/b", "../x", "..//", "a b", "*", "{a,b}", "a?", "[a]", "é", "a\\b", "a\0", &too_long,
    ] {
        assert!(
            matches!(
                Namespaced::new(shared.clone(), name),
                Err(Error::InvalidName(_))
            ),
            "Namespaced::new with {name:?} must be InvalidName"
        );
    }
    for name in ["A-z_0.9", "tenant", "..", "-", &"x".repeat(255)] {
        assert!(
            Namespaced::new(shared.clone(), name).is_ok(),
            "Namespaced::new with {name:?} must be accepted"
        );
    }
}
