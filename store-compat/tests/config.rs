//! The TOML configuration: every stack it can build, and every error it can report.
//!
//! Tests that need the file backend or the cache layer are gated on those features of
//! store-compat; the tests of what a build *without* them says are gated the other way, so
//! `cargo test -p store-compat --no-default-features --features memory` runs them.

use serde::Deserialize;
use store_compat::config::{Backend, ConfigError, StoreConfig};
use store_compat::{ReadOptions, Record, Store, WriteOptions};
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

// --- the backend and the namespace ----------------------------------------------------------

#[test]
fn unknown_backend_lists_the_known_ones() {
    let message = error("backend = \"mongo\"");
    assert_mentions(
        &message,
        &[
            "field `backend` = \"mongo\"",
            "unknown backend",
            "memory, file, redis, postgres",
            "line 1",
        ],
    );
    let message = error("backend = 3");
    assert_mentions(&message, &["field `backend` = 3", "\"memory\", \"file\""]);
}

#[test]
fn network_backends_need_their_features() {
    let mut names: Vec<&str> = Vec::new();
    if !cfg!(feature = "redis") {
        names.push("redis");
    }
    if !cfg!(feature = "postgres") {
        names.push("postgres");
    }
    for &name in &names {
        let message = error(&format!("backend = \"{name}\""));
        assert_mentions(
            &message,
            &[
                "backend",
                &format!("\"{name}\""),
                &format!("backend `{name}` needs the `{name}` feature of store-compat"),
                "line 1",
            ],
        );
        #[cfg(all(feature = "memory", feature = "file"))]
        assert_mentions(&message, &["memory, file"]);
    }
}

#[test]
fn network_sections_need_their_features() {
    #[cfg(not(feature = "redis"))]
    {
        let message = error("backend = \"memory\"\n[redis]\nurl = \"x\"\n");
        assert_mentions(
            &message,
            &[
                "the [redis] section needs the `redis` feature of store-compat",
                "line 2",
            ],
        );
    }
    #[cfg(not(feature = "postgres"))]
    {
        let message = error("backend = \"memory\"\n[postgres]\nurl = \"x\"\ntable = \"t\"\n");
        assert_mentions(&message, &["[postgres]", "`postgres` feature"]);
    }
}

#[test]
fn missing_backend_is_named() {
    assert_mentions(&error("namespace = \"a\""), &["backend"]);
}

#[test]
fn bad_namespaces_are_rejected() {
    let message = error("backend = \"memory\"\nnamespace = \"a/b\"\n");
    assert_mentions(
        &message,
        &["field `namespace` = \"a/b\"", "A-Z a-z 0-9 . _ -", "line 2"],
    );
    assert_mentions(
        &error("backend = \"memory\"\nnamespace = \"\"\n"),
        &["namespace"],
    );
    assert_mentions(
        &error("backend = \"memory\"\nnamespace = 7\n"),
        &["field `namespace` = 7"],
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_line() {
    let message = error("backend = \"memory\"\nnamepsace = \"x\"\n");
    assert_mentions(&message, &["namepsace", "line 2"]);
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
fn parse_errors_from_a_file_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.toml");
    std::fs::write(&path, "backend = \"mongo\"\n").unwrap();
    let err = StoreConfig::from_path(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)));
    assert_mentions(&err.to_string(), &["store.toml", "\"mongo\""]);
}

#[test]
fn configurations_built_in_code_are_checked_too() {
    #[cfg(not(feature = "postgres"))]
    {
        let err = StoreConfig::new(Backend::Postgres).validate().unwrap_err();
        assert!(matches!(err, ConfigError::FeatureOff(_)), "{err}");
        assert_mentions(&err.to_string(), &["`postgres` feature of store-compat"]);
    }
    #[cfg(not(feature = "redis"))]
    {
        let err = StoreConfig::new(Backend::Redis).validate().unwrap_err();
        assert!(matches!(err, ConfigError::FeatureOff(_)), "{err}");
        assert_mentions(&err.to_string(), &["`redis` feature of store-compat"]);
    }

    let mut config = StoreConfig::new(Backend::Memory);
    config.namespace = Some("a b".into());
    let err = config.validate().unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            field: "namespace",
            ..
        }
    ));
    assert_mentions(&err.to_string(), &["field `namespace` = \"a b\""]);
}

