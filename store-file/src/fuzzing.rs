//! Entry points for the cargo-fuzz targets in `store-file/fuzz` (feature `fuzzing`; not a
//! public API). Each takes arbitrary bytes and must never panic, hang or return a value
//! that fails its checksum.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::disk::{Disk, DiskFile, OsDisk};
use crate::format::{
    decode_frame_header, decode_record, encode_frame_header, encode_record, Manifest, Records,
    SegmentHeader, FRAME_HEADER_LEN, HEADER_LEN, KIND_COMPACTED, KIND_LOG,
};
use crate::index::RECLAIMED;
use crate::scan::{walk, Walk};
use crate::segment::segment_file_name;
use crate::value::read_record_value;
use crate::FileOptions;

/// A file held in memory, for the frame scanner.
#[derive(Debug)]
struct MemFile(Vec<u8>);

impl DiskFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .filter(|end| *end <= self.0.len())
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self.0[start..end]);
        Ok(())
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn sync_all(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn set_len(&self, _: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn links(&self) -> std::io::Result<u64> {
        Ok(1)
    }
}

/// The decoders and the frame scanner over raw bytes: headers, a frame header, a record,
/// and a walk over `data` as a segment body with each damage policy. Every record the walk
/// hands out must decode again from its raw bytes to the same record.
pub fn decode(data: &[u8]) {
    let _ = SegmentHeader::decode(data);
    let _ = Manifest::decode(data);
    let _ = decode_frame_header(data);
    let _ = decode_record(data);
    for record in Records::new(data, 4).take(8) {
        let _ = record;
    }
    let file = MemFile(data.to_vec());
    for (tail, skip_corrupt) in [(true, false), (false, false), (true, true)] {
        let how = Walk {
            path: std::path::Path::new("fuzz"),
            by: "fuzzing",
            tail,
            skip_corrupt,
            cancel: None,
        };
        let mut skipped = 0;
        let _ = walk(
            &file,
            0,
            data.len() as u64,
            &how,
            &mut skipped,
            &mut |_, record, raw| {
                let again = decode_record(raw).expect("a visited record decodes again");
                assert_eq!(&again, record);
                Ok(())
            },
        );
    }
}

static RUN: AtomicU64 = AtomicU64::new(0);

/// A scratch directory for one run, removed first if a run before left it.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "store-file-fuzz-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed) % 4
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the fuzz scratch directory");
    dir
}

/// Reads bytes off the front of the fuzz input.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

const STORE_ID: [u8; 16] = *b"fuzzing-store-id";

/// Recovery over a store directory built from `data`: one or two segments of well-formed
/// frames (made from the input's records, with valid checksums) then damaged at places the
/// input picks, or a valid header followed by raw input bytes. Recovery must return an
/// error or a store whose every value reads back (or fails with an error); never panic.
pub fn recover(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let options = FileOptions {
        skip_corrupt_frames: flags & 1 != 0,
        read_only: flags & 2 != 0,
        cache_values_up_to: if flags & 4 != 0 { 0 } else { 16 },
        ..FileOptions::default()
    };
    let segments = if flags & 8 != 0 { 2 } else { 1 };
    let raw = flags & 16 != 0;
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut version = 0u64;
    for id in 1..=segments as u64 {
        let prev_len = files.last().map_or(0, |f: &Vec<u8>| f.len() as u64);
        // With flag 32 the first segment is a compacted one (its "covers from" taken from
        // the input, so it may claim anything).
        let compacted = flags & 32 != 0 && id == 1;
        let mut header = SegmentHeader {
            id,
            kind: if compacted { KIND_COMPACTED } else { KIND_LOG },
            covers_from: if compacted {
                u64::from(input.byte() % 3)
            } else {
                id
            },
            base_version: version,
            store_id: STORE_ID,
            prev: id - 1,
            prev_len,
            sealed_len: 0,
        };
        let mut bytes = header.encode().to_vec();
        if raw {
            let n = usize::from(input.byte()) * 8;
            bytes.extend_from_slice(input.take(n));
        } else {
            let frames = input.byte() % 8;
            for _ in 0..frames {
                let start = bytes.len();
                bytes.resize(start + FRAME_HEADER_LEN, 0);
                let records = input.byte() % 4 + 1;
                for _ in 0..records {
                    let kind = if input.byte() % 4 == 0 { 2 } else { 1 };
                    let key_len = usize::from(input.byte() % 8) + 1;
                    let key: String = input
                        .take(key_len)
                        .iter()
                        .map(|b| char::from(b'a' + b % 26))
                        .collect();
                    let key = if key.is_empty() { "k".to_owned() } else { key };
                    let value_len = usize::from(input.byte());
                    let value = input.take(value_len).to_vec();
                    version += u64::from(input.byte() % 3);
                    let expiry = (input.byte() % 8 == 0)
                        .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_secs(version));
                    let _ = encode_record(&mut bytes, kind, version, expiry, &key, &value);
                }
                let (head, payload) = bytes[start..].split_at_mut(FRAME_HEADER_LEN);
                encode_frame_header(head, payload, u32::from(records));
            }
        }
        if compacted {
            header.sealed_len = bytes.len() as u64;
            bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        }
        files.push(bytes);
    }
    // Damage: flipped bytes, then perhaps a cut.
    let flips = input.byte() % 4;
    for _ in 0..flips {
        let which = usize::from(input.byte()) % files.len();
        let at = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
        let file = &mut files[which];
        if !file.is_empty() {
            let at = at % file.len();
            file[at] ^= input.byte() | 1;
        }
    }
    if input.byte() % 4 == 0 {
        let which = usize::from(input.byte()) % files.len();
        let cut = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
        let file = &mut files[which];
        let cut = cut % (file.len() + 1);
        file.truncate(cut);
    }
    let dir = scratch();
    let manifest = Manifest {
        store_id: STORE_ID,
        ceiling: u64::from(input.byte()),
        last_segment: segments as u64,
    };
    std::fs::write(dir.join("MANIFEST"), manifest.encode()).expect("writing the manifest");
    for (i, bytes) in files.iter().enumerate() {
        std::fs::write(dir.join(segment_file_name(i as u64 + 1)), bytes)
            .expect("writing a segment");
    }
    let disk: Arc<dyn Disk> = Arc::new(OsDisk);
    if let Ok(recovered) = crate::recovery::recover(&*disk, &dir, &options) {
        for (key, entry) in &recovered.state.index {
            assert!(entry.version <= recovered.state.last_version);
            if entry.value.is_some() || entry.loc.seg == RECLAIMED {
                continue;
            }
            let segment = recovered
                .segments
                .get(&entry.loc.seg)
                .expect("an index entry names a segment that recovery did not keep");
            let _ = read_record_value(
                &*segment.file,
                "fuzz",
                entry.loc.offset,
                entry.loc.len,
                key,
                entry.version,
            );
        }
        assert!(recovered.state.last_version >= manifest.ceiling);
        assert!(recovered
            .segments
            .values()
            .all(|s| s.len >= HEADER_LEN as u64));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
