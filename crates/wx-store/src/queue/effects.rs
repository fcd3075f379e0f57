//! The writes a completion carries ([`Effects`]), applied in the completion's transaction, and
//! the run-completion check.
//!
//! A batch of completions ([`apply_batch`]) runs in four phases:
//! 1. the locks of run completion, before anything else and in key order: each run one of the
//!    completions may complete (`FOR NO KEY UPDATE`, which the `FOR KEY SHARE` of inserting
//!    step rows does not conflict with, so no lock is ever upgraded), then that run's snapshot
//!    step, so that a snapshot cannot be claimed while a completion it must see is open;
//! 2. the fences of every completion;
//! 3. the writes of every completion whose fence held, in key order;
//! 4. run completion: runs with no open unit of work left are completed and their snapshots
//!    woken (an in-progress snapshot is re-armed), stamped with a time read once the locks are
//!    held.

use super::fence::{FenceMany, FenceUpdate, IN_PROGRESS};
use super::{Claim, Completion, Fence, Outcome};
use crate::StoreError;
use crate::backend::impl_for_each_conn;
use crate::miner_stats::MinerStatsOps;
use crate::responses::ResponseOps;
use crate::scores::ScoreOps;
use crate::stats::{StatsOps, StatsPatch};
use crate::steps::{StepOps, StepSpec, lead_i32};
use crate::time::{ts, utc};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;
use wx_model::rows::{NewResponse, NewScore, NewSnapshot, NewStep};
use wx_model::schema::weather_forecast_runs as runs;
use wx_model::schema::weather_forecast_steps as steps;
use wx_model::{MinerUid, RunId, RunStatus, StepKey, StepKind, StepStatus};

/// Recompute a miner's lifetime statistics as part of a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerStatsRefresh {
    /// The miner's uid.
    pub uid: MinerUid,
    /// The miner's hotkey: aggregates belong to the identity (uid, hotkey).
    pub hotkey: String,
    /// Day1 scores at or above this pass.
    pub day1_pass_threshold: f64,
}

/// Database writes that belong to a step's result. They are applied in the same transaction as
/// the fenced completion, or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Miners to seed `seeded` stats rows for in the claim's run (idempotent).
    pub seed_stats: Vec<(MinerUid, String)>,
    /// Scores to upsert.
    pub scores: Vec<NewScore>,
    /// Stats patches of miners of the claim's run.
    pub stats: Vec<(MinerUid, StatsPatch)>,
    /// A response to upsert.
    pub response: Option<NewResponse>,
    /// Successor steps to enqueue (idempotent).
    pub enqueue: Vec<StepSpec>,
    /// Sub-step events to record.
    pub logs: Vec<crate::StepLog>,
    /// A new status of the claim's run (terminal statuses are never reopened).
    pub run_status: Option<(RunStatus, Option<String>)>,
    /// Miners whose `miner_stats` to recompute.
    pub refresh_miner_stats: Vec<MinerStatsRefresh>,
    /// A subnet snapshot to store.
    pub snapshot: Option<NewSnapshot>,
    /// Other runs to mark completed (a sweep by the snapshot step); their snapshots are woken.
    pub complete_runs: Vec<RunId>,
    /// Steps to make due now (no attempt consumed), e.g. a run's snapshot once the run
    /// completes, so the weights reflect its final scores without waiting for the period. A
    /// step in progress is re-armed: its next wait ends at once.
    pub wake: Vec<StepKey>,
    /// Complete the claim's run — and wake its snapshot — if, once this completion is applied,
    /// none of the run's units of work is open any more. Decided inside the completion's
    /// transaction (serialised per run), so two last steps finishing at once cannot both see
    /// the other as still open and leave the run incomplete.
    pub complete_run_if_done: bool,
}