#[tokio::test]
async fn code_built_configurations_fail_to_build_with_the_same_errors() {
    #[cfg(not(feature = "redis"))]
    {
        let err = StoreConfig::new(Backend::Redis)
            .build()
            .await
            .err()
            .unwrap();
        assert_mentions(&err.to_string(), &["`redis` feature"]);
    }
    #[cfg(feature = "redis")]
    {
        // With the feature, the same configuration lacks its section.
        let err = StoreConfig::new(Backend::Redis)
            .build()
            .await
            .err()
            .unwrap();
        assert_mentions(&err.to_string(), &["[redis]"]);
    }
    #[cfg(not(feature = "postgres"))]
    {
        let err = StoreConfig::new(Backend::Postgres)
            .build()
            .await
            .err()
            .unwrap();
        assert_mentions(&err.to_string(), &["`postgres` feature"]);
    }
}

#[test]
fn store_config_embeds_in_a_service_config() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceConfig {
        name: String,
        store: StoreConfig,
    }
    let service: ServiceConfig =
        toml::from_str("name = \"orders\"\n[store]\nbackend = \"memory\"\n").unwrap();
    assert_eq!(service.name, "orders");
    service.store.validate().unwrap();

    let err = toml::from_str::<ServiceConfig>(
        "name = \"orders\"\n[store]\nbackend = \"memory\"\nextra = 1\n",
    )
    .err()
    .expect("unknown fields inside the embedded section are rejected");
    assert_mentions(&err.to_string(), &["extra", "line 4"]);
}

// --- the memory backend ---------------------------------------------------------------------

#[cfg(feature = "memory")]
mod memory {
    use super::*;

    #[test]
    fn the_memory_section_reaches_every_runtime_option() {
        let config = StoreConfig::from_toml_str(
            "backend = \"memory\"\n[memory]\nmailbox = 8\nmax_batch = 4\npage_size = 2\n\
             scan_budget = 16\npage_bytes = 1024\n",
        )
        .unwrap();
        let options = config.memory.as_ref().unwrap().runtime.options();
        assert_eq!(
            (
                options.mailbox,
                options.max_batch,
                options.page_size,
                options.scan_budget,
                options.page_bytes
            ),
            (8, 4, 2, 16, 1024)
        );
        let text = toml::to_string(&config).unwrap();
        assert_eq!(StoreConfig::from_toml_str(&text).unwrap(), config);
    }

    #[test]
    fn bad_memory_fields_name_themselves() {
        let message = error("backend = \"memory\"\n[memory]\nmailbox = 0\n");
        assert_mentions(
            &message,
            &["field `mailbox` = 0", "positive whole number", "line 3"],
        );
        let message = error("backend = \"memory\"\n[memory]\nmailbox_size = 1\n");
        assert_mentions(&message, &["mailbox_size", "line 3"]);
    }

    #[cfg(feature = "file")]
    #[test]
    fn the_memory_section_under_another_backend_is_an_error() {
        let message = error("backend = \"file\"\n[file]\ndir = \"d\"\n[memory]\nmailbox = 8\n");
        assert_mentions(
            &message,
            &[
                "[memory] section",
                "backend = \"file\"",
                "remove the section or set backend = \"memory\"",
            ],
        );
    }

    #[tokio::test]
    async fn a_memory_stack_builds_with_its_section() {
        let config =
            StoreConfig::from_toml_str("backend = \"memory\"\n[memory]\npage_size = 1\n").unwrap();
        round_trip(&config).await;
    }
}

// --- the file backend -----------------------------------------------------------------------

#[cfg(feature = "file")]
mod file {
    use std::time::Duration;

    use store_compat::config::{SyncPolicy, SyncSetting};

    use super::*;

    #[test]
    fn file_backend_needs_its_section() {
        let err = StoreConfig::from_toml_str("backend = \"file\"").unwrap_err();
        assert!(matches!(err, ConfigError::MissingSection { .. }));
        assert_mentions(&err.to_string(), &["[file]", "dir"]);
        let message = error("backend = \"file\"\n[file]\nsync = \"always\"\n");
        assert_mentions(&message, &["dir"]);
    }

