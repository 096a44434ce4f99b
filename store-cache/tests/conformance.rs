//! The store-core conformance kit through the cache layer, alone and under a namespace.

mod cache_over_memory {
    store_core::conformance_tests!(|| async {
        store_cache::CachedStorage::new(
            store_memory::MemoryStorage::new(),
            store_cache::CacheOptions::default(),
        )
    });
}

mod cache_with_negative_caching {
    store_core::conformance_tests!(|| async {
        store_cache::CachedStorage::new(
            store_memory::MemoryStorage::new(),
            store_cache::CacheOptions {
                negative_ttl: Some(std::time::Duration::from_secs(60)),
                ..Default::default()
            },
        )
    });
}

mod namespace_over_cache {
    store_core::conformance_tests!(|| async {
        store_core::Namespaced::new(
            store_cache::CachedStorage::new(
                store_memory::MemoryStorage::new(),
                store_cache::CacheOptions::default(),
            ),
            "tenant",
        )
        .unwrap()
    });
}

mod cache_over_namespace {
    store_core::conformance_tests!(|| async {
        store_cache::CachedStorage::new(
            store_core::Namespaced::new(store_memory::MemoryStorage::new(), "tenant").unwrap(),
            store_cache::CacheOptions::default(),
        )
    });
}
