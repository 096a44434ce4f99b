//! A lazily built DFA over the program, in a cache of bounded size.
//!
//! Each DFA state is a set of NFA instructions; a transition is computed from the NFA the
//! first time it is needed (work bounded by the program size) and then costs one table
//! lookup. When the cache outgrows [`CACHE_BYTES`] it is emptied and rebuilt as matching goes
//! on, so memory stays bounded even for patterns whose full DFA would be exponential, and the
//! work per character stays bounded by the cost of one NFA step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::bits::BitSim;
use super::program::{Program, Scratch};

/// The most memory one cache may hold before it is emptied (per thread matching at once).
/// Fuzzing uses a tiny cache so that emptying it, and the fallback, happen all the time.
pub(super) const CACHE_BYTES: usize = if cfg!(fuzzing) { 2 << 10 } else { 1 << 20 };

/// How many idle caches a pattern keeps for later calls.
const POOLED_CACHES: usize = 2;

/// A key that thrashes the cache finishes on the bit-parallel simulation when that is
/// cheaper, and so do the next [`BIT_KEYS`] keys before the DFA is tried again. Thrashing:
/// the cache was emptied during this key and, after [`WARM_UP`] misses, more than one
/// character in [`MISS_RATIO`] missed. Cheaper: a miss cost more steps on average than a
/// bit-parallel step's word passes.
const MISS_RATIO: u64 = 4;
const WARM_UP: u64 = if cfg!(fuzzing) { 2 } else { 64 };
const BIT_KEYS: u32 = 16;

const UNKNOWN: u32 = u32::MAX;
/// The state with no instructions left: nothing can match any more.
const DEAD: u32 = 0;

/// A compiled program with a pool of caches, so `&self` matching works from many threads.
pub(super) struct Matcher {
    program: Arc<Program>,
    caches: Mutex<Vec<Cache>>,
}

/// Shows the automaton's size, not its caches (up to megabytes of transitions).
impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("instructions", &self.program.len())
            .field("alphabet_groups", &self.program.alphabet.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Matcher {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.program))
    }
}

