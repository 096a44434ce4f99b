//! Third-party backends, layers and facades implement `Storage`, `Layer` and `Store` with
//! `async fn`s in an `#[async_trait]` impl block (DESIGN.md, section 3). The traits spell
//! their signatures out (`BoxFuture`, named lifetimes) for readable docs; these impls
//! keep compiling only while those signatures are the ones `async_trait` generates, every
//! call (provided ones included) overridden here, and the results are usable as
//! `Arc<dyn Storage>` and `Box<dyn Store>`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use store_compat::{
    DeleteOptions, ListOptions, Options, ReadOptions, Record, Store, StoreAdapter, WriteOptions,
};
use store_core::{Error, KeyStream, Layer, Result, Stats, Storage};
use store_memory::MemoryStorage;

/// A backend in the shape of a third-party one: every call written as an `async fn`.
struct Backend {
    inner: MemoryStorage,
    calls: AtomicUsize,
}

impl Backend {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl Storage for Backend {
    async fn create(&self, record: store_core::Record) -> Result<String> {
        self.count();
        Storage::create(&self.inner, record).await
    }
    async fn get(&self, key: &str) -> Result<store_core::Record> {
        self.count();
        Storage::get(&self.inner, key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<store_core::Record>>> {
        self.count();
        Storage::get_many(&self.inner, keys).await
    }
    async fn put(&self, record: store_core::Record) -> Result<store_core::Record> {
        self.count();
        Storage::put(&self.inner, record).await
    }
    async fn put_many(&self, records: Vec<store_core::Record>) -> Result<()> {
        self.count();
        Storage::put_many(&self.inner, records).await
    }
    async fn cas_by_version(&self, record: store_core::Record) -> Result<store_core::Record> {
        self.count();
        Storage::cas_by_version(&self.inner, record).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.count();
        Storage::delete(&self.inner, key).await
    }
    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.count();
        Storage::wait_for_version_change(&self.inner, key, version).await
    }
    async fn list_keys(&self, pattern: &str) -> Result<KeyStream> {
        self.count();
        Storage::list_keys(&self.inner, pattern).await
    }
    async fn close(&self) -> Result<()> {
        self.count();
        Storage::close(&self.inner).await
    }
    fn describe(&self) -> String {
        "backend".to_owned()
    }
    async fn stats(&self) -> Result<Stats> {
        self.count();
        Ok(Stats::default())
    }
    async fn compact(&self) -> Result<()> {
        Err(Error::Unsupported("compact: nothing to reclaim".to_owned()))
    }
}

/// A layer that changes the calls with several borrowed arguments.
struct Upper<S> {
    inner: S,
}

#[async_trait]
impl<S: Storage> Layer for Upper<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<store_core::Record>>> {
        let upper: Vec<String> = keys.iter().map(|k| k.to_uppercase()).collect();
        let refs: Vec<&str> = upper.iter().map(String::as_str).collect();
        self.inner.get_many(&refs).await
    }

    async fn wait_for_version_change(&self, key: &str, version: &str) -> Result<()> {
        self.inner
            .wait_for_version_change(&key.to_uppercase(), version)
            .await
    }
}

/// A facade in the shape of a third-party one: every call written as an `async fn`.
struct Facade<S> {
    inner: StoreAdapter<S>,
}

#[async_trait]
impl<S: Storage> Store for Facade<S> {
    async fn init(&self, options: Options) -> Result<()> {
        self.inner.init(options).await
    }
    async fn connect(&self) -> Result<()> {
        self.inner.connect().await
    }
    fn options(&self) -> Options {
        self.inner.options()
    }
    async fn read(&self, key: &str, opts: ReadOptions) -> Result<Vec<Record>> {
        self.inner.read(key, opts).await
    }
    async fn write(&self, record: Record, opts: WriteOptions) -> Result<()> {
        self.inner.write(record, opts).await
    }
    async fn delete(&self, key: &str, opts: DeleteOptions) -> Result<()> {
        self.inner.delete(key, opts).await
    }
    async fn list(&self, opts: ListOptions) -> Result<Vec<String>> {
        self.inner.list(opts).await
    }
    async fn disconnect(&self) -> Result<()> {
        self.inner.disconnect().await
    }
    fn name(&self) -> String {
        "facade".to_owned()
    }
    async fn stats(&self) -> Result<Stats> {
        self.inner.stats().await
    }
}

#[tokio::test]
async fn async_trait_impls_work_as_trait_objects() {
    let backend = Arc::new(Backend {
        inner: MemoryStorage::new(),
        calls: AtomicUsize::new(0),
    });
    let storage: Arc<dyn Storage> = Arc::new(Upper {
        inner: Arc::clone(&backend),
    });

    // Through the layer: forwarded calls and overridden ones reach the backend.
    storage
        .put(store_core::Record::new("A", "1"))
        .await
        .unwrap();
    assert_eq!(&storage.get("A").await.unwrap().value[..], b"1");
    let many = storage.get_many(&["a", "b"]).await.unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(&many[0].as_ref().unwrap().value[..], b"1");
    assert!(many[1].is_none());
    let version = storage.get("A").await.unwrap().version;
    assert!(storage
        .wait_for_version_change("a", "no such version")
        .await
        .is_ok());
    assert!(matches!(
        storage.wait_for_version_change("missing", &version).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        storage.compact().await,
        Err(Error::Unsupported(_))
    ));
    assert_eq!(storage.describe(), "backend");
    assert!(backend.calls.load(Ordering::Relaxed) >= 6);

    // The facade over that stack, as a trait object.
    let store: Box<dyn Store> = Box::new(Facade {
        inner: StoreAdapter::new(Arc::clone(&storage)),
    });
    store
        .write(Record::new("greeting", "hello"), WriteOptions::default())
        .await
        .unwrap();
    let records = store
        .read("greeting", ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(&records[0].value[..], b"hello");
    assert_eq!(
        store.list(ListOptions::default()).await.unwrap(),
        ["greeting"]
    );
    store
        .delete("greeting", DeleteOptions::default())
        .await
        .unwrap();
    assert!(store.stats().await.is_ok());
    assert_eq!(store.name(), "facade");
    store.disconnect().await.unwrap();
    assert!(matches!(storage.get("A").await, Err(Error::Closed)));
}
