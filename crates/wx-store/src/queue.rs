//! The durable step queue (docs/pipeline.md §4): claim due steps with a lease and a fresh claim
//! token, heartbeat, fenced completion with the step's results in the same transaction, retry
//! scheduling, waiting without consuming an attempt, rescue of expired leases, release on
//! shutdown.
//!
//! Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL and one `BEGIN IMMEDIATE` writer
//! transaction on SQLite. Every later change of a claimed row is fenced by
//! `id AND claim_token AND status = 'in_progress'`: a worker that lost its lease changes nothing.
//!
//! `attempt` counts attempts *consumed*: a failure or a lost lease adds one; success and waiting
//! do not. The attempt running now is `attempt + 1`. Times are passed in by the caller (an
//! injected clock); processes sharing a database must have synchronised clocks (NTP).

use crate::backend::{Pools, impl_for_each_conn, with_conn, write_tx};
use crate::miner_stats::MinerStatsOps;
use crate::responses::ResponseOps;
use crate::scores::{ScoreOps, validate_scores};
use crate::stats::{StatsOps, StatsPatch};
use crate::steps::{StepLog, StepOps, StepSpec, log_row, new_step};
use crate::time::{ts, utc};
use crate::{Db, StoreError};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use rand::SeedableRng;
use std::time::Duration;
use wx_model::retry::RetryDecision;
use wx_model::rows::{NewResponse, NewScore, StepRow};
use wx_model::schema::weather_forecast_runs as runs;
use wx_model::schema::weather_forecast_steps as steps;
use wx_model::{
    Blame, ErrorKind, MinerUid, RetryPolicy, RunStatus, StepError, StepKey, StepKind, StepStatus,
};

/// SQL of the due statuses, written literally so that the partial index `ix_steps_due` applies.
const DUE_CLAUSE: &str = "status IN ('pending', 'retry_scheduled', 'waiting')";
/// SQL of the retry status, matching the partial index `ix_steps_retry`.
const RETRY_CLAUSE: &str = "status = 'retry_scheduled'";

/// A request to claim due steps.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// Who claims (process/host/worker name), stored in `claimed_by`.
    pub worker: &'a str,
    /// Which kinds may be claimed (per-kind concurrency is the caller's business).
    pub kinds: &'a [StepKind],
    /// At most this many rows.
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// A claimed step: the right to run it until `lease_expires_at` (extend with heartbeats).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Row id.
    pub id: i64,
    /// The fencing token of this claim.
    pub token: String,
    /// The step's key.
    pub key: StepKey,
    /// The miner's hotkey (`coordinator` for run-level steps).
    pub hotkey: String,
    /// Attempts consumed before this one.
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// The status the row had when claimed (a claim from `waiting` is a readiness check).
    pub claimed_from: StepStatus,
    /// The row's context.
    pub context: Option<serde_json::Value>,
    /// When this attempt started.
    pub started_at: DateTime<Utc>,
    /// When the lease runs out unless extended.
    pub lease_expires_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done for good.
    Succeeded,
    /// Failed; run again at `at` (consumes an attempt).
    Retry {
        /// When to run again.
        at: DateTime<Utc>,
        /// Why it failed.
        error: StepError,
    },
    /// Failed for good (consumes an attempt).
    Failed {
        /// Why it failed.
        error: StepError,
    },
    /// Data not ready: run again at `until` without consuming an attempt.
    Wait {
        /// When to look again.
        until: DateTime<Utc>,
        /// What is awaited, for operators.
        reason: String,
    },
}

impl Outcome {
    fn status(&self) -> StepStatus {
        match self {
            Outcome::Succeeded => StepStatus::Succeeded,
            Outcome::Retry { .. } => StepStatus::RetryScheduled,
            Outcome::Failed { .. } => StepStatus::Failed,
            Outcome::Wait { .. } => StepStatus::Waiting,
        }
    }
}

/// Recompute a miner's lifetime statistics as part of a completion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerStatsRefresh {
    /// The miner.
    pub uid: MinerUid,
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
    pub logs: Vec<StepLog>,
    /// A new status of the claim's run (terminal statuses are never reopened).
    pub run_status: Option<(RunStatus, Option<String>)>,
    /// Miners whose `miner_stats` to recompute.
    pub refresh_miner_stats: Vec<MinerStatsRefresh>,
    /// A subnet snapshot to store.
    pub snapshot: Option<wx_model::rows::NewSnapshot>,
    /// Other runs to mark completed (a sweep by the snapshot step).
    pub complete_runs: Vec<wx_model::RunId>,
    /// Waiting steps to make due now (no attempt consumed), e.g. a run's snapshot once the
    /// run completes, so the weights reflect its final scores without waiting for the period.
    pub wake: Vec<StepKey>,
    /// Complete the claim's run — and wake its snapshot — if, once this completion is applied,
    /// none of the run's units of work is open any more. Decided inside the completion's
    /// transaction (serialised per run), so two last steps finishing at once cannot both see
    /// the other as still open and leave the run incomplete.
    pub complete_run_if_done: bool,
}

