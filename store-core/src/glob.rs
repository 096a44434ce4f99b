//! Glob patterns for `list_keys`, with the semantics of the gobwas/glob package that
//! go-micro's and the Go kvs package's interfaces document, compiled without separators.
//!
//! | syntax     | matches                                                        |
//! |------------|----------------------------------------------------------------|
//! | `*`, `**`  | any run of characters, `/` included (there are no separators)  |
//! | `?`        | exactly one character                                          |
//! | `[abc]`    | one of the listed characters                                   |
//! | `[a-z]`    | one character in the inclusive range                           |
//! | `[!abc]`   | one character not listed (ranges work too: `[!a-z]`)          |
//! | `{a,b}`    | any of the comma-separated sub-patterns (they may nest)        |
//! | `\c`       | the character `c` itself (`\*`, `\{`, `\\`, ...)               |
//!
//! Matching is over Unicode scalar values (so `?` matches one `é`, not one byte) and runs in
//! time linear in the key for a given pattern: the pattern compiles to a small automaton that
//! is simulated on all paths at once, so patterns such as `*a*a*a*b` cannot backtrack.
//!
//! Where this matcher deliberately differs from gobwas (all are strict supersets or clearer
//! errors, none changes the meaning of a pattern gobwas accepts):
//! - A class may mix ranges and single characters (`[a-z0-9_]`); gobwas accepts either one
//!   range or a list.
//! - An empty class (`[]`, `[!]`), an unclosed `[` or `{`, a dangling `\` and a reversed range
//!   (`[z-a]`) are errors that say so; gobwas reports some of them as generic syntax errors.
//! - `]` and `}` outside a class or group, and `,` outside a group, are ordinary characters.
//!
//! We wrote our own matcher rather than use globset because globset follows path-glob rules
//! (it rejects nested `{}` groups and gives `**` path meaning) and because the storage needs
//! the pattern's literal prefix to scan only the matching key range.

use crate::key::shorten;
use crate::{Error, Result};

/// A compiled `list_keys` pattern.
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
    /// A literal followed by one `*`: every key under the prefix matches.
    Prefix,
    /// Anything else runs on the automaton.
    General(Program),
}

