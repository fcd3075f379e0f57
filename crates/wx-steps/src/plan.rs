//! What comes next: the step specs each step enqueues, with their retry budgets and readiness.

use chrono::{DateTime, Utc};
use wx_model::config::PipelineConfig;
use wx_model::{COORDINATOR_HOTKEY, MinerUid, RunId, StepKey, StepKind, StepStatus};
use wx_store::StepSpec;

/// A spec for a run-level step, due at `at`.
pub fn run_step(
    config: &PipelineConfig,
    run: RunId,
    kind: StepKind,
    at: DateTime<Utc>,
) -> StepSpec {
    StepSpec {
        key: StepKey::run_level(run, kind),
        hotkey: COORDINATOR_HOTKEY.to_owned(),
        status: StepStatus::Pending,
        next_run_at: at,
        max_retries: config.retry_policy(kind).max_retries,
        context: None,
    }
}

/// A spec for a per-miner step, due at `at` (`Waiting` when `at` is in the future, so that
/// the wait is visible as such).
pub fn miner_step(
    config: &PipelineConfig,
    run: RunId,
    miner: MinerUid,
    hotkey: &str,
    kind: StepKind,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StepSpec {
    StepSpec {
        key: StepKey::miner(run, miner, kind),
        hotkey: hotkey.to_owned(),
        status: if at > now {
            StepStatus::Waiting
        } else {
            StepStatus::Pending
        },
        next_run_at: at,
        max_retries: config.retry_policy(kind).max_retries,
        context: None,
    }
}

/// The run-level steps every run starts with.
pub fn run_start(config: &PipelineConfig, run: RunId, now: DateTime<Utc>) -> Vec<StepSpec> {
    [
        StepKind::SeedStatsRows,
        StepKind::SeedStepsRows,
        StepKind::SeedDownloadGfs,
        StepKind::Day1ClimCache,
    ]
    .into_iter()
    .map(|k| run_step(config, run, k, now))
    .chain(std::iter::once(StepSpec {
        // the snapshot re-arms itself; its first run comes one interval after the run starts
        status: StepStatus::Waiting,
        ..run_step(
            config,
            run,
            StepKind::AggregateSnapshot,
            now + snapshot_interval(config),
        )
    }))
    .collect()
}

/// The interval between subnet snapshots.
pub fn snapshot_interval(config: &PipelineConfig) -> chrono::Duration {
    chrono::Duration::minutes(i64::from(config.snapshot_interval_minutes.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_miner_steps_wait_and_budgets_follow_the_policy() {
        let c = PipelineConfig::default();
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let s = miner_step(
            &c,
            RunId(1),
            MinerUid::new(3),
            "hk",
            StepKind::Era5Score,
            now + chrono::Duration::days(5),
            now,
        );
        assert_eq!(s.status, StepStatus::Waiting);
        assert_eq!(
            s.max_retries,
            c.retry_policy(StepKind::Era5Score).max_retries
        );
        let s = miner_step(
            &c,
            RunId(1),
            MinerUid::new(3),
            "hk",
            StepKind::Day1Score,
            now,
            now,
        );
        assert_eq!(s.status, StepStatus::Pending);
        let start = run_start(&c, RunId(1), now);
        assert_eq!(start.len(), 5);
        assert!(
            start
                .iter()
                .all(|s| s.key.miner == wx_model::COORDINATOR_UID && s.hotkey == "coordinator")
        );
    }
}