impl Effects {
    /// Adds `more` to these effects: lists are appended; the single values (response, run
    /// status, snapshot) are replaced where `more` has one; `complete_run_if_done` holds if
    /// either asks for it. Every field is named here, so a new field does not compile until it
    /// says how it merges.
    pub fn merge(&mut self, more: Effects) {
        let Effects {
            seed_stats,
            scores,
            stats,
            response,
            enqueue,
            logs,
            run_status,
            refresh_miner_stats,
            snapshot,
            complete_runs,
            wake,
            complete_run_if_done,
        } = more;
        self.seed_stats.extend(seed_stats);
        self.scores.extend(scores);
        self.stats.extend(stats);
        if response.is_some() {
            self.response = response;
        }
        self.enqueue.extend(enqueue);
        self.logs.extend(logs);
        if run_status.is_some() {
            self.run_status = run_status;
        }
        self.refresh_miner_stats.extend(refresh_miner_stats);
        if snapshot.is_some() {
            self.snapshot = snapshot;
        }
        self.complete_runs.extend(complete_runs);
        self.wake.extend(wake);
        self.complete_run_if_done |= complete_run_if_done;
    }
}

/// A completion prepared outside the transaction (validated, rows built).
pub(crate) struct Prepared<'c> {
    pub(crate) claim: &'c Claim,
    pub(crate) completion: &'c Completion,
    pub(crate) enqueue: Vec<NewStep>,
    pub(crate) logs: Vec<NewStep>,
}

/// The order in which a batch's completions are applied (and their locks taken).
fn key_order(key: &StepKey) -> (RunId, MinerUid, StepKind, u32) {
    (key.run, key.miner, key.kind, key.lead_hours)
}

/// The snapshot step of a run.
fn snapshot_of(run: RunId) -> StepKey {
    StepKey::run_level(run, StepKind::AggregateSnapshot)
}

/// Statuses a run never leaves.
const FINAL_RUN_STATUSES: [&str; 2] = ["completed", "failed"];

