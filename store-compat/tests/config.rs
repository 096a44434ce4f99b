//! The TOML configuration: every stack it can build, and every error it can report.

use std::time::Duration;

use serde::Deserialize;
use store_compat::config::{Backend, ConfigError, StoreConfig, SyncSetting};
use store_compat::{ReadOptions, Record, WriteOptions};
use store_core::Storage;

fn error(toml: &str) -> String {
    StoreConfig::from_toml_str(toml)
        .expect_err("the configuration should be rejected")
        .to_string()
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
}

#[test]
fn unknown_backend_lists_the_known_ones() {
    let message = error("backend = \"redis\"");
    assert_mentions(
        &message,
        &["backend", "\"redis\"", "memory, file", "line 1"],
    );
}

#[test]
fn missing_backend_is_named() {
    assert_mentions(&error("namespace = \"a\""), &["backend"]);
}

#[test]
fn file_backend_needs_its_section() {
    let message = error("backend = \"file\"");
    assert_mentions(&message, &["[file]", "dir"]);
    let message = error("backend = \"file\"\n[file]\nsync = \"always\"\n");
    assert_mentions(&message, &["dir"]);
}

#[test]
fn bad_durations_name_the_value_and_what_is_accepted() {
    let message = error("backend = \"memory\"\n[cache]\nttl = \"soon\"\n");
    assert_mentions(&message, &["\"soon\"", "ttl", "line 3", "30s"]);
    let message = error("backend = \"memory\"\n[cache]\nnegative_ttl = \"5 parsecs\"\n");
    assert_mentions(&message, &["\"5 parsecs\"", "negative_ttl"]);
}

#[test]
fn bad_sync_policies_name_the_value_and_what_is_accepted() {
    let message = error("backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"sometimes\"\n");
    assert_mentions(
        &message,
        &[
            "\"sometimes\"",
            "file.sync",
            "always",
            "never",
            "5ms",
            "line 4",
        ],
    );
    let message = error("backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"0s\"\n");
    assert_mentions(&message, &["\"0s\"", "longer than zero"]);
}