impl Pattern {
    /// Compiles `pattern`; a syntax error is [`Error::InvalidPattern`] naming the pattern,
    /// the problem and its character position.
    ///
    /// ```
    /// use store_core::{Error, Pattern};
    /// let err = Pattern::new("a[bc").unwrap_err();
    /// assert!(matches!(err, Error::InvalidPattern(_)));
    /// assert!(err.to_string().contains("a[bc"));
    /// ```
    pub fn new(pattern: &str) -> Result<Self> {
        let nodes = Parser::new(pattern).parse().map_err(|e| {
            Error::InvalidPattern(format!(
                "{}: {} at character {}",
                shorten(pattern),
                e.message,
                e.position
            ))
        })?;
        let prefix: String = nodes
            .iter()
            .map_while(|n| match n {
                Node::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        let literal_count = prefix.chars().count();
        let kind = if literal_count == nodes.len() {
            Kind::Exact
        } else if literal_count + 1 == nodes.len() && matches!(nodes.last(), Some(Node::Star)) {
            Kind::Prefix
        } else {
            Kind::General(Program::compile(&nodes[literal_count..]))
        };
        Ok(Self {
            source: pattern.to_owned(),
            prefix,
            kind,
        })
    }

    /// Whether `key` matches the whole pattern.
    ///
    /// ```
    /// let p = store_core::Pattern::new("log-[0-9][0-9]").unwrap();
    /// assert!(p.matches("log-42"));
    /// assert!(!p.matches("log-4x"));
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        match &self.kind {
            Kind::Exact => key == self.prefix,
            Kind::Prefix => key.starts_with(&self.prefix),
            Kind::General(program) => {
                key.starts_with(&self.prefix) && program.matches(&key[self.prefix.len()..])
            }
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
    /// it to build patterns from literal prefixes and suffixes.
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

fn is_special(c: char) -> bool {
    matches!(
        c,
        '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\' | '!' | '-'
    )
}

/// The parsed form of a pattern.
#[derive(Clone, Debug)]
enum Node {
    Literal(char),
    AnyChar,
    Star,
    Class(Class),
    Group(Vec<Vec<Node>>),
}

#[derive(Clone, Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

struct SyntaxError {
    message: &'static str,
    position: usize,
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(pattern: &'a str) -> Self {
        Self {
            chars: pattern.char_indices().peekable(),
            position: 0,
        }
    }

    fn next(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        self.position += 1;
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn error<T>(&self, message: &'static str) -> std::result::Result<T, SyntaxError> {
        Err(SyntaxError {
            message,
            position: self.position,
        })
    }

    fn parse(mut self) -> std::result::Result<Vec<Node>, SyntaxError> {
        let (nodes, end) = self.sequence(0)?;
        debug_assert!(end.is_none());
        Ok(nodes)
    }

    /// Parses until the end of input or, inside a group (`depth > 0`), until `,` or `}`,
    /// which it returns.
    fn sequence(
        &mut self,
        depth: usize,
    ) -> std::result::Result<(Vec<Node>, Option<char>), SyntaxError> {
        let mut nodes = Vec::new();
        while let Some(c) = self.next() {
            match c {
                ',' | '}' if depth > 0 => return Ok((nodes, Some(c))),
                '*' => {
                    // `**` means the same as `*` without separators; keep one node.
                    if !matches!(nodes.last(), Some(Node::Star)) {
                        nodes.push(Node::Star);
                    }
                }
                '?' => nodes.push(Node::AnyChar),
                '\\' => match self.next() {
                    Some(c) => nodes.push(Node::Literal(c)),
                    None => return self.error("dangling escape `\\`"),
                },
                '[' => nodes.push(Node::Class(self.class()?)),
                '{' => nodes.push(self.group(depth + 1)?),
                c => nodes.push(Node::Literal(c)),
            }
        }
        if depth > 0 {
            return self.error("unclosed `{` group");
        }
        Ok((nodes, None))
    }

    fn group(&mut self, depth: usize) -> std::result::Result<Node, SyntaxError> {
        let mut alternatives = Vec::new();
        loop {
            let (nodes, end) = self.sequence(depth)?;
            alternatives.push(nodes);
            if end == Some('}') {
                return Ok(Node::Group(alternatives));
            }
        }
    }

    fn class(&mut self) -> std::result::Result<Class, SyntaxError> {
        let negated = self.peek() == Some('!');
        if negated {
            self.next();
        }
        let mut ranges = Vec::new();
        loop {
            let lo = match self.next() {
                None => return self.error("unclosed `[` class"),
                Some(']') if ranges.is_empty() => {
                    return self
                        .error("empty character class (it must list at least one character)")
                }
                Some(']') => return Ok(Class { negated, ranges }),
                Some('\\') => match self.next() {
                    Some(c) => c,
                    None => return self.error("dangling escape `\\`"),
                },
                Some(c) => c,
            };
            let mut hi = lo;
            if self.peek() == Some('-') {
                self.next();
                match self.next() {
                    None => return self.error("unclosed `[` class"),
                    // `[a-]`: a trailing dash is an ordinary character.
                    Some(']') => {
                        ranges.push((lo, lo));
                        ranges.push(('-', '-'));
                        return Ok(Class { negated, ranges });
                    }
                    Some('\\') => match self.next() {
                        Some(c) => hi = c,
                        None => return self.error("dangling escape `\\`"),
                    },
                    Some(c) => hi = c,
                }
                if hi < lo {
                    return self.error("reversed range in class (write the lower character first)");
                }
            }
            ranges.push((lo, hi));
        }
    }
}

/// A compiled automaton: instructions for a Thompson/Pike-style simulation.
#[derive(Clone, Debug)]
struct Program {
    insts: Vec<Inst>,
}

#[derive(Clone, Debug)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    /// Continue at both targets.
    Split(usize, usize),
    Jump(usize),
    Match,
}

impl Program {
    fn compile(nodes: &[Node]) -> Self {
        let mut program = Program { insts: Vec::new() };
        program.emit_sequence(nodes);
        program.insts.push(Inst::Match);
        program
    }

    fn emit_sequence(&mut self, nodes: &[Node]) {
        for node in nodes {
            self.emit(node);
        }
    }

    fn emit(&mut self, node: &Node) {
        match node {
            Node::Literal(c) => self.insts.push(Inst::Char(*c)),
            Node::AnyChar => self.insts.push(Inst::Any),
            Node::Class(class) => self.insts.push(Inst::Class(class.clone())),
            Node::Star => {
                // L0: split L1, L3 ; L1: any ; L2: jump L0 ; L3:
                let split = self.insts.len();
                self.insts.push(Inst::Split(split + 1, split + 3));
                self.insts.push(Inst::Any);
                self.insts.push(Inst::Jump(split));
            }
            Node::Group(alternatives) => {
                // split A, next-split ; A ; jump end ; ... ; last alternative ; end:
                let mut jumps = Vec::new();
                for (i, alternative) in alternatives.iter().enumerate() {
                    let last = i + 1 == alternatives.len();
                    let split = self.insts.len();
                    if !last {
                        self.insts.push(Inst::Split(split + 1, 0));
                    }
                    self.emit_sequence(alternative);
                    if !last {
                        jumps.push(self.insts.len());
                        self.insts.push(Inst::Jump(0));
                        let next = self.insts.len();
                        self.insts[split] = Inst::Split(split + 1, next);
                    }
                }
                let end = self.insts.len();
                for jump in jumps {
                    self.insts[jump] = Inst::Jump(end);
                }
            }
        }
    }

    fn matches(&self, text: &str) -> bool {
        let n = self.insts.len();
        let mut current = Threads::new(n);
        let mut next = Threads::new(n);
        self.add(&mut current, 0);
        for c in text.chars() {
            if current.is_empty() {
                return false;
            }
            next.clear();
            for i in 0..current.dense.len() {
                let pc = current.dense[i];
                let advance = match &self.insts[pc] {
                    Inst::Char(expected) => *expected == c,
                    Inst::Any => true,
                    Inst::Class(class) => class.matches(c),
                    Inst::Split(..) | Inst::Jump(_) | Inst::Match => false,
                };
                if advance {
                    self.add(&mut next, pc + 1);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
            .dense
            .iter()
            .any(|&pc| matches!(self.insts[pc], Inst::Match))
    }

    /// Adds `pc` and everything reachable from it without consuming a character.
    fn add(&self, threads: &mut Threads, pc: usize) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if !threads.insert(pc) {
                continue;
            }
            match self.insts[pc] {
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Jump(target) => stack.push(target),
                _ => {}
            }
        }
    }
}

/// A sparse set of instruction indices (insertion and clearing in O(1)).
struct Threads {
    dense: Vec<usize>,
    sparse: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Self {
        Self {
            dense: Vec::with_capacity(n),
            sparse: vec![0; n],
        }
    }

    fn insert(&mut self, pc: usize) -> bool {
        let slot = self.sparse[pc];
        if slot < self.dense.len() && self.dense[slot] == pc {
            return false;
        }
        self.sparse[pc] = self.dense.len();
        self.dense.push(pc);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }

    fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }
}

#[cfg(test)]
mod tests {
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
        assert!(m("[a-z0-9_]", "_"));
        assert!(m("[a-]", "-"));
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
    fn errors_name_the_problem() {
        for (pattern, needle) in [
            ("a[bc", "unclosed `[`"),
            ("a{b,c", "unclosed `{`"),
            ("a\\", "dangling escape"),
            ("[]", "empty character class"),
            ("[!]", "empty character class"),
            ("[z-a]", "reversed range"),
        ] {
            let err = Pattern::new(pattern).unwrap_err().to_string();
            assert!(err.contains(needle), "{pattern}: {err}");
            assert!(err.contains(&format!("{pattern:?}")), "{pattern}: {err}");
        }
    }

    #[test]
    fn literal_prefix_and_fast_paths() {
        let p = Pattern::new("users/*").unwrap();
        assert_eq!(p.literal_prefix(), "users/");
        assert!(matches!(p.kind, Kind::Prefix));
        let p = Pattern::new("users/1").unwrap();
        assert_eq!(p.exact(), Some("users/1"));
        let p = Pattern::new("{a,b}").unwrap();
        assert_eq!(p.literal_prefix(), "");
    }

    #[test]
    fn escape_round_trips() {
        for text in ["plain", "a*b?c[d]e{f,g}h\\i", "-!,"] {
            assert!(m(&Pattern::escape(text), text));
            assert_eq!(
                Pattern::new(&Pattern::escape(text)).unwrap().exact(),
                Some(text)
            );
        }
    }
}
