//! The compiled automaton: a Thompson NFA whose size is linear in the pattern, built and
//! explored without recursion.

use super::class::{Alphabet, Class};
use super::parse::Item;

#[derive(Clone, Copy, Debug)]
pub(super) enum Inst {
    /// Consumes this character, then goes on at the next instruction.
    Char(char),
    /// Consumes a character of the class (an index into [`Program::classes`]).
    Class(u32),
    /// Consumes any one character (`?`).
    AnyChar,
    /// `*`: consumes any character and stays, or goes on at the next instruction at once.
    ///
    /// Every instruction from `from` up to the star belongs to the items before it in the
    /// same sequence, so every path from them to the end passes through the star: while the
    /// star is active they add nothing (the star can be wherever they would get to it, and
    /// later), and states leave them out, which keeps states small and few for patterns full
    /// of stars.
    Star {
        from: u32,
    },
    /// Goes on at every target at once: `targets[start..start + len]` (one per alternative).
    Fork {
        start: u32,
        len: u32,
    },
    /// Goes on at the target (the end of an alternative jumps past its group).
    Jump(u32),
    Match,
}

impl Inst {
    /// Whether the instruction waits for a character (or accepts): those are the ones a DFA
    /// state records.
    fn is_stop(self) -> bool {
        matches!(
            self,
            Inst::Char(_) | Inst::Class(_) | Inst::AnyChar | Inst::Star { .. } | Inst::Match
        )
    }
}

#[derive(Debug)]
pub(super) struct Program {
    insts: Box<[Inst]>,
    targets: Box<[u32]>,
    classes: Box<[Class]>,
    pub(super) alphabet: Alphabet,
    /// Bitsets over instructions for the bit-parallel simulation: the stars, and every
    /// instruction that leads on without a character (stars, forks, jumps).
    pub(super) star_bits: Box<[u64]>,
    pub(super) epsilon_bits: Box<[u64]>,
}

/// One open group while compiling.
struct Frame {
    fork: usize,
    targets: Vec<u32>,
    jumps: Vec<usize>,
    /// The enclosing sequence's start, restored at `}`.
    outer_start: u32,
}

