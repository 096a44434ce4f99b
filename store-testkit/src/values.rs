//! Cases for values: binary, empty and large values round-trip.

use bytes::Bytes;

use super::support::*;
use store_core::{Record, Storage};

/// Values holding every byte value (and invalid UTF-8) round-trip through create, get, get_many, put and cas.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::binary_values_round_trip(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn binary_values_round_trip<S: Storage>(store: S) {
    let all: Vec<u8> = (0..=255u8).collect();
    let reversed: Vec<u8> = all.iter().rev().copied().collect();
    let version = ok(
        "create",
        store.create(Record::new("bin", all.clone())).await,
    );
    let got = ok("get", store.get("bin").await);
    assert_record("get of all 256 byte values", &got, "bin", &all);
    assert_eq!(got.version, version);
    let many = ok("get_many", store.get_many(&["bin"]).await);
    let first = many[0]
        .as_ref()
        .expect("get_many: the binary record is missing");
    assert_record("get_many of all 256 byte values", first, "bin", &all);
    let stored = ok("put", store.put(Record::new("bin", reversed.clone())).await);
    assert_record("the record put returned", &stored, "bin", &reversed);
    let zeros = vec![0u8; 64];
    let cas = ok(
        "cas",
        store
            .cas_by_version(Record::new("bin", zeros.clone()).with_version(stored.version))
            .await,
    );
    assert_record("the record cas returned", &cas, "bin", &zeros);
    let got = ok("get after cas", store.get("bin").await);
    assert_record("get of 64 zero bytes", &got, "bin", &zeros);
    let invalid_utf8 = vec![0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x82];
    ok(
        "put_many",
        store
            .put_many(vec![Record::new("bad-utf8", invalid_utf8.clone())])
            .await,
    );
    let got = ok("get", store.get("bad-utf8").await);
    assert_record("get of invalid UTF-8", &got, "bad-utf8", &invalid_utf8);
}

/// An empty value is stored and read back as empty (not as a missing key) by every operation.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::empty_value_round_trips(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn empty_value_round_trips<S: Storage>(store: S) {
    ok(
        "create with an empty value",
        store.create(Record::new("e1", "")).await,
    );
    let got = ok("get of an empty value", store.get("e1").await);
    assert_record("get of an empty value", &got, "e1", b"");
    let stored = ok("put with a value", store.put(Record::new("e2", "x")).await);
    let cas = ok(
        "cas to an empty value",
        store
            .cas_by_version(Record::new("e2", Bytes::new()).with_version(stored.version))
            .await,
    );
    assert_record("cas to an empty value", &cas, "e2", b"");
    ok(
        "put_many with an empty value",
        store.put_many(vec![Record::new("e3", "")]).await,
    );
    let got = ok("get_many", store.get_many(&["e1", "e2", "e3"]).await);
    for (i, record) in got.iter().enumerate() {
        let record = record
            .as_ref()
            .unwrap_or_else(|| panic!("get_many: empty value {i} is None"));
        assert!(record.value.is_empty(), "get_many: value {i} is not empty");
    }
    assert_eq!(
        list(&store, "e*").await,
        ["e1", "e2", "e3"],
        "list_keys of empty values"
    );
}

/// A 4 MiB value round-trips through put, get, get_many and cas.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::large_value_round_trips(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn large_value_round_trips<S: Storage>(store: S) {
    const SIZE: usize = 4 << 20;
    let big = noise(SIZE, 7);
    let stored = ok(
        "put of 4 MiB",
        store.put(Record::new("big", big.clone())).await,
    );
    assert_record("the record put returned", &stored, "big", &big);
    let got = ok("get of 4 MiB", store.get("big").await);
    assert_record("get of 4 MiB", &got, "big", &big);
    let other = noise(SIZE, 11);
    ok(
        "cas of 4 MiB",
        store
            .cas_by_version(Record::new("big", other.clone()).with_version(stored.version))
            .await,
    );
    let many = ok("get_many", store.get_many(&["big"]).await);
    let first = many[0]
        .as_ref()
        .expect("get_many: the large record is missing");
    assert_record("get_many of 4 MiB after cas", first, "big", &other);
}
