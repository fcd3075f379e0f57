//! The step vocabulary: which sub-steps exist, their scope, and the key of a step row.

use crate::ids::{MinerUid, RunId};
use crate::{ParseEnumError, RetryPolicy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a sub-step runs once per run (coordinator rows, uid 0) or once per miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Once per run, stored under uid 0 / hotkey `coordinator`.
    Run,
    /// Once per (run, miner).
    Miner,
    /// Once per (run, miner, lead).
    MinerLead,
}

/// What a sub-step mostly consumes; the scheduler bounds concurrency per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceClass {
    /// Waits on the network (miner stores): many may run at once.
    Network,
    /// CPU-bound scoring work: the log rows of regridding and scoring. No claimable kind runs
    /// in it: its limit is the number of scoring permits day1/score and era5/score take
    /// around each computation (docs/pipeline.md §4.7).
    Scoring,
    /// Reads a miner's forecast and scores it (day1/score, era5/score): many may run at once,
    /// since reading waits on the miner; the CPU part takes a scoring permit.
    MinerData,
    /// Fetches truth/reference data into the disk cache.
    Fetch,
    /// Small database work.
    Light,
}

macro_rules! step_kinds {
    ($( $(#[$m:meta])* $variant:ident => ($step:literal, $substep:literal, $scope:ident, $class:ident, $claimable:literal) ),+ $(,)?) => {
        /// Every (step, substep) pair of docs/pipeline.md §3.
        ///
        /// *Claimable* kinds are units of work in the queue. The others are log rows written by
        /// the unit of work that runs them (e.g. `day1/load_inputs` inside `day1/score`,
        /// `era5/lead` success events inside `era5/score`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum StepKind { $($(#[$m])* $variant),+ }

        impl StepKind {
            /// Every kind, in pipeline order.
            pub const ALL: &'static [StepKind] = &[$(StepKind::$variant),+];

            /// The `step_name` column.
            pub const fn step_name(self) -> &'static str {
                match self { $(StepKind::$variant => $step),+ }
            }

            /// The `substep` column.
            pub const fn substep(self) -> &'static str {
                match self { $(StepKind::$variant => $substep),+ }
            }

            /// Run-level or per-miner.
            pub const fn scope(self) -> Scope {
                match self { $(StepKind::$variant => Scope::$scope),+ }
            }

            /// The resource this kind mostly uses.
            pub const fn resource_class(self) -> ResourceClass {
                match self { $(StepKind::$variant => ResourceClass::$class),+ }
            }

            /// Whether rows of this kind are claimed from the queue (vs. written as log rows).
            pub const fn is_claimable(self) -> bool {
                match self { $(StepKind::$variant => $claimable),+ }
            }

            /// The kind named by `step_name`/`substep` columns.
            pub fn from_names(step: &str, substep: &str) -> Result<StepKind, ParseEnumError> {
                match (step, substep) {
                    $(($step, $substep) => Ok(StepKind::$variant),)+
                    _ => Err(ParseEnumError {
                        what: "step/substep",
                        value: format!("{step}/{substep}"),
                        expected: [$(concat!($step, "/", $substep)),+].join(", "),
                    }),
                }
            }
        }
    };
}

step_kinds! {
    /// Upsert one stats row per registered miner.
    SeedStatsRows => ("seed", "stats_rows", Run, Light, true),
    /// Upsert one pending verify step per registered miner.
    SeedStepsRows => ("seed", "steps_rows", Run, Light, true),
    /// Fetch the GFS analysis and forecast reference into the disk cache.
    SeedDownloadGfs => ("seed", "download_gfs", Run, Fetch, true),
    /// Fetch and freeze the manifest, open the miner's Zarr store.
    VerifyOpenStore => ("verify", "open_store", Miner, Network, true),
    /// Build the Day1 climatology slice once per run.
    Day1ClimCache => ("day1", "clim_cache", Run, Fetch, true),
    /// Load GFS analysis, reference and climatology for one miner's Day1 (log row).
    Day1LoadInputs => ("day1", "load_inputs", Miner, Scoring, false),
    /// Score the Day1 quality check.
    Day1Score => ("day1", "score", Miner, MinerData, true),
    /// Ensure ERA5 truth for the ready leads is cached (log row).
    Era5LoadTruth => ("era5", "load_truth", Miner, Fetch, false),
    /// One success event per ERA5 lead scored (log row).
    Era5Lead => ("era5", "lead", MinerLead, Scoring, false),
    /// Score the ready, unscored ERA5 leads.
    Era5Score => ("era5", "score", Miner, MinerData, true),
    /// Refresh `miner_stats` for a miner (log row).
    AggregateMinerStats => ("aggregate", "miner_stats", Miner, Light, false),
    /// Periodic subnet snapshot and ranking weights.
    AggregateSnapshot => ("aggregate", "snapshot", Run, Light, true),
}

