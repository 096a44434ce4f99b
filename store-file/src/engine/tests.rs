//! Unit tests of the engine without the runtime.

use std::time::{Duration, SystemTime};

use super::maintenance::AUTO_SPACING;
use super::*;
use crate::disk::OsFile;
use crate::SyncPolicy;

fn open(dir: &Path, cache: usize) -> FileEngine {
    let options = FileOptions {
        sync: SyncPolicy::Never,
        cache_values_up_to: cache,
        ..Default::default()
    };
    FileEngine::open(dir.to_path_buf(), options, Arc::default()).unwrap()
}

fn put(key: &str, value: &str, version: u64, expires_at: Option<SystemTime>) -> Mutation {
    Mutation::Put {
        key: key.into(),
        entry: Entry {
            value: Bytes::copy_from_slice(value.as_bytes()),
            version,
            expires_at,
        },
    }
}

impl FileEngine {
    /// Applies `batch` and returns the handles it published.
    fn apply_all(&mut self, batch: Vec<Mutation>) -> Result<Vec<FileValue>> {
        let mut published = Vec::new();
        self.apply(&batch, &mut published).map(|()| published)
    }
}

fn compact(engine: &mut FileEngine) {
    engine.start_compaction(Vec::new(), false);
    while engine.compacting() {
        std::thread::sleep(Duration::from_millis(1));
        engine.poll_compaction();
        engine.migrate_step();
    }
}

#[test]
fn compaction_reclaims_expired_records_the_runtime_has_not_removed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let past = SystemTime::now() - Duration::from_secs(1);
    let mut engine = open(dir.path(), 0);
    engine
        .apply_all(vec![
            put("live", "kept", 1, None),
            put("dead", "gone", 2, Some(past)),
        ])
        .unwrap();
    engine.sync().unwrap();
    compact(&mut engine);
    assert_eq!(engine.shared.stats.compactions.load(Ordering::Relaxed), 1);
    // The runtime still sees the expired entry's metadata (to reclaim it); its bytes are
    // gone from the files and from the live count, and no read gets a value for it.
    let dead = engine.meta("dead").unwrap();
    assert_eq!((dead.version, dead.expires_at), (2, Some(past)));
    assert!(engine.get("dead").unwrap().is_none());
    assert_eq!(engine.index["dead"].loc.seg, RECLAIMED);
    assert_eq!(engine.live_bytes, engine.index["live"].live_len());
    assert_eq!(&engine.get("live").unwrap().unwrap().value[..], b"kept");
    // The runtime's timer then removes it.
    engine
        .apply_all(vec![Mutation::Expire { key: "dead".into() }])
        .unwrap();
    engine.close().unwrap();
    drop(engine);
    let mut engine = open(dir.path(), 0);
    assert!(engine.get("dead").unwrap().is_none());
    assert_eq!(&engine.get("live").unwrap().unwrap().value[..], b"kept");
    assert_eq!(engine.last_version(), 2);
    engine.close().unwrap();
}

#[test]
fn deadlines_never_stay_due_when_there_is_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions {
        sync: SyncPolicy::Never,
        compact_garbage_ratio: 0.0,
        compact_min_bytes: 0,
        ..Default::default()
    };
    let mut engine = FileEngine::open(dir.path().into(), options, Arc::default()).unwrap();
    // Eager compaction of an empty store: due once, then spaced out.
    assert!(engine.next_deadline().is_some_and(|d| d <= Instant::now()));
    engine.on_deadline().unwrap();
    assert!(engine.compaction.is_none());
    let soon = Instant::now() + AUTO_SPACING / 2;
    assert!(engine.next_deadline().is_none_or(|d| d > soon));
    // A store that refuses writes asks for no maintenance.
    engine.poisoned = Some("test".into());
    engine.roll_due = true;
    engine.last_auto = None;
    assert_eq!(engine.next_deadline(), None);
    // ... and says so when closed.
    assert!(matches!(engine.close(), Err(Error::ReadOnly(_))));
}

#[test]
fn reads_see_unwritten_frames_and_a_failed_apply_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = open(dir.path(), 0);
    engine.apply_all(vec![put("a", "1", 1, None)]).unwrap();
    // Not written yet: served from the buffer.
    assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
    let before = (engine.buf.len(), engine.live_bytes, engine.index.len());
    let huge = Bytes::from(vec![0u8; crate::MAX_VALUE_LEN + 1]);
    let batch = vec![
        put("b", "2", 2, None),
        Mutation::Put {
            key: "c".into(),
            entry: Entry {
                value: huge,
                version: 3,
                expires_at: None,
            },
        },
    ];
    assert!(matches!(
        engine.apply_all(batch),
        Err(Error::InvalidValue(_))
    ));
    assert_eq!(
        before,
        (engine.buf.len(), engine.live_bytes, engine.index.len())
    );
    assert!(engine.get("b").unwrap().is_none());
    engine.sync().unwrap();
    assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
    engine.close().unwrap();
}

#[test]
fn a_failed_write_rolls_the_index_and_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = open(dir.path(), 1024);
    engine.apply_all(vec![put("a", "1", 1, None)]).unwrap();
    engine.sync().unwrap();
    let len = engine.active_segment().unwrap().len;
    let live = engine.live_bytes;
    engine
        .apply_all(vec![put("a", "2", 2, None), put("b", "3", 3, None)])
        .unwrap();
    engine
        .apply_all(vec![Mutation::Delete { key: "a".into() }])
        .unwrap();
    // Swap the active segment's file for a read-only handle: the write fails.
    let path = engine.active_segment().unwrap().path.clone();
    let read_only = std::fs::File::open(&path).unwrap();
    engine.segments.get_mut(&engine.active).unwrap().file = Arc::new(OsFile::new(read_only));
    assert!(matches!(engine.sync(), Err(Error::Io { .. })));
    assert_eq!(&engine.get("a").unwrap().unwrap().value[..], b"1");
    assert!(engine.get("b").unwrap().is_none());
    assert_eq!(
        (engine.active_segment().unwrap().len, engine.live_bytes),
        (len, live)
    );
    assert!(engine.buf.is_empty() && engine.undo.is_empty());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
}
