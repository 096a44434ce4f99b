//! Character classes (`[...]`) and the partition of all characters into the few groups a
//! compiled pattern can tell apart.

/// One `[...]` class: gobwas allows either a single range or a list, optionally negated; both
/// are kept as sorted, merged ranges so membership is a binary search.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Class {
    negated: bool,
    ranges: Box<[(char, char)]>,
}

impl Class {
    /// A class of one inclusive range (`[a-z]`, `[!a-z]`).
    pub(super) fn range(negated: bool, lo: char, hi: char) -> Self {
        debug_assert!(lo <= hi);
        Self {
            negated,
            ranges: Box::new([(lo, hi)]),
        }
    }

    /// A class listing characters (`[abc]`, `[!abc]`); duplicates are allowed.
    pub(super) fn list(negated: bool, mut chars: Vec<char>) -> Self {
        chars.sort_unstable();
        chars.dedup();
        let mut ranges: Vec<(char, char)> = Vec::with_capacity(chars.len());
        for c in chars {
            match ranges.last_mut() {
                Some((_, hi)) if u32::from(*hi) + 1 == u32::from(c) => *hi = c,
                _ => ranges.push((c, c)),
            }
        }
        Self {
            negated,
            ranges: ranges.into_boxed_slice(),
        }
    }

    pub(super) fn matches(&self, c: char) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= c);
        let inside = i > 0 && c <= self.ranges[i - 1].1;
        inside != self.negated
    }

    pub(super) fn ranges(&self) -> &[(char, char)] {
        &self.ranges
    }
}

/// The partition of all characters into groups that every instruction of one pattern treats
/// alike, so the lazy DFA needs one transition per group instead of one per character.
#[derive(Clone, Debug)]
pub(super) struct Alphabet {
    /// Sorted first code points of the groups; `starts[0] == 0`.
    starts: Box<[u32]>,
    /// The group of each ASCII character, the common case, without a search.
    ascii: Box<[u32; 128]>,
}

impl Alphabet {
    /// Builds the partition from the boundaries of every literal and class range.
    pub(super) fn new(ranges: impl Iterator<Item = (char, char)>) -> Self {
        let mut starts = vec![0u32];
        for (lo, hi) in ranges {
            starts.push(u32::from(lo));
            let after = u32::from(hi) + 1;
            if after <= u32::from(char::MAX) {
                starts.push(after);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut ascii = Box::new([0u32; 128]);
        for (c, group) in ascii.iter_mut().enumerate() {
            *group = (starts.partition_point(|&s| s <= c as u32) - 1) as u32;
        }
        Self {
            starts: starts.into_boxed_slice(),
            ascii,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }

    #[inline]
    pub(super) fn group(&self, c: char) -> usize {
        let code = u32::from(c);
        match self.ascii.get(code as usize) {
            Some(&group) => group as usize,
            None => self.starts.partition_point(|&s| s <= code) - 1,
        }
    }

    /// A character of `group`, to ask the instructions what they do with the whole group.
    ///
    /// A group can start inside the surrogate gap (just after a range ending at U+D7FF); its
    /// first real character is then U+E000, and a group that ends before U+E000 holds no
    /// character at all, so no key ever reaches it.
    pub(super) fn representative(&self, group: usize) -> char {
        char::from_u32(self.starts[group]).unwrap_or('\u{E000}')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_merges_adjacent_characters() {
        let class = Class::list(false, vec!['c', 'a', 'b', 'x', 'a']);
        assert_eq!(class.ranges(), &[('a', 'c'), ('x', 'x')]);
        assert!(class.matches('b'));
        assert!(!class.matches('d'));
        let negated = Class::list(true, vec!['a']);
        assert!(!negated.matches('a'));
        assert!(negated.matches('é'));
    }

    #[test]
    fn alphabet_groups_split_at_every_boundary() {
        let alphabet = Alphabet::new([('b', 'd'), ('x', 'x'), ('é', 'é')].into_iter());
        assert_eq!(alphabet.group('a'), 0);
        assert_eq!(alphabet.group('b'), alphabet.group('d'));
        assert_ne!(alphabet.group('d'), alphabet.group('e'));
        assert_ne!(alphabet.group('é'), alphabet.group('ê'));
        assert_eq!(alphabet.group('ê'), alphabet.group('日'));
        assert_eq!(alphabet.representative(alphabet.group('c')), 'b');
    }

    #[test]
    fn groups_around_the_surrogate_gap_have_real_representatives() {
        let alphabet = Alphabet::new([('\u{D7FF}', '\u{D7FF}')].into_iter());
        let group = alphabet.group('\u{E000}');
        assert_eq!(alphabet.representative(group), '\u{E000}');
        let top = Alphabet::new([(char::MAX, char::MAX)].into_iter());
        assert_eq!(top.representative(top.group(char::MAX)), char::MAX);
    }
}
