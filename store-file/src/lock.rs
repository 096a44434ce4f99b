//! The advisory lock that keeps a directory to one open store.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use store_core::{Error, Result};

use crate::disk::write_all_at;

/// The lock file's name inside the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// An exclusive advisory lock (`flock` on Unix) on `DIR/LOCK`, held while the store is
/// open. The lock belongs to the open file, so a second open in the same process fails
/// just like one from another process; the operating system drops it when the process
/// dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("opening the lock file {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (the lock file says: {holder})")
                };
                return Err(Error::io(
                    format!(
                        "opening store directory {}: it is already open by another FileStorage \
                         in this or another process{holder}; close that one first",
                        dir.display()
                    ),
                    io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!("{} is locked", path.display()),
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        // Say who holds it, for the next one's error message. Best effort.
        let note = format!("pid {}\n", std::process::id());
        if file.set_len(0).is_ok() {
            let _ = write_all_at(&file, note.as_bytes(), 0);
        }
        Ok(Self { file, path })
    }

    /// For a read-only open: a shared lock on `DIR/LOCK` if the file exists (readers may
    /// share it; a writer holds it exclusively), none when it does not (a store on a
    /// read-only mount, or one never opened for writing). Creates nothing.
    pub(crate) fn acquire_shared(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(LOCK_FILE);
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("opening the lock file {} for reading", path.display()),
                    e,
                ))
            }
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Self { file, path })),
            Err(TryLockError::WouldBlock) => Err(Error::io(
                format!(
                    "opening store directory {} read-only: it is open for writing by another \
                     FileStorage; close that one first (a writer moves and deletes files)",
                    dir.display()
                ),
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("{} is locked", path.display()),
                ),
            )),
            Err(TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
        }
    }

    /// Releases the lock now (dropping does too).
    pub(crate) fn release(self) {
        if let Err(error) = self.file.unlock() {
            tracing::warn!(%error, path = %self.path.display(), "releasing the directory lock failed");
        }
    }
}
