mod common;

use std::time::Duration;

use futures::StreamExt;
use store_core::{Error, Record, Storage};
use store_file::{FileOptions, FileStorage, SyncPolicy};

#[tokio::test]
async fn basic_operations_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::open(dir.path()).await.unwrap();
    let v1 = store.create(Record::new("a", "1")).await.unwrap();
    assert!(matches!(
        store.create(Record::new("a", "2")).await,
        Err(Error::AlreadyExists(_))
    ));
    store.put(Record::new("b", vec![7u8; 5000])).await.unwrap();
    store
        .put_many(vec![Record::new("c", "3"), Record::new("d", "4")])
        .await
        .unwrap();
    store.delete("d").await.unwrap();
    assert_eq!(store.get("a").await.unwrap().version, v1);
    assert_eq!(store.get("b").await.unwrap().value.len(), 5000);
    let keys: Vec<String> = store
        .list_keys("*")
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await;
    assert_eq!(keys, ["a", "b", "c"]);
    let stats = store.stats();
    assert_eq!(stats.records, 3);
    assert!(stats.fsyncs >= 1);
    store.close().await.unwrap();
    assert!(matches!(store.get("a").await, Err(Error::Closed)));

    let store = FileStorage::open_with(
        dir.path(),
        FileOptions {
            sync: SyncPolicy::Interval(Duration::from_millis(5)),
            cache_values_up_to: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(store.get("a").await.unwrap().version, v1);
    assert_eq!(&store.get("b").await.unwrap().value[..], &[7u8; 5000][..]);
    assert_eq!(&store.get("c").await.unwrap().value[..], b"3");
    assert!(matches!(store.get("d").await, Err(Error::NotFound)));
    assert_eq!(store.stats().recovered_records, 5);
    store.compact().await.unwrap();
    assert_eq!(&store.get("b").await.unwrap().value[..], &[7u8; 5000][..]);
    assert_eq!(store.stats().compactions, 1);
    store.close().await.unwrap();
}
