//! What the facade offers beyond go-micro, on every stack: the versioned API of a scope,
//! the layers' stats, a name that does not depend on how the store was built, and JSON
//! helpers whose errors convert with `?`.

#[macro_use]
mod common;

use std::sync::Arc;

use async_trait::async_trait;
use store_compat::{
    DeleteOptions, Error, ListOptions, Options, ReadOptions, Record, Result, Scoped, Stack, Store,
    StoreAdapter, WriteOptions,
};
use store_core::Storage;

fn adapter(storage: &Arc<dyn Storage>) -> StoreAdapter<Arc<dyn Storage>> {
    StoreAdapter::new(storage.clone())
}

/// `versioned` gives the facade's own keys, scoped, with create/cas/wait.
async fn versioned_is_the_facades_scope(storage: Arc<dyn Storage>) {
    let store = adapter(&storage);
    store
        .write(
            Record::new("a", "1").with_metadata("m", 1),
            WriteOptions::default().database("db").table("t"),
        )
        .await
        .unwrap();
    let table = store.versioned("db", "t").unwrap();
    // The facade's record, through the versioned API (metadata is inside the value).
    let live = table.get("a").await.unwrap();
    assert_eq!(live.key, "a");
    // create refuses it; cas on its version succeeds once.
    assert!(matches!(
        table.create(store_core::Record::new("a", "x")).await,
        Err(Error::AlreadyExists(_))
    ));
    let next = store_core::Record::new("a", "2").with_version(live.version.clone());
    table.cas_by_version(next.clone()).await.unwrap();
    assert!(matches!(
        table.cas_by_version(next).await,
        Err(Error::Conflict)
    ));
    let read = store
        .read("a", ReadOptions::default().database("db").table("t"))
        .await
        .unwrap();
    assert_eq!(&read[0].value[..], b"2");
    assert!(read[0].metadata.is_empty());
    // The layout below is database/table/key, as it always was.
    assert_eq!(&storage.get("db/t/a").await.unwrap().value[..], b"2");
    // Listings stay inside the scope, whatever the pattern.
    store
        .write(
            Record::new("b", "1"),
            WriteOptions::default().database("db"),
        )
        .await
        .unwrap();
    let keys: Vec<String> = futures::TryStreamExt::try_collect(table.list_keys("*").await.unwrap())
        .await
        .unwrap();
    assert_eq!(keys, ["a"]);
}

/// Empty names mean the store's current defaults, which `init` changes.
async fn versioned_follows_the_defaults(storage: Arc<dyn Storage>) {
    let store = adapter(&storage);
    store
        .init(Options::default().database("shop").table("carts"))
        .await
        .unwrap();
    let carts = store.versioned("", "").unwrap();
    carts
        .put(store_core::Record::new("c1", "apples"))
        .await
        .unwrap();
    assert_eq!(
        &store.read("c1", ReadOptions::default()).await.unwrap()[0].value[..],
        b"apples"
    );
    assert!(storage.get("shop/carts/c1").await.is_ok());
    let other = store.versioned("", "orders").unwrap();
    assert!(matches!(other.get("c1").await, Err(Error::NotFound)));
    for (database, table) in [("a/b", "t"), ("d", "*"), ("d", "é")] {
        let err = store.versioned(database, table).err().unwrap();
        assert!(matches!(err, Error::InvalidName(_)), "{err}");
    }
}

/// A scoped handle's versioned API is its own table's.
async fn scoped_handles_give_their_own_scope(storage: Arc<dyn Storage>) {
    let shared: Arc<dyn Store> = Arc::new(adapter(&storage));
    let one = Scoped::new(shared.clone(), "agent", "one").unwrap();
    one.write(Record::new("k", "v"), WriteOptions::default())
        .await
        .unwrap();
    let mine = one.versioned("", "").unwrap();
    assert_eq!(&mine.get("k").await.unwrap().value[..], b"v");
    let theirs = one.versioned("", "two").unwrap();
    assert!(matches!(theirs.get("k").await, Err(Error::NotFound)));
    assert!(storage.get("agent/one/k").await.is_ok());
    // The same components below (the figures of a network store move between two calls:
    // each stats() call is itself a round trip, and change messages arrive on their own).
    let components = |stats: store_core::Stats| -> Vec<(String, String)> {
        stats
            .components
            .into_iter()
            .map(|c| (c.name, c.detail))
            .collect()
    };
    assert_eq!(
        components(one.stats().await.unwrap()),
        components(shared.stats().await.unwrap())
    );
    assert_eq!(one.describe(), storage.describe());
}

