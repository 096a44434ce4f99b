//! A small reference for `store_core::Pattern`, written to be obviously correct rather than
//! fast: a recursive-descent parser that follows the gobwas grammar as `glob/mod.rs`
//! documents it (including our deliberate rejections and limits), and a matcher that tracks
//! the set of key positions each part of the pattern can end at.
//!
//! Shared by the differential property test (`tests/glob_gobwas.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/glob.rs`, which includes this file by path), so that neither needs it
//! in the crate's public API. It recurses once per nested group, so callers keep patterns
//! small (the fuzz target caps their length).

#![allow(dead_code)]

use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub enum Node {
    Literal(char),
    AnyChar,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Group(Vec<Vec<Node>>),
}

/// The parsed pattern, or `None` where `Pattern::new` must reject it.
pub fn parse(pattern: &str, max_len: usize, max_nesting: usize) -> Option<Vec<Node>> {
    if pattern.len() > max_len {
        return None;
    }
    let mut parser = Parser {
        chars: pattern.chars().collect(),
        at: 0,
        max_nesting,
    };
    parser.sequence(0)
}

/// Whether the whole `key` matches.
pub fn matches(pattern: &[Node], key: &str) -> bool {
    let key: Vec<char> = key.chars().collect();
    ends(pattern, BTreeSet::from([0]), &key).contains(&key.len())
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    max_nesting: usize,
}

impl Parser {
    fn next(&mut self) -> Option<char> {
        let c = *self.chars.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    /// A sequence up to the end, or inside a group up to (not over) its `,` or `}`.
    fn sequence(&mut self, depth: usize) -> Option<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            let Some(&c) = self.chars.get(self.at) else {
                // An unclosed group is rejected (gobwas would close it silently).
                return (depth == 0).then_some(nodes);
            };
            if depth > 0 && (c == ',' || c == '}') {
                return Some(nodes);
            }
            self.at += 1;
            let node = match c {
                '*' => Node::Star,
                '?' => Node::AnyChar,
                // A trailing `\` is rejected (gobwas would drop it silently).
                '\\' => Node::Literal(self.next()?),
                '[' => self.class()?,
                '{' => {
                    if depth == self.max_nesting {
                        return None;
                    }
                    let mut alternatives = Vec::new();
                    loop {
                        alternatives.push(self.sequence(depth + 1)?);
                        if self.next()? == '}' {
                            break;
                        }
                    }
                    Node::Group(alternatives)
                }
                c => Node::Literal(c),
            };
            nodes.push(node);
        }
    }

    /// After `[`: `!`? then `lo-hi]` when the first raw character is followed by `-`,
    /// else a list up to the first unescaped `]`, which must not be empty.
    fn class(&mut self) -> Option<Node> {
        let mut first = self.next()?;
        let negated = first == '!';
        if negated {
            first = self.next()?;
        }
        if self.chars.get(self.at) == Some(&'-') {
            self.at += 1;
            let hi = self.next()?;
            if self.next()? != ']' || hi < first {
                return None;
            }
            return Some(Node::Class {
                negated,
                ranges: vec![(first, hi)],
            });
        }
        let mut listed = Vec::new();
        let mut c = first;
        loop {
            match c {
                ']' => break,
                '\\' => listed.push(self.next()?),
                c => listed.push(c),
            }
            c = self.next()?;
        }
        if listed.is_empty() {
            return None;
        }
        Some(Node::Class {
            negated,
            ranges: listed.into_iter().map(|c| (c, c)).collect(),
        })
    }
}

/// The positions in `key` where `sequence` can end when it starts at any of `starts`.
fn ends(sequence: &[Node], starts: BTreeSet<usize>, key: &[char]) -> BTreeSet<usize> {
    let mut current = starts;
    for node in sequence {
        let mut next = BTreeSet::new();
        match node {
            Node::Group(alternatives) => {
                for alternative in alternatives {
                    next.extend(ends(alternative, current.clone(), key));
                }
            }
            Node::Star => {
                if let Some(&first) = current.iter().next() {
                    next.extend(first..=key.len());
                }
            }
            _ => {
                for &at in &current {
                    let Some(&c) = key.get(at) else { continue };
                    let accepted = match node {
                        Node::Literal(expected) => c == *expected,
                        Node::AnyChar => true,
                        Node::Class { negated, ranges } => {
                            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                        }
                        Node::Star | Node::Group(_) => unreachable!("handled above"),
                    };
                    if accepted {
                        next.insert(at + 1);
                    }
                }
            }
        }
        current = next;
    }
    current
}
