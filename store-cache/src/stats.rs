//! [`CacheStats`]: counters an operator can export.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// The cache's counters. Hits and misses are counted on every read, from every worker
/// thread at once: one shared atomic would move its cache line between cores on each read
/// (`perf` put that single increment at 3% of a 64-task hit run), so each is spread over
/// cache-line-sized cells, one per thread slot, and summed when read.
#[derive(Default)]
pub(crate) struct Counters {
    hits: Striped,
    misses: Striped,
    pub(crate) evictions: AtomicU64,
    pub(crate) refused_fills: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self, n: u64) {
        self.hits.add(n);
    }

    pub(crate) fn miss(&self, n: u64) {
        self.misses.add(n);
    }

    pub(crate) fn hits(&self) -> u64 {
        self.hits.sum()
    }

    pub(crate) fn misses(&self) -> u64 {
        self.misses.sum()
    }
}

/// Cells per striped counter: more than the worker threads of a usual runtime, so that
/// threads rarely share one (sharing is correct, only slower).
const CELLS: usize = 16;

/// A counter spread over cells on cache lines of their own.
#[derive(Default)]
struct Striped {
    cells: [Cell; CELLS],
}

/// 128 bytes: a cache line, or the pair of lines that adjacent-line prefetchers fetch
/// together on x86.
#[derive(Default)]
#[repr(align(128))]
struct Cell(AtomicU64);

impl Striped {
    fn add(&self, n: u64) {
        self.cells[thread_slot()].0.fetch_add(n, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.cells
            .iter()
            .map(|cell| cell.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// This thread's cell index: threads take slots in turn as they first count.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % CELLS;
    }
    SLOT.with(|slot| *slot)
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn striped_counts_from_every_thread_add_up() {
        let counters = std::sync::Arc::new(Counters::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let counters = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counters.hit(1);
                    }
                    counters.miss(3);
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread");
        }
        assert_eq!(counters.hits(), 20_000);
        assert_eq!(counters.misses(), 60);
    }
}
