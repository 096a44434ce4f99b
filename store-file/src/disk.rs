//! The engine's file I/O, behind two small traits ([`Disk`] for the directory, [`DiskFile`]
//! for one open file), so that tests can put a fault-injecting layer (`disk::faulty`)
//! between the engine and the operating system: failed writes and syncs, short writes, and
//! "power loss" (keep only what reached a sync). Production code uses [`OsDisk`].
//!
//! The traits hold only what the engine needs; everything goes through them except the
//! directory lock and creating the directory itself, which tests do not fault.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// One open file. Every operation is positional, so readers in other threads can share it
/// with the writer (the read view keeps these handles for values on disk).
pub(crate) trait DiskFile: Send + Sync + fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length now.
    fn len(&self) -> io::Result<u64>;
    /// Names the file has in the file system: 0 once it was removed (for example with
    /// its directory) while open. Platforms that cannot tell answer 1.
    fn links(&self) -> io::Result<u64>;
}

/// A shared open file.
pub(crate) type FileRef = Arc<dyn DiskFile>;

/// How [`Disk::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An existing file, for reading only.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// A new file (failing if the name exists), for reading and writing.
    CreateNew,
    /// A file created or emptied, for reading and writing.
    Truncate,
}

/// The directory operations the engine uses.
pub(crate) trait Disk: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<FileRef>;
    /// The names of the entries of `dir` that are valid UTF-8 (others cannot be the
    /// store's and are ignored).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OsDisk;

/// A file of the operating system.
#[derive(Debug)]
pub(crate) struct OsFile(File);

impl OsFile {
    #[cfg(test)]
    pub(crate) fn new(file: File) -> Self {
        Self(file)
    }
}

impl DiskFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_exact_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        write_all_at(&self.0, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn links(&self) -> io::Result<u64> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(self.0.metadata()?.nlink())
        }
        #[cfg(not(unix))]
        {
            Ok(1)
        }
    }
}

impl Disk for OsDisk {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<FileRef> {
        let mut options = OpenOptions::new();
        options.read(true);
        match mode {
            Mode::Read => {}
            Mode::ReadWrite => {
                options.write(true);
            }
            Mode::CreateNew => {
                options.write(true).create_new(true);
            }
            Mode::Truncate => {
                options.write(true).create(true).truncate(true);
            }
        }
        Ok(Arc::new(OsFile(options.open(path)?)))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset` without moving any file cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset` without moving any file cursor.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod faulty;
