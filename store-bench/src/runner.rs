//! The run plan: for every workload, store size and baseline, build a fresh target and
//! baseline, populate both the same way, then for every task count measure the target and
//! the baseline one after the other and report the pair.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

use crate::baseline::{BaselineKind, MutexMap, Slot};
use crate::cli::{Settings, Workload};
use crate::report::{Reporter, Row};
use crate::subject::{StorageSubject, Subject};
use crate::workload::{measure, populate, Shapes};
use crate::BoxError;

/// Runs every measurement `settings` asks for, printing rows as they complete.
pub async fn run<W: Write>(
    settings: &Settings,
    reporter: &mut Reporter<W>,
) -> Result<(), BoxError> {
    let shapes = Shapes::new(settings.keys, settings.value_size);
    for &workload in &settings.workloads {
        let store_sizes = match workload {
            Workload::Get | Workload::Put | Workload::Mixed => vec![settings.keys],
            Workload::Cas | Workload::Wait => vec![1],
            Workload::List => settings.list_keys.clone(),
        };
        for store_keys in store_sizes {
            for baseline in settings.target.baselines(workload) {
                let pair = Pair {
                    settings,
                    workload,
                    store_keys,
                    shapes: &shapes,
                    baseline: baseline.name(),
                };
                match baseline {
                    BaselineKind::MutexHashMap => {
                        pair.compare(MutexMap::<HashMap<String, Slot>>::new(), reporter)
                            .await?
                    }
                    BaselineKind::MutexBTreeMap => {
                        pair.compare(MutexMap::<BTreeMap<String, Slot>>::new(), reporter)
                            .await?
                    }
                }
            }
        }
    }
    Ok(())
}

/// One workload on one store size, target against one baseline.
struct Pair<'a> {
    settings: &'a Settings,
    workload: Workload,
    store_keys: usize,
    shapes: &'a Shapes,
    baseline: &'static str,
}

impl Pair<'_> {
    async fn compare<B: Subject, W: Write>(
        &self,
        baseline: B,
        reporter: &mut Reporter<W>,
    ) -> Result<(), BoxError> {
        let target_kind = self.settings.target;
        let target = Arc::new(StorageSubject::new(target_kind.build().await?));
        let baseline = Arc::new(baseline);
        populate(target.as_ref(), self.workload, self.shapes, self.store_keys).await?;
        populate(
            baseline.as_ref(),
            self.workload,
            self.shapes,
            self.store_keys,
        )
        .await?;
        for &tasks in &self.settings.tasks {
            let duration = self.settings.duration;
            let on_target = measure(&target, self.workload, self.shapes, tasks, duration).await?;
            let on_baseline =
                measure(&baseline, self.workload, self.shapes, tasks, duration).await?;
            reporter.row(Row::new(
                self.workload,
                self.store_keys,
                tasks,
                (target_kind.name(), &on_target),
                (self.baseline, &on_baseline),
            ))?;
        }
        target.close().await?;
        baseline.close().await?;
        Ok(())
    }
}
