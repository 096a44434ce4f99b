//! Glob patterns for `list_keys`, with the semantics of the gobwas/glob package that
//! go-micro's and the Go kvs package's interfaces document, compiled without separators.
//!
//! | syntax     | matches                                                              |
//! |------------|----------------------------------------------------------------------|
//! | `*`, `**`  | any run of characters, `/` included (there are no separators)        |
//! | `?`        | exactly one character                                                |
//! | `[abc]`    | one of the listed characters                                         |
//! | `[a-z]`    | one character in the inclusive range                                 |
//! | `[!abc]`   | one character not listed; `[!a-z]`: one character outside the range |
//! | `{a,b}`    | any of the comma-separated sub-patterns (they may nest, may be empty) |
//! | `\c`       | the character `c` itself (`\*`, `\{`, `\\`, ...)                     |
//!
//! Classes follow gobwas's lexer exactly, which is stricter than shell globs:
//! - A class is **either one range or a list**. It is a range only when its first character
//!   (after an optional `!`) is directly followed by `-`: `[a-z]`. That first character is
//!   read raw, so `[]-a]` is the range `]`..`a` and `[\-a]` the range `\`..`a`, and so is the
//!   upper end: `[A-\]` is the range `A`..`\`. A range must be followed by `]`, so `[a-z0-9]`
//!   and `[a-]` are errors; write `{[a-z],[0-9]}` for several ranges.
//! - Otherwise the class is a list up to the first unescaped `]`, in which `-` is an
//!   ordinary character and `\` escapes the next one: `[ab-c]` matches `a`, `b`, `-` or `c`
//!   (not `d`), `[abc-z]` does not match `d`, and `[\a-c]` (escaped first item, so no range)
//!   matches `a`, `-` or `c` but not `b`. `*`, `?`, `[`, `{`, `}` and `,` are literal in a
//!   class.
//! - `!` negates only as the very first character: `[!!]` is any character but `!`, and `[a!]`
//!   lists `a` and `!`. An empty class (`[]`, `[!]`) is an error, so `[]]` is one too.
//!
//! Outside classes: `]` is an ordinary character everywhere, and `,` and `}` are ordinary
//! outside a group (`a,b}` is literal). Inside a group `,` separates alternatives unless
//! escaped. `{}`, `{,}` and the empty alternative of `{a,}` match the empty string. Matching
//! is over Unicode scalar values (so `?` matches one `é`, not one byte), like gobwas's runes.
//!
//! # Where this matcher deliberately differs from gobwas
//!
//! For syntax, every difference is a pattern we reject that gobwas accepts, or a character
//! gobwas cannot take at all; for matching, we never reproduce gobwas's bugs:
//! - **An unclosed `{` is rejected.** gobwas closes every open group at the end of the
//!   pattern silently (`{a,b` means `{a,b}`); we report it, because a missing `}` is far more
//!   often a typo or a truncated pattern than a wish.
//! - **A trailing `\` is rejected.** gobwas drops it silently (`a\` means `a`); we report it,
//!   because it escapes nothing and usually means a pattern was cut after an escape.
//! - **Patterns longer than [`MAX_PATTERN_LEN`] bytes or nesting groups deeper than
//!   [`MAX_PATTERN_NESTING`] levels are rejected**, so a hostile pattern costs bounded memory
//!   and time; gobwas has no limits.
//! - **`U+FFFD` (the replacement character) is an ordinary character.** gobwas rejects any
//!   pattern containing it ("could not read rune"), because Go's decoder returns it for
//!   invalid UTF-8 too. A Rust `&str` is always valid UTF-8, and keys may contain U+FFFD, so
//!   [`Pattern::escape`] of such a key must compile.
//! - **`NUL` (U+0000) is an ordinary character.** gobwas uses rune 0 as its end-of-input
//!   marker, so a NUL in a gobwas pattern is silently dropped from text (`a\0b` means `ab`)
//!   or ends the pattern (`*\0b` means `*`). Keys may contain NUL, so we keep its meaning.
//! - **Where gobwas's matcher contradicts its own grammar, we follow the grammar.** gobwas
//!   (v0.2.3, the version Go modules use; its later v1 line has another API and was not
//!   compared) rewrites patterns into specialised matchers, and some rewrites are wrong. Running it against this matcher on random patterns finds these, each a plain
//!   bug rather than a choice (its own grammar and the regular expressions its benchmarks
//!   compare with say otherwise):
//!   - a literal prefix and suffix around `*` may overlap: `b*b` matches `b`;
//!   - a run of fixed-length items that holds a multi-byte character is cut by bytes:
//!     `c[é]` does not match `cé`, nor `é?` match `éé`;
//!   - a run of identical negated lists becomes "no *substring*": `[!ab][!ab]` matches `ax`;
//!   - groups with an empty alternative, or with a `*` alternative, next to other items
//!     give wrong answers (`x{}y` does not match `xy`, `{*,a}?` does not match `xy`) or
//!     panic (`?{}` on `a`);
//!   - `?` alone matches the empty string (keys are never empty, so this one is moot).
//!
//! Apart from these, a pattern means here what it means in gobwas: the table test in
//! `tests/glob_gobwas.rs` holds gobwas's own cases and the class rules above, and a
//! differential property test and a fuzz target (`fuzz/`) check random patterns against a
//! reference written from the grammar.
//!
//! # Cost
//!
//! Compiling takes time and memory linear in the pattern (no recursion, so no nesting can
//! overflow the stack). Matching is linear in the key for every pattern: exact keys, a
//! literal prefix followed by `*`, and `prefix*suffix` are compared directly; anything else
//! runs a DFA built lazily from a Thompson automaton, in a cache of at most 1 MiB per thread
//! matching at once. A cached transition costs one step per character; a new one costs at
//! most one NFA step, bounded by the automaton size, which [`Pattern::cost_per_byte`]
//! reports so callers can budget work in steps (see [`Pattern::matches_with_steps`]).
//! An active `*` discards the threads before it in its sequence (they can only reach what
//! the star reaches), so star-heavy patterns keep few, small states. Patterns whose DFA is
//! exponential with large states (`*a` followed by hundreds of `?`) empty the cache over and
//! over; such a key finishes on a bit-parallel simulation of the automaton, which costs a few
//! word operations per 64 instructions per character.
//!
//! For scale (release build, `cargo run --release -p store-core --example glob_cost`): the
//! issue's `k*a*a*a*a*a*a*a*a*a*ab` over 4,096 keys of 4,000 bytes takes about 40 ms
//! (1 step per byte); `*a` followed by 2,000 `?` about 0.4 ms per 4 KiB key. The most
//! expensive shapes found are thousands of groups whose alternatives hold stars or `?`
//! (`{*a,*b}` repeated to 21 KB: about 0.1 s per 4 KiB key, `*a{?,??}...`: 55 ms), because
//! thousands of automaton threads stay alive at once; a caller that must not stall for that
//! long budgets by [`Pattern::matches_with_steps`] and matches such patterns off any shared
//! thread.
//!
//! We wrote our own matcher rather than use globset because globset follows path-glob rules
//! (it rejects nested `{}` groups and gives `**` path meaning) and because the storage needs
//! the pattern's literal prefix to scan only the matching key range.

