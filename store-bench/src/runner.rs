//! The run plan: for every workload and store size, build a fresh target and each of its
//! baselines, populate them all the same way, then for every task count measure the target
//! and each baseline in `--slices` turns (target, baselines, target, baselines, ...), and
//! report a row per baseline with the target's and that baseline's totals. `reopen` and `space`
//! produce figures instead (see `figures.rs`). The lock workloads measure `store_sync` locks on
//! the target's stack against raw record operations on the same stack (see `locks.rs`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use store_core::Storage;

use crate::baseline::{BaselineKind, MokaMap, MutexMap, Slot};
use crate::catalog::{TargetKind, Workload};
use crate::cli::Settings;
use crate::durable::{FsyncLog, RedbTable};
use crate::figures;
use crate::harness::Measurement;
use crate::locks::{LockContender, LockSubject, RawLocks, SyncLocks};
use crate::plain_redis::PlainRedis;
use crate::report::{Reporter, Row};
use crate::scratch::Scratch;
use crate::subject::{StorageSubject, Subject};
use crate::targets::open_durable;
use crate::workload::{measure, populate, Shapes};
use crate::BoxError;

/// Runs the workloads of one target, printing rows and figures as they complete.
pub async fn run<W: Write>(
    settings: &Settings,
    target: TargetKind,
    workloads: &[Workload],
    scratch: &Scratch,
    reporter: &mut Reporter<W>,
) -> Result<(), BoxError> {
    let shapes = Shapes::new(settings.keys, settings.value_size);
    for &workload in workloads {
        let store_sizes = match workload {
            Workload::Get
            | Workload::Miss
            | Workload::Put
            | Workload::Mixed
            | Workload::PutMany => {
                vec![settings.keys]
            }
            Workload::Cas | Workload::Wait | Workload::Lock | Workload::Handover => vec![1],
            Workload::List => settings.list_keys.clone(),
            Workload::Reopen => {
                for figure in figures::reopen(settings, scratch).await? {
                    reporter.figure(figure)?;
                }
                continue;
            }
            Workload::Space => {
                for figure in figures::space(settings, scratch).await? {
                    reporter.figure(figure)?;
                }
                continue;
            }
        };
        for store_keys in store_sizes {
            let run = Run {
                settings,
                target,
                workload,
                store_keys,
                shapes: &shapes,
                scratch,
            };
            run.compare(reporter).await?;
        }
    }
    Ok(())
}

/// A populated subject, ready to be measured at any task count. Boxed once per store, so
/// the target and baselines of different types can be measured in one loop; the per-op
/// loop inside `measure` stays monomorphic.
trait Contender: Send + Sync {
    fn measure<'a>(
        &'a self,
        workload: Workload,
        shapes: &'a Shapes,
        tasks: usize,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Measurement, BoxError>>;

    fn close(&self) -> BoxFuture<'_, store_core::Result<()>>;
}

impl<S: Subject> Contender for Arc<S> {
    fn measure<'a>(
        &'a self,
        workload: Workload,
        shapes: &'a Shapes,
        tasks: usize,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Measurement, BoxError>> {
        Box::pin(measure(self, workload, shapes, tasks, duration))
    }

    fn close(&self) -> BoxFuture<'_, store_core::Result<()>> {
        Box::pin(self.as_ref().close())
    }
}

/// The baselines of a run, with their names.
type Baselines = Vec<(&'static str, Box<dyn Contender>)>;

/// One workload on one store size: the target against all its baselines.
struct Run<'a> {
    settings: &'a Settings,
    target: TargetKind,
    workload: Workload,
    store_keys: usize,
    shapes: &'a Shapes,
    scratch: &'a Scratch,
}