/// What a step hands back to the queue when an attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// How the attempt ended.
    pub outcome: Outcome,
    /// New context for the row (`None` keeps the current one).
    pub context: Option<serde_json::Value>,
    /// Writes applied atomically with the completion.
    pub effects: Effects,
}

impl Completion {
    /// A completion without effects.
    pub fn bare(outcome: Outcome) -> Self {
        Completion {
            outcome,
            context: None,
            effects: Effects::default(),
        }
    }

    /// Whether applying this completion writes nothing but the step row's fenced update (no
    /// effects, no new context; a wait records its reason as context).
    fn writes_only_the_step(&self) -> bool {
        self.context.is_none()
            && !matches!(self.outcome, Outcome::Wait { .. })
            && self.effects == Effects::default()
    }
}

/// Whether a fenced write took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// The claim was still held; the write was applied.
    Applied,
    /// The claim was lost (lease expired and the row was rescued or re-claimed); nothing changed.
    Lost,
}

/// A step whose lease expired, as handled by [`Queue::rescue_expired`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rescued {
    /// The step.
    pub key: StepKey,
    /// The worker that held it.
    pub claimed_by: Option<String>,
    /// The new status (`retry_scheduled` or `failed`).
    pub status: StepStatus,
}

/// The result of [`Queue::claim_key`].
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// Claimed.
    Claimed(Claim),
    /// The row is held by a live worker.
    Busy {
        /// Who holds it.
        claimed_by: Option<String>,
        /// Until when.
        lease_expires_at: Option<DateTime<Utc>>,
    },
    /// The row is not due and `force` was not given.
    NotDue {
        /// Its status.
        status: StepStatus,
        /// When it becomes due (for non-terminal rows).
        next_run_at: DateTime<Utc>,
    },
    /// No such row.
    Missing,
}

/// The queue operations of a [`Db`].
pub struct Queue<'a>(pub(crate) &'a Db);

impl Db {
    /// The durable step queue.
    pub fn queue(&self) -> Queue<'_> {
        Queue(self)
    }
}

fn kinds_clause(kinds: &[StepKind]) -> String {
    // Built only from the static names of StepKind: no user input reaches this SQL.
    let pairs: Vec<String> = kinds
        .iter()
        .filter(|k| k.is_claimable())
        .map(|k| format!("('{}', '{}')", k.step_name(), k.substep()))
        .collect();
    if pairs.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("(step_name, substep) IN ({})", pairs.join(", "))
    }
}

fn claim_from_row(row: StepRow, claimed_from: StepStatus) -> Result<Claim, StoreError> {
    let corrupt = |m: String| StoreError::Corrupt {
        table: "weather_forecast_steps",
        message: m,
    };
    let kind = row.kind().map_err(|e| corrupt(e.to_string()))?;
    let miner = MinerUid::try_from(row.miner_uid).map_err(|e| corrupt(e.to_string()))?;
    Ok(Claim {
        id: row.id,
        token: row
            .claim_token
            .clone()
            .ok_or_else(|| corrupt(format!("claimed row {} has no token", row.id)))?,
        key: StepKey {
            run: wx_model::RunId(row.run_id),
            miner,
            kind,
            lead_hours: u32::try_from(row.lead_hours).map_err(|e| corrupt(e.to_string()))?,
        },
        hotkey: row.miner_hotkey,
        attempt: row.attempt.max(0) as u32,
        max_retries: row.max_retries.max(0) as u32,
        claimed_from,
        context: row
            .context
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
        started_at: utc(row.started_at.unwrap_or(row.updated_at)),
        lease_expires_at: utc(row.lease_expires_at.unwrap_or(row.updated_at)),
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60))
}

/// The fenced status change that ends one attempt.
pub(crate) struct FenceUpdate {
    id: i64,
    token: String,
    status: &'static str,
    attempt: i32,
    next_run_at: NaiveDateTime,
    completed_at: Option<NaiveDateTime>,
    latency_ms: i64,
    error_json: Option<String>,
    now: NaiveDateTime,
}

impl FenceUpdate {
    fn new(claim: &Claim, outcome: &Outcome, now: DateTime<Utc>) -> FenceUpdate {
        let consumed = matches!(outcome, Outcome::Retry { .. } | Outcome::Failed { .. });
        let attempt = claim.attempt + u32::from(consumed);
        let next_run_at = match outcome {
            Outcome::Retry { at, .. } => *at,
            Outcome::Wait { until, .. } => *until,
            Outcome::Succeeded | Outcome::Failed { .. } => now,
        };
        let error_json = match outcome {
            Outcome::Retry { error, .. } | Outcome::Failed { error } => Some(error.to_json()),
            Outcome::Succeeded | Outcome::Wait { .. } => None,
        };
        FenceUpdate {
            id: claim.id,
            token: claim.token.clone(),
            status: outcome.status().as_str(),
            attempt: attempt.min(i32::MAX as u32) as i32,
            next_run_at: ts(next_run_at),
            completed_at: outcome.status().is_terminal().then(|| ts(now)),
            latency_ms: (now - claim.started_at).num_milliseconds().max(0),
            error_json,
            now: ts(now),
        }
    }
}

