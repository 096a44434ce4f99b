//! [`FileValue`]: how readers find a value without asking the actor.

use bytes::Bytes;
use store_core::runtime::StoredValue;
use store_core::{Error, Result};

use crate::disk::{DiskFile, FileRef};
use crate::format::{decode_record, record_checksum_ok, KIND_PUT};

/// A value as the runtime's read view holds it: small values themselves, large ones as a
/// place in a segment file. The file is reference-counted, so a reader holding the handle
/// can still read it after compaction has replaced and deleted the segment.
#[derive(Clone, Debug)]
pub(crate) enum FileValue {
    /// The value, kept in memory.
    Inline(Bytes),
    /// The record holding the value: segment file, its number, byte offset and length.
    OnDisk {
        /// The open segment file.
        file: FileRef,
        /// The segment's number, for error messages.
        segment: u64,
        /// Byte offset of the record in the file.
        offset: u64,
        /// Length of the whole record.
        len: u32,
    },
}

impl StoredValue for FileValue {
    fn load(&self, key: &str, version: u64) -> Result<Bytes> {
        match self {
            FileValue::Inline(value) => Ok(value.clone()),
            FileValue::OnDisk {
                file,
                segment,
                offset,
                len,
            } => read_record_value(
                &**file,
                &format!("segment {segment:#x}"),
                *offset,
                *len,
                key,
                version,
            ),
        }
    }
}

/// Reads the record at `offset` and returns its value, after checking its checksum and
/// that it is the put of `key` with `version`. `place` names the file in errors.
pub(crate) fn read_record_value(
    file: &dyn DiskFile,
    place: &str,
    offset: u64,
    len: u32,
    key: &str,
    version: u64,
) -> Result<Bytes> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset).map_err(|e| {
        let error = Error::io(
            format!("reading key {key:?} from {place} at offset {offset}"),
            e,
        );
        tracing::error!(%error, "read failed");
        error
    })?;
    let corrupt = |why: &str| {
        let error = Error::Corrupt(format!(
            "{place} at offset {offset}: the record of key {key:?} {why}"
        ));
        tracing::error!(%error, "damaged record");
        error
    };
    if !record_checksum_ok(&bytes) {
        return Err(corrupt("fails its checksum"));
    }
    let value_range = match decode_record(&bytes) {
        Ok(r) if r.key == key && r.version == version && r.kind == KIND_PUT => {
            r.value_offset..r.len
        }
        Ok(_) => return Err(corrupt("is not the one the index expects")),
        Err(problem) => return Err(corrupt(problem)),
    };
    Ok(Bytes::from(bytes).slice(value_range))
}
