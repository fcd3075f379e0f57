//! Pipeline configuration: when runs start, leases, retries, concurrency. (What is scored —
//! variables, leads, weights — is the scoring configuration of `wx-scoring`.)
//!
//! These types are deserialized from the `[pipeline]` section of the validator's TOML file (with
//! `WX_*` environment overrides applied by the binary). Every field has a default, so an empty
//! section is valid.

use crate::retry::RetryPolicy;
use crate::step::{ResourceClass, StepKind};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use documented::DocumentedFields;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Configuration of the pipeline (docs/pipeline.md §3–§6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Test mode: short retry delays, hindcast-shifted init time, reduced ERA5 delay.
    pub test_mode: bool,
    /// Test mode: days the GFS init is shifted back so that truth already exists.
    pub test_hindcast_days: u32,
    /// Test mode: extra hours of hindcast shift.
    pub test_hindcast_hours: u32,
    /// Test mode: score this GFS init instead of the hindcast-shifted one (replaying a fixed
    /// cycle, as the demo and the end-to-end tests do).
    pub test_gfs_init: Option<DateTime<Utc>>,
    /// Test mode: minutes between run creations.
    pub test_run_interval_minutes: u32,
    /// Test mode: base delay of every retry policy, in seconds.
    pub test_retry_base_delay_seconds: u32,
    /// The GFS cycle a daily run scores (0, 6, 12 or 18 UTC).
    pub gfs_cycle_hour: u32,
    /// Time of day (UTC) at which the daily run is created.
    pub run_creation_time_utc: NaiveTime,
    /// ERA5 publication delay in days.
    pub era5_delay_days: u32,
    /// Safety buffer after the ERA5 delay, in hours.
    pub era5_buffer_hours: u32,
    /// Test mode ERA5 delay in hours (replaces delay_days and buffer_hours).
    pub test_era5_delay_hours: u32,
    /// Minutes between two looks at the ERA5 store for a lead that is ready by the clock but
    /// not published yet (the step waits in between, holding no worker and no attempt).
    pub era5_recheck_minutes: u32,
    /// Test mode: seconds between those looks (replaces `era5_recheck_minutes`).
    pub test_era5_recheck_seconds: u32,
    /// Days a lead may stay unpublished after it is due before it is recorded as unavailable
    /// for every miner of the run and left out of every miner's aggregates.
    pub era5_give_up_days: u32,
    /// Test mode: seconds instead of `era5_give_up_days`.
    pub test_era5_give_up_seconds: u32,
    /// Lease length of a claimed step, in seconds.
    pub lease_seconds: u32,
    /// Heartbeat interval of a running step, in seconds (well below the lease).
    pub heartbeat_seconds: u32,
    /// Minutes between subnet snapshots.
    pub snapshot_interval_minutes: u32,
    /// Lost leases a step may suffer (its worker died or stalled) before it fails for good.
    /// Counted apart from the retries of its kind: a validator crash is not the miner's
    /// failure, but a step that keeps killing its worker must end.
    pub max_lease_losses: u32,
    /// Seconds in-flight steps may take to finish after a shutdown signal (a second signal
    /// ends the wait at once); what is left is released without consuming an attempt.
    pub shutdown_grace_seconds: u32,
    /// Seconds one run of a day1/score or era5/score step may spend waiting on the miner's
    /// store (opening it and reading its chunks; not the time it waits for a scoring permit or
    /// scores). Past it the read under way is stopped and the step fails, blamed on the miner,
    /// with a "deadline" reason (retried as the kind's policy says; leads already scored are
    /// kept). 0: no deadline.
    pub miner_step_deadline_seconds: u32,
    /// Minutes after a run's start (its creation) within which a miner's manifest must be
    /// frozen: a store first verified later is refused as `late` (`verify_failed`), and
    /// verification retries stop at this time. The reference validator's 2 hours by default.
    pub submission_window_minutes: u32,
    /// Minutes after a run's start during which miners imported since its seed still join it
    /// (an operator's late import); later they join the next run. At most
    /// `submission_window_minutes`.
    pub backfill_window_minutes: u32,
    /// Days scores, step rows and subnet snapshots of finished runs are kept; `0` keeps them
    /// forever. Runs, stats rows, responses and `miner_stats` are kept (reports, streaks).
    pub retention_days: u32,
    /// Minutes between two runs of the retention job (`wx-validator prune` does it at once).
    pub prune_interval_minutes: u32,
    /// Rows deleted per transaction by the retention job (1..=5000), so that no delete holds
    /// long locks.
    pub prune_batch_rows: u32,
    /// Per-kind retry overrides keyed by `step/substep`, e.g.
    /// `"verify/open_store" = { max_retries = 9, backoff = "linear", retry_delay_seconds = 60 }`
    /// (keys left out of an override take the generic defaults — 300 s, 3 retries, exponential —
    /// not the kind's).
    pub retry: BTreeMap<String, RetryPolicy>,
    /// Concurrency limits.
    pub concurrency: ConcurrencyConfig,
}

