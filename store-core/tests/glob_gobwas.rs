//! `Pattern` against gobwas/glob (v0.2.3, commit e7a84e9), compiled without separators.
//!
//! Every row names where its expectation comes from: a test in gobwas's repository
//! (`glob_test.go`, `syntax/lexer/lexer_test.go`), gobwas's lexer traced by hand
//! (`lexer.go fetchRange`/`fetchText`, each such row also checked against gobwas v0.2.3 run
//! locally), or one of the deliberate differences documented in `store_core::Pattern`'s
//! module docs. Then a differential property test against the reference in
//! `support/glob_reference.rs`, hostile patterns, and the cost of an expensive pattern.

#[path = "support/glob_reference.rs"]
mod reference;

use proptest::prelude::*;
use store_core::{Error, Pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING};

struct Row {
    pattern: &'static str,
    matching: &'static [&'static str],
    not_matching: &'static [&'static str],
    source: &'static str,
}

const fn row(
    pattern: &'static str,
    matching: &'static [&'static str],
    not_matching: &'static [&'static str],
    source: &'static str,
) -> Row {
    Row {
        pattern,
        matching,
        not_matching,
        source,
    }
}

const GLOB_TEST: &str = "gobwas glob_test.go TestGlob";
const LEXER_TEST: &str = "gobwas syntax/lexer/lexer_test.go TestLexGood";
const FETCH_RANGE: &str = "gobwas lexer.go fetchRange, checked against gobwas v0.2.3";
const FETCH_TEXT: &str = "gobwas lexer.go fetchItem/fetchText, checked against gobwas v0.2.3";
const GRAMMAR: &str = "gobwas grammar (glob.go Compile docs); gobwas v0.2.3's matcher \
                       answers differently here (a bug, see Pattern's module docs)";