/// Keys too long for the scope name the caller's key, not the storage key below.
async fn long_keys_are_named_as_given(storage: Arc<dyn Storage>) {
    let store = adapter(&storage);
    let key = format!("mine-{}", "k".repeat(store_core::MAX_KEY_LEN));
    let err = store
        .write(Record::new(key, "v"), WriteOptions::default().table("tbl"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidKey(_)), "{message}");
    assert!(message.contains("\"mine-kkk"), "{message}");
    assert!(!message.contains("tbl/"), "{message}");
    let limit = store_core::MAX_KEY_LEN - "micro/tbl/".len();
    assert!(
        message.contains(&format!("at most {limit} bytes")),
        "{message}"
    );
}

/// The name is the backend's, however the stack was put together.
async fn the_name_is_the_backends(storage: Arc<dyn Storage>) {
    let expected = store_core::Storage::describe(&storage)
        .rsplit(" > ")
        .next()
        .unwrap()
        .split([' ', '('])
        .next()
        .unwrap()
        .to_owned();
    assert!(
        ["memory", "file", "redis", "postgres"].contains(&expected.as_str()),
        "{expected}"
    );
    let direct = adapter(&storage);
    let namespaced: Arc<dyn Storage> =
        Arc::new(store_core::Namespaced::new(storage.clone(), "tenant").unwrap());
    let stack = Stack::new(namespaced.clone());
    for name in [
        direct.name(),
        StoreAdapter::new(namespaced).name(),
        stack.store().name(),
        direct.to_string(),
    ] {
        assert_eq!(name, expected);
    }
}

/// Stats come from the layers below and survive being asked through `Arc<dyn Store>`.
async fn stats_come_from_the_stack(storage: Arc<dyn Storage>) {
    let store: Arc<dyn Store> = Arc::new(adapter(&storage));
    store
        .write(Record::new("k", "v"), WriteOptions::default())
        .await
        .unwrap();
    let below = storage.stats().await.unwrap();
    let through = store.stats().await.unwrap();
    assert_eq!(
        below.components.iter().map(|c| &c.name).collect::<Vec<_>>(),
        through
            .components
            .iter()
            .map(|c| &c.name)
            .collect::<Vec<_>>()
    );
    assert_eq!(store.describe(), storage.describe());
}

stack_tests!(
    versioned_is_the_facades_scope,
    versioned_follows_the_defaults,
    scoped_handles_give_their_own_scope,
    long_keys_are_named_as_given,
    the_name_is_the_backends,
    stats_come_from_the_stack,
);

/// A `Store` that is not an adapter: the provided methods answer plainly.
struct Elsewhere;

#[async_trait]
impl Store for Elsewhere {
    async fn init(&self, _: Options) -> Result<()> {
        Ok(())
    }
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    fn options(&self) -> Options {
        Options::default()
    }
    async fn read(&self, _: &str, _: ReadOptions) -> Result<Vec<Record>> {
        Err(Error::NotFound)
    }
    async fn write(&self, _: Record, _: WriteOptions) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, _: &str, _: DeleteOptions) -> Result<()> {
        Ok(())
    }
    async fn list(&self, _: ListOptions) -> Result<Vec<String>> {
        Ok(vec![])
    }
    async fn disconnect(&self) -> Result<()> {
        Ok(())
    }
    fn name(&self) -> String {
        "elsewhere".into()
    }
}

#[tokio::test]
async fn stores_without_storage_say_so() {
    let store: Arc<dyn Store> = Arc::new(Elsewhere);
    let err = store.versioned("", "").err().unwrap();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("\"elsewhere\""), "{err}");
    assert!(store.stats().await.unwrap().components.is_empty());
    assert_eq!(store.describe(), "elsewhere");
    let boxed: Box<dyn Store> = Box::new(Elsewhere);
    assert!(boxed.versioned("", "").is_err());
}

#[test]
fn json_helpers_return_the_crates_error_naming_the_key() -> Result<()> {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
    }
    // `?` works: both helpers return store_compat::Error.
    let record = Record::from_json("p", &Point { x: 1 })?;
    assert_eq!(record.decode::<Point>()?, Point { x: 1 });

    let err = Record::new("points/7", "{\"x\": \"one\"}")
        .decode::<Point>()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidValue(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("\"points/7\""), "{message}");
    assert!(message.contains("Point"), "{message}");

    let bad = std::collections::BTreeMap::from([(vec![1], 2)]);
    let err = Record::from_json("weird", &bad).unwrap_err();
    assert!(matches!(err, Error::InvalidValue(_)), "{err}");
    assert!(err.to_string().contains("\"weird\""), "{err}");
    Ok(())
}