    #[test]
    fn a_file_section_under_another_backend_is_an_error() {
        let err =
            StoreConfig::from_toml_str("backend = \"memory\"\n[file]\ndir = \"d\"\n").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::UnusedSection {
                    section: "file",
                    backend: Backend::Memory
                }
            ),
            "{err}"
        );
        assert_mentions(
            &err.to_string(),
            &[
                "the [file] section",
                "backend = \"memory\"",
                "remove the section or set backend = \"file\"",
            ],
        );
    }

    #[test]
    fn bad_sync_policies_name_the_field_and_what_is_accepted() {
        for (bad, shown) in [
            ("\"sometimes\"", "\"sometimes\""),
            ("true", "true"),
            ("5", "5"),
        ] {
            let message = error(&format!(
                "backend = \"file\"\n[file]\ndir = \"d\"\nsync = {bad}\n"
            ));
            assert_mentions(
                &message,
                &[
                    &format!("field `file.sync` = {shown}"),
                    "\"always\"",
                    "\"never\"",
                    "\"5ms\"",
                    "line 4",
                ],
            );
        }
        let message = error("backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"0s\"\n");
        assert_mentions(&message, &["\"0s\"", "longer than zero"]);
    }

    #[test]
    fn out_of_range_file_values_are_rejected() {
        let message =
            error("backend = \"file\"\n[file]\ndir = \"d\"\ncompact_garbage_ratio = -1.0\n");
        assert_mentions(&message, &["file.compact_garbage_ratio", "-1"]);
        let message = error("backend = \"file\"\n[file]\ndir = \"\"\n");
        assert_mentions(&message, &["field `file.dir` = \"\""]);
        let message = error("backend = \"file\"\n[file]\ndir = \"d\"\nsegment_size = 0\n");
        assert_mentions(&message, &["field `file.segment_size` = 0"]);
        let message =
            error("backend = \"file\"\n[file]\ndir = \"d\"\nskip_corrupt_frames = \"yes\"\n");
        assert_mentions(&message, &["field `file.skip_corrupt_frames` = \"yes\""]);
    }

    #[test]
    fn every_file_option_is_reachable() {
        let config = StoreConfig::from_toml_str(
            "backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"never\"\nsegment_size = 4096\n\
             compact_garbage_ratio = 0.25\ncompact_min_bytes = 1\ncache_values_up_to = 0\n\
             skip_corrupt_frames = true\n[file.runtime]\nmax_batch = 7\n",
        )
        .unwrap();
        let options = config.file.as_ref().unwrap().options();
        assert_eq!(options.sync, SyncPolicy::Never);
        assert_eq!(options.segment_size, 4096);
        assert_eq!(options.compact_garbage_ratio, 0.25);
        assert_eq!(options.compact_min_bytes, 1);
        assert_eq!(options.cache_values_up_to, 0);
        assert!(options.skip_corrupt_frames);
        assert_eq!(options.runtime.max_batch, 7);
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
        );
        #[cfg(not(feature = "cache"))]
        {
            assert_mentions(
                &config.unwrap_err().to_string(),
                &["[cache] section needs the `cache` feature"],
            );
        }
        #[cfg(feature = "cache")]
        {
            let config = config.unwrap();
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
    }

    #[test]
    fn sync_intervals_parse() {
        let config =
            StoreConfig::from_toml_str("backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"5ms\"\n")
                .unwrap();
        assert_eq!(
            config.file.unwrap().sync,
            SyncPolicy::Interval(Duration::from_millis(5))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_stacks_build_and_work() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut stacks = vec![
            format!("backend = \"file\"\n[file]\ndir = {:?}\nsync = \"5ms\"\n", data.join("a")),
            format!("backend = \"file\"\n[file]\ndir = {:?}\nsync = \"never\"\ncompact_garbage_ratio = 0.3\n", data.join("c")),
        ];
        if cfg!(feature = "cache") {
            stacks.push(format!(
                "backend = \"file\"\nnamespace = \"orders\"\n[file]\ndir = {:?}\n[cache]\nmax_capacity = 100\nttl = \"1s\"\n",
                data.join("b")
            ));
        }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_stack_reports_its_stats_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("backend = \"file\"\n[file]\ndir = {:?}\n", dir.path());
        let stack = StoreConfig::from_toml_str(&text)
            .unwrap()
            .build_stack()
            .await
            .unwrap();
        let store = stack.store();
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        assert_eq!(store.name(), "file");
        assert!(
            stack.describe().starts_with("file "),
            "{}",
            stack.describe()
        );
        let stats = store.stats().await.unwrap();
        assert!(stats.components.iter().any(|c| c.name == "file"), "{stats}");
        stack.close().await.unwrap();
    }
}

