//! Unit tests of the internals; the gobwas table, the differential property test and the
//! hostile-pattern tests are in `store-core/tests/glob_gobwas.rs`.

use super::*;

fn m(pattern: &str, key: &str) -> bool {
    Pattern::new(pattern).unwrap().matches(key)
}

#[test]
fn star_crosses_slashes() {
    assert!(m("a*", "a/b/c"));
    assert!(m("*", ""));
    assert!(m("*c", "a/b/c"));
    assert!(m("a**z", "a/x/y/z"));
    assert!(!m("a*", "b"));
}

#[test]
fn question_mark_is_one_character() {
    assert!(m("a?c", "abc"));
    assert!(m("a?c", "a/c"));
    assert!(m("a?c", "aéc"));
    assert!(!m("a?c", "ac"));
    assert!(!m("a?c", "abbc"));
}

#[test]
fn classes() {
    assert!(m("[abc]", "b"));
    assert!(!m("[abc]", "d"));
    assert!(m("[a-z]x", "qx"));
    assert!(!m("[a-z]x", "Qx"));
    assert!(m("[!abc]", "d"));
    assert!(!m("[!abc]", "a"));
    assert!(m("[!a-c]", "z"));
    assert!(m("[ab-c]", "-"));
    assert!(!m("[abc-z]", "d"));
    assert!(!m("[\\a-c]", "b"));
    assert!(m("[\\]]", "]"));
}

#[test]
fn groups_nest_and_may_be_empty() {
    assert!(m("{a,b}c", "ac"));
    assert!(m("{a,b}c", "bc"));
    assert!(!m("{a,b}c", "cc"));
    assert!(m("x{a,b{c,d}}", "xbd"));
    assert!(m("x{a,}", "x"));
    assert!(m("{*.txt,*.md}", "docs/readme.md"));
}

#[test]
fn escapes_and_stray_closers_are_literal() {
    assert!(m("a\\*", "a*"));
    assert!(!m("a\\*", "ab"));
    assert!(m("a]b}c,d", "a]b}c,d"));
    assert!(m("\\\\", "\\"));
}

#[test]
fn pathological_patterns_stay_linear() {
    let key = "a".repeat(10_000);
    assert!(!m("*a*a*a*a*a*a*a*a*b", &key));
    assert!(m("*a*a*a*a*a*a*a*a*", &key));
}

#[test]
fn errors_name_the_problem_and_the_position() {
    for (pattern, needle, position) in [
        ("a[bc", "unclosed `[`", 2),
        ("a{b,c", "unclosed `{`", 2),
        ("a\\", "dangling escape", 2),
        ("[]", "empty character class", 2),
        ("[!]", "empty character class", 3),
        ("[z-a]", "reversed range", 2),
        ("x[a-z0-9]", "expected `]` after the range `a-z`", 6),
    ] {
        let err = Pattern::new(pattern).unwrap_err().to_string();
        assert!(err.contains(needle), "{pattern}: {err}");
        assert!(err.contains(&format!("{pattern:?}")), "{pattern}: {err}");
        assert!(
            err.ends_with(&format!("at character {position}")),
            "{pattern}: {err}"
        );
    }
}

#[test]
fn fast_paths_are_chosen_where_they_apply() {
    let p = Pattern::new("users/*").unwrap();
    assert_eq!(p.literal_prefix(), "users/");
    assert!(matches!(p.kind, Kind::Prefix));
    assert!(p.is_prefix_only());
    assert!(matches!(Pattern::new("a***").unwrap().kind, Kind::Prefix));
    let p = Pattern::new("users/1").unwrap();
    assert_eq!(p.exact(), Some("users/1"));
    let p = Pattern::new("db/t/ab*\\*yz").unwrap();
    assert!(matches!(&p.kind, Kind::PrefixSuffix(s) if s == "*yz"));
    assert!(p.matches("db/t/ab*yz"));
    assert!(p.matches("db/t/ab--*yz"));
    assert!(!p.matches("db/t/ab*y"));
    // Prefix and suffix may not overlap: the key must hold both.
    let p = Pattern::new("ab*ba").unwrap();
    assert!(!p.matches("aba"));
    assert!(p.matches("abba"));
    let p = Pattern::new("{a,b}").unwrap();
    assert_eq!(p.literal_prefix(), "");
    assert!(matches!(p.kind, Kind::General(_)));
}

#[test]
fn escape_round_trips() {
    for text in ["plain", "a*b?c[d]e{f,g}h\\i", "-!,", "\u{0}\u{fffd}"] {
        assert!(m(&Pattern::escape(text), text));
        assert_eq!(
            Pattern::new(&Pattern::escape(text)).unwrap().exact(),
            Some(text)
        );
    }
}

#[test]
fn clones_match_alike_and_patterns_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pattern>();
    let p = Pattern::new("k*a?[b-d]{x,y}").unwrap();
    let q = p.clone();
    for key in ["kaabx", "kzzzaqcy", "kab", "kaaex"] {
        assert_eq!(p.matches(key), q.matches(key), "{key}");
    }
}

#[test]
fn a_full_cache_is_emptied_and_matching_goes_on() {
    // `*a` followed by 12 `?`: every window of the key is its own DFA state, so random keys
    // create thousands of states and the cache must be emptied repeatedly.
    let pattern = format!("*a{}", "?".repeat(12));
    let p = Pattern::new(&pattern).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut key = String::new();
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        key.push(if seed & 1 == 0 { 'a' } else { 'b' });
    }
    let expected = key.as_bytes()[key.len() - 13] == b'a';
    let (matched, steps) = p.matches_with_steps(&key);
    assert_eq!(matched, expected);
    assert!(steps <= p.cost_per_byte() as u64 * (key.len() as u64 + 1));
}

mod engines {
    use super::*;
    use proptest::prelude::*;

    fn string_of(chars: &'static [char], len: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(chars), 0..len)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The lazy DFA and the bit-parallel fallback agree on every key, and both stay
        /// within the advertised cost.
        #[test]
        fn dfa_and_bit_parallel_simulation_agree(
            pattern in string_of(&['*', '?', '[', ']', '{', '}', ',', '!', '-', 'a', 'b', 'é'], 16),
            keys in prop::collection::vec(string_of(&['a', 'b', 'c', '-', 'é'], 80), 8),
        ) {
            let Ok(compiled) = Pattern::new(&pattern) else { return Ok(()) };
            let Kind::General(matcher) = &compiled.kind else { return Ok(()) };
            for key in &keys {
                let Some(rest) = key.strip_prefix(compiled.literal_prefix()) else { continue };
                let mut steps = 0;
                let on_bits = matcher.matches_on_bits(rest, &mut steps);
                prop_assert!(steps <= compiled.cost_per_byte() as u64 * (key.len() as u64 + 1));
                prop_assert_eq!(compiled.matches(key), on_bits, "{:?} {:?}", pattern, key);
            }
        }
    }
}

#[test]
fn debug_output_stays_small_after_matching() {
    let p = Pattern::new(&format!("*a{}", "?".repeat(300))).unwrap();
    p.matches(&"ab".repeat(2000));
    let shown = format!("{p:?}");
    assert!(shown.len() < 2 * p.as_str().len() + 300, "{}", shown.len());
    assert!(shown.contains("instructions"), "{shown}");
}