mod bits;
mod class;
mod dfa;
mod parse;
mod program;

use std::sync::Arc;

use crate::key::shorten;
use crate::{Error, Result};
use dfa::Matcher;
use parse::Item;
use program::Program;

/// The longest pattern, in bytes, that [`Pattern::new`] accepts.
///
/// It leaves room for what the layers build from keys of up to [`MAX_KEY_LEN`](crate::MAX_KEY_LEN)
/// bytes, where escaping can double every character: the go-micro facade's
/// `escape(db/table/) + escape(prefix) + "*" + escape(suffix)` (at most about 17 KiB), and
/// the namespace layer's escaped prefix in front of it.
///
/// ```
/// use store_core::{Error, Pattern, MAX_PATTERN_LEN};
/// assert!(Pattern::new(&"a".repeat(MAX_PATTERN_LEN)).is_ok());
/// let err = Pattern::new(&"a".repeat(MAX_PATTERN_LEN + 1)).unwrap_err();
/// assert!(matches!(err, Error::InvalidPattern(_)));
/// assert!(err.to_string().contains("32768"));
/// ```
pub const MAX_PATTERN_LEN: usize = 32 * 1024;

/// The deepest nesting of `{}` groups that [`Pattern::new`] accepts.
///
/// Real patterns nest a few levels; the limit keeps tools that walk patterns recursively
/// (and hostile input) far from any stack limit.
///
/// ```
/// use store_core::{Pattern, MAX_PATTERN_NESTING};
/// let deep = |n: usize| format!("{}x{}", "{".repeat(n), "}".repeat(n));
/// assert!(Pattern::new(&deep(MAX_PATTERN_NESTING)).is_ok());
/// assert!(Pattern::new(&deep(MAX_PATTERN_NESTING + 1)).is_err());
/// ```
pub const MAX_PATTERN_NESTING: usize = 64;