const ROWS: &[Row] = &[
    // --- gobwas's own tests (the rows without separators) ---
    row(
        "* ?at * eyes",
        &["my cat has very bright eyes"],
        &[],
        GLOB_TEST,
    ),
    row("", &[""], &["b"], GLOB_TEST),
    row("*ä", &["åä"], &[], GLOB_TEST),
    row("abc", &["abc"], &[], GLOB_TEST),
    row("a*c", &["abc", "a12345c"], &[], GLOB_TEST),
    row("a?c", &["a1c"], &[], GLOB_TEST),
    row("?at", &["cat", "fat"], &["at"], GLOB_TEST),
    row("*", &["abc"], &[], GLOB_TEST),
    row("\\*", &["*"], &[], GLOB_TEST),
    row("*test", &["this is a test"], &[], GLOB_TEST),
    row("this*", &["this is a test"], &[], GLOB_TEST),
    row("*is *", &["this is a test"], &[], GLOB_TEST),
    row("*is*a*", &["this is a test"], &[], GLOB_TEST),
    row("**test**", &["this is a test"], &[], GLOB_TEST),
    row("**is**a***test*", &["this is a test"], &[], GLOB_TEST),
    row("*is", &[], &["this is a test"], GLOB_TEST),
    row("*no*", &[], &["this is a test"], GLOB_TEST),
    row("[!a]*", &["this is a test3"], &[], GLOB_TEST),
    row("*abc", &["abcabc"], &[], GLOB_TEST),
    row("**abc", &["abcabc"], &[], GLOB_TEST),
    row("???", &["abc"], &[], GLOB_TEST),
    row("?*?", &["abc", "ac"], &[], GLOB_TEST),
    row("sta", &[], &["stagnation"], GLOB_TEST),
    row("sta*", &["stagnation"], &[], GLOB_TEST),
    row("sta?", &[], &["stagnation"], GLOB_TEST),
    row("sta?n", &[], &["stagnation"], GLOB_TEST),
    row("{abc,def}ghi", &["defghi"], &[], GLOB_TEST),
    row("{abc,abcd}a", &["abcda"], &[], GLOB_TEST),
    row("{a,ab}{bc,f}", &["abc"], &[], GLOB_TEST),
    row("{*,**}{a,b}", &["ab"], &["ac"], GLOB_TEST),
    row(
        "/{rate,[a-z][a-z][a-z]}*",
        &["/rate", "/usd"],
        &[],
        GLOB_TEST,
    ),
    row("/{rate,[0-9][0-9][0-9]}*", &["/rate"], &[], GLOB_TEST),
    row(
        "*//{,*.}example.com",
        &["https://www.example.com", "http://example.com"],
        &["http://example.com.net"],
        GLOB_TEST,
    ),
    row(
        "[a-z][!a-x]*cat*[h][!b]*eyes*",
        &["my cat has very bright eyes"],
        &["my dog has very bright eyes"],
        GLOB_TEST,
    ),
    row("google.com", &["google.com"], &["gobwas.com"], GLOB_TEST),
    row(
        "https://*.google.*",
        &["https://account.google.com"],
        &["https://google.com"],
        GLOB_TEST,
    ),
    row(
        "{https://*.google.*,*yandex.*,*yahoo.*,*mail.ru}",
        &["http://yahoo.com"],
        &["http://google.com"],
        GLOB_TEST,
    ),
    row(
        "{https://*gobwas.com,http://exclude.gobwas.com}",
        &["https://safe.gobwas.com", "http://exclude.gobwas.com"],
        &["http://safe.gobwas.com"],
        GLOB_TEST,
    ),
    row(
        "{abc*def,abc?def,abc[zte]def}",
        &["abczdef"],
        &[],
        GLOB_TEST,
    ),
    row(
        "{abc*[a-c]def,abc?[d-g]def,abc[zte]?def}",
        &["abczqdef"],
        &[],
        GLOB_TEST,
    ),
    row("abc*", &["abcdef"], &["af"], GLOB_TEST),
    row("*def", &["abcdef"], &["af"], GLOB_TEST),
    row("ab*ef", &["abcdef"], &["af"], GLOB_TEST),
    // --- gobwas's lexer tests, read as matches ---
    // `{rate,[0-9]]}`: the class is `[0-9]`; the `]` after it is literal text.
    row(
        "/{rate,[0-9]]}*",
        &["/rate", "/5]", "/5]x"],
        &["/5", "/]"],
        LEXER_TEST,
    ),
    row("hello,world", &["hello,world"], &[], LEXER_TEST),
    row("hello\\,world", &["hello,world"], &[], LEXER_TEST),
    row("hello\\{world", &["hello{world"], &[], LEXER_TEST),
    row("hello**", &["hello", "hello/a/b"], &["hell"], LEXER_TEST),
    row("[日-語]", &["日", "語", "本"], &["a"], LEXER_TEST),
    row("[!日-語]", &["a"], &["日", "本"], LEXER_TEST),
    row("[日本語]", &["日", "本"], &["a", "-"], LEXER_TEST),
    row("[!日本語]", &["a"], &["本"], LEXER_TEST),
    row(
        "{[!日-語],*,?,{a,b,\\c}}",
        &["", "x", "xyz", "c"],
        &[],
        LEXER_TEST,
    ),
    // --- range position: a range only when the first raw character is followed by `-` ---
    row("[a-z]", &["a", "m", "z"], &["A", "-"], FETCH_RANGE),
    row("[!a-z]", &["A", "-", "é"], &["m"], FETCH_RANGE),
    row("[ab-c]", &["a", "b", "-", "c"], &["d"], FETCH_RANGE),
    row("[abc-z]", &["a", "-", "z"], &["d", "y"], FETCH_RANGE),
    row("[-a]", &["-", "a"], &["b"], FETCH_RANGE),
    row("[-]", &["-"], &["a"], FETCH_RANGE),
    row("[---]", &["-"], &[",", "."], FETCH_RANGE),
    row("[--0]", &["-", ".", "0"], &["1"], FETCH_RANGE),
    // The first item is read raw: `]`, `\` and `!` (after the negating one) start ranges.
    row("[]-a]", &["]", "^", "a"], &["b", "["], FETCH_RANGE),
    row("[\\-a]", &["\\", "]", "a"], &["-", "b"], FETCH_RANGE),
    row("[!!-a]", &["b", " "], &["!", "a"], FETCH_RANGE),
    // ... and so is the upper end: `[A-\]` is the range `A`..`\`.
    row("[A-\\]", &["A", "Z", "\\"], &["]"], FETCH_RANGE),
    // --- escapes in classes: an escaped first item is a list item, never a range start ---
    row("[\\a-c]", &["a", "-", "c"], &["b"], FETCH_RANGE),
    row("[a\\-c]", &["a", "-", "c"], &["b"], FETCH_RANGE),
    row("[\\]]", &["]"], &["\\"], FETCH_RANGE),
    row("[a\\]b]", &["a", "]", "b"], &["\\"], FETCH_RANGE),
    row("[\\\\]", &["\\"], &["]"], FETCH_RANGE),
    row(
        "[*?{},[]",
        &["*", "?", "{", "}", ",", "["],
        &["a"],
        FETCH_RANGE,
    ),
    // --- negation: `!` only as the very first character ---
    row("[!abc]", &["d", "é"], &["a", "c"], FETCH_RANGE),
    row("[!!]", &["a"], &["!"], FETCH_RANGE),
    row("[a!]", &["a", "!"], &["b"], FETCH_RANGE),
    row("[!-a]", &["b"], &["-", "a"], FETCH_RANGE),
    // --- outside classes ---
    row("a]b", &["a]b"], &[], FETCH_TEXT),
    row("a}b,c", &["a}b,c"], &[], FETCH_TEXT),
    row("\\a\\b", &["ab"], &[], FETCH_TEXT),
    row("a**b", &["ab", "a/x/b"], &[], FETCH_TEXT),
    row("***", &["", "a/b"], &[], FETCH_TEXT),
    // --- groups: nesting, empty alternatives, escapes ---
    row(
        "{a,{b,{c,d}}}x",
        &["ax", "bx", "cx", "dx"],
        &["x", "ex"],
        FETCH_TEXT,
    ),
    row("{a\\,b,c}", &["a,b", "c"], &["a", "b"], FETCH_TEXT),
    row("{a\\}b}", &["a}b"], &["a"], FETCH_TEXT),
    row("{[},]}", &["}", ","], &["", "},"], FETCH_TEXT),
    row("{a,}", &["a", ""], &["b"], FETCH_TEXT),
    row("x{}y", &["xy"], &["x"], GRAMMAR),
    row("{,}b", &["b"], &["", "bb"], GRAMMAR),
    // --- unicode: `?` and classes consume one scalar value ---
    row("?", &["é", "日", "😀"], &["é日", "ab"], FETCH_TEXT),
    row("?", &[], &[""], GRAMMAR),
    row("[é-ü]", &["é", "ö", "ü"], &["e", "ý"], FETCH_RANGE),
    row("c[é]", &["cé"], &["ce"], GRAMMAR),
    row("é?", &["éé", "éa"], &["é"], GRAMMAR),
    // --- gobwas matcher bugs we do not reproduce (module docs, "differs") ---
    row("b*b", &["bb", "bxb"], &["b"], GRAMMAR),
    row("ab*ba", &["abba"], &["aba"], GRAMMAR),
    row("[!ab][!ab]", &["xy"], &["ax", "xb"], GRAMMAR),
    row("{*,a}?", &["xy", "a"], &[""], GRAMMAR),
    row("z{*,z?}c-", &["zc-", "zzqc-"], &["zc"], GRAMMAR),
    // --- where we keep characters gobwas cannot take (module docs, "differs") ---
    row(
        "a\u{fffd}*",
        &["a\u{fffd}", "a\u{fffd}b"],
        &["a"],
        "deliberate difference: gobwas rejects U+FFFD (could not read rune)",
    ),
    row(
        "a\u{0}b",
        &["a\u{0}b"],
        &["ab"],
        "deliberate difference: gobwas drops NUL from text (rune 0 is its end marker)",
    ),
];