impl Program {
    /// Compiles parsed items (balanced `Open`/`Separator`/`Close`, as the parser guarantees).
    pub(super) fn compile(items: &[Item], classes: Vec<Class>) -> Self {
        let mut insts = Vec::with_capacity(items.len() + 1);
        let mut targets = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        // Where the sequence being compiled starts: the pattern, or the current alternative.
        let mut sequence_start = 0u32;
        for item in items {
            match *item {
                Item::Literal(c) => insts.push(Inst::Char(c)),
                Item::AnyChar => insts.push(Inst::AnyChar),
                Item::Star => insts.push(Inst::Star {
                    from: sequence_start,
                }),
                Item::Class(index) => insts.push(Inst::Class(index)),
                Item::Open => {
                    let fork = insts.len();
                    insts.push(Inst::Fork { start: 0, len: 0 });
                    frames.push(Frame {
                        fork,
                        targets: vec![(fork + 1) as u32],
                        jumps: Vec::new(),
                        outer_start: sequence_start,
                    });
                    sequence_start = (fork + 1) as u32;
                }
                Item::Separator => {
                    let frame = frames.last_mut().expect(
                        "the parser emits `,` as a Separator only inside an open `{` group",
                    );
                    frame.jumps.push(insts.len());
                    insts.push(Inst::Jump(0));
                    frame.targets.push(insts.len() as u32);
                    sequence_start = insts.len() as u32;
                }
                Item::Close => {
                    let frame = frames
                        .pop()
                        .expect("the parser emits `}` as a Close only inside an open `{` group");
                    let end = insts.len() as u32;
                    for jump in frame.jumps {
                        insts[jump] = Inst::Jump(end);
                    }
                    insts[frame.fork] = Inst::Fork {
                        start: targets.len() as u32,
                        len: frame.targets.len() as u32,
                    };
                    targets.extend(frame.targets);
                    sequence_start = frame.outer_start;
                }
            }
        }
        debug_assert!(frames.is_empty());
        insts.push(Inst::Match);
        let literals = insts.iter().filter_map(|inst| match inst {
            Inst::Char(c) => Some((*c, *c)),
            _ => None,
        });
        let ranges = classes
            .iter()
            .flat_map(|class| class.ranges().iter().copied());
        let alphabet = Alphabet::new(literals.chain(ranges));
        let words = insts.len().div_ceil(64);
        let mut star_bits = vec![0u64; words].into_boxed_slice();
        let mut epsilon_bits = vec![0u64; words].into_boxed_slice();
        for (pc, inst) in insts.iter().enumerate() {
            let bit = 1u64 << (pc % 64);
            match inst {
                Inst::Star { .. } => {
                    star_bits[pc / 64] |= bit;
                    epsilon_bits[pc / 64] |= bit;
                }
                Inst::Fork { .. } | Inst::Jump(_) => epsilon_bits[pc / 64] |= bit,
                _ => {}
            }
        }
        Self {
            star_bits,
            epsilon_bits,
            insts: insts.into_boxed_slice(),
            targets: targets.into_boxed_slice(),
            classes: classes.into_boxed_slice(),
            alphabet,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.insts.len()
    }

    pub(super) fn inst(&self, pc: usize) -> Inst {
        self.insts[pc]
    }

    pub(super) fn fork_targets(&self, start: u32, len: u32) -> &[u32] {
        &self.targets[start as usize..(start + len) as usize]
    }

    /// Whether the instruction at `pc` consumes `c` (stars consume every character).
    pub(super) fn consumes(&self, pc: usize, c: char) -> bool {
        match self.insts[pc] {
            Inst::Char(expected) => expected == c,
            Inst::Class(index) => self.classes[index as usize].matches(c),
            Inst::AnyChar | Inst::Star { .. } => true,
            Inst::Fork { .. } | Inst::Jump(_) | Inst::Match => false,
        }
    }

    pub(super) fn match_pc(&self) -> u32 {
        (self.insts.len() - 1) as u32
    }

    /// The start state: every instruction reachable from the first without a character.
    pub(super) fn start(&self, scratch: &mut Scratch, steps: &mut u64) -> Vec<u32> {
        scratch.set.clear();
        self.close_over(0, scratch, steps);
        scratch.sorted_stops(self, steps)
    }

    /// The state after reading a character of the group `c` stands for, from `state` (sorted
    /// stop instructions). The work done is counted in `steps`: `|state|`, one per
    /// instruction popped while closing over (at most `|state| + instructions + fork
    /// targets`, and there are fewer fork targets than instructions), and two per
    /// instruction reached (sorting and pruning): at most 6 per instruction in all.
    pub(super) fn step(
        &self,
        state: &[u32],
        c: char,
        scratch: &mut Scratch,
        steps: &mut u64,
    ) -> Vec<u32> {
        scratch.set.clear();
        for &pc in state {
            *steps += 1;
            let next = match self.insts[pc as usize] {
                Inst::Char(expected) if expected == c => pc + 1,
                Inst::Class(index) if self.classes[index as usize].matches(c) => pc + 1,
                Inst::AnyChar => pc + 1,
                Inst::Star { .. } => pc,
                _ => continue,
            };
            self.close_over(next, scratch, steps);
        }
        scratch.sorted_stops(self, steps)
    }

    /// Adds `pc` and everything reachable from it without reading a character.
    fn close_over(&self, pc: u32, scratch: &mut Scratch, steps: &mut u64) {
        scratch.stack.clear();
        scratch.stack.push(pc);
        while let Some(pc) = scratch.stack.pop() {
            *steps += 1;
            if !scratch.set.insert(pc) {
                continue;
            }
            match self.insts[pc as usize] {
                Inst::Star { .. } => scratch.stack.push(pc + 1),
                Inst::Jump(target) => scratch.stack.push(target),
                Inst::Fork { start, len } => {
                    let targets = &self.targets[start as usize..(start + len) as usize];
                    scratch.stack.extend(targets.iter().rev());
                }
                _ => {}
            }
        }
    }
}

/// Working memory for [`Program::step`], sized once for the program.
#[derive(Debug)]
pub(super) struct Scratch {
    set: SparseSet,
    stack: Vec<u32>,
}

impl Scratch {
    pub(super) fn new(program: &Program) -> Self {
        Self {
            set: SparseSet::new(program.len()),
            stack: Vec::new(),
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.set.sparse.len() * 8 + self.stack.capacity() * 4
    }

    /// The state: the stop instructions reached, sorted, without those an active star
    /// makes redundant (see [`Inst::Star`]).
    fn sorted_stops(&self, program: &Program, steps: &mut u64) -> Vec<u32> {
        let mut state: Vec<u32> = self
            .set
            .dense
            .iter()
            .copied()
            .filter(|&pc| program.insts[pc as usize].is_stop())
            .collect();
        state.sort_unstable();
        *steps += 2 * self.set.dense.len() as u64;
        // From the highest down: an instruction is redundant when an active star after it
        // covers it, that is when it is at or after the lowest `from` seen so far.
        let mut covered_from = u32::MAX;
        let mut kept = state.len();
        for i in (0..state.len()).rev() {
            let pc = state[i];
            if pc >= covered_from {
                continue;
            }
            if let Inst::Star { from } = program.insts[pc as usize] {
                covered_from = covered_from.min(from);
            }
            kept -= 1;
            state[kept] = pc;
        }
        state.drain(..kept);
        state
    }
}

/// A set of instruction indices with O(1) insertion and clearing.
#[derive(Debug)]
struct SparseSet {
    dense: Vec<u32>,
    sparse: Box<[u32]>,
}

impl SparseSet {
    fn new(n: usize) -> Self {
        Self {
            dense: Vec::with_capacity(n),
            sparse: vec![0; n].into_boxed_slice(),
        }
    }

    fn insert(&mut self, pc: u32) -> bool {
        let slot = self.sparse[pc as usize] as usize;
        if slot < self.dense.len() && self.dense[slot] == pc {
            return false;
        }
        self.sparse[pc as usize] = self.dense.len() as u32;
        self.dense.push(pc);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }
}