/// Row locks that differ between the backends: PostgreSQL locks rows, SQLite's single writer
/// transaction is serial already.
pub(crate) trait RowLocks {
    /// Locks a run's row for this transaction, without conflicting with the `FOR KEY SHARE`
    /// of foreign keys.
    fn lock_run(&mut self, run: RunId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Locks a step row by key for this transaction.
    fn lock_step(&mut self, key: &StepKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One step row by id, locked for this transaction.
    fn lock_row(
        &mut self,
        id: i64,
    ) -> impl Future<Output = Result<Option<wx_model::rows::StepRow>, StoreError>> + Send;
}

impl RowLocks for diesel_async::AsyncPgConnection {
    async fn lock_run(&mut self, run: RunId) -> Result<(), StoreError> {
        runs::table
            .find(run.0)
            .select(runs::id)
            .for_no_key_update()
            .load::<i64>(self)
            .await?;
        Ok(())
    }

    async fn lock_step(&mut self, key: &StepKey) -> Result<(), StoreError> {
        steps::table
            .filter(steps::run_id.eq(key.run.0))
            .filter(steps::miner_uid.eq(key.miner.as_i32()))
            .filter(steps::step_name.eq(key.kind.step_name()))
            .filter(steps::substep.eq(key.kind.substep()))
            .filter(steps::lead_hours.eq(lead_i32(key.lead_hours)?))
            .select(steps::id)
            .for_no_key_update()
            .load::<i64>(self)
            .await?;
        Ok(())
    }

    async fn lock_row(&mut self, id: i64) -> Result<Option<wx_model::rows::StepRow>, StoreError> {
        Ok(steps::table
            .find(id)
            .select(wx_model::rows::StepRow::as_select())
            .for_update()
            .first(self)
            .await
            .optional()?)
    }
}

impl RowLocks for crate::backend::SqliteConn {
    async fn lock_run(&mut self, _run: RunId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn lock_step(&mut self, _key: &StepKey) -> Result<(), StoreError> {
        Ok(())
    }

    async fn lock_row(&mut self, id: i64) -> Result<Option<wx_model::rows::StepRow>, StoreError> {
        Ok(steps::table
            .find(id)
            .select(wx_model::rows::StepRow::as_select())
            .first(self)
            .await
            .optional()?)
    }
}

/// The single-statement writes of effects, the same text on both backends.
pub(crate) trait EffectOps {
    /// Replaces a step row's context.
    fn set_context(
        &mut self,
        id: i64,
        context: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets a run's status unless the run is final; final statuses stamp `completed_at`.
    fn set_run_status(
        &mut self,
        run: RunId,
        status: RunStatus,
        error: Option<&str>,
        at: NaiveDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a subnet snapshot.
    fn insert_snapshot(
        &mut self,
        snapshot: &NewSnapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes an open step due at `now` (a step in progress is re-armed instead).
    fn wake(
        &mut self,
        key: &StepKey,
        now: NaiveDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl_for_each_conn!(EffectOps {
    async fn set_context(&mut self, id: i64, context: &str) -> Result<(), StoreError> {
        diesel::update(steps::table.find(id)).set(steps::context.eq(context)).execute(self).await?;
        Ok(())
    }

    async fn set_run_status(&mut self, run: RunId, status: RunStatus, error: Option<&str>, at: NaiveDateTime) -> Result<(), StoreError> {
        let is_final = FINAL_RUN_STATUSES.contains(&status.as_str());
        diesel::update(runs::table.find(run.0).filter(runs::status.ne_all(FINAL_RUN_STATUSES)))
            .set((runs::status.eq(status.as_str()), runs::completed_at.eq(is_final.then_some(at)), runs::error.eq(error)))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn insert_snapshot(&mut self, snapshot: &NewSnapshot) -> Result<(), StoreError> {
        diesel::insert_into(wx_model::schema::subnet_snapshots::table).values(snapshot).execute(self).await?;
        Ok(())
    }

    async fn wake(&mut self, key: &StepKey, now: NaiveDateTime) -> Result<(), StoreError> {
        let open = [StepStatus::Pending, StepStatus::RetryScheduled, StepStatus::Waiting, StepStatus::InProgress].map(|s| s.as_str());
        let next = case_when::<_, _, diesel::sql_types::Timestamp>(steps::status.ne(IN_PROGRESS).and(steps::next_run_at.gt(now)), now).otherwise(steps::next_run_at);
        diesel::update(
            steps::table
                .filter(steps::run_id.eq(key.run.0))
                .filter(steps::miner_uid.eq(key.miner.as_i32()))
                .filter(steps::step_name.eq(key.kind.step_name()))
                .filter(steps::substep.eq(key.kind.substep()))
                .filter(steps::lead_hours.eq(lead_i32(key.lead_hours)?))
                .filter(steps::status.eq_any(open)),
        )
        .set((steps::next_run_at.eq(next), steps::wake_requested.eq(steps::status.eq(IN_PROGRESS)), steps::updated_at.eq(now)))
        .execute(self)
        .await?;
        Ok(())
    }
});

/// What a connection needs to apply completions.
pub(crate) trait CompletionConn:
    FenceMany
    + RowLocks
    + EffectOps
    + RunDone
    + StatsOps
    + ResponseOps
    + ScoreOps
    + StepOps
    + MinerStatsOps
    + Send
{
}

impl CompletionConn for diesel_async::AsyncPgConnection {}
impl CompletionConn for crate::backend::SqliteConn {}

/// Applies a batch of prepared completions in the caller's transaction (see the module
/// documentation for the phases). `stamp` reads the time recorded once the locks are held.
pub(crate) async fn apply_batch<C: CompletionConn>(
    c: &mut C,
    prepared: &[Prepared<'_>],
    updates: &[FenceUpdate],
    now: DateTime<Utc>,
    stamp: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Result<Vec<Fence>, StoreError> {
    let checked: BTreeSet<RunId> = prepared
        .iter()
        .filter(|p| p.completion.effects.complete_run_if_done)
        .map(|p| p.claim.key.run)
        .collect();
    for run in &checked {
        c.lock_run(*run).await?;
        c.lock_step(&snapshot_of(*run)).await?;
    }
    let held = c.fence_many(updates).await?;
    let mut applied: Vec<&Prepared<'_>> = prepared
        .iter()
        .zip(&held)
        .filter_map(|(p, held)| held.then_some(p))
        .collect();
    applied.sort_by_key(|p| key_order(&p.claim.key));
    for p in &applied {
        apply_writes(c, p, now).await?;
    }
    complete_runs(c, &applied, now, stamp).await?;
    Ok(held
        .into_iter()
        .map(|held| if held { Fence::Applied } else { Fence::Lost })
        .collect())
}

/// The writes of one completion whose fence held, except run completion.
async fn apply_writes<C: CompletionConn>(
    c: &mut C,
    p: &Prepared<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (claim, effects) = (p.claim, &p.completion.effects);
    let run = claim.key.run;
    let context = match (&p.completion.context, &p.completion.outcome) {
        (Some(c), _) => Some(c.to_string()),
        (None, Outcome::Wait { reason, .. }) => {
            Some(serde_json::json!({ "waiting_for": reason }).to_string())
        }
        (None, _) => None,
    };
    if let Some(context) = context {
        c.set_context(claim.id, &context).await?;
    }
    if !effects.seed_stats.is_empty() {
        c.seed_rows(&crate::stats::seed_rows(run, &effects.seed_stats, now))
            .await?;
    }
    for (uid, patch) in &effects.stats {
        c.apply_patch(run, *uid, patch, now).await?;
    }
    if let Some(response) = &effects.response {
        c.upsert_response(response).await?;
    }
    if !effects.scores.is_empty() {
        c.upsert_scores(&effects.scores).await?;
    }
    if !p.logs.is_empty() {
        c.upsert_logs(&p.logs).await?;
    }
    if !p.enqueue.is_empty() {
        c.insert_steps(&p.enqueue).await?;
    }
    if let Some((status, error)) = &effects.run_status {
        c.set_run_status(run, *status, error.as_deref(), ts(now))
            .await?;
    }
    if let Some(snapshot) = &effects.snapshot {
        // stored at the precision of every other timestamp, so comparisons hold
        let snapshot = NewSnapshot {
            taken_at: ts(utc(snapshot.taken_at)),
            ..snapshot.clone()
        };
        c.insert_snapshot(&snapshot).await?;
    }
    for refresh in &effects.refresh_miner_stats {
        c.refresh_miner_stats(
            refresh.uid,
            &refresh.hotkey,
            refresh.day1_pass_threshold,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Phase 4: completes the runs the applied completions finished or swept, wakes their
/// snapshots and the other requested steps, then stamps the runs.
async fn complete_runs<C: CompletionConn>(
    c: &mut C,
    applied: &[&Prepared<'_>],
    now: DateTime<Utc>,
    stamp: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Result<(), StoreError> {
    let mut complete: BTreeSet<RunId> = applied
        .iter()
        .flat_map(|p| p.completion.effects.complete_runs.iter().copied())
        .collect();
    let checked: BTreeSet<RunId> = applied
        .iter()
        .filter(|p| p.completion.effects.complete_run_if_done)
        .map(|p| p.claim.key.run)
        .collect();
    for run in checked {
        if c.run_is_done(run).await? {
            complete.insert(run);
        }
    }
    let mut wake: Vec<StepKey> = applied
        .iter()
        .flat_map(|p| p.completion.effects.wake.iter().copied())
        .chain(complete.iter().map(|run| snapshot_of(*run)))
        .collect();
    wake.sort_by_key(key_order);
    wake.dedup();
    for key in &wake {
        c.wake(key, ts(now)).await?;
    }
    if !complete.is_empty() {
        // read after every lock is held: a snapshot claimed earlier has an earlier start
        let at = ts(stamp());
        for run in &complete {
            c.set_run_status(*run, RunStatus::Completed, None, at)
                .await?;
        }
    }
    Ok(())
}

/// Whether a run has no open unit of work left, as seen inside the current transaction.
pub(crate) trait RunDone {
    /// The caller holds the run's lock (phase 1), so of several completions of the run's last
    /// steps, the last to commit sees the others' committed statuses.
    fn run_is_done(&mut self, run: RunId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<C: StepOps + Send> RunDone for C {
    async fn run_is_done(&mut self, run: RunId) -> Result<bool, StoreError> {
        let open = self.open_work_by_status(run).await?;
        Ok(open.iter().all(|(_, n)| *n == 0))
    }
}
