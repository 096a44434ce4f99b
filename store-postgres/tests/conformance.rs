//! The conformance kit (store-testkit) on PostgreSQL: the store alone, under a namespace, and
//! under the cache layer. Every test gets a fresh table, dropped afterwards.
//!
//! The second handle of each stack is a second `PostgresStorage` on the same table (its own
//! actor, pool and listening connection: what another process has), so the two-handle and
//! linearizability cases run across handles, and the durable cases reopen the table with a
//! new connection. The cached stack's second handle has its own cache, so reads through it
//! may lag the first's writes by up to the cache's `ttl`, which it declares.

use store_postgres::testing::TestStore;

/// The table of a closed store, opened again as a restarted process would.
async fn reopen(closed: TestStore) -> TestStore {
    closed.open_again().await
}

mod postgres {
    use super::{reopen, TestStore};

    store_testkit::conformance_tests!(
        TestStore::fresh,
        second_handle = |first: &TestStore| first.open_again(),
        reopen = reopen,
    );
}

mod namespaced {
    use super::TestStore;
    use store_core::Namespaced;

    store_testkit::conformance_tests!(
        || async { Namespaced::new(TestStore::fresh().await, "tenant").unwrap() },
        second_handle = |first: &Namespaced<TestStore>| async {
            Namespaced::new(first.inner().open_again().await, "tenant").unwrap()
        },
    );
}

mod cached {
    use super::TestStore;
    use store_cache::{CacheOptions, CachedStorage};

    store_testkit::conformance_tests!(
        || async { CachedStorage::new(TestStore::fresh().await, CacheOptions::default()) },
        second_handle = |first: &CachedStorage<TestStore>| async {
            CachedStorage::new(first.inner().open_again().await, CacheOptions::default())
        },
        linearizable_across_handles = false,
    );
}
