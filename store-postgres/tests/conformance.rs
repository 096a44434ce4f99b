//! The store-core conformance kit on PostgreSQL: the store alone, under a namespace, and
//! under the cache layer. Every test gets a fresh table, dropped afterwards.

use store_postgres::testing::TestStore;

mod postgres {
    store_core::conformance_tests!(super::TestStore::fresh);
}

mod namespaced {
    store_core::conformance_tests!(|| async {
        store_core::Namespaced::new(super::TestStore::fresh().await, "tenant").unwrap()
    });
}

mod cached {
    store_core::conformance_tests!(|| async {
        store_cache::CachedStorage::new(
            super::TestStore::fresh().await,
            store_cache::CacheOptions::default(),
        )
    });
}
