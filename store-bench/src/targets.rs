//! Targets: the storage stacks under test, what each is compared against, and the goals it
//! is held to.
//!
//! To add a target, add a [`TargetKind`] variant, build its stack in [`TargetKind::build`],
//! name its baselines per workload in [`TargetKind::baselines`] (adding a
//! [`BaselineKind`] and its [`Subject`](crate::subject::Subject) where needed) and list its
//! goals in [`TargetKind::goals`].

use std::sync::Arc;

use clap::ValueEnum;
use store_core::{Result, Storage};

use crate::baseline::BaselineKind;
use crate::cli::Workload;
use crate::report::Goal;

/// A named storage stack that the benchmark can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// `store_memory::MemoryStorage` with default runtime options.
    Memory,
}

impl TargetKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Memory => "memory",
        }
    }

    /// Builds a fresh, empty instance of the stack (one per workload and store size).
    pub async fn build(self) -> Result<Arc<dyn Storage>> {
        match self {
            TargetKind::Memory => Ok(Arc::new(store_memory::MemoryStorage::new())),
        }
    }

    /// The baselines each run of `workload` is compared against (a row per baseline).
    pub fn baselines(self, workload: Workload) -> Vec<BaselineKind> {
        match (self, workload) {
            (TargetKind::Memory, Workload::List) => vec![BaselineKind::MutexBTreeMap],
            (TargetKind::Memory, _) => vec![BaselineKind::MutexHashMap],
        }
    }

    /// The goals this target is held to; checked against the rows a run produced.
    pub fn goals(self) -> Vec<Goal> {
        match self {
            TargetKind::Memory => vec![
                Goal::RatioAtLeast {
                    workload: Workload::Get,
                    tasks: 64,
                    min: 0.7,
                },
                Goal::RatioAtLeast {
                    workload: Workload::Put,
                    tasks: 64,
                    min: 0.5,
                },
                Goal::ListScalingAtMost { max: 3.0 },
            ],
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