/// The UPDATE of a [`FenceUpdate`]: it matches only while the claim is held.
macro_rules! fenced_update {
    ($u:expr) => {
        diesel::update(
            steps::table
                .filter(steps::id.eq($u.id))
                .filter(steps::claim_token.eq(&$u.token))
                .filter(steps::status.eq(StepStatus::InProgress.as_str())),
        )
        .set((
            steps::status.eq($u.status),
            steps::attempt.eq($u.attempt),
            steps::next_run_at.eq($u.next_run_at),
            steps::lease_expires_at.eq(None::<NaiveDateTime>),
            steps::claim_token.eq(None::<String>),
            steps::completed_at.eq($u.completed_at),
            steps::latency_ms.eq(Some($u.latency_ms)),
            steps::error_json.eq(&$u.error_json),
            steps::updated_at.eq($u.now),
        ))
    };
}

/// Backend-specific row locking: `FOR UPDATE SKIP LOCKED` on PostgreSQL; plain selects inside the
/// single-writer transaction on SQLite.
pub(crate) trait LockOps {
    /// Expired leases, locked for this transaction.
    fn lock_expired(
        &mut self,
        now: NaiveDateTime,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StepRow>, StoreError>> + Send;

    /// One row by id, locked for this transaction.
    fn lock_row(
        &mut self,
        id: i64,
    ) -> impl Future<Output = Result<Option<StepRow>, StoreError>> + Send;

    /// Locks a run's row for this transaction (a no-op on SQLite, whose write transactions
    /// are serial already).
    fn lock_run(
        &mut self,
        run: wx_model::RunId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies fenced updates; per update, whether the claim was still held. PostgreSQL
    /// pipelines them in one round trip.
    fn fence_many(
        &mut self,
        updates: &[FenceUpdate],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
}

impl LockOps for diesel_async::AsyncPgConnection {
    async fn lock_expired(
        &mut self,
        now: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<StepRow>, StoreError> {
        Ok(steps::table
            .filter(steps::status.eq(StepStatus::InProgress.as_str()))
            .filter(steps::lease_expires_at.lt(now))
            .order(steps::lease_expires_at.asc())
            .limit(limit)
            .select(StepRow::as_select())
            .for_update()
            .skip_locked()
            .load(self)
            .await?)
    }

    async fn lock_row(&mut self, id: i64) -> Result<Option<StepRow>, StoreError> {
        Ok(steps::table
            .find(id)
            .select(StepRow::as_select())
            .for_update()
            .first(self)
            .await
            .optional()?)
    }

    async fn lock_run(&mut self, run: wx_model::RunId) -> Result<(), StoreError> {
        runs::table
            .find(run.0)
            .select(runs::id)
            .for_update()
            .load::<i64>(self)
            .await?;
        Ok(())
    }

    async fn fence_many(&mut self, updates: &[FenceUpdate]) -> Result<Vec<bool>, StoreError> {
        if let [only] = updates {
            return Ok(vec![fenced_update!(only).execute(self).await? == 1]);
        }
        fence_batch_postgres(self, updates).await
    }
}

/// Several fenced updates as ONE statement: the batch is passed as arrays and joined with
/// `unnest`, so PostgreSQL parses, plans and executes once per batch instead of once per step.
/// Returns, per update, whether its claim was still held (an update listed twice is applied
/// once, like two statements in a row would be).
async fn fence_batch_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
    updates: &[FenceUpdate],
) -> Result<Vec<bool>, StoreError> {
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        token: String,
    }
    let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
    let held: Vec<Held> = diesel::sql_query(
        "UPDATE weather_forecast_steps s SET status = u.status, attempt = u.attempt, \
            next_run_at = u.next_run_at, lease_expires_at = NULL, claim_token = NULL, \
            completed_at = u.completed_at, latency_ms = u.latency_ms, error_json = u.error_json, \
            updated_at = u.now \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamp[], \
                     $6::timestamp[], $7::bigint[], $8::text[], $9::timestamp[]) \
              AS u(id, token, status, attempt, next_run_at, completed_at, latency_ms, \
                   error_json, now) \
         WHERE s.id = u.id AND s.claim_token = u.token AND s.status = 'in_progress' \
         RETURNING s.id, u.token",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(updates.iter().map(|u| u.token.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(updates.iter().map(|u| u.status).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(updates.iter().map(|u| u.attempt).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(updates.iter().map(|u| u.next_run_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamp>>, _>(
        updates.iter().map(|u| u.completed_at).collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<BigInt>>, _>(
        updates
            .iter()
            .map(|u| Some(u.latency_ms))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(
        updates
            .iter()
            .map(|u| u.error_json.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Timestamp>, _>(updates.iter().map(|u| u.now).collect::<Vec<_>>())
    .load(conn)
    .await?;
    let mut held: std::collections::HashSet<(i64, String)> =
        held.into_iter().map(|h| (h.id, h.token)).collect();
    Ok(updates
        .iter()
        .map(|u| held.remove(&(u.id, u.token.clone())))
        .collect())
}

impl LockOps for crate::backend::SqliteConn {
    async fn lock_expired(
        &mut self,
        now: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<StepRow>, StoreError> {
        Ok(steps::table
            .filter(steps::status.eq(StepStatus::InProgress.as_str()))
            .filter(steps::lease_expires_at.lt(now))
            .order(steps::lease_expires_at.asc())
            .limit(limit)
            .select(StepRow::as_select())
            .load(self)
            .await?)
    }

    async fn lock_row(&mut self, id: i64) -> Result<Option<StepRow>, StoreError> {
        Ok(steps::table
            .find(id)
            .select(StepRow::as_select())
            .first(self)
            .await
            .optional()?)
    }

    async fn lock_run(&mut self, _run: wx_model::RunId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn fence_many(&mut self, updates: &[FenceUpdate]) -> Result<Vec<bool>, StoreError> {
        let mut held = Vec::with_capacity(updates.len());
        for u in updates {
            held.push(fenced_update!(u).execute(self).await? == 1);
        }
        Ok(held)
    }
}

/// A completion prepared outside the transaction (validated, rows built).
pub(crate) struct Prepared<'c> {
    claim: &'c Claim,
    completion: &'c Completion,
    enqueue: Vec<wx_model::rows::NewStep>,
    logs: Vec<wx_model::rows::NewStep>,
}

/// Queue writes shared by both backends.
pub(crate) trait QueueOps {
    /// Applies the context and effects of a completion whose fence held.
    fn apply_effects(
        &mut self,
        p: &Prepared<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl_for_each_conn!(QueueOps {
    async fn apply_effects(&mut self, p: &Prepared<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let claim = p.claim;
        let outcome = &p.completion.outcome;
        let context = match (&p.completion.context, outcome) {
            (Some(c), _) => Some(c.to_string()),
            (None, Outcome::Wait { reason, .. }) => Some(serde_json::json!({ "waiting_for": reason }).to_string()),
            (None, _) => None,
        };
        if let Some(context) = context {
            diesel::update(steps::table.find(claim.id)).set(steps::context.eq(context)).execute(self).await?;
        }
        let effects = &p.completion.effects;
        let run = claim.key.run;
        if !effects.seed_stats.is_empty() {
            self.seed_rows(&crate::stats::seed_rows(run, &effects.seed_stats, now)).await?;
        }
        for (uid, patch) in &effects.stats {
            self.apply_patch(run, *uid, patch, now).await?;
        }
        if let Some(response) = &effects.response {
            self.upsert_response(response).await?;
        }
        if !effects.scores.is_empty() {
            self.upsert_scores(&effects.scores).await?;
        }
        if !p.logs.is_empty() {
            self.upsert_logs(&p.logs).await?;
        }
        if !p.enqueue.is_empty() {
            self.insert_steps(&p.enqueue).await?;
        }
        if let Some((status, error)) = &effects.run_status {
            let final_status = matches!(status, RunStatus::Completed | RunStatus::Failed);
            diesel::update(
                runs::table
                    .find(run.0)
                    .filter(runs::status.ne_all([RunStatus::Completed.as_str(), RunStatus::Failed.as_str()])),
            )
            .set((
                runs::status.eq(status.as_str()),
                runs::completed_at.eq(final_status.then(|| ts(now))),
                runs::error.eq(error.as_deref()),
            ))
            .execute(self)
            .await?;
        }
        if let Some(snapshot) = &effects.snapshot {
            // stored at the precision of every other timestamp, so comparisons hold
            let snapshot = wx_model::rows::NewSnapshot {
                taken_at: ts(utc(snapshot.taken_at)),
                ..snapshot.clone()
            };
            diesel::insert_into(wx_model::schema::subnet_snapshots::table)
                .values(&snapshot)
                .execute(self)
                .await?;
        }
        let mut complete: Vec<wx_model::RunId> = effects.complete_runs.clone();
        let mut wake: Vec<StepKey> = effects.wake.clone();
        if effects.complete_run_if_done && self.run_is_done(run).await? {
            complete.push(run);
            wake.push(StepKey::run_level(run, wx_model::StepKind::AggregateSnapshot));
        }
        for other in &complete {
            diesel::update(
                runs::table
                    .find(other.0)
                    .filter(runs::status.ne_all([RunStatus::Completed.as_str(), RunStatus::Failed.as_str()])),
            )
            .set((runs::status.eq(RunStatus::Completed.as_str()), runs::completed_at.eq(Some(ts(now)))))
            .execute(self)
            .await?;
        }
        for refresh in &effects.refresh_miner_stats {
            self.refresh_miner_stats(refresh.uid, refresh.day1_pass_threshold, now).await?;
        }
        for key in &wake {
            let lead = crate::steps::lead_i32(key.lead_hours)?;
            diesel::update(
                steps::table
                    .filter(steps::run_id.eq(key.run.0))
                    .filter(steps::miner_uid.eq(key.miner.as_i32()))
                    .filter(steps::step_name.eq(key.kind.step_name()))
                    .filter(steps::substep.eq(key.kind.substep()))
                    .filter(steps::lead_hours.eq(lead))
                    .filter(steps::status.eq(StepStatus::Waiting.as_str()))
                    .filter(steps::next_run_at.gt(ts(now))),
            )
            .set((steps::next_run_at.eq(ts(now)), steps::updated_at.eq(ts(now))))
            .execute(self)
            .await?;
        }
        Ok(())
    }
});

/// Whether a run has no open unit of work left, as seen inside the current transaction.
trait RunDone {
    fn run_is_done(
        &mut self,
        run: wx_model::RunId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl_for_each_conn!(RunDone {
    async fn run_is_done(&mut self, run: wx_model::RunId) -> Result<bool, StoreError> {
        let open = self.open_work_by_status(run).await?;
        if open.iter().all(|(_, n)| *n == 0) {
            return Ok(true);
        }
        // Work that is not in progress stays open whatever concurrent finishes do.
        if open.iter().any(|(s, n)| *n > 0 && s != StepStatus::InProgress.as_str()) {
            return Ok(false);
        }
        // Only steps in progress remain: they may be finishing right now in other
        // transactions. Serialise on the run's row and look again; whichever of them finishes
        // last then sees the others' committed statuses.
        self.lock_run(run).await?;
        let open = self.open_work_by_status(run).await?;
        Ok(open.iter().all(|(_, n)| *n == 0))
    }
});

/// One statement: lock due rows (retries first, then by time; rows other workers hold are
/// skipped) and move them to in_progress. Returns rows in claim order with their previous status.
async fn claim_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
    kinds: &str,
    token: &str,
    worker: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(StepRow, StepStatus)>, StoreError> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(embed)]
        step: StepRow,
        #[diesel(sql_type = Text)]
        prev_status: String,
        #[diesel(sql_type = BigInt)]
        pri: i64,
    }
    // Both CTEs walk a partial index in (next_run_at, id) order and stop at the limit.
    let query = format!(
        "WITH r AS ( \
            SELECT id, status FROM weather_forecast_steps \
            WHERE {RETRY_CLAUSE} AND next_run_at <= $1 AND {kinds} \
            ORDER BY next_run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         d AS ( \
            SELECT id, status, next_run_at FROM weather_forecast_steps \
            WHERE {DUE_CLAUSE} AND next_run_at <= $1 AND {kinds} \
              AND id NOT IN (SELECT id FROM r) \
            ORDER BY next_run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         picked AS ( \
            SELECT id, status, pri FROM ( \
                SELECT id, status, 0::bigint AS pri, 0::bigint AS ord FROM r \
                UNION ALL \
                SELECT id, status, 1::bigint, row_number() OVER (ORDER BY next_run_at, id) FROM d) u \
            ORDER BY pri, ord LIMIT $2) \
         UPDATE weather_forecast_steps s SET status = 'in_progress', claim_token = $3, claimed_by = $4, \
            lease_expires_at = $5, started_at = $1, updated_at = $1 \
         FROM picked WHERE s.id = picked.id \
         RETURNING s.*, picked.status AS prev_status, picked.pri"
    );
    let mut rows: Vec<Claimed> = diesel::sql_query(query)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(token)
        .bind::<Text, _>(worker)
        .bind::<Timestamp, _>(lease_until)
        .load(conn)
        .await?;
    rows.sort_by_key(|c| (c.pri, c.step.next_run_at, c.step.id));
    Ok(rows
        .into_iter()
        .map(|c| {
            let from = c.prev_status.parse().unwrap_or(StepStatus::Pending);
            (c.step, from)
        })
        .collect())
}

/// Due rows (ids and statuses) in claim order (inside the single-writer transaction).
async fn sqlite_due(
    c: &mut crate::backend::SqliteConn,
    status_clause: &'static str,
    kinds: &str,
    now: NaiveDateTime,
    limit: i64,
    exclude: &[i64],
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(steps::table
        .select((steps::id, steps::status))
        .filter(sql::<Bool>(status_clause))
        .filter(steps::next_run_at.le(now))
        .filter(sql::<Bool>(kinds))
        .filter(steps::id.ne_all(exclude))
        .order((steps::next_run_at.asc(), steps::id.asc()))
        .limit(limit)
        .load(c)
        .await?)
}

/// Claims inside the caller's `BEGIN IMMEDIATE` transaction (the single SQLite writer).
async fn claim_sqlite(
    c: &mut crate::backend::SqliteConn,
    kinds: &str,
    token: &str,
    worker: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(StepRow, StepStatus)>, StoreError> {
    let mut picked = sqlite_due(c, RETRY_CLAUSE, kinds, now, limit, &[]).await?;
    if (picked.len() as i64) < limit {
        let exclude: Vec<i64> = picked.iter().map(|(id, _)| *id).collect();
        let more = sqlite_due(
            c,
            DUE_CLAUSE,
            kinds,
            now,
            limit - picked.len() as i64,
            &exclude,
        )
        .await?;
        picked.extend(more);
    }
    let ids: Vec<i64> = picked.iter().map(|(id, _)| *id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let taken: Vec<StepRow> = diesel::update(
        steps::table
            .filter(steps::id.eq_any(&ids))
            .filter(sql::<Bool>(DUE_CLAUSE)),
    )
    .set((
        steps::status.eq(StepStatus::InProgress.as_str()),
        steps::claim_token.eq(token),
        steps::claimed_by.eq(worker),
        steps::lease_expires_at.eq(lease_until),
        steps::started_at.eq(now),
        steps::updated_at.eq(now),
    ))
    .returning(StepRow::as_returning())
    .get_results(c)
    .await?;
    // keep the order in which the rows were picked
    let mut out = Vec::with_capacity(taken.len());
    for (id, prev) in picked {
        if let Some(row) = taken.iter().find(|r| r.id == id) {
            out.push((row.clone(), prev.parse().unwrap_or(StepStatus::Pending)));
        }
    }
    Ok(out)
}

impl Queue<'_> {
    /// Claims up to `limit` due rows of the given kinds: `retry_scheduled` rows first, then by
    /// `next_run_at`. Each claimed row moves to `in_progress` with a fresh token and a lease.
    pub async fn claim(&self, req: &ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if req.limit == 0 || req.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let kinds = kinds_clause(req.kinds);
        let token = uuid::Uuid::new_v4().to_string();
        let now = ts(req.now);
        let lease_until = ts(lease_end(req.now, req.lease));
        let limit = req.limit as i64;
        let (kinds, token) = (&kinds, &token);
        let rows: Vec<(StepRow, StepStatus)> = match &self.0.pools {
            Pools::Pg(pool) => {
                let mut conn = pool.get().await.map_err(crate::backend::pool_error)?;
                claim_postgres(&mut conn, kinds, token, req.worker, now, lease_until, limit).await?
            }
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(crate::backend::pool_error)?;
                conn.immediate_transaction(async |c| {
                    claim_sqlite(c, kinds, token, req.worker, now, lease_until, limit).await
                })
                .await?
            }
        };
        // `rows` is in claim order: retries first, then by next_run_at
        let claims = rows
            .into_iter()
            .map(|(row, from)| claim_from_row(row, from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(claims)
    }

    /// Claims one row by key, e.g. for a manual re-run. Without `force` the row must be due;
    /// with `force` any row not held by a live lease is claimed and its attempts reset to 0.
    pub async fn claim_key(
        &self,
        key: &StepKey,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<KeyClaim, StoreError> {
        let Some(row) = self.0.steps().get(key).await? else {
            return Ok(KeyClaim::Missing);
        };
        let token = uuid::Uuid::new_v4().to_string();
        let (nowt, lease_until, token) = (ts(now), ts(lease_end(now, lease)), &token);
        let id = row.id;
        write_tx!(self.0, |c| {
            let Some(row) = c.lock_row(id).await? else {
                return Ok::<_, StoreError>(KeyClaim::Missing);
            };
            let status: StepStatus = row.status().map_err(|e| StoreError::Corrupt {
                table: "weather_forecast_steps",
                message: e.to_string(),
            })?;
            if status == StepStatus::InProgress && row.lease_expires_at.is_some_and(|l| l >= nowt) {
                return Ok(KeyClaim::Busy {
                    claimed_by: row.claimed_by.clone(),
                    lease_expires_at: row.lease_expires_at.map(utc),
                });
            }
            let due = StepStatus::DUE.contains(&status) && row.next_run_at <= nowt;
            if !due && !force {
                return Ok(KeyClaim::NotDue {
                    status,
                    next_run_at: utc(row.next_run_at),
                });
            }
            let attempt = if force { 0 } else { row.attempt };
            let taken: StepRow = diesel::update(steps::table.find(id))
                .set((
                    steps::status.eq(StepStatus::InProgress.as_str()),
                    steps::attempt.eq(attempt),
                    steps::claim_token.eq(token),
                    steps::claimed_by.eq(worker),
                    steps::lease_expires_at.eq(lease_until),
                    steps::started_at.eq(nowt),
                    steps::completed_at.eq(None::<NaiveDateTime>),
                    steps::updated_at.eq(nowt),
                ))
                .returning(StepRow::as_returning())
                .get_result(c)
                .await?;
            Ok(KeyClaim::Claimed(claim_from_row(taken, status)?))
        })
    }

    /// Extends the leases of running claims. Returns, per claim, whether it is still held.
    pub async fn heartbeat(
        &self,
        claims: &[&Claim],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let until = ts(lease_end(now, lease));
        let nowt = ts(now);
        let held: Vec<i64> = write_tx!(self.0, |c| {
            let mut held = Vec::new();
            let mut tokens: Vec<&str> = claims.iter().map(|c| c.token.as_str()).collect();
            tokens.sort_unstable();
            tokens.dedup();
            for token in tokens {
                let ids: Vec<i64> = claims
                    .iter()
                    .filter(|c| c.token == token)
                    .map(|c| c.id)
                    .collect();
                let ok: Vec<i64> = diesel::update(
                    steps::table
                        .filter(steps::id.eq_any(&ids))
                        .filter(steps::claim_token.eq(token))
                        .filter(steps::status.eq(StepStatus::InProgress.as_str())),
                )
                .set((
                    steps::lease_expires_at.eq(until),
                    steps::updated_at.eq(nowt),
                ))
                .returning(steps::id)
                .get_results(c)
                .await?;
                held.extend(ok);
            }
            Ok::<_, StoreError>(held)
        })?;
        Ok(claims.iter().map(|c| held.contains(&c.id)).collect())
    }

    /// Ends an attempt: applies the outcome and its effects in one transaction, fenced by the
    /// claim token. [`Fence::Lost`] means the lease was lost and nothing changed.
    pub async fn finish(
        &self,
        claim: &Claim,
        completion: &Completion,
        now: DateTime<Utc>,
    ) -> Result<Fence, StoreError> {
        Ok(self
            .finish_many(&[(claim, completion)], now)
            .await?
            .remove(0))
    }

    /// Ends several attempts in one transaction (batched completion); each is fenced on its
    /// own. If any effect fails, the whole batch is rolled back and the error returned.
    pub async fn finish_many(
        &self,
        items: &[(&Claim, &Completion)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError> {
        let mut prepared = Vec::with_capacity(items.len());
        for (claim, completion) in items {
            validate_scores(&completion.effects.scores)?;
            for (_, patch) in &completion.effects.stats {
                patch.validate()?;
            }
            if matches!(completion.outcome, Outcome::Wait { .. }) && !claim.key.kind.is_claimable()
            {
                return Err(StoreError::Invalid("only units of work can wait".into()));
            }
            prepared.push(Prepared {
                claim,
                completion,
                enqueue: completion
                    .effects
                    .enqueue
                    .iter()
                    .map(|s| new_step(s, now))
                    .collect::<Result<_, _>>()?,
                logs: completion
                    .effects
                    .logs
                    .iter()
                    .map(|l| log_row(l, now))
                    .collect::<Result<_, _>>()?,
            });
        }
        let updates: Vec<FenceUpdate> = items
            .iter()
            .map(|(claim, c)| FenceUpdate::new(claim, &c.outcome, now))
            .collect();
        let (prepared, updates) = (&prepared, &updates);
        if let [only] = items
            && only.1.writes_only_the_step()
        {
            // One fenced UPDATE is atomic by itself: no transaction, so no BEGIN and COMMIT
            // round trips (the end of an attempt without results, e.g. a retry).
            let held = with_conn!(self.0, |c| c.fence_many(updates).await)?;
            return Ok(held
                .into_iter()
                .map(|held| if held { Fence::Applied } else { Fence::Lost })
                .collect());
        }
        write_tx!(self.0, |c| {
            let held = c.fence_many(updates).await?;
            let mut fences = Vec::with_capacity(prepared.len());
            for (p, held) in prepared.iter().zip(held) {
                if held {
                    c.apply_effects(p, now).await?;
                    fences.push(Fence::Applied);
                } else {
                    fences.push(Fence::Lost);
                }
            }
            Ok::<_, StoreError>(fences)
        })
    }

    /// Gives claims back without consuming an attempt (graceful shutdown): the rows become
    /// pending and due now. Fenced like [`Queue::finish`].
    pub async fn release(
        &self,
        claims: &[&Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError> {
        let nowt = ts(now);
        write_tx!(self.0, |c| {
            let mut out = Vec::with_capacity(claims.len());
            for claim in claims {
                let n = diesel::update(
                    steps::table
                        .filter(steps::id.eq(claim.id))
                        .filter(steps::claim_token.eq(&claim.token))
                        .filter(steps::status.eq(StepStatus::InProgress.as_str())),
                )
                .set((
                    steps::status.eq(if claim.claimed_from == StepStatus::RetryScheduled {
                        StepStatus::RetryScheduled.as_str()
                    } else {
                        StepStatus::Pending.as_str()
                    }),
                    steps::next_run_at.eq(nowt),
                    steps::lease_expires_at.eq(None::<NaiveDateTime>),
                    steps::claim_token.eq(None::<String>),
                    steps::updated_at.eq(nowt),
                ))
                .execute(c)
                .await?;
                out.push(if n == 1 { Fence::Applied } else { Fence::Lost });
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Handles rows whose lease expired before `now` (their worker stopped or stalled): each
    /// consumes an attempt and is scheduled for retry per its kind's policy, or fails when its
    /// retries are exhausted. Handles at most `limit` rows per call.
    pub async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        policy: &(dyn Fn(StepKind) -> RetryPolicy + Sync),
    ) -> Result<Vec<Rescued>, StoreError> {
        let nowt = ts(now);
        write_tx!(self.0, |c| {
            let expired = c.lock_expired(nowt, limit as i64).await?;
            let mut rng = rand::rngs::StdRng::from_entropy();
            let mut plans = Vec::with_capacity(expired.len());
            for row in expired {
                let Ok(kind) = row.kind() else { continue };
                let attempt = row.attempt.max(0) as u32 + 1;
                let (status, next) = match policy(kind).decide(attempt, &mut rng) {
                    RetryDecision::RetryAfter(d) => (
                        StepStatus::RetryScheduled,
                        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero()),
                    ),
                    RetryDecision::GiveUp => (StepStatus::Failed, now),
                };
                plans.push((row, attempt, status, next));
            }
            let mut rescued = Vec::with_capacity(plans.len());
            for (row, attempt, status, next) in plans {
                let holder = row.claimed_by.clone().unwrap_or_else(|| "unknown".into());
                let error = StepError::new(
                    ErrorKind::LeaseLost,
                    Blame::Infrastructure,
                    &format!(
                        "lease of worker {holder} expired at {:?}; the worker stopped or stalled",
                        row.lease_expires_at
                    ),
                    &[],
                );
                let n = diesel::update(
                    steps::table
                        .filter(steps::id.eq(row.id))
                        .filter(steps::claim_token.eq(row.claim_token.clone().unwrap_or_default()))
                        .filter(steps::status.eq(StepStatus::InProgress.as_str())),
                )
                .set((
                    steps::status.eq(status.as_str()),
                    steps::attempt.eq(attempt.min(i32::MAX as u32) as i32),
                    steps::next_run_at.eq(ts(next)),
                    steps::lease_expires_at.eq(None::<NaiveDateTime>),
                    steps::claim_token.eq(None::<String>),
                    steps::completed_at.eq((status == StepStatus::Failed).then_some(nowt)),
                    steps::error_json.eq(error.to_json()),
                    steps::updated_at.eq(nowt),
                ))
                .execute(c)
                .await?;
                if n == 1 {
                    let Ok(kind) = row.kind() else { continue };
                    let Ok(miner) = MinerUid::try_from(row.miner_uid) else {
                        continue;
                    };
                    rescued.push(Rescued {
                        key: StepKey {
                            run: wx_model::RunId(row.run_id),
                            miner,
                            kind,
                            lead_hours: row.lead_hours.max(0) as u32,
                        },
                        claimed_by: row.claimed_by.clone(),
                        status,
                    });
                }
            }
            Ok::<_, StoreError>(rescued)
        })
    }

    /// The earliest `next_run_at` among due-able rows of the given kinds (for the dispatcher's
    /// sleep), if any.
    pub async fn next_due_at(
        &self,
        kinds: &[StepKind],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let kinds = kinds_clause(kinds);
        let kinds = &kinds;
        let t: Option<NaiveDateTime> = with_conn!(self.0, |c| Ok::<_, StoreError>(
            steps::table
                .filter(sql::<Bool>(DUE_CLAUSE))
                .filter(sql::<Bool>(kinds))
                .select(diesel::dsl::min(steps::next_run_at))
                .first(c)
                .await?
        ))?;
        Ok(t.map(utc))
    }
}

/// The pool's current state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Open connections.
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
}

impl Db {
    /// Connection pool state.
    pub fn pool_state(&self) -> PoolState {
        let s = match &self.pools {
            Pools::Pg(p) => p.state(),
            Pools::Sqlite(p) => p.state(),
        };
        PoolState {
            connections: s.connections,
            idle: s.idle_connections,
        }
    }
}