// --- the PostgreSQL backend -----------------------------------------------------------------

#[cfg(feature = "postgres")]
mod postgres_backend {
    use super::*;

    #[test]
    fn the_postgres_backend_needs_its_section() {
        let message = error("backend = \"postgres\"\n");
        assert_mentions(&message, &["[postgres]", "url", "table"]);
    }

    #[test]
    fn a_postgres_section_under_another_backend_is_an_error() {
        let message =
            error("backend = \"memory\"\n[postgres]\nurl = \"postgres://db/app\"\ntable = \"t\"\n");
        assert_mentions(&message, &["[postgres] section", "backend = \"memory\""]);
    }

    #[test]
    fn bad_postgres_fields_name_themselves() {
        let base = "backend = \"postgres\"\n[postgres]\nurl = \"postgres://db/app\"\n";
        let message = error(&format!("{base}table = \"a b\"\n"));
        assert_mentions(&message, &["field `postgres.table` = \"a b\"", "line 4"]);
        let message = error(&format!("{base}table = \"t\"\npool_size = 0\n"));
        assert_mentions(&message, &["field `postgres.pool_size` = 0"]);
        let message = error(&format!(
            "{base}table = \"t\"\noperation_timeout = \"soon\"\n"
        ));
        assert_mentions(&message, &["field `postgres.operation_timeout` = \"soon\""]);
        let message = error(&format!("{base}table = \"t\"\ntabel = \"t\"\n"));
        assert_mentions(&message, &["unknown field `tabel`"]);
    }

    #[test]
    fn the_design_example_parses() {
        let config = StoreConfig::from_toml_str(
            "backend = \"postgres\"\n[postgres]\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\n\
             table = \"orders\"          # created if missing\n",
        )
        .unwrap();
        let postgres = config.postgres.unwrap();
        assert_eq!((postgres.table.as_str(), postgres.pool_size), ("orders", 8));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_stack_builds_from_toml_and_works() {
        let options = store_postgres::testing::fresh_options();
        // Dropped at the end of the test, after the stack is closed.
        let _table = store_postgres::testing::TableGuard::new(options.clone());
        let text = format!(
            "backend = \"postgres\"\nnamespace = \"orders\"\n[postgres]\nurl = {:?}\ntable = {:?}\n\
             operation_timeout = \"2s\"\n",
            options.url, options.table
        );
        let stack = StoreConfig::from_toml_str(&text)
            .unwrap()
            .build_stack()
            .await
            .unwrap_or_else(|e| panic!("{e}. {}", store_postgres::testing::HOW_TO_START));
        let store = stack.store();
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        let read = store.read("k", ReadOptions::default()).await.unwrap();
        assert_eq!(&read[0].value[..], b"v");
        assert_eq!(store.name(), "postgres");
        assert!(
            stack.describe().contains("postgres "),
            "{}",
            stack.describe()
        );
        assert!(
            stack.describe().contains(&options.table),
            "{}",
            stack.describe()
        );
        stack.close().await.unwrap();
    }
}

// --- the cache layer ------------------------------------------------------------------------

#[cfg(feature = "cache")]
mod cache {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bad_durations_name_the_value_and_what_is_accepted() {
        let message = error("backend = \"memory\"\n[cache]\nttl = \"soon\"\n");
        assert_mentions(&message, &["\"soon\"", "ttl", "line 3", "30s"]);
        let message = error("backend = \"memory\"\n[cache]\nnegative_ttl = \"5 parsecs\"\n");
        assert_mentions(&message, &["\"5 parsecs\"", "negative_ttl"]);
    }

