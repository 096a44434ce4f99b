//! Tests of the actor runtime itself, with engines built to observe or break it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use store_core::runtime::{self, Engine, Entry, EntryMeta, Mutation, Responder, RuntimeOptions};
use store_core::{Error, Record, Result, Storage};
use tokio::time::timeout;

/// What the test engine reports to the test.
#[derive(Default)]
struct Probe {
    syncs: AtomicUsize,
    applies: AtomicUsize,
    expired: AtomicUsize,
    closed: AtomicBool,
    dropped: AtomicBool,
    deadlines: AtomicUsize,
    fail_sync: AtomicBool,
    /// When non-zero, the sync with this number (counting from 1) fails.
    fail_sync_number: AtomicUsize,
    /// Calls to `scan`, and the most key bytes one call visited.
    scans: AtomicUsize,
    most_scanned_bytes: std::sync::atomic::AtomicU64,
}

/// An ordered-map engine that counts what the runtime asks of it and can be made to block,
/// fail or panic.
struct TestEngine {
    entries: BTreeMap<String, Entry>,
    probe: Arc<Probe>,
    /// When set, the first `sync` announces itself and waits for the test's go-ahead.
    gate: Option<(std_mpsc::Sender<()>, std_mpsc::Receiver<()>)>,
    waker: Option<store_core::runtime::Waker>,
    later: Option<Responder>,
    moved: Vec<store_core::runtime::Moved<Bytes>>,
}

impl TestEngine {
    fn new(probe: Arc<Probe>) -> Self {
        Self {
            entries: BTreeMap::new(),
            probe,
            gate: None,
            waker: None,
            later: None,
            moved: Vec::new(),
        }
    }
}

/// The engine-specific requests of the test engine.
enum TestRequest {
    /// Run `on_deadline` now and answer.
    RunMaintenance,
    /// Keep the responder; a background thread wakes the actor later, and `on_deadline`
    /// then writes a record and answers.
    WriteLater,
}
use TestRequest::{RunMaintenance, WriteLater};

impl Engine for TestEngine {
    type Value = Bytes;
    type Request = TestRequest;

    fn last_version(&self) -> u64 {
        0
    }

    fn take_moved(&mut self) -> Vec<store_core::runtime::Moved<Bytes>> {
        std::mem::take(&mut self.moved)
    }

    fn entries(&mut self, visit: &mut dyn FnMut(&str, EntryMeta, Bytes)) -> Result<()> {
        for (key, entry) in &self.entries {
            visit(key, EntryMeta::from(entry), entry.value.clone());
        }
        Ok(())
    }

    fn request(&mut self, request: TestRequest, responder: Responder) {
        match request {
            RunMaintenance => responder.respond(self.on_deadline()),
            WriteLater => {
                self.later = Some(responder);
                let waker = self.waker.clone().expect("attached at start");
                std::thread::spawn(move || waker.wake());
            }
        }
    }

    fn attach(&mut self, waker: store_core::runtime::Waker) {
        self.waker = Some(waker);
    }

    fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        assert_ne!(key, "panic", "the test asked the engine to panic");
        Ok(self.entries.get(key).cloned())
    }

    fn meta(&mut self, key: &str) -> Option<EntryMeta> {
        assert_ne!(key, "panic", "the test asked the engine to panic");
        self.entries.get(key).map(EntryMeta::from)
    }

    fn apply(&mut self, batch: &[Mutation], published: &mut Vec<Bytes>) -> Result<()> {
        self.probe.applies.fetch_add(1, Ordering::SeqCst);
        for mutation in batch {
            match mutation {
                Mutation::Put { key, entry } => {
                    published.push(entry.value.clone());
                    self.entries.insert(key.clone(), entry.clone());
                }
                Mutation::Delete { key } => {
                    self.entries.remove(key);
                }
                Mutation::Expire { key } => {
                    self.probe.expired.fetch_add(1, Ordering::SeqCst);
                    self.entries.remove(key);
                }
                other => panic!("unknown mutation {other:?}"),
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if let Some((started, go)) = self.gate.take() {
            started.send(()).unwrap();
            go.recv().unwrap();
        }
        let number = self.probe.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.probe.fail_sync.load(Ordering::SeqCst)
            || self.probe.fail_sync_number.load(Ordering::SeqCst) == number
        {
            return Err(Error::io(
                "syncing the test log",
                std::io::ErrorKind::Other.into(),
            ));
        }
        Ok(())
    }

    fn scan(
        &mut self,
        from: Bound<&str>,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &EntryMeta) -> bool,
    ) -> Result<()> {
        let mut bytes = 0u64;
        for (key, entry) in self.entries.range::<str, _>((from, Bound::Unbounded)) {
            bytes += key.len() as u64;
            if !key.starts_with(prefix) || !visit(key, &EntryMeta::from(entry)) {
                break;
            }
        }
        self.probe.scans.fetch_add(1, Ordering::SeqCst);
        self.probe
            .most_scanned_bytes
            .fetch_max(bytes, Ordering::SeqCst);
        Ok(())
    }

    fn on_deadline(&mut self) -> Result<()> {
        self.probe.deadlines.fetch_add(1, Ordering::SeqCst);
        if let Some(responder) = self.later.take() {
            // Moves the value handle of "later" outside any command (as compaction does);
            // the answer must reach the asker only once the move is published to readers.
            if let Some(entry) = self.entries.get("later") {
                self.moved.push(store_core::runtime::Moved {
                    key: "later".into(),
                    version: entry.version,
                    value: Bytes::from_static(b"moved"),
                });
            }
            responder.respond(Ok(()));
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.probe.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.probe.dropped.store(true, Ordering::SeqCst);
    }
}

const LIMIT: Duration = Duration::from_secs(10);

/// A store on a thread whose first sync waits for the test: returns the store, the task of
/// a first put that is now held inside that sync, and the sender that lets it go on.
async fn held_first_write(
    probe: Arc<Probe>,
) -> (
    runtime::ActorHandle,
    tokio::task::JoinHandle<Result<Record>>,
    std_mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = std_mpsc::channel();
    let (go_tx, go_rx) = std_mpsc::channel();
    let mut engine = TestEngine::new(probe);
    engine.gate = Some((started_tx, go_rx));
    let store = runtime::spawn_on_thread("gated", RuntimeOptions::default(), move || Ok(engine))
        .await
        .unwrap();
    let first = tokio::spawn({
        let store = store.clone();
        async move { store.put(Record::new("first", "1")).await }
    });
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    (store, first, go_tx)
}

/// A call on a store whose engine panicked fails, and says why.
fn assert_stopped_by_panic<T: std::fmt::Debug>(answer: Result<T>) {
    match answer {
        Err(Error::Stopped(reason)) => assert!(reason.contains("panicked"), "{reason}"),
        other => panic!("expected Stopped naming the panic, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_panic_closes_the_store_instead_of_hanging() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe), RuntimeOptions::default());
    store.put(Record::new("k", "v")).await.unwrap();
    let answer = timeout(LIMIT, store.create(Record::new("panic", "v")))
        .await
        .expect("hung");
    assert_stopped_by_panic(answer);
    let later = timeout(LIMIT, store.get("k")).await.expect("hung");
    assert_stopped_by_panic(later);
    assert!(store.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_panic_on_a_thread_closes_the_store_too() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn_on_thread("panicky", RuntimeOptions::default(), move || {
        Ok(TestEngine::new(probe))
    })
    .await
    .unwrap();
    let answer = timeout(LIMIT, store.delete("panic")).await.expect("hung");
    assert_stopped_by_panic(answer);
    let later = timeout(LIMIT, store.put(Record::new("k", "v")))
        .await
        .expect("hung");
    assert_stopped_by_panic(later);
}

#[test]
fn a_store_made_outside_any_runtime_runs_on_its_own_thread() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe), RuntimeOptions::default());
    // Used from two runtimes in turn; neither owns the actor.
    for round in 0..2 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            store
                .put(Record::new("k", format!("v{round}")))
                .await
                .unwrap();
            let value = store.get("k").await.unwrap().value;
            assert_eq!(value, format!("v{round}").as_bytes());
        });
    }
}

