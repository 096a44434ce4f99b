//! Cases for `list_keys`: glob semantics, ascending byte order, streaming, bad patterns.

use futures::StreamExt;

use super::support::*;
use store_core::{Error, Record, Storage};

/// The keys every glob case lists from, in ascending byte order.
const GLOB_KEYS: &[&str] = &[
    "a", "a/b", "a/b/c", "ab", "abc", "abd", "ac", "b", "b1", "b2", "bx", "c", "d", "x*y", "x?y",
    "x[y", "x\\y", "xzy", "{a,b}", "é", "日",
];

async fn write_glob_keys<S: Storage + ?Sized>(store: &S) {
    debug_assert!(
        GLOB_KEYS.windows(2).all(|w| w[0] < w[1]),
        "kit bug: unsorted"
    );
    // Written in reverse, so that the order listed cannot come from insertion order.
    let records = GLOB_KEYS
        .iter()
        .rev()
        .map(|k| Record::new(*k, "v"))
        .collect();
    ok(
        "put_many of the glob fixture",
        store.put_many(records).await,
    );
}

/// Glob `*` matches any run of characters, empty and `/` included.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_star_matches_any_run_including_slashes(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_star_matches_any_run_including_slashes<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("*", GLOB_KEYS),
            ("**", GLOB_KEYS),
            ("a*", &["a", "a/b", "a/b/c", "ab", "abc", "abd", "ac"]),
            ("a*c", &["a/b/c", "abc", "ac"]),
            ("*c", &["a/b/c", "abc", "ac", "c"]),
            ("*/*", &["a/b", "a/b/c"]),
            ("x*", &["x*y", "x?y", "x[y", "x\\y", "xzy"]),
            (
                "*b*",
                &[
                    "a/b", "a/b/c", "ab", "abc", "abd", "b", "b1", "b2", "bx", "{a,b}",
                ],
            ),
        ],
    )
    .await;
}

/// Glob `?` matches exactly one character (`/` and multi-byte characters included).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_question_mark_matches_one_character(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_question_mark_matches_one_character<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("?", &["a", "b", "c", "d", "é", "日"]),
            ("a?", &["ab", "ac"]),
            ("??", &["ab", "ac", "b1", "b2", "bx"]),
            ("a?b", &["a/b"]),
            ("x?y", &["x*y", "x?y", "x[y", "x\\y", "xzy"]),
            (
                "???",
                &["a/b", "abc", "abd", "x*y", "x?y", "x[y", "x\\y", "xzy"],
            ),
        ],
    )
    .await;
}

/// Glob `[abc]` matches one of the listed characters (multi-byte ones included).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_class_matches_listed_characters(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_class_matches_listed_characters<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("ab[cd]", &["abc", "abd"]),
            ("[abc]", &["a", "b", "c"]),
            ("[cd]*", &["c", "d"]),
            ("[é日]", &["é", "日"]),
            ("[q]", &[]),
        ],
    )
    .await;
}

/// Glob `[a-z]` matches one character in the inclusive range.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_range_matches_inclusive_ranges(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_range_matches_inclusive_ranges<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("b[0-9]", &["b1", "b2"]),
            ("b[1-1]", &["b1"]),
            ("[a-c]", &["a", "b", "c"]),
            ("[a-c]?", &["ab", "ac", "b1", "b2", "bx"]),
            ("[0-9]*", &[]),
        ],
    )
    .await;
}

/// Glob `[!abc]` matches one character that is not listed (ranges included).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_negated_class_excludes_characters(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_negated_class_excludes_characters<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("[!abx]", &["c", "d", "é", "日"]),
            ("b[!0-9]", &["bx"]),
            ("a[!b]*", &["a/b", "a/b/c", "ac"]),
            (
                "[!a-c]*",
                &["d", "x*y", "x?y", "x[y", "x\\y", "xzy", "{a,b}", "é", "日"],
            ),
        ],
    )
    .await;
}

/// Glob `{a,b}` matches any of its branches, which may hold globs and nested groups.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_alternatives_match_any_branch(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_alternatives_match_any_branch<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("{a,b}", &["a", "b"]),
            ("{ab,b1}", &["ab", "b1"]),
            ("{a,b}?", &["ab", "ac", "b1", "b2", "bx"]),
            ("{a*c,d}", &["a/b/c", "abc", "ac", "d"]),
            ("{a{b,c},d}", &["ab", "ac", "d"]),
            ("{q,r}", &[]),
        ],
    )
    .await;
}

/// Glob `\` makes the next character literal (`\*`, `\?`, `\[`, `\\`, `\{`, inside groups too).
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_glob_escapes_match_literally(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_glob_escapes_match_literally<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("x\\*y", &["x*y"]),
            ("x\\?y", &["x?y"]),
            ("x\\[y", &["x[y"]),
            ("x\\\\y", &["x\\y"]),
            ("\\{a,b\\}", &["{a,b}"]),
            ("\\a", &["a"]),
            ("x{z,\\*}y", &["x*y", "xzy"]),
        ],
    )
    .await;
}

/// A pattern without special characters lists exactly that key when it is live, else nothing.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_exact_pattern_matches_one_key(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_exact_pattern_matches_one_key<S: Storage>(store: S) {
    write_glob_keys(&store).await;
    check_patterns(
        &store,
        &[
            ("abc", &["abc"]),
            ("ab", &["ab"]),
            ("a/b", &["a/b"]),
            ("é", &["é"]),
            ("abz", &[]),
            ("a/", &[]),
        ],
    )
    .await;
}