impl Matcher {
    pub(super) fn new(program: Arc<Program>) -> Self {
        Self {
            program,
            caches: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn program(&self) -> &Program {
        &self.program
    }

    /// Like [`Matcher::matches`], on the bit-parallel simulation only.
    #[cfg(test)]
    pub(super) fn matches_on_bits(&self, text: &str, steps: &mut u64) -> bool {
        Cache::matches_on_bits(&self.program, text, steps)
    }

    /// Whether the whole of `text` is accepted; `steps` grows by the work done.
    pub(super) fn matches(&self, text: &str, steps: &mut u64) -> bool {
        // The lock is held only to take and return a cache, never while matching.
        let pooled = self.pool().pop();
        let mut cache = pooled.unwrap_or_else(|| Cache::new(&self.program));
        let matched = cache.run(&self.program, text, steps);
        let mut caches = self.pool();
        if caches.len() < POOLED_CACHES {
            caches.push(cache);
        }
        matched
    }

    /// The idle caches. Only whole caches are in the pool (one is taken out before it is
    /// used and put back after), so a panic cannot leave a half-updated cache in it, and a
    /// poisoned pool is still right.
    fn pool(&self) -> MutexGuard<'_, Vec<Cache>> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Cache {
    /// `transitions[state * groups + group]`, [`UNKNOWN`] until computed.
    transitions: Vec<u32>,
    /// The sorted NFA instructions of each state; shared with `ids`.
    states: Vec<Arc<[u32]>>,
    ids: HashMap<Arc<[u32]>, u32>,
    start: Option<u32>,
    groups: usize,
    bytes: usize,
    scratch: Scratch,
    bits: BitSim,
    /// Keys left to run on `bits` straight away, after one thrashed the cache.
    bit_keys: u32,
    /// How many times the cache was emptied to make room.
    emptied: u64,
}

impl Cache {
    fn new(program: &Program) -> Self {
        let mut cache = Self {
            transitions: Vec::new(),
            states: Vec::new(),
            ids: HashMap::new(),
            start: None,
            groups: program.alphabet.len(),
            bytes: 0,
            scratch: Scratch::new(program),
            bits: BitSim::new(program),
            bit_keys: 0,
            emptied: 0,
        };
        cache.clear();
        cache
    }

    fn clear(&mut self) {
        self.transitions.clear();
        self.states.clear();
        self.ids.clear();
        self.start = None;
        self.bytes = self.scratch.heap_bytes() + self.bits.heap_bytes();
        let dead = self.add(Vec::new());
        debug_assert_eq!(dead, Some(DEAD));
    }

    /// The id of `state`, adding it if it is new; `None` when the cache had to be emptied to
    /// make room (ids handed out before are then invalid).
    fn add(&mut self, state: Vec<u32>) -> Option<u32> {
        if let Some(&id) = self.ids.get(state.as_slice()) {
            return Some(id);
        }
        // The row, the set (one allocation shared by both maps) and the map's entry.
        let cost = self.groups * 4 + state.len() * 4 + 96;
        let emptied = self.states.len() > 1 && self.bytes + cost > CACHE_BYTES;
        if emptied {
            self.clear();
            self.emptied += 1;
        }
        let id = self.states.len() as u32;
        let state: Arc<[u32]> = state.into();
        self.states.push(Arc::clone(&state));
        self.ids.insert(state, id);
        self.transitions
            .extend(std::iter::repeat_n(UNKNOWN, self.groups));
        self.bytes += cost;
        if emptied {
            None
        } else {
            Some(id)
        }
    }

    fn start(&mut self, program: &Program, steps: &mut u64) -> u32 {
        if let Some(start) = self.start {
            return start;
        }
        let state = program.start(&mut self.scratch, steps);
        let id = match self.add(state.clone()) {
            Some(id) => id,
            None => self.ids[state.as_slice()],
        };
        self.start = Some(id);
        id
    }

    fn run(&mut self, program: &Program, text: &str, steps: &mut u64) -> bool {
        let match_pc = program.match_pc();
        let mut state = self.start(program, steps);
        if self.bit_keys > 0 {
            self.bit_keys -= 1;
            return self.finish_on_bits(program, state, text, steps);
        }
        let (mut read, mut misses, mut miss_steps) = (0u64, 0u64, 0u64);
        let emptied_before = self.emptied;
        let bit_step_cost = 4 * program.len().div_ceil(64) as u64;
        for (at, c) in text.char_indices() {
            if state == DEAD {
                return false;
            }
            if misses > WARM_UP
                && misses * MISS_RATIO > read
                && self.emptied > emptied_before
                && miss_steps > misses * bit_step_cost
            {
                self.bit_keys = BIT_KEYS;
                return self.finish_on_bits(program, state, &text[at..], steps);
            }
            read += 1;
            *steps += 1;
            let group = program.alphabet.group(c);
            let slot = state as usize * self.groups + group;
            let mut next = self.transitions[slot];
            if next == UNKNOWN {
                misses += 1;
                let before = *steps;
                let from = Arc::clone(&self.states[state as usize]);
                let representative = program.alphabet.representative(group);
                let to = program.step(&from, representative, &mut self.scratch, steps);
                miss_steps += *steps - before;
                next = match self.add(to.clone()) {
                    Some(id) => {
                        self.transitions[slot] = id;
                        id
                    }
                    // `state` was dropped with the rest; only the new state is known.
                    None => self.ids[to.as_slice()],
                };
            }
            state = next;
        }
        self.states[state as usize].last() == Some(&match_pc)
    }

    /// Matches on the bit-parallel simulation alone, so tests can compare the two engines.
    #[cfg(test)]
    pub(super) fn matches_on_bits(program: &Program, text: &str, steps: &mut u64) -> bool {
        let mut cache = Cache::new(program);
        let start = cache.start(program, steps);
        cache.finish_on_bits(program, start, text, steps)
    }

    fn finish_on_bits(
        &mut self,
        program: &Program,
        state: u32,
        text: &str,
        steps: &mut u64,
    ) -> bool {
        self.bits.load(&self.states[state as usize], steps);
        for c in text.chars() {
            if !self.bits.step(program, program.alphabet.group(c), steps) {
                return false;
            }
        }
        self.bits.is_match(program)
    }
}
