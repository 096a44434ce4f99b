//! Scratch directories for the on-disk stores: the file and cache targets and the
//! `fdatasync-log`, `redb` and `file` baselines.
//!
//! A run makes one fresh directory, `store-bench-XXXXXX`, inside `--dir` (default: the
//! system's temporary directory) the first time a store needs one, gives every store its own
//! subdirectory in it, removes each subdirectory as soon as its store is done (so a full run
//! never holds more than one workload's data) and removes the whole directory at the end.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tempfile::TempDir;

/// The run's scratch directory, made on first use.
pub struct Scratch {
    parent: PathBuf,
    root: Mutex<Option<TempDir>>,
    next: AtomicUsize,
}

impl Scratch {
    /// A scratch area inside `parent`; nothing is created yet.
    pub fn new(parent: PathBuf) -> Self {
        Self {
            parent,
            root: Mutex::new(None),
            next: AtomicUsize::new(0),
        }
    }

    /// A new, empty directory for one store, removed when the returned value is dropped.
    pub fn fresh(&self, name: &str) -> io::Result<StoreDir> {
        let root = {
            let mut root = self.root.lock().unwrap_or_else(|p| p.into_inner());
            if root.is_none() {
                let dir = tempfile::Builder::new()
                    .prefix("store-bench-")
                    .tempdir_in(&self.parent)
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot make a scratch directory in {} (see --dir): {e}",
                                self.parent.display()
                            ),
                        )
                    })?;
                *root = Some(dir);
            }
            root.as_ref().map(|dir| dir.path().to_path_buf())
        };
        let root = root.unwrap_or_else(|| unreachable!("the root was just made"));
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("{number:02}-{name}"));
        std::fs::create_dir(&path)?;
        Ok(StoreDir { path })
    }
}

/// One store's directory; removed (with everything in it) on drop.
#[derive(Debug)]
pub struct StoreDir {
    path: PathBuf,
}

impl StoreDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        // Best effort: the whole scratch directory is removed at the end anyway.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_made_lazily_and_removed() {
        let parent = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(parent.path().to_path_buf());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
        let a = scratch.fresh("a").unwrap();
        let b = scratch.fresh("a").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("x"), b"x").unwrap();
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists());
        assert!(b.path().exists());
        drop(b);
        drop(scratch);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }
}