/// A compiled `list_keys` pattern.
///
/// Cheap to share: matching takes `&self` and works from many threads at once.
///
/// ```
/// use store_core::Pattern;
/// let p = Pattern::new("users/{alice,bob}/*").unwrap();
/// assert!(p.matches("users/alice/profile"));
/// assert!(p.matches("users/bob/a/b/c"));
/// assert!(!p.matches("users/carol/profile"));
/// assert_eq!(p.literal_prefix(), "users/");
/// ```
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    prefix: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// The pattern has no special characters: only that one key matches.
    Exact,
    /// A literal followed by stars: every key under the prefix matches.
    Prefix,
    /// A literal, stars, a literal: keys with that prefix and suffix, long enough for both.
    PrefixSuffix(String),
    /// Anything else runs on the automaton.
    General(Matcher),
}

impl Pattern {
    /// Compiles `pattern`; a syntax error is [`Error::InvalidPattern`] naming the pattern,
    /// the problem and its character position (1-based). Patterns longer than
    /// [`MAX_PATTERN_LEN`] bytes or nested deeper than [`MAX_PATTERN_NESTING`] are errors
    /// too. Compiling costs time and memory linear in the pattern's length.
    ///
    /// ```
    /// use store_core::{Error, Pattern};
    /// let err = Pattern::new("a[bc").unwrap_err();
    /// assert!(matches!(err, Error::InvalidPattern(_)));
    /// assert!(err.to_string().contains("a[bc"));
    /// assert!(err.to_string().contains("at character 2"));
    /// ```
    pub fn new(pattern: &str) -> Result<Self> {
        let invalid = |message: &str, position: usize| {
            Error::InvalidPattern(format!(
                "{}: {message} at character {position}",
                shorten(pattern)
            ))
        };
        if pattern.len() > MAX_PATTERN_LEN {
            let mut end = MAX_PATTERN_LEN;
            while !pattern.is_char_boundary(end) {
                end -= 1;
            }
            let position = pattern[..end].chars().count() + 1;
            return Err(invalid(
                &format!(
                    "the pattern is {} bytes long, more than the limit of {MAX_PATTERN_LEN} bytes",
                    pattern.len()
                ),
                position,
            ));
        }
        let parse::Parsed { items, classes } =
            parse::parse(pattern).map_err(|e| invalid(&e.message, e.position))?;
        let literal_count = items
            .iter()
            .take_while(|item| matches!(item, Item::Literal(_)))
            .count();
        let prefix = literal_string(&items[..literal_count]);
        let rest = &items[literal_count..];
        let kind = match rest {
            [] => Kind::Exact,
            [Item::Star] => Kind::Prefix,
            [Item::Star, suffix @ ..] if suffix.iter().all(|i| matches!(i, Item::Literal(_))) => {
                Kind::PrefixSuffix(literal_string(suffix))
            }
            _ => Kind::General(Matcher::new(Arc::new(Program::compile(rest, classes)))),
        };
        Ok(Self {
            source: pattern.to_owned(),
            prefix,
            kind,
        })
    }

