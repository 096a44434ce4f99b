//! The per-key ordering that keeps the cache from ever holding a stale answer.
//!
//! Two races could leave the cache stale within one process:
//!
//! 1. **Fill vs write.** A reader misses, reads `v1` from the inner store, and is slow to fill
//!    the cache; meanwhile a writer stores `v2` and updates the cache. The late fill would put
//!    `v1` back. So every key (by stripe) has a *generation*: a reader notes it before reading
//!    the inner store and fills only if it has not moved; every writer bumps it, under the
//!    same lock, when it updates the cache.
//! 2. **Write vs write.** Two writers of one key finish in a different order than the inner
//!    store applied them (replies wake tasks in any order). The one finishing last would
//!    install the older value. So writers count themselves *in flight*; a writer that
//!    overlapped another (on its stripe) invalidates instead of installing, and the next read
//!    fetches the truth. A writer that ran alone installs its answer, which the inner store
//!    applied after every earlier write.
//!
//! Stripes are `tokio::sync::Mutex`es, held only around cache updates (never across an
//! inner-store call), so an unrelated slow write never blocks a fill. The generation is
//! also kept in an atomic so a miss can note it without taking the lock.
//!
//! A writer's inner call and its cache update run in one spawned task, so a caller that
//! gives up (drops the future) cannot leave a write applied below and not reflected here.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct Stripe {
    generation: AtomicU64,
    writers: Mutex<Writers>,
}

#[derive(Default)]
pub(crate) struct Writers {
    /// Writers that have started and not yet updated the cache.
    in_flight: u32,
    /// Some writers overlapped since `in_flight` was last zero.
    contended: bool,
}

/// A stripe's lock, held while a fill or a writer updates the cache.
pub(crate) struct Locked<'a> {
    stripe: &'a Stripe,
    writers: MutexGuard<'a, Writers>,
}

pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    mask: usize,
}

impl Stripes {
    pub(crate) fn new(count: usize) -> Self {
        let count = count.clamp(1, 1 << 20).next_power_of_two();
        Self {
            stripes: (0..count).map(|_| Stripe::default()).collect(),
            mask: count - 1,
        }
    }

    fn stripe(&self, key: &str) -> &Stripe {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        &self.stripes[hasher.finish() as usize & self.mask]
    }

    /// The generation a miss notes before reading the inner store.
    pub(crate) fn generation(&self, key: &str) -> u64 {
        self.stripe(key).generation.load(Ordering::Acquire)
    }

    pub(crate) async fn lock(&self, key: &str) -> Locked<'_> {
        let stripe = self.stripe(key);
        Locked {
            stripe,
            writers: stripe.writers.lock().await,
        }
    }

    /// Notes a writer starting on `key`; pair with [`Locked::finish_write`].
    pub(crate) async fn start_write(&self, key: &str) {
        let mut locked = self.lock(key).await;
        locked.writers.in_flight += 1;
        if locked.writers.in_flight > 1 {
            locked.writers.contended = true;
        }
    }
}

impl Locked<'_> {
    /// Whether a fill that noted `generation` may still install what it read.
    pub(crate) fn fill_allowed(&self, generation: u64) -> bool {
        self.stripe.generation.load(Ordering::Acquire) == generation
    }

    /// Marks a writer finished; returns whether it may install its answer (it overlapped
    /// no other writer) rather than invalidate.
    pub(crate) fn finish_write(&mut self) -> bool {
        self.stripe.generation.fetch_add(1, Ordering::AcqRel);
        let writers = &mut *self.writers;
        writers.in_flight = writers.in_flight.saturating_sub(1);
        let alone = !writers.contended;
        if writers.in_flight == 0 {
            writers.contended = false;
        }
        alone
    }
}
