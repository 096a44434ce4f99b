use futures::StreamExt;
use std::time::Duration;
use store_core::{Error, Record, Storage};
use store_memory::MemoryStorage;

#[tokio::test]
async fn smoke() {
    let s = MemoryStorage::new();
    let v = s.create(Record::new("a", "1")).await.unwrap();
    assert!(matches!(
        s.create(Record::new("a", "2")).await,
        Err(Error::AlreadyExists(_))
    ));
    let r = s.get("a").await.unwrap();
    assert_eq!(r.version, v);
    let s2 = s.clone();
    let w = tokio::spawn(async move { s2.wait_for_version_change("a", &v).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.put(Record::new("a", "3")).await.unwrap();
    w.await.unwrap().unwrap();
    s.put(Record::new("b", "x").with_ttl(Duration::from_millis(50)))
        .await
        .unwrap();
    let keys: Vec<_> = s
        .list_keys("*")
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await;
    assert_eq!(keys, vec!["a", "b"]);
    let v = s.get("b").await.unwrap().version;
    let r = s.wait_for_version_change("b", &v).await;
    assert!(matches!(r, Err(Error::NotFound)), "{r:?}");
    s.close().await.unwrap();
    assert!(matches!(s.get("a").await, Err(Error::Closed)));
    assert!(matches!(s.close().await, Err(Error::Closed)));
}
