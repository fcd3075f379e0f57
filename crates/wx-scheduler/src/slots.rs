//! Slots: how many steps of each resource class run at once. A claim round asks each class for
//! its free slots and claims at most that many of its kinds.

use crate::dispatcher::SchedulerConfig;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wx_model::StepKind;
use wx_model::step::ResourceClass;

/// The resource classes claimed, in the order a claim round serves them. `Scoring` is not
/// among them: no claimable kind runs in it; its limit sizes the scoring permits that
/// day1/score and era5/score (class `MinerData`) take inside the step (docs/pipeline.md §4.7).
pub(crate) const CLASSES: [ResourceClass; 4] = [
    ResourceClass::Network,
    ResourceClass::MinerData,
    ResourceClass::Fetch,
    ResourceClass::Light,
];

/// One semaphore per resource class.
pub(crate) struct Slots {
    by_class: HashMap<ResourceClass, Arc<Semaphore>>,
}

impl Slots {
    /// The limits of `config` (the miner-data limit lowered to its memory budget).
    pub fn new(config: &SchedulerConfig) -> Slots {
        Slots {
            by_class: CLASSES
                .iter()
                .map(|c| (*c, Arc::new(Semaphore::new(config.limit(*c)))))
                .collect(),
        }
    }

    /// Takes up to `most` free slots of a class (none: `None`).
    pub fn take(&self, class: ResourceClass, most: usize) -> Option<OwnedSemaphorePermit> {
        let sem = self.by_class.get(&class)?;
        let free = sem.available_permits().min(most);
        if free == 0 {
            return None;
        }
        sem.clone().try_acquire_many_owned(free as u32).ok()
    }
}

/// The kinds of `kinds` that run in `class`.
pub(crate) fn kinds_of(kinds: &[StepKind], class: ResourceClass) -> Vec<StepKind> {
    kinds
        .iter()
        .copied()
        .filter(|k| k.resource_class() == class)
        .collect()
}
