//! The store-core conformance kit on a real Redis (127.0.0.1:6379 or STORE_TEST_REDIS_URL),
//! each case under a fresh prefix that is deleted afterwards.

mod redis {
    store_core::conformance_tests!(|| store_redis::testing::test_store("kit"));
}

mod namespaced {
    store_core::conformance_tests!(|| async {
        store_core::Namespaced::new(store_redis::testing::test_store("kit-ns").await, "tenant")
            .unwrap()
    });
}

mod cached {
    store_core::conformance_tests!(|| async {
        store_cache::CachedStorage::new(
            store_redis::testing::test_store("kit-cache").await,
            store_cache::CacheOptions::default(),
        )
    });
}
