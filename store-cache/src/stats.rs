//! [`CacheStats`]: counters an operator can export.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the cache's counters.
///
/// ```
/// let stats = store_cache::CacheStats::default();
/// assert_eq!(stats.hit_ratio(), 0.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache (remembered `NotFound`s included).
    pub hits: u64,
    /// Reads that went to the inner store.
    pub misses: u64,
    /// Entries removed to respect `max_capacity` or because they expired.
    pub evictions: u64,
    /// Entries held now (approximate: moka applies pending work lazily).
    pub entries: u64,
    /// Misses whose answer was not installed because a write of a key on the same stripe
    /// started, finished or was in flight meanwhile (the price of never serving a stale
    /// value: the next read of the key misses too).
    pub refused_fills: u64,
}

impl CacheStats {
    /// Hits divided by all reads; 0 when nothing was read.
    ///
    /// ```
    /// let stats = store_cache::CacheStats { hits: 3, misses: 1, ..Default::default() };
    /// assert_eq!(stats.hit_ratio(), 0.75);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) refused_fills: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self, n: u64) {
        self.misses.fetch_add(n, Ordering::Relaxed);
    }
}