impl Run<'_> {
    async fn ready<S: Subject>(&self, subject: S) -> Result<Box<dyn Contender>, BoxError> {
        populate(&subject, self.workload, self.shapes, self.store_keys).await?;
        Ok(Box::new(Arc::new(subject)))
    }

    async fn baseline(&self, kind: BaselineKind) -> Result<Box<dyn Contender>, BoxError> {
        let storage = |storage: Arc<dyn Storage>| StorageSubject::new(storage);
        match kind {
            BaselineKind::MutexHashMap => {
                self.ready(MutexMap::<HashMap<String, Slot>>::new()).await
            }
            BaselineKind::MutexBTreeMap => {
                self.ready(MutexMap::<BTreeMap<String, Slot>>::new()).await
            }
            BaselineKind::Memory => {
                let memory = store_memory::MemoryStorage::new();
                self.ready(storage(Arc::new(memory))).await
            }
            BaselineKind::File => {
                let dir = self.scratch.fresh("baseline-file")?;
                let file = open_durable(&dir).await?;
                // The directory goes with the subject, removed after the store is closed.
                self.ready(storage(Arc::new(file)).keep_dir(dir)).await
            }
            BaselineKind::FsyncLog => {
                let dir = self.scratch.fresh("baseline-fdatasync-log")?;
                self.ready(FsyncLog::create(dir)?).await
            }
            BaselineKind::Redb => {
                let dir = self.scratch.fresh("baseline-redb")?;
                self.ready(RedbTable::create(dir)?).await
            }
            BaselineKind::TokioPostgres => {
                let url = crate::postgres::server_url();
                self.ready(crate::postgres::PlainPostgres::create(&url).await?)
                    .await
            }
            BaselineKind::Moka => {
                let capacity = 2 * self.store_keys as u64;
                self.ready(MokaMap::new(capacity)).await
            }
            BaselineKind::PlainRedis => {
                self.ready(PlainRedis::connect(&self.settings.redis_url).await?)
                    .await
            }
            BaselineKind::RawRecords => Err(format!(
                "the {} baseline runs the lock workloads only, not {}",
                kind.name(),
                self.workload
            )
            .into()),
        }
    }

    /// The contenders of a lock workload: `store_sync` locks on the target's stack, and
    /// its baselines on the same stack.
    fn lock_contenders(
        &self,
        storage: &Arc<dyn Storage>,
    ) -> Result<(Box<dyn Contender>, Baselines), BoxError> {
        let target: Box<dyn Contender> =
            Box::new(LockContender::new(Arc::clone(storage), SyncLocks::new));
        let mut baselines: Baselines = Vec::new();
        for kind in self.target.baselines(self.workload) {
            let contender: Box<dyn Contender> = match kind {
                BaselineKind::RawRecords => {
                    Box::new(LockContender::new(Arc::clone(storage), RawLocks::new))
                }
                other => {
                    return Err(format!(
                        "the {} baseline cannot run {}",
                        other.name(),
                        self.workload
                    )
                    .into())
                }
            };
            baselines.push((kind.name(), contender));
        }
        Ok((target, baselines))
    }

    async fn compare<W: Write>(&self, reporter: &mut Reporter<W>) -> Result<(), BoxError> {
        let stack = self
            .target
            .build(self.workload, self.settings, self.scratch)
            .await?;
        let probe = stack.probe.clone();
        let (target, baselines) = if self.workload.on_locks() {
            self.lock_contenders(&stack.storage)?
        } else {
            let subject = StorageSubject::new(Arc::clone(&stack.storage)).warm_up(stack.warm_up);
            let target = self.ready(subject).await?;
            let mut baselines = Vec::new();
            for kind in self.target.baselines(self.workload) {
                baselines.push((kind.name(), self.baseline(kind).await?));
            }
            (target, baselines)
        };
        let slices = self.settings.slices;
        let slice = self.settings.duration / slices;
        for &tasks in &self.settings.tasks {
            let before = probe.read();
            let mut on_target: Option<Measurement> = None;
            let mut on_baselines: Vec<Option<Measurement>> = vec![None; baselines.len()];
            // The target's and the baselines' slices take turns; only the target touches
            // the probed store, so one reading around all slices is the target's alone.
            for _ in 0..slices {
                let measured = target
                    .measure(self.workload, self.shapes, tasks, slice)
                    .await?;
                add(&mut on_target, measured)?;
                for ((_, baseline), total) in baselines.iter().zip(&mut on_baselines) {
                    let measured = baseline
                        .measure(self.workload, self.shapes, tasks, slice)
                        .await?;
                    add(total, measured)?;
                }
            }
            let note = probe.note(before, probe.read());
            let on_target = on_target.ok_or("a run needs at least one slice")?;
            for ((name, _), on_baseline) in baselines.iter().zip(on_baselines) {
                let on_baseline = on_baseline.ok_or("a run needs at least one slice")?;
                let row = Row::new(
                    self.workload,
                    self.store_keys,
                    tasks,
                    (self.target.name(), &on_target),
                    (name, &on_baseline),
                );
                // Lock figures are latencies first: say how they compare too.
                let row = if self.workload.on_locks() {
                    row.with_latency_ratios()
                } else {
                    row
                };
                reporter.row(row.with_note(note.clone()))?;
            }
        }
        target.close().await?;
        if !self.workload.on_locks() {
            // The lock workloads' baselines run on the target's stack, closed just now.
            for (_, baseline) in &baselines {
                baseline.close().await?;
            }
        }
        drop(baselines);
        drop(stack);
        Ok(())
    }
}

impl<L: LockSubject> Contender for LockContender<L> {
    fn measure<'a>(
        &'a self,
        workload: Workload,
        _: &'a Shapes,
        tasks: usize,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Measurement, BoxError>> {
        LockContender::measure(self, workload, tasks, duration)
    }

    fn close(&self) -> BoxFuture<'_, store_core::Result<()>> {
        LockContender::close(self)
    }
}

/// Adds a slice to the run's total so far.
fn add(total: &mut Option<Measurement>, slice: Measurement) -> Result<(), BoxError> {
    match total {
        Some(total) => total.absorb(&slice),
        None => {
            *total = Some(slice);
            Ok(())
        }
    }
}
