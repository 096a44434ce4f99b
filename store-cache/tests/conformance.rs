//! The conformance kit (store-testkit) through the cache layer, alone and under a namespace.
//! Each stack's second handle is a clone of the same stack, which shares its cache, so it
//! is linearizable with the first. The last module puts a cache in each of two "processes"
//! over one shared store: reads through one may lag the other's writes (up to the cache's
//! `ttl`), which it declares, and every other shared rule must still hold.

mod cache_over_memory {
    use store_cache::{CacheOptions, CachedStorage};
    use store_memory::MemoryStorage;

    store_testkit::conformance_tests!(
        || async { CachedStorage::new(MemoryStorage::new(), CacheOptions::default()) },
        second_handle = |first: &CachedStorage<MemoryStorage>| async { first.clone() },
    );
}

mod cache_with_negative_caching {
    use store_cache::{CacheOptions, CachedStorage};
    use store_memory::MemoryStorage;

    store_testkit::conformance_tests!(
        || async {
            let options = CacheOptions {
                negative_ttl: Some(std::time::Duration::from_secs(60)),
                ..Default::default()
            };
            CachedStorage::new(MemoryStorage::new(), options)
        },
        second_handle = |first: &CachedStorage<MemoryStorage>| async { first.clone() },
    );
}

mod namespace_over_cache {
    use store_cache::{CacheOptions, CachedStorage};
    use store_core::Namespaced;
    use store_memory::MemoryStorage;

    type Stack = Namespaced<CachedStorage<MemoryStorage>>;

    store_testkit::conformance_tests!(
        || async {
            let cached = CachedStorage::new(MemoryStorage::new(), CacheOptions::default());
            Namespaced::new(cached, "tenant").unwrap()
        },
        second_handle = |first: &Stack| async { first.clone() },
    );
}

mod cache_over_namespace {
    use store_cache::{CacheOptions, CachedStorage};
    use store_core::Namespaced;
    use store_memory::MemoryStorage;

    type Stack = CachedStorage<Namespaced<MemoryStorage>>;

    store_testkit::conformance_tests!(
        || async {
            let namespaced = Namespaced::new(MemoryStorage::new(), "tenant").unwrap();
            CachedStorage::new(namespaced, CacheOptions::default())
        },
        second_handle = |first: &Stack| async { first.clone() },
    );
}

mod two_caches_over_one_store {
    use store_cache::{CacheOptions, CachedStorage};
    use store_memory::MemoryStorage;

    store_testkit::conformance_tests!(
        || async { CachedStorage::new(MemoryStorage::new(), CacheOptions::default()) },
        // Another cache over the same store, as another process would have.
        second_handle = |first: &CachedStorage<MemoryStorage>| async {
            CachedStorage::new(first.inner().clone(), CacheOptions::default())
        },
        linearizable_across_handles = false,
    );
}
