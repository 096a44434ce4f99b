//! Cases for keys: invalid keys are refused by every operation, long, unicode and unusual keys round-trip.

use super::support::*;
use super::PORTABLE_KEY_LEN;
use store_core::{Record, Storage, MAX_KEY_LEN};

async fn expect_key_rejected_everywhere<S: Storage + ?Sized>(store: &S, key: &str, name: &str) {
    expect_invalid_key(
        &format!("create with {name}"),
        store.create(Record::new(key, "v")).await,
    );
    expect_invalid_key(&format!("get of {name}"), store.get(key).await);
    expect_invalid_key(
        &format!("get_many with {name}"),
        store.get_many(&["fine", key]).await,
    );
    expect_invalid_key(
        &format!("put with {name}"),
        store.put(Record::new(key, "v")).await,
    );
    expect_invalid_key(
        &format!("put_many with {name}"),
        store.put_many(vec![Record::new(key, "v")]).await,
    );
    expect_invalid_key(
        &format!("cas with {name}"),
        store
            .cas_by_version(Record::new(key, "v").with_version("1"))
            .await,
    );
    expect_invalid_key(&format!("delete of {name}"), store.delete(key).await);
    expect_invalid_key(
        &format!("wait on {name}"),
        within(
            "wait on an invalid key",
            store.wait_for_version_change(key, "1"),
        )
        .await,
    );
}

/// The empty key is `InvalidKey` on every keyed operation, and the store keeps working.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::empty_key_is_invalid_on_every_operation(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn empty_key_is_invalid_on_every_operation<S: Storage>(store: S) {
    expect_key_rejected_everywhere(&store, "", "the empty key").await;
    ok(
        "put after invalid keys",
        store.put(Record::new("fine", "v")).await,
    );
    assert_eq!(
        list(&store, "*").await,
        ["fine"],
        "list_keys after invalid keys"
    );
}

/// A key longer than `MAX_KEY_LEN` bytes (ASCII or multi-byte) is `InvalidKey` on every keyed operation.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::too_long_key_is_invalid_on_every_operation(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn too_long_key_is_invalid_on_every_operation<S: Storage>(store: S) {
    let ascii = "k".repeat(MAX_KEY_LEN + 1);
    expect_key_rejected_everywhere(&store, &ascii, "a key of MAX_KEY_LEN + 1 bytes").await;
    // Fewer characters than MAX_KEY_LEN, more bytes: the limit is in bytes.
    let wide = "é".repeat(MAX_KEY_LEN / 2 + 1);
    expect_key_rejected_everywhere(
        &store,
        &wide,
        "a key of MAX_KEY_LEN + 2 bytes in 2-byte characters",
    )
    .await;
    assert!(
        list(&store, "*").await.is_empty(),
        "rejected keys were stored"
    );
}

/// Keys of 1,024 bytes (ASCII and multi-byte) work with every operation.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::key_of_1024_bytes_works_everywhere(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn key_of_1024_bytes_works_everywhere<S: Storage>(store: S) {
    let ascii = format!("k/{}", "x".repeat(PORTABLE_KEY_LEN - 2));
    let wide = "é".repeat(PORTABLE_KEY_LEN / 2);
    for key in [ascii.as_str(), wide.as_str()] {
        assert_eq!(key.len(), PORTABLE_KEY_LEN, "kit bug: key length");
        let what = |op: &str| format!("{op} of a {PORTABLE_KEY_LEN}-byte key");
        let version = ok(&what("create"), store.create(Record::new(key, "1")).await);
        let got = ok(&what("get"), store.get(key).await);
        assert_record(&what("get"), &got, key, b"1");
        assert_eq!(got.version, version);
        let stored = ok(&what("put"), store.put(Record::new(key, "2")).await);
        assert_eq!(stored.key, key, "{}", what("put"));
        ok(
            &what("put_many"),
            store.put_many(vec![Record::new(key, "3")]).await,
        );
        let got = ok(&what("get_many"), store.get_many(&[key]).await);
        let current = got[0]
            .clone()
            .unwrap_or_else(|| panic!("{}: None", what("get_many")));
        assert_record(&what("get_many"), &current, key, b"3");
        let wait = within(
            &what("wait"),
            store.wait_for_version_change(key, &stored.version),
        )
        .await;
        assert!(
            wait.is_ok(),
            "{}: expected Ok at once, got {wait:?}",
            what("wait")
        );
        ok(
            &what("cas"),
            store
                .cas_by_version(Record::new(key, "4").with_version(current.version))
                .await,
        );
        assert_eq!(list(&store, key).await, [key], "{}", what("list_keys"));
        ok(&what("delete"), store.delete(key).await);
        expect_not_found(&what("get after delete"), store.get(key).await);
    }
}

/// Unicode keys round-trip byte for byte: no normalisation, no case folding, listed as written.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::unicode_keys_round_trip(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn unicode_keys_round_trip<S: Storage>(store: S) {
    let keys = [
        "ключ",
        "日本語/キー",
        "emoji/😀🎉",
        "é",
        "e\u{301}",
        "ß",
        "SS",
        "ǅ",
        "\u{10ffff}",
    ];
    for key in keys {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(key, key.as_bytes().to_vec())).await,
        );
    }
    for key in keys {
        let got = ok(&format!("get({key:?})"), store.get(key).await);
        assert_record(&format!("get({key:?})"), &got, key, key.as_bytes());
    }
    let mut sorted = keys.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(
        list(&store, "*").await,
        sorted,
        "list_keys(\"*\") over unicode keys"
    );
    check_patterns(
        &store,
        &[
            ("emoji/??", &["emoji/😀🎉"]),
            ("emoji/?", &[]),
            ("e?", &["e\u{301}"]),
        ],
    )
    .await;
}

/// Keys with spaces, control characters, NUL, glob metacharacters, dots and odd slashes round-trip and list.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::unusual_keys_round_trip(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn unusual_keys_round_trip<S: Storage>(store: S) {
    let keys = [
        " ",
        "with space",
        "tab\there",
        "new\nline",
        "nul\0byte",
        "a*b",
        "a?b",
        "[x]",
        "{a,b}",
        "back\\slash",
        "/leading",
        "trailing/",
        "double//slash",
        "..",
        "../up",
        "%2F",
        "Key",
        "key",
        "\u{7f}",
        "\u{feff}bom",
    ];
    for (i, key) in keys.iter().enumerate() {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(*key, i.to_string())).await,
        );
    }
    for (i, key) in keys.iter().enumerate() {
        let got = ok(&format!("get({key:?})"), store.get(key).await);
        assert_record(
            &format!("get({key:?})"),
            &got,
            key,
            i.to_string().as_bytes(),
        );
    }
    let mut sorted = keys.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(
        list(&store, "*").await,
        sorted,
        "list_keys(\"*\") over unusual keys"
    );
    for key in keys {
        let mut escaped = String::new();
        for c in key.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | ',') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        assert_eq!(
            list(&store, &escaped).await,
            [key],
            "list_keys({escaped:?})"
        );
    }
}