/// Estimated peak memory of one scoring permit's work (decoded forecast, truth, climatology and
/// reference of one variable on the 0.25° grid, regridded copies, kernel buffers), in bytes.
pub const SCORING_PERMIT_BYTES: usize = 700 << 20;

/// Estimated memory one day1/score or era5/score step holds while it reads or waits for a
/// scoring permit: one variable of one lead decoded (≤ 13 levels × 721 × 1440 float32 =
/// 54 MB) plus at most 4 compressed chunks in flight, rounded up, in bytes.
pub const MINER_DATA_STEP_BYTES: usize = 160 << 20;

/// How many steps of each resource class one process runs at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Verify steps (network-bound).
    pub network: usize,
    /// Scoring permits: how many regrid-and-score computations (CPU-bound, one variable of
    /// one lead each) run at once, shared by every day1/score and era5/score step of the
    /// process; lowered so that 700 MiB per permit fits `scoring_memory_budget_mib`.
    pub scoring: usize,
    /// day1/score and era5/score steps claimed at once. They read the miner's data without a
    /// scoring permit and take one only to score what they read, so a slow miner holds one of
    /// these, never a permit; lowered so that 160 MiB per step fits what the permits leave of
    /// `scoring_memory_budget_mib` (at least `scoring`).
    pub miner_data: usize,
    /// Truth/reference fetch steps.
    pub fetch: usize,
    /// Small database steps.
    pub light: usize,
    /// Memory budget for scoring, in MiB: the scoring permits are lowered so that their
    /// estimated working set fits, then the day1/score and era5/score steps so that what they
    /// hold while reading fits the rest.
    pub scoring_memory_budget_mib: usize,
    /// Steps claimed per database round trip.
    pub claim_batch: usize,
    /// Idle poll interval of the dispatcher, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig {
            network: 32,
            scoring: 2,
            miner_data: 16,
            fetch: 2,
            light: 4,
            scoring_memory_budget_mib: 4096,
            claim_batch: 16,
            poll_interval_ms: 500,
        }
    }
}

impl ConcurrencyConfig {
    /// The limit of one resource class.
    pub fn limit(&self, class: ResourceClass) -> usize {
        match class {
            ResourceClass::Network => self.network,
            ResourceClass::Scoring => self.scoring,
            ResourceClass::MinerData => self.miner_data,
            ResourceClass::Fetch => self.fetch,
            ResourceClass::Light => self.light,
        }
        .max(1)
    }

    /// The scoring permits of a process: `scoring`, lowered so that `permit_bytes` per permit
    /// fits the memory budget (at least 1; `permit_bytes` 0: not lowered).
    pub fn scoring_permits(&self, permit_bytes: usize) -> usize {
        let limit = self.limit(ResourceClass::Scoring);
        if permit_bytes == 0 {
            return limit;
        }
        limit.min((self.budget_bytes() / permit_bytes).max(1))
    }