#[test]
fn a_store_whose_runtime_shut_down_says_so() {
    let probe = Arc::new(Probe::default());
    let first = tokio::runtime::Runtime::new().unwrap();
    let store =
        first.block_on(async { runtime::spawn(TestEngine::new(probe), RuntimeOptions::default()) });
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    let answer = second.block_on(async { store.put(Record::new("k", "v")).await });
    match answer {
        Err(Error::Stopped(reason)) => assert!(reason.contains("runtime"), "{reason}"),
        other => panic!("expected Stopped naming the runtime, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_too_far_away_to_represent_is_never() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe), RuntimeOptions::default());
    let far = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
    store
        .put(Record::new("k", "v").with_expires_at(far))
        .await
        .unwrap();
    // The actor computed its timer from that expiry without overflowing, and still serves.
    store.put(Record::new("other", "v")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().expires_at, Some(far));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_one_sync_and_replies_wait_for_it() {
    let probe = Arc::new(Probe::default());
    // The first put reaches the engine's sync and is held there.
    let (store, first, go_tx) = held_first_write(probe.clone()).await;
    assert_eq!(probe.syncs.load(Ordering::SeqCst), 0);

    // 63 more writers queue up behind it.
    let mut writers = Vec::new();
    for i in 0..63 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store.put(Record::new(format!("k{i}"), "v")).await
        }));
    }
    while store.queued_commands() < 63 {
        tokio::task::yield_now().await;
    }
    // Nobody has been answered: the first reply waits for its sync.
    assert!(!first.is_finished());

    go_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    // One sync for the first batch, one for the 63 queued writes.
    assert_eq!(probe.syncs.load(Ordering::SeqCst), 2);
    assert_eq!(probe.applies.load(Ordering::SeqCst), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_alone_never_sync() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store.put(Record::new("k", "v")).await.unwrap();
    let after_write = probe.syncs.load(Ordering::SeqCst);
    for _ in 0..100 {
        store.get("k").await.unwrap();
    }
    assert!(matches!(store.get("missing").await, Err(Error::NotFound)));
    assert_eq!(probe.syncs.load(Ordering::SeqCst), after_write);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_fails_the_writes_of_its_batch() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store.put(Record::new("before", "v")).await.unwrap();
    probe.fail_sync.store(true, Ordering::SeqCst);
    let failed = store.put(Record::new("k", "v")).await;
    assert!(matches!(&failed, Err(Error::Io { .. })), "{failed:?}");
    assert!(failed
        .unwrap_err()
        .to_string()
        .contains("syncing the test log"));
    probe.fail_sync.store(false, Ordering::SeqCst);
    // The store keeps serving reads and writes afterwards.
    store.get("before").await.unwrap();
    store.put(Record::new("after", "v")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_the_queued_work_first() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    let mut writers = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store.put(Record::new(format!("k{i}"), "v")).await
        }));
    }
    // Writers that were queued before close succeed; any that lost the race get Closed.
    tokio::task::yield_now().await;
    store.close().await.unwrap();
    assert!(probe.closed.load(Ordering::SeqCst));
    let mut acknowledged = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(_) => acknowledged += 1,
            Err(Error::Closed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(probe.applies.load(Ordering::SeqCst), acknowledged);
    assert!(matches!(store.get("k0").await, Err(Error::Closed)));
    assert!(matches!(store.close().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_the_engine() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store.put(Record::new("k", "v")).await.unwrap();
    drop(store);
    timeout(LIMIT, async {
        while !probe.closed.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the engine was never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_reclaims_expired_records_that_nobody_reads() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store
        .put(Record::new("short", "v").with_ttl(Duration::from_millis(50)))
        .await
        .unwrap();
    store.put(Record::new("forever", "v")).await.unwrap();
    timeout(LIMIT, async {
        while probe.expired.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the expired record was never reclaimed");
    assert_eq!(probe.expired.load(Ordering::SeqCst), 1);
    store.get("forever").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_expiry_is_not_reclaimed_at_the_old_time() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store
        .put(Record::new("k", "v").with_ttl(Duration::from_millis(30)))
        .await
        .unwrap();
    // Rewritten without expiry before the timer fires: it must live on.
    store.put(Record::new("k", "v2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(&store.get("k").await.unwrap().value[..], b"v2");
    assert_eq!(probe.expired.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_open_is_returned() {
    let opened =
        runtime::spawn_on_thread::<TestEngine, _>("bad", RuntimeOptions::default(), || {
            Err(Error::Corrupt("test: the log is unreadable".into()))
        })
        .await;
    assert!(matches!(opened, Err(Error::Corrupt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_a_tiny_budget_still_lists_everything_in_order() {
    let probe = Arc::new(Probe::default());
    let options = RuntimeOptions::default().page_size(3).scan_budget(5);
    let store = runtime::spawn(TestEngine::new(probe), options);
    let mut expected = Vec::new();
    for i in 0..100 {
        let key = format!("p/{i:03}");
        store.put(Record::new(key.clone(), "v")).await.unwrap();
        if i % 7 == 0 {
            expected.push(key);
        }
        store
            .put(Record::new(format!("q/{i:03}"), "v"))
            .await
            .unwrap();
    }
    use futures::TryStreamExt;
    let keys: Vec<String> = store
        .list_keys("p/{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}")
        .await
        .unwrap()
        .try_filter(|k| {
            let n: usize = k[2..].parse().unwrap();
            std::future::ready(n.is_multiple_of(7))
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_request_runs_after_the_queued_work() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store.put(Record::new("k", "v")).await.unwrap();
    assert_eq!(probe.deadlines.load(Ordering::SeqCst), 0);
    store.request(RunMaintenance).await.unwrap();
    assert_eq!(probe.deadlines.load(Ordering::SeqCst), 1);
    // A request of another type is refused, not lost.
    assert!(matches!(
        store.request("compact").await,
        Err(Error::Unsupported(_))
    ));
    store.close().await.unwrap();
    assert!(matches!(
        store.request(RunMaintenance).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_is_dropped_before_close_returns() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn_on_thread("dropper", RuntimeOptions::default(), {
        let probe = probe.clone();
        move || Ok(TestEngine::new(probe))
    })
    .await
    .unwrap();
    store.put(Record::new("k", "v")).await.unwrap();
    store.close().await.unwrap();
    // Resources the engine holds (files, locks) are free once close has answered.
    assert!(probe.closed.load(Ordering::SeqCst));
    assert!(probe.dropped.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_never_sees_a_write_whose_sync_failed() {
    let probe = Arc::new(Probe::default());
    // Hold the first batch in its sync while a second write queues up behind it.
    let (store, first, go_tx) = held_first_write(probe.clone()).await;
    let write = tokio::spawn({
        let store = store.clone();
        async move { store.put(Record::new("k", "v")).await }
    });
    while store.queued_commands() < 1 {
        tokio::task::yield_now().await;
    }
    // Reads are answered from the published state in the caller's task, at once: the
    // queued write is not there, whatever happens to it.
    assert!(matches!(store.get("k").await, Err(Error::NotFound)));
    // The held sync (number 1) succeeds; the next one, for the write, fails.
    probe.fail_sync_number.store(2, Ordering::SeqCst);
    go_tx.send(()).unwrap();
    first
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("first write: {e}"));
    let write = write.await.unwrap();
    assert!(matches!(write, Err(Error::Io { .. })), "{write:?}");
    assert!(
        matches!(store.get("k").await, Err(Error::NotFound)),
        "a read saw a write whose sync failed"
    );
    let many = store.get_many(&["k"]).await.unwrap();
    assert_eq!(many, vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_listing_costs_the_actor_one_bounded_page_at_a_time() {
    // Keys of 4,000 bytes and a pattern whose matching is as costly as a glob gets: the
    // actor scans at most a page's budget of key bytes per command, and the pattern runs in
    // the lister's task, so whatever the pattern, the actor is busy for one bounded page at
    // a time and other callers' commands are served between pages.
    let probe = Arc::new(Probe::default());
    let options = RuntimeOptions::default().page_bytes(16 * 1024);
    let store = runtime::spawn(TestEngine::new(probe.clone()), options);
    let long = "a".repeat(3_990);
    for i in 0..64 {
        store
            .put(Record::new(format!("k{i:03}{long}"), "v"))
            .await
            .unwrap();
    }
    let keys: Vec<String> = futures::TryStreamExt::try_collect(
        store
            .list_keys("k*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ab")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(keys.is_empty(), "no key ends in b");
    let scans = probe.scans.load(Ordering::SeqCst);
    assert!(
        scans >= 64 * 4_000 / (16 * 1024 + 4_000),
        "only {scans} pages"
    );
    let most = probe.most_scanned_bytes.load(Ordering::SeqCst);
    assert!(
        most <= 16 * 1024 + 4_000,
        "one page scanned {most} bytes of keys, more than a page's budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waker_runs_maintenance_and_answers_arrive_after_publication() {
    let probe = Arc::new(Probe::default());
    let store = runtime::spawn(TestEngine::new(probe.clone()), RuntimeOptions::default());
    store.put(Record::new("later", "old")).await.unwrap();
    for _ in 0..50 {
        // The actor is idle: only the engine's waker (from another thread) gets it going.
        timeout(LIMIT, store.request(WriteLater))
            .await
            .expect("the waker did not wake the actor")
            .unwrap();
        // The answer came after the step's publication: the read view shows the move.
        assert_eq!(&store.get("later").await.unwrap().value[..], b"moved");
        store.put(Record::new("later", "old")).await.unwrap();
    }
    assert!(probe.deadlines.load(Ordering::SeqCst) >= 50);
    store.close().await.unwrap();
}