struct Rejected {
    pattern: &'static str,
    /// Part of the message, which must also name the pattern.
    problem: &'static str,
    position: usize,
    source: &'static str,
}

const REJECTED: &[Rejected] = &[
    Rejected {
        pattern: "[a-z0-9]",
        problem: "expected `]` after the range `a-z`",
        position: 5,
        source: "gobwas fetchRange: \"expected close range character\"",
    },
    Rejected {
        pattern: "[a-zA-Z]",
        problem: "expected `]` after the range `a-z`",
        position: 5,
        source: "gobwas fetchRange: \"expected close range character\"",
    },
    Rejected {
        pattern: "[a-]",
        problem: "unclosed `[`",
        position: 1,
        source: "gobwas fetchRange: `]` is read as the upper end, then \"unexpected end of input\"",
    },
    Rejected {
        pattern: "x[]",
        problem: "empty character class",
        position: 3,
        source: "gobwas parserRange: \"could not parse range\"",
    },
    Rejected {
        pattern: "[!]",
        problem: "empty character class",
        position: 3,
        source: "gobwas parserRange: \"could not parse range\"",
    },
    Rejected {
        pattern: "[]]",
        problem: "empty character class",
        position: 2,
        source: "gobwas parserRange: \"could not parse range\"",
    },
    Rejected {
        pattern: "[z-a]",
        problem: "reversed range `z-a`",
        position: 2,
        source: "gobwas parserRange: \"hi character 'a' should be greater than lo 'z'\"",
    },
    Rejected {
        pattern: "ab[cd",
        problem: "unclosed `[`",
        position: 3,
        source: "gobwas fetchRange: \"unexpected end of input\"",
    },
    Rejected {
        pattern: "[",
        problem: "unclosed `[`",
        position: 1,
        source: "gobwas fetchRange: \"unexpected end of input\"",
    },
    Rejected {
        pattern: "[a\\",
        problem: "unclosed `[`",
        position: 1,
        source: "gobwas fetchRange: \"unexpected end of input\"",
    },
    Rejected {
        pattern: "[a-b",
        problem: "unclosed `[`",
        position: 1,
        source: "gobwas fetchRange: \"unexpected end of input\"",
    },
    Rejected {
        pattern: "a{b,{c}",
        problem: "unclosed `{`",
        position: 2,
        source: "deliberate difference: gobwas closes the group silently",
    },
    Rejected {
        pattern: "ab\\",
        problem: "dangling escape",
        position: 3,
        source: "deliberate difference: gobwas drops the `\\` silently",
    },
];

