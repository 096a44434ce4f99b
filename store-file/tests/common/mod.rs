//! Helpers shared by the store-file integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use store_file::{FileOptions, SyncPolicy};

/// A small deterministic PRNG (splitmix64), seeded from the clock unless `STORE_FILE_SEED`
/// is set; tests print the seed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(label: &str) -> Self {
        let seed = std::env::var("STORE_FILE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{label}: STORE_FILE_SEED={seed}");
        Rng(seed)
    }

    pub fn seeded(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Options for tests that are not about durability: no fsync, so they run fast.
pub fn fast() -> FileOptions {
    FileOptions {
        sync: SyncPolicy::Never,
        ..Default::default()
    }
}

/// The segment files in `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("seg-") && name.ends_with(".log")
        })
        .collect();
    files.sort();
    files
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A fresh directory that is not removed at the end (for stores that outlive the test's
/// scope); lives under the system temp dir.
pub fn kept_dir() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}