/// `list_keys` returns keys in ascending byte (not UTF-16, not locale) order, non-ASCII keys included.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_keys_in_ascending_byte_order(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_keys_in_ascending_byte_order<S: Storage>(store: S) {
    const SORTED: &[&str] = &[
        " ", "0", "B", "Z", "a", "a/z", "a0", "a\u{7f}", "z", "~", "é", "ā", "日本", "\u{ff61}",
        "😀",
    ];
    debug_assert!(SORTED.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
    for key in [
        "😀", "a", "~", "Z", "日本", " ", "a0", "é", "\u{ff61}", "B", "a/z", "ā", "z", "0",
        "a\u{7f}",
    ] {
        ok(
            &format!("put({key:?})"),
            store.put(Record::new(key, "v")).await,
        );
    }
    check_patterns(
        &store,
        &[
            ("*", SORTED),
            ("a*", &["a", "a/z", "a0", "a\u{7f}"]),
            ("?*", SORTED),
        ],
    )
    .await;
}

/// 5,000 keys come back complete, sorted and paged, while other calls (and a second stream) interleave with the stream.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_keys_streams_thousands_of_keys_in_order(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_keys_streams_thousands_of_keys_in_order<S: Storage>(store: S) {
    const COUNT: usize = 5000;
    let keys: Vec<String> = (0..COUNT).map(|i| format!("many/{i:05}")).collect();
    // Written in reverse chunks, so that the order listed cannot come from insertion order.
    for chunk in keys.chunks(500).rev() {
        let records = chunk.iter().map(|k| Record::new(k.clone(), "v")).collect();
        ok("put_many of 500 keys", store.put_many(records).await);
    }
    let neighbours = ["man", "many", "many0", "manz", "other/1"];
    for key in neighbours {
        ok("put of a neighbour", store.put(Record::new(key, "v")).await);
    }

    let listed = list(&store, "many/*").await;
    assert_same_keys("list_keys(\"many/*\")", &listed, &keys);

    let mut all: Vec<String> = keys
        .iter()
        .cloned()
        .chain(neighbours.map(String::from))
        .collect();
    all.sort();
    assert_same_keys("list_keys(\"*\")", &list(&store, "*").await, &all);

    let ending_in_7: Vec<&String> = keys.iter().filter(|k| k.ends_with('7')).collect();
    assert_same_keys(
        "list_keys(\"many/*7\")",
        &list(&store, "many/*7").await,
        &ending_in_7,
    );
    assert_same_keys(
        "list_keys(\"many/00*\")",
        &list(&store, "many/00*").await,
        &keys[..1000],
    );
    assert_same_keys(
        "list_keys(\"many/0499?\")",
        &list(&store, "many/0499?").await,
        &keys[4990..],
    );

    // Consume two streams in turns, with reads and writes to other keys in between.
    let mut first = ok("list_keys", store.list_keys("many/*").await);
    let mut second = ok("list_keys", store.list_keys("many/*").await);
    let mut got_first = Vec::new();
    let mut got_second = Vec::new();
    loop {
        let a = within("the first stream", first.next()).await;
        let b = within("the second stream", second.next()).await;
        if got_first.len() == 300 {
            ok(
                "put during listing",
                store.put(Record::new("other/2", "v")).await,
            );
            ok("get during listing", store.get("many/00000").await);
        }
        match (a, b) {
            (None, None) => break,
            (a, b) => {
                got_first.extend(a.map(|k| ok("first stream item", k)));
                got_second.extend(b.map(|k| ok("second stream item", k)));
            }
        }
    }
    assert!(
        got_first == keys,
        "the first interleaved stream is incomplete or unsorted"
    );
    assert!(
        got_second == keys,
        "the second interleaved stream is incomplete or unsorted"
    );
}

/// A pattern that does not compile is `InvalidPattern` whose message contains the pattern.
///
/// ```
/// # let new_store = store_core::__private::doc_store;
/// // What `conformance_tests!` generates for this case, given a factory of fresh stores:
/// store_testkit::run(|| async {
///     store_testkit::list_keys_with_bad_pattern_is_invalid_pattern(store_testkit::Watched::new(new_store())).await;
/// });
/// ```
pub async fn list_keys_with_bad_pattern_is_invalid_pattern<S: Storage>(store: S) {
    ok("put", store.put(Record::new("a", "v")).await);
    // gobwas rejects `a[bc`, `[]` and `[z-a]` too; it accepts an unclosed `{` and a trailing
    // `\` (reading `{a,b` as `{a,b}`), which the contract rejects on purpose: see the
    // deliberate differences in `store_core::Pattern`'s docs.
    for pattern in ["a[bc", "{a,b", "x{y", "[]", "[z-a]", "abc\\"] {
        match store.list_keys(pattern).await {
            Err(error @ Error::InvalidPattern(_)) => {
                let message = error.to_string();
                assert!(
                    message.contains(pattern),
                    "the InvalidPattern message {message:?} does not contain the pattern {pattern:?}"
                );
            }
            other => panic!(
                "list_keys({pattern:?}): expected Err(InvalidPattern(..)), got {:?}",
                stream_outcome(other)
            ),
        }
    }
    assert_eq!(
        list(&store, "*").await,
        ["a"],
        "list_keys after bad patterns"
    );
}