#[test]
fn gobwas_table() {
    for row in ROWS {
        let pattern = Pattern::new(row.pattern)
            .unwrap_or_else(|e| panic!("{:?} ({}): rejected: {e}", row.pattern, row.source));
        for key in row.matching {
            assert!(
                pattern.matches(key),
                "{:?} must match {key:?} ({})",
                row.pattern,
                row.source
            );
        }
        for key in row.not_matching {
            assert!(
                !pattern.matches(key),
                "{:?} must not match {key:?} ({})",
                row.pattern,
                row.source
            );
        }
    }
}

#[test]
fn gobwas_rejections() {
    for case in REJECTED {
        let error = Pattern::new(case.pattern).expect_err(case.pattern);
        assert!(matches!(error, Error::InvalidPattern(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(case.problem)
                && message.contains(&format!("{:?}", case.pattern))
                && message.ends_with(&format!("at character {}", case.position)),
            "{:?} ({}): {message}",
            case.pattern,
            case.source
        );
    }
}

#[test]
fn the_table_agrees_with_the_reference() {
    for row in ROWS {
        let parsed = reference::parse(row.pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING)
            .unwrap_or_else(|| panic!("reference rejects {:?}", row.pattern));
        for key in row.matching {
            assert!(
                reference::matches(&parsed, key),
                "{:?} {key:?}",
                row.pattern
            );
        }
        for key in row.not_matching {
            assert!(
                !reference::matches(&parsed, key),
                "{:?} {key:?}",
                row.pattern
            );
        }
    }
    for case in REJECTED {
        assert!(
            reference::parse(case.pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING).is_none(),
            "reference accepts {:?}",
            case.pattern
        );
    }
}

// ---------------------------------------------------------------------------------------
// Differential property test against the reference
// ---------------------------------------------------------------------------------------

/// Characters that exercise every rule: the specials, letters around them, multi-byte ones.
fn pattern_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec!['*', '?', '[', ']', '{', '}', ',', '\\', '!', '-']),
        3 => prop::sample::select(vec!['a', 'b', 'c']),
        1 => prop::sample::select(vec!['é', '日', '\u{0}', '\u{fffd}', '😀']),
    ]
}

