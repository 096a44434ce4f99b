//! The pattern parser: one pass, no recursion, following gobwas's lexer token by token.
//!
//! The output is a flat list of items in which groups are bracketed by `Open`, `Separator`
//! and `Close`, so that nothing downstream needs recursion either.

use std::collections::HashMap;

use super::class::Class;
use super::{MAX_PATTERN_LEN, MAX_PATTERN_NESTING};

/// One element of a parsed pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Literal(char),
    /// `?`: one character.
    AnyChar,
    /// `*` or `**` (the same without separators); consecutive stars are kept as one.
    Star,
    /// `[...]`: an index into [`Parsed::classes`].
    Class(u32),
    /// `{` opens a group of alternatives, `,` separates them, `}` closes it.
    Open,
    Separator,
    Close,
}

#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) items: Vec<Item>,
    pub(super) classes: Vec<Class>,
}

/// A syntax error: what is wrong and at which character (1-based, in characters).
#[derive(Debug)]
pub(super) struct SyntaxError {
    pub(super) message: String,
    pub(super) position: usize,
}

/// Parses `pattern` (whose size the caller has already checked against [`MAX_PATTERN_LEN`]).
pub(super) fn parse(pattern: &str) -> Result<Parsed, SyntaxError> {
    debug_assert!(pattern.len() <= MAX_PATTERN_LEN);
    Parser {
        chars: pattern.chars(),
        peeked: None,
        position: 0,
        items: Vec::with_capacity(pattern.len().min(1024)),
        classes: Vec::new(),
        class_index: HashMap::new(),
        open_groups: Vec::new(),
    }
    .run()
}

struct Parser<'a> {
    chars: std::str::Chars<'a>,
    peeked: Option<char>,
    /// The 1-based position of the character read last.
    position: usize,
    items: Vec<Item>,
    classes: Vec<Class>,
    class_index: HashMap<Class, u32>,
    /// Where each open `{` is, innermost last (at most [`MAX_PATTERN_NESTING`]).
    open_groups: Vec<usize>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.peeked.take().or_else(|| self.chars.next())?;
        self.position += 1;
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        if self.peeked.is_none() {
            self.peeked = self.chars.next();
        }
        self.peeked
    }

    fn run(mut self) -> Result<Parsed, SyntaxError> {
        while let Some(c) = self.next() {
            let in_group = !self.open_groups.is_empty();
            match c {
                '*' => {
                    if self.items.last() != Some(&Item::Star) {
                        self.items.push(Item::Star);
                    }
                }
                '?' => self.items.push(Item::AnyChar),
                '[' => self.class()?,
                '{' => {
                    if self.open_groups.len() == MAX_PATTERN_NESTING {
                        return Err(self.error(
                            self.position,
                            format!(
                                "`{{` groups nest more than {MAX_PATTERN_NESTING} levels deep \
                                 (the limit)"
                            ),
                        ));
                    }
                    self.open_groups.push(self.position);
                    self.items.push(Item::Open);
                }
                // Outside a group gobwas reads `,` and `}` as ordinary characters.
                ',' if in_group => self.items.push(Item::Separator),
                '}' if in_group => {
                    self.open_groups.pop();
                    self.items.push(Item::Close);
                }
                '\\' => {
                    match self.next() {
                        Some(escaped) => self.items.push(Item::Literal(escaped)),
                        None => return Err(self.error(
                            self.position,
                            "dangling escape `\\` at the end of the pattern (gobwas would drop \
                             it silently; write `\\\\` to match a backslash)"
                                .into(),
                        )),
                    }
                }
                c => self.items.push(Item::Literal(c)),
            }
        }
        if let Some(&open) = self.open_groups.last() {
            return Err(self.error(
                open,
                "unclosed `{` group (gobwas would close it at the end of the pattern \
                 silently; add the missing `}` or escape the `{` as `\\{`)"
                    .into(),
            ));
        }
        Ok(Parsed {
            items: self.items,
            classes: self.classes,
        })
    }

    /// Parses a class after its `[`, the way gobwas's lexer does: an optional `!`, then
    /// either `lo-hi]` (a range only when the very first character, read raw, is followed by
    /// `-`) or a list up to the first unescaped `]`.
    fn class(&mut self) -> Result<(), SyntaxError> {
        let open = self.position;
        let unclosed = |parser: &Self| {
            parser.error(
                open,
                "unclosed `[` class (a `]` must end it; escape a literal `[` as `\\[`)".into(),
            )
        };
        let mut first = self.next().ok_or_else(|| unclosed(self))?;
        let negated = first == '!';
        if negated {
            first = self.next().ok_or_else(|| unclosed(self))?;
        }
        let class = if self.peek() == Some('-') {
            let lo = first;
            let lo_position = self.position;
            self.next();
            let hi = self.next().ok_or_else(|| unclosed(self))?;
            let close = self.next().ok_or_else(|| unclosed(self))?;
            if close != ']' {
                return Err(self.error(
                    self.position,
                    format!(
                        "expected `]` after the range `{lo}-{hi}`, found {close:?}: a class holds \
                         either one range or a list of characters, as in gobwas (write \
                         `{{[a-z],[0-9]}}` for several ranges; in a list, `-` is an ordinary \
                         character)"
                    ),
                ));
            }
            if hi < lo {
                return Err(self.error(
                    lo_position,
                    format!(
                        "reversed range `{lo}-{hi}` in class (write the lower character first)"
                    ),
                ));
            }
            Class::range(negated, lo, hi)
        } else {
            let mut chars = Vec::new();
            let mut current = Some(first);
            loop {
                match current {
                    None => return Err(unclosed(self)),
                    Some(']') => break,
                    Some('\\') => chars.push(self.next().ok_or_else(|| unclosed(self))?),
                    Some(c) => chars.push(c),
                }
                current = self.next();
            }
            if chars.is_empty() {
                return Err(self.error(
                    self.position,
                    "empty character class (it must list at least one character; escape a \
                     literal `[` as `\\[`)"
                        .into(),
                ));
            }
            Class::list(negated, chars)
        };
        // Identical classes share one entry, which keeps repeated `[a-z]` cheap.
        let next = self.classes.len() as u32;
        let index = *self.class_index.entry(class.clone()).or_insert(next);
        if index == next {
            self.classes.push(class);
        }
        self.items.push(Item::Class(index));
        Ok(())
    }

    fn error(&self, position: usize, message: String) -> SyntaxError {
        SyntaxError { message, position }
    }
}
