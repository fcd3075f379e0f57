//! Retention (docs/operating.md, "Retention"): scores and step rows of finished runs, and
//! subnet snapshots, older than `retention_days` are deleted.
//!
//! A run is pruned only when it is over: its status is terminal (`completed`/`failed`, never
//! reopened) and none of its steps is open (pending, in progress, retrying, waiting — a forced
//! re-run by `wx-step run` in a finished run keeps it untouched). Deletes go in batches of at
//! most `batch` rows, each its own short transaction (the ids of at most n rows, then `DELETE … WHERE id IN
//! (ids)`), so no lock is held long and the daemon's completions interleave. Runs, stats rows,
//! responses, unavailable leads and `miner_stats` are kept (reports, streaks); the newest
//! snapshot is always kept (`weights` reads it).

use crate::backend::{with_conn, write_tx};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use wx_model::schema::{
    subnet_snapshots as snapshots, weather_forecast_runs as runs, weather_forecast_steps as steps,
    weather_miner_scores as scores,
};
use wx_model::{RunStatus, StepStatus};

/// What a prune deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Whether nothing was deleted (counts only).
    pub dry_run: bool,
    /// The finished runs older than the cutoff whose rows were pruned.
    pub runs: Vec<i64>,
    /// Older runs left alone because they are still in progress.
    pub runs_in_progress: Vec<i64>,
    /// Score rows.
    pub scores: u64,
    /// Step rows.
    pub steps: u64,
    /// Subnet snapshots.
    pub snapshots: u64,
    /// Delete transactions (each at most `batch` rows).
    pub transactions: u64,
}

/// The retention job's operations.
pub struct Retention<'a>(pub(crate) &'a Db);

impl Db {
    /// Retention: deleting old scores, step rows and snapshots.
    pub fn retention(&self) -> Retention<'_> {
        Retention(self)
    }
}

/// Statuses of a step that is not finished (a run with one is in progress).
const OPEN: [StepStatus; 4] = [
    StepStatus::Pending,
    StepStatus::InProgress,
    StepStatus::RetryScheduled,
    StepStatus::Waiting,
];

impl Retention<'_> {
    /// Deletes the scores and step rows of finished runs started before `cutoff`, and the
    /// snapshots taken before it (but the newest), `batch` rows per transaction (1..=5000).
    /// With `dry_run`, counts what would go and deletes nothing.
    pub async fn prune(
        &self,
        cutoff: DateTime<Utc>,
        batch: u32,
        dry_run: bool,
    ) -> Result<PruneReport, StoreError> {
        if !(1..=5000).contains(&batch) {
            return Err(StoreError::Invalid(format!(
                "prune batch of {batch} rows: use 1..=5000 rows per transaction"
            )));
        }
        let batch = i64::from(batch);
        let cutoff = ts(cutoff);
        let terminal = [RunStatus::Completed.as_str(), RunStatus::Failed.as_str()];
        let old: Vec<(i64, String)> = with_conn!(self.0, |c| Ok::<_, StoreError>(
            runs::table
                .filter(runs::run_initiation_time.lt(cutoff))
                .order(runs::id)
                .select((runs::id, runs::status))
                .load(c)
                .await?
        ))?;
        let open = OPEN.map(|s| s.as_str());
        let mut report = PruneReport {
            dry_run,
            ..Default::default()
        };
        for (run, status) in old {
            let has_open: i64 = with_conn!(self.0, |c| Ok::<_, StoreError>(
                steps::table
                    .filter(steps::run_id.eq(run))
                    .filter(steps::status.eq_any(open))
                    .count()
                    .get_result(c)
                    .await?
            ))?;
            if !terminal.contains(&status.as_str()) || has_open > 0 {
                report.runs_in_progress.push(run);
                continue;
            }
            let (n_scores, n_steps): (i64, i64) = with_conn!(self.0, |c| Ok::<_, StoreError>((
                scores::table
                    .filter(scores::run_id.eq(run))
                    .count()
                    .get_result(c)
                    .await?,
                steps::table
                    .filter(steps::run_id.eq(run))
                    .count()
                    .get_result(c)
                    .await?,
            )))?;
            if n_scores == 0 && n_steps == 0 {
                continue;
            }
            report.runs.push(run);
            if dry_run {
                report.scores += n_scores as u64;
                report.steps += n_steps as u64;
                continue;
            }
            loop {
                let n = write_tx!(self.0, |c| Ok::<_, StoreError>({
                    let ids: Vec<i64> = scores::table
                        .filter(scores::run_id.eq(run))
                        .select(scores::id)
                        .limit(batch)
                        .load(c)
                        .await?;
                    diesel::delete(scores::table.filter(scores::id.eq_any(&ids)))
                        .execute(c)
                        .await?
                }))?;
                if n == 0 {
                    break;
                }
                report.scores += n as u64;
                report.transactions += 1;
            }
            loop {
                // a step claimed meanwhile (a forced re-run) is not deleted
                let n = write_tx!(self.0, |c| Ok::<_, StoreError>({
                    let ids: Vec<i64> = steps::table
                        .filter(steps::run_id.eq(run))
                        .filter(steps::status.ne_all(open))
                        .select(steps::id)
                        .limit(batch)
                        .load(c)
                        .await?;
                    diesel::delete(steps::table.filter(steps::id.eq_any(&ids)))
                        .execute(c)
                        .await?
                }))?;
                if n == 0 {
                    break;
                }
                report.steps += n as u64;
                report.transactions += 1;
            }
            tracing::info!(run, "pruned the run's scores and step rows (retention)");
        }
        // snapshots: by time, never the newest
        let newest: Option<i64> = with_conn!(self.0, |c| Ok::<_, StoreError>(
            snapshots::table
                .select(diesel::dsl::max(snapshots::id))
                .first(c)
                .await?
        ))?;
        let Some(newest) = newest else {
            return Ok(report);
        };
        if dry_run {
            let n: i64 = with_conn!(self.0, |c| Ok::<_, StoreError>(
                snapshots::table
                    .filter(snapshots::taken_at.lt(cutoff))
                    .filter(snapshots::id.ne(newest))
                    .count()
                    .get_result(c)
                    .await?
            ))?;
            report.snapshots = n as u64;
            return Ok(report);
        }
        loop {
            let n = write_tx!(self.0, |c| Ok::<_, StoreError>({
                let ids: Vec<i64> = snapshots::table
                    .filter(snapshots::taken_at.lt(cutoff))
                    .filter(snapshots::id.ne(newest))
                    .select(snapshots::id)
                    .limit(batch)
                    .load(c)
                    .await?;
                diesel::delete(snapshots::table.filter(snapshots::id.eq_any(&ids)))
                    .execute(c)
                    .await?
            }))?;
            if n == 0 {
                break;
            }
            report.snapshots += n as u64;
            report.transactions += 1;
        }
        Ok(report)
    }
}
