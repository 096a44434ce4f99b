//! The conformance kit (store-testkit) on a real Redis (127.0.0.1:6379 or STORE_TEST_REDIS_URL),
//! each case under a fresh prefix that is deleted afterwards. The second handle of the
//! two-handle cases is an independent connection on the same prefix (its own actor,
//! connections and subscription), as another process would open it, and the stack is
//! linearizable across the two. `reopen` connects again to the same prefix: the server kept
//! the data, with its versions.

mod redis {
    use store_redis::testing::TestStore;

    store_testkit::conformance_tests!(
        || store_redis::testing::test_store("kit"),
        second_handle = |first: &TestStore| first.another(),
        reopen = |closed: TestStore| async move { closed.another().await },
    );
}

mod namespaced {
    use store_core::Namespaced;
    use store_redis::testing::TestStore;

    store_testkit::conformance_tests!(
        || async {
            Namespaced::new(store_redis::testing::test_store("kit-ns").await, "tenant").unwrap()
        },
        second_handle = |first: &Namespaced<TestStore>| async {
            Namespaced::new(first.inner().another().await, "tenant").unwrap()
        },
    );
}

mod cached {
    use store_cache::{CacheOptions, CachedStorage};
    use store_redis::testing::TestStore;

    // One cache in one process: its clone is the second handle, linearizable with the first.
    store_testkit::conformance_tests!(
        || async {
            CachedStorage::new(
                store_redis::testing::test_store("kit-cache").await,
                CacheOptions::default(),
            )
        },
        second_handle = |first: &CachedStorage<TestStore>| async { first.clone() },
    );
}

mod two_caches {
    use store_cache::{CacheOptions, CachedStorage};
    use store_redis::testing::TestStore;

    // A cache in each of two processes over one Redis: reads through one may lag the
    // other's writes (up to the cache's ttl), which is declared; every other shared rule
    // holds.
    store_testkit::conformance_tests!(
        || async {
            CachedStorage::new(
                store_redis::testing::test_store("kit-caches").await,
                CacheOptions::default(),
            )
        },
        second_handle = |first: &CachedStorage<TestStore>| async {
            CachedStorage::new(first.inner().another().await, CacheOptions::default())
        },
        linearizable_across_handles = false,
    );
}
