//! Bit-parallel simulation of the program, the fallback when the lazy DFA keeps missing.
//!
//! Patterns such as `*a` followed by many `?` have exponentially many DFA states, each a
//! large set; computing them one by one costs the set's size per character. Here a state is
//! a bitset over the instructions and one character costs a few word operations per 64
//! instructions, plus one step per active star, fork or jump.

use std::collections::HashMap;

use super::program::{Inst, Program};

/// The most memory the per-group consumer masks may hold before they are dropped (tiny
/// when fuzzing, so that dropping them is exercised too).
const MASK_BYTES: usize = if cfg!(fuzzing) { 256 } else { 1 << 20 };

#[derive(Debug)]
pub(super) struct BitSim {
    current: Vec<u64>,
    next: Vec<u64>,
    /// For each alphabet group seen: the instructions that consume its characters.
    masks: HashMap<usize, Box<[u64]>>,
    mask_bytes: usize,
}

impl BitSim {
    pub(super) fn new(program: &Program) -> Self {
        let words = program.len().div_ceil(64);
        Self {
            current: vec![0; words],
            next: vec![0; words],
            masks: HashMap::new(),
            mask_bytes: 0,
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.current.len() * 16 + self.mask_bytes
    }

    /// Starts from a DFA state (its sorted stop instructions).
    pub(super) fn load(&mut self, state: &[u32], steps: &mut u64) {
        self.current.fill(0);
        for &pc in state {
            self.current[pc as usize / 64] |= 1 << (pc % 64);
        }
        *steps += (self.current.len() + state.len()) as u64;
    }

    pub(super) fn is_match(&self, program: &Program) -> bool {
        let pc = program.match_pc() as usize;
        self.current[pc / 64] & (1 << (pc % 64)) != 0
    }

    /// Reads one character of `group`; false when nothing can match any more.
    ///
    /// Counts one step per word for each pass over the bitset, one per instruction followed
    /// without a character and one per word cleared: at most 6 per instruction.
    pub(super) fn step(&mut self, program: &Program, group: usize, steps: &mut u64) -> bool {
        let words = self.current.len();
        self.load_mask(program, group, steps);
        let mask = &self.masks[&group];
        let stars = &program.star_bits;

        // Consume: stars stay, everything else that accepts the character moves on by one.
        let mut carry = 0;
        for w in 0..words {
            let accepting = self.current[w] & mask[w];
            let movers = accepting & !stars[w];
            self.next[w] = (movers << 1) | carry | (accepting & stars[w]);
            carry = movers >> 63;
        }
        *steps += words as u64;

        // Follow every edge that needs no character; all of them lead forward, so one pass
        // in instruction order reaches everything.
        let epsilon = &program.epsilon_bits;
        for w in 0..words {
            let mut pending = self.next[w] & epsilon[w];
            while pending != 0 {
                let pc = w * 64 + pending.trailing_zeros() as usize;
                pending &= pending - 1;
                let mut reach = |target: usize, next: &mut [u64], pending: &mut u64| {
                    *steps += 1;
                    let bit = 1u64 << (target % 64);
                    if next[target / 64] & bit == 0 {
                        next[target / 64] |= bit;
                        if target / 64 == w && epsilon[w] & bit != 0 {
                            *pending |= bit;
                        }
                    }
                };
                match program.inst(pc) {
                    Inst::Star { .. } => reach(pc + 1, &mut self.next, &mut pending),
                    Inst::Jump(target) => reach(target as usize, &mut self.next, &mut pending),
                    Inst::Fork { start, len } => {
                        for &target in program.fork_targets(start, len) {
                            reach(target as usize, &mut self.next, &mut pending);
                        }
                    }
                    _ => {}
                }
            }
        }
        *steps += words as u64;

        // Drop what an active star makes redundant (see `Inst::Star`), from the top down.
        let mut alive = 0;
        for w in (0..words).rev() {
            let mut active = self.next[w] & stars[w];
            while active != 0 {
                let star = w * 64 + 63 - active.leading_zeros() as usize;
                active &= !(1u64 << (star % 64));
                if let Inst::Star { from } = program.inst(star) {
                    *steps += clear_range(&mut self.next, from as usize, star);
                    active &= self.next[w];
                }
            }
            alive |= self.next[w];
        }
        *steps += words as u64;
        std::mem::swap(&mut self.current, &mut self.next);
        alive != 0
    }

    fn load_mask(&mut self, program: &Program, group: usize, steps: &mut u64) {
        if self.masks.contains_key(&group) {
            return;
        }
        let words = self.current.len();
        if self.mask_bytes + words * 8 > MASK_BYTES {
            self.masks.clear();
            self.mask_bytes = 0;
        }
        let c = program.alphabet.representative(group);
        let mut mask = vec![0u64; words].into_boxed_slice();
        for pc in 0..program.len() {
            if program.consumes(pc, c) {
                mask[pc / 64] |= 1 << (pc % 64);
            }
        }
        *steps += program.len() as u64;
        self.mask_bytes += words * 8;
        self.masks.insert(group, mask);
    }
}

/// Clears bits `from..to`; returns the words touched.
fn clear_range(bits: &mut [u64], from: usize, to: usize) -> u64 {
    if from >= to {
        return 0;
    }
    let (first, last) = (from / 64, (to - 1) / 64);
    for (w, word) in bits.iter_mut().enumerate().take(last + 1).skip(first) {
        let lo = if w == first { from % 64 } else { 0 };
        let hi = if w == last { (to - 1) % 64 } else { 63 };
        let span = if hi - lo == 63 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo + 1)) - 1) << lo
        };
        *word &= !span;
    }
    (last - first + 1) as u64
}

#[cfg(test)]
mod tests {
    use super::clear_range;

    #[test]
    fn clear_range_clears_exactly_the_range() {
        for (from, to) in [
            (0, 0),
            (0, 1),
            (3, 64),
            (0, 64),
            (63, 65),
            (5, 190),
            (64, 128),
        ] {
            let mut bits = [u64::MAX; 3];
            clear_range(&mut bits, from, to);
            for i in 0..192 {
                let set = bits[i / 64] & (1 << (i % 64)) != 0;
                assert_eq!(set, !(from..to).contains(&i), "{from}..{to} bit {i}");
            }
        }
    }
}