    /// Whether `key` matches the whole pattern. Costs time linear in the key (see
    /// [`Pattern::cost_per_byte`]).
    ///
    /// ```
    /// let p = store_core::Pattern::new("log-[0-9][0-9]").unwrap();
    /// assert!(p.matches("log-42"));
    /// assert!(!p.matches("log-4x"));
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        self.matches_with_steps(key).0
    }

    /// Like [`Pattern::matches`], and also the work it took, in steps: at most
    /// `cost_per_byte() * (key.len() + 1)`. A step is a small, bounded amount of work (one
    /// byte compared, one cached DFA transition, or one instruction visited while computing
    /// a new transition), so callers can budget listing work in steps rather than entries.
    ///
    /// ```
    /// let p = store_core::Pattern::new("k*a*a*a*b").unwrap();
    /// let key = "k".to_owned() + &"a".repeat(1000);
    /// let (matched, steps) = p.matches_with_steps(&key);
    /// assert!(!matched);
    /// assert!(steps <= p.cost_per_byte() as u64 * (key.len() as u64 + 1));
    /// ```
    pub fn matches_with_steps(&self, key: &str) -> (bool, u64) {
        let mut steps = 1;
        let matched = match &self.kind {
            Kind::Exact => {
                steps += key.len().min(self.prefix.len()) as u64;
                key == self.prefix
            }
            Kind::Prefix => {
                steps += key.len().min(self.prefix.len()) as u64;
                key.starts_with(&self.prefix)
            }
            Kind::PrefixSuffix(suffix) => {
                steps += key.len().min(self.prefix.len() + suffix.len()) as u64;
                key.len() >= self.prefix.len() + suffix.len()
                    && key.starts_with(&self.prefix)
                    && key.ends_with(suffix.as_str())
            }
            Kind::General(matcher) => {
                steps += key.len().min(self.prefix.len()) as u64;
                key.starts_with(&self.prefix)
                    && matcher.matches(&key[self.prefix.len()..], &mut steps)
            }
        };
        (matched, steps)
    }

    /// An upper bound of the steps (see [`Pattern::matches_with_steps`]) that matching costs
    /// per byte of key: 1 for the direct comparisons (exact key, `prefix*`, `prefix*suffix`),
    /// and for the automaton a bound proportional to its size (a new DFA transition visits
    /// each instruction a bounded number of times; cached transitions cost 1).
    ///
    /// ```
    /// use store_core::Pattern;
    /// assert_eq!(Pattern::new("users/*").unwrap().cost_per_byte(), 1);
    /// assert!(Pattern::new("users/*/{a,b}").unwrap().cost_per_byte() > 1);
    /// ```
    pub fn cost_per_byte(&self) -> usize {
        match &self.kind {
            Kind::Exact | Kind::Prefix | Kind::PrefixSuffix(_) => 1,
            Kind::General(matcher) => 8 * matcher.program().len() + 8,
        }
    }

    /// The literal text every matching key starts with; backends scan only keys with this
    /// prefix. Empty when the pattern starts with a special character.
    ///
    /// ```
    /// assert_eq!(store_core::Pattern::new("a\\*b?c").unwrap().literal_prefix(), "a*b");
    /// ```
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether every key that starts with [`Pattern::literal_prefix`] matches, so a backend
    /// can list the prefix range without matching each key. True for a literal followed by
    /// stars (`users/*`); false for anything else, even where another spelling would match
    /// the same keys (`users/{*,x}`): false only costs matching, never a wrong answer.
    ///
    /// ```
    /// use store_core::Pattern;
    /// assert!(Pattern::new("users/*").unwrap().is_prefix_only());
    /// assert!(Pattern::new("*").unwrap().is_prefix_only());
    /// assert!(!Pattern::new("users/*/x").unwrap().is_prefix_only());
    /// assert!(!Pattern::new("users/").unwrap().is_prefix_only());
    /// ```
    pub fn is_prefix_only(&self) -> bool {
        matches!(self.kind, Kind::Prefix)
    }

    /// `Some(key)` when the pattern matches exactly one key (it has no special characters).
    ///
    /// ```
    /// assert_eq!(store_core::Pattern::new("a\\?").unwrap().exact(), Some("a?"));
    /// assert_eq!(store_core::Pattern::new("a?").unwrap().exact(), None);
    /// ```
    pub fn exact(&self) -> Option<&str> {
        matches!(self.kind, Kind::Exact).then_some(self.prefix.as_str())
    }

    /// The pattern as it was written.
    ///
    /// ```
    /// assert_eq!(store_core::Pattern::new("a*").unwrap().as_str(), "a*");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Escapes every special character of `text` so that it matches only itself; layers use
    /// it to build patterns from literal prefixes and suffixes. The result is at most twice
    /// as long as `text`.
    ///
    /// ```
    /// use store_core::Pattern;
    /// let escaped = Pattern::escape("price[usd]*");
    /// assert_eq!(escaped, "price\\[usd\\]\\*");
    /// assert!(Pattern::new(&escaped).unwrap().matches("price[usd]*"));
    /// ```
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 4);
        for c in text.chars() {
            if is_special(c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
}

fn literal_string(items: &[Item]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Literal(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn is_special(c: char) -> bool {
    matches!(
        c,
        '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\' | '!' | '-'
    )
}

#[cfg(test)]
mod tests;
