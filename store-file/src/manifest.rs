//! The manifest file: the store's identity, the highest version it may have handed out
//! (the *ceiling*), and its newest segment. Replaced whole (write a temporary file, sync,
//! rename, sync the directory), so a crash leaves the old one or the new one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::disk::{Disk, Mode};
use crate::format::{HeaderProblem, Manifest, StoreId, MANIFEST_LEN};

/// The manifest's file name.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
/// Where a new manifest is written before it is renamed over the old one.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";

/// Versions are reserved this many at a time: the ceiling in the manifest is raised to the
/// highest version written plus this, so a raise (a small file write and three syncs) costs
/// once per million versions, and a store that lost its newest writes skips at most this
/// many versions when it reopens.
pub(crate) const VERSION_BLOCK: u64 = 1 << 20;

/// How far the versions skip ahead when the manifest itself was lost and rebuilt with
/// [`FileOptions::skip_corrupt_frames`](crate::FileOptions::skip_corrupt_frames): the
/// highest version handed out cannot be proven then, and a reservation was at most one
/// block above a version on disk unless many raises were lost together.
pub(crate) const LOST_MANIFEST_SKIP: u64 = 1 << 32;

/// A new, random store identity: std's `RandomState` is seeded from the operating
/// system's random source; the time and process id are mixed in for good measure.
pub(crate) fn new_store_id() -> StoreId {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = [0u8; 16];
    for (i, half) in id.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_usize(i);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    id
}

/// Prints a store id as 32 hex digits, for messages.
pub(crate) fn show_id(id: &StoreId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest in `dir`: `Ok(None)` when there is none, `Err` (with the problem) when
/// there is one that cannot be read as a manifest of this format.
pub(crate) fn read(
    disk: &dyn Disk,
    dir: &Path,
) -> io::Result<Option<std::result::Result<Manifest, HeaderProblem>>> {
    let path = dir.join(MANIFEST_FILE);
    let file = match disk.open(&path, Mode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len()?;
    let mut bytes = vec![0u8; (len as usize).min(MANIFEST_LEN)];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(Some(Manifest::decode(&bytes)))
}

/// Replaces the manifest in `dir` with `manifest`, durably.
pub(crate) fn write(disk: &dyn Disk, dir: &Path, manifest: &Manifest) -> io::Result<()> {
    let tmp = dir.join(MANIFEST_TMP);
    let file = disk.open(&tmp, Mode::Truncate)?;
    file.write_all_at(&manifest.encode(), 0)?;
    file.sync_all()?;
    drop(file);
    disk.rename(&tmp, &dir.join(MANIFEST_FILE))?;
    disk.sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_differ() {
        let a = new_store_id();
        let b = new_store_id();
        assert_ne!(a, b);
        assert_eq!(show_id(&a).len(), 32);
    }
}