    /// The day1/score and era5/score steps a process claims at once: `miner_data`, lowered so
    /// that [`MINER_DATA_STEP_BYTES`] per step fits what the permits (`permit_bytes` each)
    /// leave of the budget, and never below the number of permits.
    pub fn miner_data_steps(&self, permit_bytes: usize) -> usize {
        let permits = self.scoring_permits(permit_bytes);
        let limit = self.limit(ResourceClass::MinerData);
        if permit_bytes == 0 {
            return limit.max(permits);
        }
        let rest = self
            .budget_bytes()
            .saturating_sub(permits.saturating_mul(permit_bytes));
        limit.min(rest / MINER_DATA_STEP_BYTES).max(permits)
    }

    fn budget_bytes(&self) -> usize {
        self.scoring_memory_budget_mib.saturating_mul(1 << 20)
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            test_mode: false,
            test_hindcast_days: 15,
            test_hindcast_hours: 0,
            test_gfs_init: None,
            test_run_interval_minutes: 60,
            test_retry_base_delay_seconds: 5,
            gfs_cycle_hour: 0,
            run_creation_time_utc: NaiveTime::from_hms_opt(5, 0, 0).expect("valid time"),
            era5_delay_days: 5,
            era5_buffer_hours: 6,
            test_era5_delay_hours: 0,
            era5_recheck_minutes: 60,
            test_era5_recheck_seconds: 5,
            era5_give_up_days: 30,
            test_era5_give_up_seconds: 86_400,
            lease_seconds: 60,
            heartbeat_seconds: 15,
            snapshot_interval_minutes: 10,
            max_lease_losses: 3,
            shutdown_grace_seconds: 30,
            miner_step_deadline_seconds: 600,
            submission_window_minutes: 120,
            backfill_window_minutes: 30,
            retention_days: 90,
            prune_interval_minutes: 60,
            prune_batch_rows: 5000,
            retry: BTreeMap::new(),
            concurrency: ConcurrencyConfig::default(),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipeline configuration: {0}")]
pub struct ConfigError(pub String);

/// The timings a pipeline runs by: the operator's (days, hours, minutes) or test mode's short
/// ones (seconds, a hindcast or replayed init, runs every few minutes). The one place that
/// reads `test_mode` for timings: [`PipelineConfig::timings`] resolves it, the pipeline keeps
/// the result for its life, and steps read values from it instead of branching on the mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// Runs are test runs (recorded with `test_mode`, created at any time of day).
    pub test_mode: bool,
    /// Replaces the base delay of every retry policy, in seconds (test mode).
    pub retry_base_delay_seconds: Option<u32>,
    /// From the valid time of a lead until its ERA5 is expected (delay and buffer).
    pub era5_delay: Duration,
    /// Between two looks at the ERA5 store for a lead due but not published yet.
    pub era5_recheck: Duration,
    /// How long a due lead may stay unpublished before it is given up for the run.
    pub era5_give_up: Duration,
    /// The configuration key that sets `era5_give_up` (named in the reason a lead is
    /// unavailable).
    pub era5_give_up_key: &'static str,
    /// How long Day1 waits before looking again for GFS inputs that are not published yet.
    pub gfs_recheck: Duration,
    /// The time of day from which the daily run is created; `None`: at any time (test mode).
    pub run_creation_from: Option<NaiveTime>,
    /// How often the daemon looks whether a run must be created.
    pub ensure_run_every: std::time::Duration,
}

impl PipelineConfig {
    /// The timings of this configuration's mode (see [`Timings`]).
    pub fn timings(&self) -> Timings {
        if self.test_mode {
            Timings {
                test_mode: true,
                retry_base_delay_seconds: Some(self.test_retry_base_delay_seconds),
                era5_delay: Duration::hours(i64::from(self.test_era5_delay_hours)),
                era5_recheck: Duration::seconds(i64::from(self.test_era5_recheck_seconds)),
                era5_give_up: Duration::seconds(i64::from(self.test_era5_give_up_seconds)),
                era5_give_up_key: "test_era5_give_up_seconds",
                gfs_recheck: Duration::minutes(1),
                run_creation_from: None,
                ensure_run_every: std::time::Duration::from_secs(
                    60 * u64::from(self.test_run_interval_minutes.max(1)),
                ),
            }
        } else {
            Timings {
                test_mode: false,
                retry_base_delay_seconds: None,
                era5_delay: Duration::days(i64::from(self.era5_delay_days))
                    + Duration::hours(i64::from(self.era5_buffer_hours)),
                era5_recheck: Duration::minutes(i64::from(self.era5_recheck_minutes)),
                era5_give_up: Duration::days(i64::from(self.era5_give_up_days)),
                era5_give_up_key: "era5_give_up_days",
                gfs_recheck: Duration::minutes(30),
                run_creation_from: Some(self.run_creation_time_utc),
                ensure_run_every: std::time::Duration::from_secs(300),
            }
        }
    }