    #[test]
    fn a_zero_ttl_is_refused_with_the_reason() {
        let message = error("backend = \"memory\"\n[cache]\nttl = \"0s\"\n");
        assert_mentions(
            &message,
            &[
                "field `cache.ttl` = \"0s\"",
                "every read would miss",
                "leave `ttl` out",
                "remove the [cache] section",
                "line 3",
            ],
        );
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let message = error("backend = \"memory\"\n[cache]\nmax_capacity = 0\n");
        assert_mentions(&message, &["cache.max_capacity", "positive"]);
        let message = error("backend = \"memory\"\n[cache]\nmax_capacity = -5\n");
        assert_mentions(
            &message,
            &[
                "field `cache.max_capacity` = -5",
                "positive whole number of entries",
                "line 3",
            ],
        );
        let message = error("backend = \"memory\"\n[cache]\nstripes = 0\n");
        assert_mentions(&message, &["field `cache.stripes` = 0"]);
    }

    #[test]
    fn unknown_cache_fields_are_rejected_with_their_line() {
        let message =
            error("backend = \"memory\"\n\n[cache]\nmax_capacity = 10\nttl_seconds = 5\n");
        assert_mentions(&message, &["ttl_seconds", "line 5", "max_capacity"]);
    }

    #[test]
    fn every_cache_option_is_reachable() {
        let config = StoreConfig::from_toml_str(
            "backend = \"memory\"\n[cache]\nmax_capacity = 5\nttl = \"1m\"\nnegative_ttl = \"1s\"\nstripes = 8\n",
        )
        .unwrap();
        let options = config.cache.as_ref().unwrap().options();
        assert_eq!(options.max_capacity, 5);
        assert_eq!(options.ttl, Some(Duration::from_secs(60)));
        assert_eq!(options.negative_ttl, Some(Duration::from_secs(1)));
        assert_eq!(options.stripes, 8);
    }