#[test]
fn bad_namespaces_are_rejected() {
    let message = error("backend = \"memory\"\nnamespace = \"a/b\"\n");
    assert_mentions(&message, &["namespace", "\"a/b\"", "A-Z a-z 0-9 . _ -"]);
    assert_mentions(
        &error("backend = \"memory\"\nnamespace = \"\"\n"),
        &["namespace"],
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_line() {
    let message = error("backend = \"memory\"\n\n[cache]\nmax_capacity = 10\nttl_seconds = 5\n");
    assert_mentions(&message, &["ttl_seconds", "line 5", "max_capacity"]);
    let message = error("backend = \"memory\"\nnamepsace = \"x\"\n");
    assert_mentions(&message, &["namepsace", "line 2"]);
    let message = error("backend = \"memory\"\n[redis]\nurl = \"x\"\n");
    assert_mentions(&message, &["redis"]);
}

#[test]
fn out_of_range_values_are_rejected() {
    let message = error("backend = \"memory\"\n[cache]\nmax_capacity = 0\n");
    assert_mentions(&message, &["cache.max_capacity", "positive"]);
    let message = error("backend = \"file\"\n[file]\ndir = \"d\"\ncompact_garbage_ratio = -1.0\n");
    assert_mentions(&message, &["file.compact_garbage_ratio", "-1"]);
    let message = error("backend = \"memory\"\n[cache]\nmax_capacity = -5\n");
    assert_mentions(&message, &["max_capacity"]);
}

#[test]
fn malformed_toml_is_reported_with_its_position() {
    assert_mentions(&error("backend = \"memory"), &["line 1"]);
}

#[test]
fn a_missing_file_is_named() {
    let err = StoreConfig::from_path("/no/such/dir/store.toml").unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert_mentions(&err.to_string(), &["/no/such/dir/store.toml"]);
}

#[test]
fn the_design_example_parses() {
    let config = StoreConfig::from_toml_str(
        r#"
        backend = "file"          # memory | file
        namespace = "orders"      # optional namespace layer
        [file]
        dir = "./data"
        sync = "always"           # always | never | a humantime interval such as "5ms"
        [cache]                   # optional cache layer on top
        max_capacity = 100000
        ttl = "30s"
        "#,
    )
    .unwrap();
    assert_eq!(config.backend, Backend::File);
    assert_eq!(config.namespace.as_deref(), Some("orders"));
    let file = config.file.as_ref().unwrap();
    assert_eq!(file.sync, SyncSetting::Always);
    let cache = config.cache.as_ref().unwrap();
    assert_eq!(cache.max_capacity, 100_000);
    assert_eq!(cache.ttl, Some(Duration::from_secs(30)));
    // It survives a round trip through TOML.
    let text = toml::to_string(&config).unwrap();
    assert_eq!(StoreConfig::from_toml_str(&text).unwrap(), config);
}

#[test]
fn store_config_embeds_in_a_service_config() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceConfig {
        name: String,
        store: StoreConfig,
    }
    let service: ServiceConfig = toml::from_str(
        "name = \"orders\"\n[store]\nbackend = \"memory\"\n[store.cache]\nttl = \"1m\"\n",
    )
    .unwrap();
    assert_eq!(service.name, "orders");
    service.store.validate().unwrap();
    assert_eq!(
        service.store.cache.unwrap().ttl,
        Some(Duration::from_secs(60))
    );

    let err = toml::from_str::<ServiceConfig>(
        "name = \"orders\"\n[store]\nbackend = \"memory\"\nextra = 1\n",
    )
    .err()
    .expect("unknown fields inside the embedded section are rejected");
    assert_mentions(&err.to_string(), &["extra", "line 4"]);
}

async fn round_trip(config: &StoreConfig) {
    let storage = config.build().await.unwrap();
    let stored = storage
        .put(store_core::Record::new("k", "v"))
        .await
        .unwrap();
    assert_eq!(storage.get("k").await.unwrap().version, stored.version);

    let store = config.build_store().await;
    // The file backend holds a lock: a second stack on the same directory must fail clearly.
    if config.backend == Backend::File {
        let message = store.err().expect("a second open should fail").to_string();
        assert!(
            message.contains("lock") || message.contains("in use"),
            "{message}"
        );
        storage.close().await.unwrap();
        let store = config.build_store().await.unwrap();
        let records = store.read("k", ReadOptions::default()).await;
        // The versioned key "k" is outside the facade's micro/micro scope.
        assert!(matches!(records, Err(store_core::Error::NotFound)));
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        assert_eq!(
            store.read("k", ReadOptions::default()).await.unwrap().len(),
            1
        );
        store.disconnect().await.unwrap();
    } else {
        let store = store.unwrap();
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        assert_eq!(
            store.read("k", ReadOptions::default()).await.unwrap().len(),
            1
        );
        store.disconnect().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stack_builds_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stacks = [
        "backend = \"memory\"".to_owned(),
        "backend = \"memory\"\nnamespace = \"orders\"\n[cache]\nttl = \"30s\"\n".to_owned(),
        format!("backend = \"file\"\n[file]\ndir = {:?}\nsync = \"5ms\"\n", data.join("a")),
        format!(
            "backend = \"file\"\nnamespace = \"orders\"\n[file]\ndir = {:?}\n[cache]\nmax_capacity = 100\nttl = \"1s\"\n",
            data.join("b")
        ),
        format!("backend = \"file\"\n[file]\ndir = {:?}\nsync = \"never\"\ncompact_garbage_ratio = 0.3\n", data.join("c")),
    ];
    for text in stacks {
        let config = StoreConfig::from_toml_str(&text).unwrap();
        round_trip(&config).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_stack_keeps_to_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "backend = \"file\"\nnamespace = \"orders\"\n[file]\ndir = {:?}\n",
        dir.path()
    );
    let storage = StoreConfig::from_toml_str(&text)
        .unwrap()
        .build()
        .await
        .unwrap();
    storage
        .put(store_core::Record::new("1", "x"))
        .await
        .unwrap();
    storage.close().await.unwrap();
    // Reopened without the namespace, the key shows its prefix.
    let text = format!("backend = \"file\"\n[file]\ndir = {:?}\n", dir.path());
    let raw = StoreConfig::from_toml_str(&text)
        .unwrap()
        .build()
        .await
        .unwrap();
    assert_eq!(&raw.get("orders/1").await.unwrap().value[..], b"x");
    raw.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_directory_is_a_build_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"in the way").unwrap();
    let text = format!(
        "backend = \"file\"\n[file]\ndir = {:?}\n",
        blocker.join("data")
    );
    let err = StoreConfig::from_toml_str(&text)
        .unwrap()
        .build()
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConfigError::Build(_)));
    assert_mentions(&err.to_string(), &["file"]);
}