    /// Checks the values that serde cannot: cycles, leases, non-empty selections, retry keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if ![0, 6, 12, 18].contains(&self.gfs_cycle_hour) {
            return fail(format!(
                "gfs_cycle_hour must be 0, 6, 12 or 18, got {}",
                self.gfs_cycle_hour
            ));
        }
        if self.lease_seconds < 5
            || self.heartbeat_seconds == 0
            || self.heartbeat_seconds * 2 > self.lease_seconds
        {
            return fail(format!(
                "heartbeat_seconds ({}) must be at least 1 and at most half of lease_seconds ({}, at least 5)",
                self.heartbeat_seconds, self.lease_seconds
            ));
        }
        if self.era5_recheck_minutes == 0 || self.test_era5_recheck_seconds == 0 {
            return fail(
                "era5_recheck_minutes and test_era5_recheck_seconds must be at least 1".into(),
            );
        }
        if self.era5_give_up_days == 0 || self.test_era5_give_up_seconds == 0 {
            return fail(
                "era5_give_up_days and test_era5_give_up_seconds must be at least 1".into(),
            );
        }
        if self.submission_window_minutes == 0 {
            return fail(
                "submission_window_minutes must be at least 1 (2 hours, 120, as the reference validator)"
                    .into(),
            );
        }
        if self.backfill_window_minutes > self.submission_window_minutes {
            return fail(format!(
                "backfill_window_minutes ({}) may not exceed submission_window_minutes ({}): a \
                 miner backfilled after the window could never be verified in time",
                self.backfill_window_minutes, self.submission_window_minutes
            ));
        }
        if !(1..=5000).contains(&self.prune_batch_rows) || self.prune_interval_minutes == 0 {
            return fail(format!(
                "prune_batch_rows must be 1..=5000 (got {}) and prune_interval_minutes at least 1",
                self.prune_batch_rows
            ));
        }
        if self.test_mode && self.test_run_interval_minutes == 0 {
            return fail("test_run_interval_minutes must be at least 1".into());
        }
        for key in self.retry.keys() {
            let ok = key
                .split_once('/')
                .is_some_and(|(s, sub)| StepKind::from_names(s, sub).is_ok());
            if !ok {
                return fail(format!(
                    "unknown step `{key}` in [pipeline.retry]; use step/substep, e.g. verify/open_store"
                ));
            }
        }
        Ok(())
    }

    /// The retry policy of a kind: the override if configured, else the kind's default; in test
    /// mode the base delay is replaced by `test_retry_base_delay_seconds`.
    pub fn retry_policy(&self, kind: StepKind) -> RetryPolicy {
        let policy = self
            .retry
            .get(&kind.path())
            .copied()
            .unwrap_or_else(|| kind.default_retry_policy());
        match self.timings().retry_base_delay_seconds {
            Some(base) => policy.with_base_delay(base),
            None => policy,
        }
    }

    /// The policy of lost leases of a kind: the kind's delays (see [`Self::retry_policy`]),
    /// but `max_lease_losses` instead of its retry budget, and always retried up to it.
    pub fn lease_loss_policy(&self, kind: StepKind) -> RetryPolicy {
        RetryPolicy {
            should_retry: true,
            max_retries: self.max_lease_losses,
            ..self.retry_policy(kind)
        }
    }

    /// The miner-read deadline of one day1/score or era5/score run (`None`: no deadline).
    pub fn miner_step_deadline(&self) -> Option<std::time::Duration> {
        (self.miner_step_deadline_seconds > 0)
            .then(|| std::time::Duration::from_secs(u64::from(self.miner_step_deadline_seconds)))
    }

    /// The end of a run's submission window: a manifest frozen after it is late.
    pub fn submission_deadline(&self, run_start: DateTime<Utc>) -> DateTime<Utc> {
        run_start + Duration::minutes(i64::from(self.submission_window_minutes))
    }

    /// Until when miners imported after a run's seed are still added to it.
    pub fn backfill_until(&self, run_start: DateTime<Utc>) -> DateTime<Utc> {
        run_start + Duration::minutes(i64::from(self.backfill_window_minutes))
    }

    /// Rows of finished runs started before this time are pruned (None: kept forever).
    pub fn retention_cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.retention_days > 0).then(|| now - Duration::days(i64::from(self.retention_days)))
    }

    /// The grace period of a shutdown.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.shutdown_grace_seconds))
    }

    /// The GFS init time a run created at `now` scores: the latest configured cycle at or
    /// before `now`, shifted back by the hindcast in test mode.
    pub fn gfs_init_for(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if let (true, Some(init)) = (self.test_mode, self.test_gfs_init) {
            return init;
        }
        let base = if self.test_mode {
            now - Duration::days(i64::from(self.test_hindcast_days))
                - Duration::hours(i64::from(self.test_hindcast_hours))
        } else {
            now
        };
        let day = base.date_naive();
        let mut init = Utc.from_utc_datetime(
            &day.and_hms_opt(self.gfs_cycle_hour, 0, 0)
                .expect("valid cycle"),
        );
        if init > base {
            init -= Duration::days(1);
        }
        if self.test_mode {
            // in test mode runs start every few minutes: use the latest 6-hourly cycle
            let h = base.hour() - base.hour() % 6;
            init = Utc.from_utc_datetime(&day.and_hms_opt(h, 0, 0).expect("valid hour"));
        }
        init
    }

    /// When ERA5 truth for `lead_hours` after `gfs_init` is expected to be published.
    pub fn era5_ready_at(&self, gfs_init: DateTime<Utc>, lead_hours: u32) -> DateTime<Utc> {
        gfs_init + Duration::hours(i64::from(lead_hours)) + self.era5_delay()
    }

    /// How long the ERA5 delay and buffer (or the test-mode delay) are.
    fn era5_delay(&self) -> Duration {
        self.timings().era5_delay
    }

    /// The latest valid time whose ERA5 is expected to be published at `now` (now minus the
    /// delay and buffer): the reference of the ERA5 lag.
    pub fn era5_expected_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.era5_delay()
    }

    /// How long a step waits before looking at the ERA5 store again for a lead that is due
    /// but unpublished.
    pub fn era5_recheck(&self) -> Duration {
        self.timings().era5_recheck
    }

    /// When a lead that became due at `ready_at` in a run created at `run_created` is given
    /// up if its ERA5 is still unpublished: `era5_give_up` after the later of the two (the
    /// same as after `ready_at` for a live run; a hindcast run, created long after its leads
    /// were due, counts from its creation).
    pub fn era5_give_up_at(
        &self,
        ready_at: DateTime<Utc>,
        run_created: DateTime<Utc>,
    ) -> DateTime<Utc> {
        ready_at.max(run_created) + self.timings().era5_give_up
    }

    /// The lease duration.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.lease_seconds))
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.heartbeat_seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_caps_permits_then_miner_data_steps() {
        let c = ConcurrencyConfig::default();
        // 4096 MiB: 2 permits (1400 MiB), 16 steps of 160 MiB in the remaining 2696 MiB
        assert_eq!(c.scoring_permits(SCORING_PERMIT_BYTES), 2);
        assert_eq!(c.miner_data_steps(SCORING_PERMIT_BYTES), 16);
        let small = ConcurrencyConfig {
            scoring: 4,
            scoring_memory_budget_mib: 1024,
            ..ConcurrencyConfig::default()
        };
        // one permit (700 MiB), 324 MiB left: 2 steps
        assert_eq!(small.scoring_permits(SCORING_PERMIT_BYTES), 1);
        assert_eq!(small.miner_data_steps(SCORING_PERMIT_BYTES), 2);
        let tiny = ConcurrencyConfig {
            scoring_memory_budget_mib: 100,
            ..ConcurrencyConfig::default()
        };
        // never below one permit, never fewer steps than permits
        assert_eq!(tiny.scoring_permits(SCORING_PERMIT_BYTES), 1);
        assert_eq!(tiny.miner_data_steps(SCORING_PERMIT_BYTES), 1);
        assert_eq!(tiny.miner_data_steps(0), 16);
        let p = PipelineConfig::default();
        assert_eq!(
            p.miner_step_deadline(),
            Some(std::time::Duration::from_secs(600))
        );
        let off = PipelineConfig {
            miner_step_deadline_seconds: 0,
            ..PipelineConfig::default()
        };
        assert_eq!(off.miner_step_deadline(), None);
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn fair_play_windows_and_retention_are_checked() {
        let ok = PipelineConfig::default();
        assert!(ok.validate().is_ok());
        let start = at("2025-01-01T05:00:00Z");
        assert_eq!(ok.submission_deadline(start), at("2025-01-01T07:00:00Z"));
        assert_eq!(ok.backfill_until(start), at("2025-01-01T05:30:00Z"));
        assert_eq!(ok.retention_cutoff(start), Some(start - Duration::days(90)));
        let forever = PipelineConfig {
            retention_days: 0,
            ..PipelineConfig::default()
        };
        assert_eq!(forever.retention_cutoff(start), None);
        let backfill_too_long = PipelineConfig {
            backfill_window_minutes: 121,
            ..PipelineConfig::default()
        };
        let e = backfill_too_long.validate().unwrap_err().to_string();
        assert!(
            e.contains("may not exceed submission_window_minutes"),
            "{e}"
        );
        for bad in [
            PipelineConfig {
                submission_window_minutes: 0,
                backfill_window_minutes: 0,
                ..PipelineConfig::default()
            },
            PipelineConfig {
                prune_batch_rows: 5001,
                ..PipelineConfig::default()
            },
            PipelineConfig {
                prune_batch_rows: 0,
                ..PipelineConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_validate_and_empty_toml_is_default() {
        PipelineConfig::default().validate().unwrap();
        let c: PipelineConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, PipelineConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected_with_a_hint() {
        assert!(serde_json::from_str::<PipelineConfig>(r#"{"lease_secs": 3}"#).is_err());
        let mut c = PipelineConfig::default();
        c.retry
            .insert("verify/score".into(), RetryPolicy::default());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("verify/open_store")
        );
        let c = PipelineConfig {
            heartbeat_seconds: 40,
            ..PipelineConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn init_time_is_the_latest_cycle_or_a_hindcast() {
        let c = PipelineConfig::default();
        assert_eq!(
            c.gfs_init_for(at("2025-01-02T05:00:00Z")),
            at("2025-01-02T00:00:00Z")
        );
        let c12 = PipelineConfig {
            gfs_cycle_hour: 12,
            ..c.clone()
        };
        assert_eq!(
            c12.gfs_init_for(at("2025-01-02T05:00:00Z")),
            at("2025-01-01T12:00:00Z")
        );
        let t = PipelineConfig {
            test_mode: true,
            test_hindcast_days: 10,
            ..c
        };
        assert_eq!(
            t.gfs_init_for(at("2025-01-12T13:30:00Z")),
            at("2025-01-02T12:00:00Z")
        );
    }

    #[test]
    fn era5_readiness_follows_delay_and_buffer() {
        let c = PipelineConfig::default();
        let init = at("2025-01-01T00:00:00Z");
        assert_eq!(c.era5_ready_at(init, 24), at("2025-01-07T06:00:00Z"));
        let t = PipelineConfig {
            test_mode: true,
            ..c
        };
        assert_eq!(t.era5_ready_at(init, 24), at("2025-01-02T00:00:00Z"));
    }

    #[test]
    fn era5_recheck_and_give_up_follow_the_mode() {
        let c = PipelineConfig::default();
        assert_eq!(c.era5_recheck(), Duration::hours(1));
        let ready = at("2025-01-07T06:00:00Z");
        let created = at("2025-01-01T05:00:00Z");
        assert_eq!(
            c.era5_give_up_at(ready, created),
            at("2025-02-06T06:00:00Z")
        );
        assert_eq!(
            c.era5_expected_until(at("2025-01-10T06:00:00Z")),
            at("2025-01-05T00:00:00Z")
        );
        let t = PipelineConfig {
            test_mode: true,
            test_era5_recheck_seconds: 2,
            test_era5_give_up_seconds: 30,
            ..c
        };
        assert_eq!(t.era5_recheck(), Duration::seconds(2));
        // a hindcast run counts from its creation, not from a ready time long past
        let created = at("2026-12-03T10:00:00Z");
        assert_eq!(
            t.era5_give_up_at(ready, created),
            at("2026-12-03T10:00:30Z")
        );
        let zero = PipelineConfig {
            era5_recheck_minutes: 0,
            ..PipelineConfig::default()
        };
        assert!(zero.validate().is_err());
    }

    /// The profile is the one place the mode is read: the operator's timings keep the daily
    /// creation time and the day-scale keys, test mode's run at any time with short waits.
    #[test]
    fn timings_are_resolved_from_the_mode() {
        let live = PipelineConfig::default().timings();
        assert!(!live.test_mode);
        assert_eq!(live.run_creation_from, NaiveTime::from_hms_opt(5, 0, 0));
        assert_eq!(live.era5_give_up_key, "era5_give_up_days");
        assert_eq!(live.era5_delay, Duration::days(5) + Duration::hours(6));
        assert_eq!(live.gfs_recheck, Duration::minutes(30));
        assert_eq!(live.ensure_run_every, std::time::Duration::from_secs(300));
        let test = PipelineConfig {
            test_mode: true,
            test_run_interval_minutes: 2,
            ..PipelineConfig::default()
        }
        .timings();
        assert!(test.test_mode);
        assert_eq!(test.run_creation_from, None);
        assert_eq!(test.era5_give_up_key, "test_era5_give_up_seconds");
        assert_eq!(test.era5_give_up, Duration::seconds(86_400));
        assert_eq!(test.gfs_recheck, Duration::minutes(1));
        assert_eq!(test.retry_base_delay_seconds, Some(5));
        assert_eq!(test.ensure_run_every, std::time::Duration::from_secs(120));
    }

    #[test]
    fn test_mode_shortens_retry_delays() {
        let mut c = PipelineConfig::default();
        assert_eq!(
            c.retry_policy(StepKind::VerifyOpenStore)
                .retry_delay_seconds,
            120
        );
        c.test_mode = true;
        assert_eq!(
            c.retry_policy(StepKind::VerifyOpenStore)
                .retry_delay_seconds,
            5
        );
    }
}