    #[test]
    fn the_cache_section_embeds_too() {
        #[derive(Deserialize)]
        struct ServiceConfig {
            store: StoreConfig,
        }
        let service: ServiceConfig =
            toml::from_str("[store]\nbackend = \"memory\"\n[store.cache]\nttl = \"1m\"\n").unwrap();
        assert_eq!(
            service.store.cache.unwrap().ttl,
            Some(Duration::from_secs(60))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cached_stack_builds_and_reports_every_layer() {
        let config = StoreConfig::from_toml_str(
            "backend = \"memory\"\nnamespace = \"orders\"\n[cache]\nttl = \"30s\"\n",
        )
        .unwrap();
        round_trip(&config).await;

        let stack = config.build_stack().await.unwrap();
        let store = stack.store();
        store
            .write(Record::new("k", "v"), WriteOptions::default())
            .await
            .unwrap();
        for _ in 0..2 {
            store.read("k", ReadOptions::default()).await.unwrap();
        }
        let stats = stack.stats().await.unwrap();
        assert!(stats.get("cache", "hits").is_some(), "{stats}");
        assert_eq!(store.stats().await.unwrap(), stats);
        assert_eq!(store.name(), "memory");
        assert!(
            stack
                .describe()
                .starts_with("namespace \"orders\" > cache ("),
            "{}",
            stack.describe()
        );
        // The facade's keys sit under the namespace, then database/table.
        assert!(stack.storage().get("micro/micro/k").await.is_ok());
        stack.close().await.unwrap();
    }
}

// --- builds without some features -----------------------------------------------------------

#[cfg(not(feature = "file"))]
#[test]
fn without_the_file_feature_the_file_backend_and_section_are_refused() {
    let message = error("backend = \"file\"\n[file]\ndir = \"d\"\n");
    assert_mentions(
        &message,
        &[
            "backend `file` needs the `file` feature of store-compat",
            "line 1",
        ],
    );
    let message = error("backend = \"memory\"\n[file]\ndir = \"d\"\n");
    assert_mentions(
        &message,
        &[
            "the [file] section needs the `file` feature of store-compat",
            "line 2",
        ],
    );
    let err = StoreConfig::new(Backend::File).validate().unwrap_err();
    assert_mentions(&err.to_string(), &["`file` feature"]);
}

#[cfg(not(feature = "cache"))]
#[test]
fn without_the_cache_feature_the_cache_section_is_refused() {
    let message = error("backend = \"memory\"\n[cache]\nttl = \"30s\"\n");
    assert_mentions(
        &message,
        &[
            "the [cache] section needs the `cache` feature of store-compat",
            "line 2",
        ],
    );
}

#[cfg(not(feature = "memory"))]
#[test]
fn without_the_memory_feature_the_memory_backend_is_refused() {
    let message = error("backend = \"memory\"");
    assert_mentions(&message, &["backend `memory` needs the `memory` feature"]);
    let message = error("backend = \"file\"\n[memory]\nmailbox = 1\n");
    assert_mentions(&message, &["[memory] section needs the `memory` feature"]);
}

// --- building -------------------------------------------------------------------------------

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

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_memory_stack_builds_and_works() {
    round_trip(&StoreConfig::from_toml_str("backend = \"memory\"").unwrap()).await;
}

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_stack_gives_the_versioned_api_of_the_facades_keys() {
    let stack = StoreConfig::from_toml_str("backend = \"memory\"\nnamespace = \"svc\"\n")
        .unwrap()
        .build_stack()
        .await
        .unwrap();
    let store = stack.store();
    store
        .write(
            Record::new("job-1", "a").with_metadata("n", 1),
            WriteOptions::default().table("jobs"),
        )
        .await
        .unwrap();
    let jobs = stack.versioned("", "jobs").unwrap();
    // create instead of Go's racy read-then-write: the facade's record is there already.
    assert!(matches!(
        jobs.create(store_core::Record::new("job-1", "b")).await,
        Err(store_core::Error::AlreadyExists(live)) if live.key == "job-1"
    ));
    jobs.create(store_core::Record::new("job-2", "b"))
        .await
        .unwrap();
    let read = store
        .read("job-2", ReadOptions::default().table("jobs"))
        .await
        .unwrap();
    assert_eq!(&read[0].value[..], b"b");
    assert!(read[0].metadata.is_empty());
    // Under the namespace: svc/micro/jobs/job-2, the layout the facade has always used.
    assert!(stack.storage().get("micro/jobs/job-2").await.is_ok());
    // The same handle from the facade itself, and bad names are refused.
    let again = store.versioned("micro", "jobs").unwrap();
    assert_eq!(&again.get("job-2").await.unwrap().value[..], b"b");
    assert!(matches!(
        store.versioned("", "a/b"),
        Err(store_core::Error::InvalidName(_))
    ));
    assert_eq!(store.name(), "memory");
    stack.close().await.unwrap();
    assert!(matches!(
        jobs.get("job-2").await,
        Err(store_core::Error::Closed)
    ));
}

// --- the redis backend (feature `redis`) -------------------------------------------------------

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    #[test]
    fn the_redis_section_is_read_with_its_defaults() {
        let config = StoreConfig::from_toml_str(
            "backend = \"redis\"\n[redis]\nurl = \"redis://127.0.0.1:6379/2\"\nprefix = \"orders\"\nrequest_timeout = \"2s\"\n",
        )
        .unwrap();
        let redis = config.redis.as_ref().unwrap();
        assert_eq!(redis.prefix, "orders");
        assert_eq!(redis.request_timeout, std::time::Duration::from_secs(2));
        assert_eq!(
            redis.page_size,
            store_redis::RedisOptions::default().page_size
        );
    }

    #[test]
    fn backend_redis_needs_its_section() {
        let err = StoreConfig::from_toml_str("backend = \"redis\"").unwrap_err();
        assert!(matches!(err, ConfigError::MissingSection { .. }), "{err}");
        assert_mentions(&err.to_string(), &["[redis]", "prefix"]);
        let err = StoreConfig::new(Backend::Redis).validate().unwrap_err();
        assert!(matches!(err, ConfigError::MissingSection { .. }), "{err}");
    }

    #[test]
    fn bad_redis_fields_are_named() {
        let message = error("backend = \"redis\"\n[redis]\nprefix = \"a/b\"\n");
        assert_mentions(&message, &["field `redis.prefix` = \"a/b\"", "line 3"]);
        let message = error("backend = \"redis\"\n[redis]\nprefix = \"p\"\nreaper = \"1s\"\n");
        assert_mentions(&message, &["reaper", "line 4"]);
        let message = error("backend = \"redis\"\n[redis]\n");
        assert_mentions(&message, &["prefix"]);
    }

    #[test]
    fn a_redis_section_under_another_backend_is_refused() {
        let message = error("backend = \"memory\"\n[redis]\nprefix = \"p\"\n");
        assert_mentions(&message, &["[redis]"]);
    }
}