impl StepKind {
    /// `step/substep`, as operators read it.
    pub fn path(self) -> String {
        format!("{}/{}", self.step_name(), self.substep())
    }

    /// The retry policy that applies when the configuration does not override it.
    pub fn default_retry_policy(self) -> RetryPolicy {
        use crate::Backoff::*;
        let p = |delay: u32, max: u32, backoff| RetryPolicy::new(true, delay, max, backoff);
        match self {
            StepKind::SeedStatsRows | StepKind::SeedStepsRows => p(30, 5, Exponential),
            StepKind::SeedDownloadGfs | StepKind::Day1ClimCache => p(300, 8, Exponential),
            StepKind::VerifyOpenStore => p(120, 5, Exponential),
            StepKind::Day1LoadInputs | StepKind::Day1Score => p(300, 3, Exponential),
            StepKind::Era5LoadTruth | StepKind::Era5Score => p(600, 4, Exponential),
            StepKind::Era5Lead | StepKind::AggregateMinerStats => p(60, 3, Linear),
            StepKind::AggregateSnapshot => p(60, 10, Linear),
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.step_name(), self.substep())
    }
}

impl Serialize for StepKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (step, sub) = s
            .split_once('/')
            .ok_or_else(|| serde::de::Error::custom(format!("expected step/substep, got `{s}`")))?;
        StepKind::from_names(step, sub).map_err(serde::de::Error::custom)
    }
}

/// The unique key of a step row: `(run_id, miner_uid, step_name, substep, lead_hours)`.
///
/// `lead_hours` is 0 for steps that are not per lead; run-level steps use uid 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StepKey {
    /// The run.
    pub run: RunId,
    /// The miner (uid 0 for run-level steps).
    pub miner: MinerUid,
    /// Which sub-step.
    pub kind: StepKind,
    /// The lead in hours, 0 when not per lead.
    pub lead_hours: u32,
}

impl StepKey {
    /// Key of a run-level step.
    pub fn run_level(run: RunId, kind: StepKind) -> Self {
        StepKey {
            run,
            miner: crate::COORDINATOR_UID,
            kind,
            lead_hours: 0,
        }
    }

    /// Key of a per-miner step (not per lead).
    pub fn miner(run: RunId, miner: MinerUid, kind: StepKind) -> Self {
        StepKey {
            run,
            miner,
            kind,
            lead_hours: 0,
        }
    }

    /// Key of a per-miner, per-lead step.
    pub fn lead(run: RunId, miner: MinerUid, kind: StepKind, lead_hours: u32) -> Self {
        StepKey {
            run,
            miner,
            kind,
            lead_hours,
        }
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {} miner {} {}", self.run, self.miner, self.kind)?;
        if self.lead_hours != 0 {
            write!(f, " lead {}h", self.lead_hours)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in StepKind::ALL {
            assert_eq!(
                StepKind::from_names(k.step_name(), k.substep()).unwrap(),
                *k
            );
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(serde_json::from_str::<StepKind>(&json).unwrap(), *k);
        }
        assert!(StepKind::from_names("verify", "score").is_err());
    }

    #[test]
    fn run_level_names_are_never_per_miner() {
        // docs/pipeline.md §2: a real miner with uid 0 never collides with coordinator rows.
        for run_kind in StepKind::ALL.iter().filter(|k| k.scope() == Scope::Run) {
            for miner_kind in StepKind::ALL.iter().filter(|k| k.scope() != Scope::Run) {
                assert_ne!(
                    (run_kind.step_name(), run_kind.substep()),
                    (miner_kind.step_name(), miner_kind.substep())
                );
            }
        }
    }
}
