//! The per-key ordering that keeps the cache linearizable within a process.
//!
//! Every key hashes to a stripe. A stripe has a *generation*, bumped whenever a write of one
//! of its keys starts or finishes, and a count of writes *in flight*. Three rules follow:
//!
//! 1. **A write empties before it writes.** Under the stripe's lock a write counts itself in
//!    flight, bumps the generation and removes its keys' entries, and only then calls the
//!    inner store. So no entry of a key exists while a write of it is in flight, and a hit
//!    can never return a value older than one the inner store (and so any reader that went
//!    there) has already exposed.
//! 2. **Fills cannot undo writes.** A miss notes the generation before it reads the inner
//!    store, and installs what it read only if, under the lock, the generation has not moved
//!    and no write is in flight: nothing was written between its read and its install.
//! 3. **Only a write that ran alone installs its answer.** Replies wake tasks in any order,
//!    so two overlapping writers may finish in the opposite order to the one the store
//!    applied; a writer that overlapped another on its stripe removes the key instead, and
//!    the next read fetches the truth.
//!
//! Locks are `std::sync::Mutex`es held only around these bookkeeping steps and the cache
//! updates they guard (moka's synchronous cache: no `.await` under a lock), never across a
//! call to the inner store. The generation is also kept in an atomic, so a miss and a
//! `get_many` can note it without the lock.
//!
//! A write is finished by a guard (see `WriteGuard` in `layer.rs`), so a panic in the inner
//! store, or a runtime dropping the write's task, still finishes it: the keys are removed and
//! the stripe no longer counts the write in flight.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
#[repr(align(64))]
struct Stripe {
    generation: AtomicU64,
    /// `Writers::in_flight`, readable without the lock (written under it).
    busy: AtomicU32,
    writers: Mutex<Writers>,
}

#[derive(Default)]
struct Writers {
    /// Writes that have started and not finished.
    in_flight: u32,
    /// Some writes overlapped since `in_flight` was last zero.
    contended: bool,
}

pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    mask: usize,
    hasher: RandomState,
}

impl Stripes {
    pub(crate) fn new(count: usize) -> Self {
        let count = count.clamp(1, 1 << 20).next_power_of_two();
        Self {
            stripes: (0..count).map(|_| Stripe::default()).collect(),
            mask: count - 1,
            hasher: RandomState::new(),
        }
    }

    fn stripe(&self, key: &str) -> &Stripe {
        &self.stripes[self.hasher.hash_one(key) as usize & self.mask]
    }

    fn lock(stripe: &Stripe) -> MutexGuard<'_, Writers> {
        // The bookkeeping under the lock cannot be left half-done by a panic (it is a few
        // integer updates), so a poisoned lock's data is still right.
        stripe
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation a miss or a `get_many` notes before reading.
    pub(crate) fn generation(&self, key: &str) -> u64 {
        self.stripe(key).generation.load(Ordering::Acquire)
    }

    /// Whether, now, no write of `key`'s stripe has started or finished since `generation`
    /// was noted and none is in flight. A `get_many` checks it after its reads: a hit read
    /// just before a write started removing it (the write counts itself, then removes the
    /// entry) would otherwise pass for current while the write is already applied below.
    pub(crate) fn quiet_since(&self, key: &str, generation: u64) -> bool {
        let stripe = self.stripe(key);
        stripe.generation.load(Ordering::Acquire) == generation
            && stripe.busy.load(Ordering::Acquire) == 0
    }

    /// Starts a write of `key`: counts it in flight and runs `remove` (which takes the key's
    /// entry out of the cache) under the stripe's lock.
    pub(crate) fn start_write(&self, key: &str, remove: impl FnOnce()) {
        let stripe = self.stripe(key);
        let mut writers = Self::lock(stripe);
        writers.in_flight += 1;
        if writers.in_flight > 1 {
            writers.contended = true;
        }
        stripe.busy.store(writers.in_flight, Ordering::Release);
        stripe.generation.fetch_add(1, Ordering::AcqRel);
        remove();
    }

    /// Finishes a write of `key`: runs `update(alone)` under the stripe's lock, where `alone`
    /// says whether the write overlapped no other on the stripe (and so may install its
    /// answer rather than remove the key).
    pub(crate) fn finish_write(&self, key: &str, update: impl FnOnce(bool)) {
        let stripe = self.stripe(key);
        let mut writers = Self::lock(stripe);
        stripe.generation.fetch_add(1, Ordering::AcqRel);
        writers.in_flight = writers.in_flight.saturating_sub(1);
        stripe.busy.store(writers.in_flight, Ordering::Release);
        let alone = !writers.contended && writers.in_flight == 0;
        if writers.in_flight == 0 {
            writers.contended = false;
        }
        update(alone);
    }

    /// Runs `install` under the stripe's lock if no write of the stripe started or finished
    /// since `generation` was noted and none is in flight; returns whether it ran.
    pub(crate) fn fill(&self, key: &str, generation: u64, install: impl FnOnce()) -> bool {
        let stripe = self.stripe(key);
        let writers = Self::lock(stripe);
        let quiet =
            writers.in_flight == 0 && stripe.generation.load(Ordering::Acquire) == generation;
        if quiet {
            install();
        }
        quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_noted_before_a_write_is_refused() {
        let stripes = Stripes::new(1);
        let noted = stripes.generation("k");
        stripes.start_write("k", || {});
        assert!(!stripes.fill("k", noted, || {}), "a write is in flight");
        stripes.finish_write("k", |alone| assert!(alone));
        assert!(!stripes.fill("k", noted, || {}), "a write happened since");
        let fresh = stripes.generation("k");
        assert!(stripes.fill("k", fresh, || {}));
    }

    #[test]
    fn a_reader_that_noted_a_started_write_does_not_pass_for_quiet() {
        // A get_many notes the generation just after a write bumped it and before the write
        // removed the entry, so its lookup still hits the old value; the write is then
        // applied below. Its final check must see the write.
        let stripes = Stripes::new(1);
        let mut noted = None;
        stripes.start_write("b", || noted = Some(stripes.generation("b")));
        let noted = noted.unwrap();
        assert!(
            !stripes.quiet_since("b", noted),
            "a write in flight passed for quiet"
        );
        stripes.finish_write("b", |_| {});
        assert!(
            !stripes.quiet_since("b", noted),
            "a finished write passed for quiet"
        );
        let fresh = stripes.generation("b");
        assert!(stripes.quiet_since("b", fresh));
    }

    #[test]
    fn overlapping_writers_do_not_install() {
        let stripes = Stripes::new(1);
        stripes.start_write("a", || {});
        stripes.start_write("b", || {});
        stripes.finish_write("a", |alone| assert!(!alone));
        stripes.finish_write("b", |alone| assert!(!alone));
        // Once quiet, a lone writer installs again.
        stripes.start_write("a", || {});
        stripes.finish_write("a", |alone| assert!(alone));
    }
}
