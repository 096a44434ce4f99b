//! A fault-injecting [`Disk`] for tests: real files underneath, plus
//!
//! - injected failures: the next `n` writes or syncs fail with `EIO`, or the next `n`
//!   writes write only half their bytes and then fail (a short write);
//! - a model of what would survive a power loss: each file's content as of its last
//!   `fsync`/`fdatasync`, under the names the directory had at its last directory sync.
//!   [`Faults::crash_image`] writes that state into another directory, at any moment,
//!   while the store keeps running, so a test can open "the disk after the power went".
//!
//! The model is the strict one the store must survive (ext4 with `data=ordered` is kinder):
//! bytes written but not synced are lost, a created, renamed or removed name is undone
//! unless the directory was synced afterwards.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Disk, DiskFile, FileRef, Mode, OsDisk};

#[derive(Debug, Default)]
struct State {
    next_inode: u64,
    /// Names as they are now.
    live: HashMap<PathBuf, u64>,
    /// Names as of the last directory sync.
    durable: HashMap<PathBuf, u64>,
    /// Each file's content as of its last sync.
    synced: HashMap<u64, Vec<u8>>,
    fail_writes: u32,
    short_writes: u32,
    fail_syncs: u32,
    failures: u64,
}

/// The control panel of a fault-injecting disk, shared by the test and the disk.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    state: Mutex<State>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected I/O error ({what})"))
}

impl Faults {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The disk to hand to the engine.
    pub(crate) fn disk(self: &Arc<Self>) -> Arc<dyn Disk> {
        Arc::new(FaultDisk(self.clone()))
    }

    /// The next `n` writes fail with `EIO`, writing nothing.
    pub(crate) fn fail_writes(&self, n: u32) {
        self.state().fail_writes = n;
    }

    /// The next `n` writes write half their bytes, then fail with `EIO`.
    pub(crate) fn short_writes(&self, n: u32) {
        self.state().short_writes = n;
    }

    /// The next `n` syncs (file or directory) fail with `EIO`; what they should have made
    /// durable is not.
    pub(crate) fn fail_syncs(&self, n: u32) {
        self.state().fail_syncs = n;
    }

    /// Failures injected so far.
    pub(crate) fn failures(&self) -> u64 {
        self.state().failures
    }

    /// Writes into `to` (an empty directory) the files as a power loss now would leave
    /// them: the names of the last directory sync, each with its last synced content.
    pub(crate) fn crash_image(&self, to: &Path) -> io::Result<()> {
        let state = self.state();
        for (path, inode) in &state.durable {
            let name = path.file_name().ok_or_else(|| eio("path has no name"))?;
            let content = state.synced.get(inode).map_or(&[][..], Vec::as_slice);
            std::fs::write(to.join(name), content)?;
        }
        Ok(())
    }

    fn inode_for(&self, path: &Path, mode: Mode) -> io::Result<u64> {
        let mut state = self.state();
        let fresh = matches!(mode, Mode::CreateNew | Mode::Truncate);
        if !fresh {
            if let Some(inode) = state.live.get(path) {
                return Ok(*inode);
            }
        }
        state.next_inode += 1;
        let inode = state.next_inode;
        if !fresh {
            // A file that was there before the test: durable as it is.
            let content = std::fs::read(path)?;
            state.synced.insert(inode, content);
            state.durable.insert(path.to_path_buf(), inode);
        }
        state.live.insert(path.to_path_buf(), inode);
        Ok(inode)
    }
}

#[derive(Debug)]
struct FaultDisk(Arc<Faults>);

#[derive(Debug)]
struct FaultFile {
    inner: FileRef,
    inode: u64,
    faults: Arc<Faults>,
}

impl FaultFile {
    fn sync(&self, what: &str, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        {
            let mut state = self.faults.state();
            if state.fail_syncs > 0 {
                state.fail_syncs -= 1;
                state.failures += 1;
                return Err(eio(what));
            }
        }
        sync()?;
        let len = self.inner.len()?;
        let mut content = vec![0u8; len as usize];
        self.inner.read_exact_at(&mut content, 0)?;
        self.faults.state().synced.insert(self.inode, content);
        Ok(())
    }
}

impl DiskFile for FaultFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let short = {
            let mut state = self.faults.state();
            if state.fail_writes > 0 {
                state.fail_writes -= 1;
                state.failures += 1;
                return Err(eio("write"));
            }
            let short = state.short_writes > 0;
            if short {
                state.short_writes -= 1;
                state.failures += 1;
            }
            short
        };
        if short {
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(eio("short write"));
        }
        self.inner.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync("fdatasync", || self.inner.sync_data())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync("fsync", || self.inner.sync_all())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn links(&self) -> io::Result<u64> {
        self.inner.links()
    }
}

impl Disk for FaultDisk {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<FileRef> {
        let inner = OsDisk.open(path, mode)?;
        let inode = self.0.inode_for(path, mode)?;
        Ok(Arc::new(FaultFile {
            inner,
            inode,
            faults: self.0.clone(),
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsDisk.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsDisk.rename(from, to)?;
        let mut state = self.0.state();
        if let Some(inode) = state.live.remove(from) {
            state.live.insert(to.to_path_buf(), inode);
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        OsDisk.remove(path)?;
        self.0.state().live.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.0.state();
        if state.fail_syncs > 0 {
            state.fail_syncs -= 1;
            state.failures += 1;
            return Err(eio("directory fsync"));
        }
        OsDisk.sync_dir(dir)?;
        let inside: Vec<(PathBuf, u64)> = state
            .live
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        state.durable.retain(|path, _| path.parent() != Some(dir));
        state.durable.extend(inside);
        Ok(())
    }
}
