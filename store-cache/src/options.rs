//! [`CacheOptions`]: how big the cache is and how long entries may live.

use std::time::Duration;

/// Settings for [`CachedStorage`](crate::CachedStorage).
///
/// A plain struct with public fields; start from `Default` and override what you need:
///
/// ```
/// use std::time::Duration;
/// use store_cache::CacheOptions;
/// let options = CacheOptions { ttl: Some(Duration::from_secs(30)), ..Default::default() };
/// assert_eq!(options.max_capacity, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CacheOptions {
    /// Most entries held; the least useful are evicted beyond it (moka's TinyLFU policy).
    pub max_capacity: u64,
    /// Longest time an entry may live, whatever the record's own expiry. It bounds how long
    /// a write made by another process (which this cache cannot see) may go unnoticed.
    /// `None`: entries live until evicted, overwritten or expired.
    pub ttl: Option<Duration>,
    /// Remember `NotFound` answers for at most this long (and never longer than `ttl`).
    /// `None`, the default, turns negative caching off. This process's writes clear a
    /// remembered `NotFound` at once.
    pub negative_ttl: Option<Duration>,
    /// Number of lock stripes that order cache fills against writes (rounded up to a power of
    /// two). More stripes mean fewer unrelated keys share a lock.
    pub stripes: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_capacity: 10_000,
            ttl: None,
            negative_ttl: None,
            stripes: 1024,
        }
    }
}