fn key_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec!['a', 'b', 'c']),
        2 => prop::sample::select(vec!['-', ']', '!', '\\', ',', '*', '{']),
        1 => prop::sample::select(vec!['é', '日', '\u{0}', '😀']),
    ]
}

fn string_of(chars: impl Strategy<Value = char>, len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(chars, 0..len).prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn pattern_agrees_with_the_reference(
        pattern in string_of(pattern_char(), 14),
        keys in prop::collection::vec(string_of(key_char(), 9), 12),
    ) {
        let ours = Pattern::new(&pattern);
        let expected = reference::parse(&pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING);
        match (&ours, &expected) {
            (Ok(ours), Some(expected)) => {
                for key in &keys {
                    prop_assert_eq!(
                        ours.matches(key),
                        reference::matches(expected, key),
                        "pattern {:?} key {:?}", pattern, key
                    );
                    let (_, steps) = ours.matches_with_steps(key);
                    prop_assert!(steps <= ours.cost_per_byte() as u64 * (key.len() as u64 + 1));
                }
            }
            (Err(Error::InvalidPattern(message)), None) => {
                prop_assert!(message.contains(&format!("{pattern:?}")), "{}", message);
            }
            _ => prop_assert!(false, "pattern {:?}: ours {:?}, reference accepts: {}",
                pattern, ours.as_ref().err(), expected.is_some()),
        }
    }

    /// Patterns built from the keys, the way layers build them, match those keys.
    #[test]
    fn escaped_text_matches_itself(text in string_of(key_char(), 20), other in string_of(key_char(), 6)) {
        let escaped = Pattern::escape(&text);
        let exact = Pattern::new(&escaped).unwrap();
        prop_assert_eq!(exact.exact(), Some(text.as_str()));
        let pattern = Pattern::new(&format!("{escaped}*{}", Pattern::escape(&other))).unwrap();
        let key = format!("{text}{other}");
        prop_assert!(pattern.matches(&key));
    }
}

// ---------------------------------------------------------------------------------------
// Hostile patterns
// ---------------------------------------------------------------------------------------

fn invalid_message(pattern: &str) -> String {
    match Pattern::new(pattern) {
        Err(Error::InvalidPattern(message)) => message,
        other => panic!("expected InvalidPattern, got {other:?}"),
    }
}

#[test]
fn deep_nesting_is_an_error_that_names_the_limit() {
    for depth in [MAX_PATTERN_NESTING + 1, 8_000, 16_000] {
        let pattern = format!("{}x{}", "{".repeat(depth), "}".repeat(depth));
        let message = invalid_message(&pattern);
        assert!(
            message.contains(&format!("more than {MAX_PATTERN_NESTING} levels")),
            "{message}"
        );
        assert!(
            message.ends_with(&format!("at character {}", MAX_PATTERN_NESTING + 1)),
            "{message}"
        );
    }
    // Unclosed and unbalanced floods are errors too, and never recurse.
    assert!(Pattern::new(&"{".repeat(MAX_PATTERN_LEN)).is_err());
    let ok = format!(
        "{}x{}",
        "{a,".repeat(MAX_PATTERN_NESTING),
        "}".repeat(MAX_PATTERN_NESTING)
    );
    assert!(Pattern::new(&ok).unwrap().matches("x"));
}

#[test]
fn huge_patterns_are_an_error_that_names_the_limit() {
    let pattern = "a*".repeat(2_500_000);
    let message = invalid_message(&pattern);
    assert!(message.contains("5000000 bytes"), "{message}");
    assert!(
        message.contains(&format!("limit of {MAX_PATTERN_LEN} bytes")),
        "{message}"
    );
    assert!(
        message.len() < 400,
        "the message quotes only the start: {message}"
    );
    // A multi-byte character across the limit is reported by its character position.
    let pattern = format!("{}é", "a".repeat(MAX_PATTERN_LEN - 1));
    let message = invalid_message(&pattern);
    assert!(
        message.ends_with(&format!("at character {MAX_PATTERN_LEN}")),
        "{message}"
    );
}

#[test]
fn the_largest_patterns_compile_and_match() {
    // The go-micro facade's worst case: escaped scope, prefix and suffix keys of 4 KiB, all
    // special characters, so escaping doubles each of them.
    let scope = Pattern::escape(&format!("{}/{}/", "*".repeat(200), "?".repeat(200)));
    let prefix = Pattern::escape(&"[".repeat(4096));
    let suffix = Pattern::escape(&"}".repeat(4096));
    let facade = format!("{scope}{prefix}*{suffix}");
    let namespaced = format!("{}{facade}", Pattern::escape(&"-".repeat(255)));
    assert!(namespaced.len() <= MAX_PATTERN_LEN, "{}", namespaced.len());
    let pattern = Pattern::new(&namespaced).unwrap();
    let key = format!(
        "{}{}/{}/{}x{}",
        "-".repeat(255),
        "*".repeat(200),
        "?".repeat(200),
        "[".repeat(4096),
        "}".repeat(4096)
    );
    assert!(pattern.matches(&key));
    assert_eq!(
        pattern.cost_per_byte(),
        1,
        "prefix*suffix is compared directly"
    );

    // The worst automaton: every character special, alternating the heaviest constructs.
    let unit = "{[!a-z],?}*";
    let worst = unit.repeat(MAX_PATTERN_LEN / unit.len());
    let pattern = Pattern::new(&worst).unwrap();
    let key = "b".repeat(4096);
    let (_, steps) = pattern.matches_with_steps(&key);
    assert!(steps <= pattern.cost_per_byte() as u64 * (key.len() as u64 + 1));
}

#[test]
fn odd_characters_never_panic() {
    for pattern in [
        "\u{0}",
        "[\u{0}-\u{10ffff}]",
        "[!\u{d7ff}-\u{e000}]",
        "\u{10ffff}*",
        "[\u{fffd}]",
    ] {
        let compiled = Pattern::new(pattern).unwrap();
        for key in [
            "\u{0}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{10ffff}",
            "\u{fffd}",
            "a",
        ] {
            let parsed = reference::parse(pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING).unwrap();
            assert_eq!(
                compiled.matches(key),
                reference::matches(&parsed, key),
                "{pattern:?} {key:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------

/// The expensive case: a backtracking matcher explores about `n^9` ways to place the
/// stars on each key; ours does a bounded amount of work per character.
#[test]
fn the_expensive_pattern_costs_bounded_steps_per_byte() {
    // 4,096 keys of 4,000 bytes, nearly all `a`, as in the issue; some end in `b`.
    let keys: Vec<String> = (0..4096u32)
        .map(|i| {
            let last = char::from(b'a' + (i % 26) as u8);
            format!("k{}{last}", "a".repeat(3998))
        })
        .collect();
    for pattern in [
        "k*a*a*a*a*a*a*a*a*a*ab".to_owned(),
        format!("k{}b", "*a".repeat(30)),
    ] {
        let compiled = Pattern::new(&pattern).unwrap();
        let bytes: u64 = keys.iter().map(|k| k.len() as u64).sum();
        let mut steps = 0;
        for key in &keys {
            let (matched, cost) = compiled.matches_with_steps(key);
            assert_eq!(matched, key.ends_with('b'), "{pattern}");
            assert!(cost <= compiled.cost_per_byte() as u64 * (key.len() as u64 + 1));
            steps += cost;
        }
        // Once the DFA is warm each character costs one step plus the prefix check; the
        // states are built once for all keys, so the total stays within a few steps per byte.
        assert!(
            steps <= 3 * bytes,
            "{pattern}: {steps} steps for {bytes} bytes of keys"
        );
    }
}
