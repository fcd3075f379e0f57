//! The `weather_forecast_steps` table as a log: enqueueing, sub-step events, progress queries.
//! Claiming and completing live in [`crate::queue`].

use crate::backend::{impl_for_each_conn, with_conn, write_tx};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use std::collections::BTreeMap;
use wx_model::rows::{NewStep, StepRow};
use wx_model::schema::weather_forecast_steps as steps;
use wx_model::{MinerUid, RunId, StepError, StepKey, StepStatus};

/// A unit of work to enqueue. Enqueueing a key that exists changes nothing (idempotent).
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// The step's key.
    pub key: StepKey,
    /// The miner's hotkey (`coordinator` for run-level steps).
    pub hotkey: String,
    /// `Pending`, or `Waiting` for data that is not ready before `next_run_at`.
    pub status: StepStatus,
    /// When the step becomes due.
    pub next_run_at: DateTime<Utc>,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// Free-form context (never secrets).
    pub context: Option<serde_json::Value>,
}

/// An event of a sub-step that is not itself claimed from the queue (e.g. `day1/load_inputs`
/// inside `day1/score`, `era5/lead` per scored lead). Upserted by key.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLog {
    /// The sub-step's key (its kind must not be claimable).
    pub key: StepKey,
    /// The miner's hotkey.
    pub hotkey: String,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: StepStatus,
    /// Attempts consumed so far by the unit of work this sub-step belongs to.
    pub attempt: u32,
    /// Retries allowed (mirrors the unit of work).
    pub max_retries: u32,
    /// When the sub-step started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while in progress).
    pub completed_at: Option<DateTime<Utc>>,
    /// The failure, sanitized.
    pub error: Option<StepError>,
    /// Free-form context (never secrets).
    pub context: Option<serde_json::Value>,
}

/// Repository of the `weather_forecast_steps` table.
pub struct Steps<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_forecast_steps` table (enqueueing, logs, queries).
    pub fn steps(&self) -> Steps<'_> {
        Steps(self)
    }
}

pub(crate) fn new_step(spec: &StepSpec, now: DateTime<Utc>) -> Result<NewStep, StoreError> {
    if !spec.key.kind.is_claimable() {
        return Err(StoreError::Invalid(format!(
            "{} is a log row, not a unit of work; log it instead of enqueueing",
            spec.key.kind
        )));
    }
    if !matches!(spec.status, StepStatus::Pending | StepStatus::Waiting) {
        return Err(StoreError::Invalid(format!(
            "a step is enqueued pending or waiting, not {}",
            spec.status
        )));
    }
    Ok(NewStep {
        run_id: spec.key.run.0,
        miner_uid: spec.key.miner.as_i32(),
        miner_hotkey: spec.hotkey.clone(),
        step_name: spec.key.kind.step_name().to_owned(),
        substep: spec.key.kind.substep().to_owned(),
        lead_hours: lead_i32(spec.key.lead_hours)?,
        status: spec.status.as_str().to_owned(),
        attempt: 0,
        max_retries: spec.max_retries.min(i32::MAX as u32) as i32,
        next_run_at: ts(spec.next_run_at),
        started_at: None,
        completed_at: None,
        latency_ms: None,
        error_json: None,
        context: spec.context.as_ref().map(|v| v.to_string()),
        created_at: ts(now),
        updated_at: ts(now),
    })
}

pub(crate) fn log_row(log: &StepLog, now: DateTime<Utc>) -> Result<NewStep, StoreError> {
    if log.key.kind.is_claimable() {
        return Err(StoreError::Invalid(format!(
            "{} is a unit of work; its row changes through the queue",
            log.key.kind
        )));
    }
    if !matches!(
        log.status,
        StepStatus::InProgress | StepStatus::Succeeded | StepStatus::Failed
    ) {
        return Err(StoreError::Invalid(format!(
            "a sub-step log is in_progress, succeeded or failed, not {}",
            log.status
        )));
    }
    let latency = log
        .completed_at
        .map(|end| (end - log.started_at).num_milliseconds().max(0));
    Ok(NewStep {
        run_id: log.key.run.0,
        miner_uid: log.key.miner.as_i32(),
        miner_hotkey: log.hotkey.clone(),
        step_name: log.key.kind.step_name().to_owned(),
        substep: log.key.kind.substep().to_owned(),
        lead_hours: lead_i32(log.key.lead_hours)?,
        status: log.status.as_str().to_owned(),
        attempt: log.attempt.min(i32::MAX as u32) as i32,
        max_retries: log.max_retries.min(i32::MAX as u32) as i32,
        next_run_at: ts(log.started_at),
        started_at: Some(ts(log.started_at)),
        completed_at: log.completed_at.map(ts),
        latency_ms: latency,
        error_json: log.error.as_ref().map(StepError::to_json),
        context: log.context.as_ref().map(|v| v.to_string()),
        created_at: ts(now),
        updated_at: ts(now),
    })
}

pub(crate) fn lead_i32(lead: u32) -> Result<i32, StoreError> {
    i32::try_from(lead).map_err(|_| StoreError::Invalid(format!("lead {lead} h is out of range")))
}

/// Step-log writes that run inside a caller's transaction.
pub(crate) trait StepOps {
    /// Inserts steps that do not exist yet; returns how many were inserted.
    fn insert_steps(
        &mut self,
        rows: &[NewStep],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
    /// Upserts sub-step log rows.
    fn upsert_logs(
        &mut self,
        rows: &[NewStep],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The run's open units of work (pending, in progress, retry scheduled, waiting) by
    /// status; the `aggregate` steps (the snapshot and its log rows) are not counted.
    fn open_work_by_status(
        &mut self,
        run: RunId,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
}

/// The statuses of a unit of work that is not finished.
const OPEN_STATUSES: [StepStatus; 4] = [
    StepStatus::Pending,
    StepStatus::InProgress,
    StepStatus::RetryScheduled,
    StepStatus::Waiting,
];

impl_for_each_conn!(StepOps {
    async fn insert_steps(&mut self, rows: &[NewStep]) -> Result<usize, StoreError> {
        let mut inserted = 0;
        for row in rows {
            inserted += diesel::insert_into(steps::table)
                .values(row)
                .on_conflict((steps::run_id, steps::miner_uid, steps::step_name, steps::substep, steps::lead_hours))
                .do_nothing()
                .execute(self)
                .await?;
        }
        Ok(inserted)
    }

    async fn upsert_logs(&mut self, rows: &[NewStep]) -> Result<(), StoreError> {
        for row in rows {
            diesel::insert_into(steps::table)
                .values(row)
                .on_conflict((steps::run_id, steps::miner_uid, steps::step_name, steps::substep, steps::lead_hours))
                .do_update()
                .set((
                    steps::status.eq(excluded(steps::status)),
                    steps::attempt.eq(excluded(steps::attempt)),
                    steps::max_retries.eq(excluded(steps::max_retries)),
                    steps::next_run_at.eq(excluded(steps::next_run_at)),
                    steps::started_at.eq(excluded(steps::started_at)),
                    steps::completed_at.eq(excluded(steps::completed_at)),
                    steps::latency_ms.eq(excluded(steps::latency_ms)),
                    steps::error_json.eq(excluded(steps::error_json)),
                    steps::context.eq(excluded(steps::context)),
                    steps::updated_at.eq(excluded(steps::updated_at)),
                ))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn open_work_by_status(&mut self, run: RunId) -> Result<Vec<(String, i64)>, StoreError> {
        let open = OPEN_STATUSES.map(|s| s.as_str());
        Ok(steps::table
            .filter(steps::run_id.eq(run.0))
            .filter(steps::status.eq_any(open))
            .filter(steps::step_name.ne("aggregate"))
            .group_by(steps::status)
            .select((steps::status, diesel::dsl::count_star()))
            .load(self)
            .await?)
    }
});

/// How many steps of each (kind, status) a run has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepCounts(pub BTreeMap<String, BTreeMap<String, i64>>);

impl StepCounts {
    /// The count of one `step/substep` in one status.
    pub fn get(&self, kind: wx_model::StepKind, status: StepStatus) -> i64 {
        self.0
            .get(&kind.path())
            .and_then(|m| m.get(status.as_str()))
            .copied()
            .unwrap_or(0)
    }
}

/// After inserting this many rows at once, planner statistics are refreshed (PostgreSQL), so
/// that claims keep walking the due-index instead of sorting every due row: a fresh or rapidly
/// grown table is otherwise planned from stale statistics until autovacuum catches up.
const ANALYZE_AFTER_ROWS: usize = 1000;

impl Steps<'_> {
    /// Refreshes the query planner's statistics of the step table (PostgreSQL; SQLite's
    /// planner does not need it for the queue's indexed queries).
    pub async fn refresh_planner_statistics(&self) -> Result<(), StoreError> {
        if let crate::backend::Pools::Pg(pool) = &self.0.pools {
            let mut conn = pool.get().await.map_err(crate::backend::pool_error)?;
            diesel::sql_query("ANALYZE weather_forecast_steps")
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Enqueues steps whose key does not exist yet (one transaction). Returns how many were new.
    pub async fn enqueue(
        &self,
        specs: &[StepSpec],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let rows = specs
            .iter()
            .map(|s| new_step(s, now))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = &rows;
        let inserted = write_tx!(self.0, |c| c.insert_steps(rows).await)?;
        if inserted >= ANALYZE_AFTER_ROWS {
            self.refresh_planner_statistics().await?;
        }
        Ok(inserted)
    }

    /// Records sub-step events (upsert by key; one transaction).
    pub async fn log(&self, logs: &[StepLog], now: DateTime<Utc>) -> Result<(), StoreError> {
        let rows = logs
            .iter()
            .map(|l| log_row(l, now))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = &rows;
        write_tx!(self.0, |c| c.upsert_logs(rows).await)
    }

    /// The row of one key.
    pub async fn get(&self, key: &StepKey) -> Result<Option<StepRow>, StoreError> {
        let (run, uid, lead) = (key.run.0, key.miner.as_i32(), lead_i32(key.lead_hours)?);
        let (step, sub) = (key.kind.step_name(), key.kind.substep());
        with_conn!(self.0, |c| Ok(steps::table
            .filter(steps::run_id.eq(run))
            .filter(steps::miner_uid.eq(uid))
            .filter(steps::step_name.eq(step))
            .filter(steps::substep.eq(sub))
            .filter(steps::lead_hours.eq(lead))
            .select(StepRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Every step row of a run (ordered by miner, then creation).
    pub async fn list_run(&self, run: RunId) -> Result<Vec<StepRow>, StoreError> {
        with_conn!(self.0, |c| Ok(steps::table
            .filter(steps::run_id.eq(run.0))
            .order((steps::miner_uid, steps::id))
            .select(StepRow::as_select())
            .load(c)
            .await?))
    }

    /// Every step row of one miner in a run.
    pub async fn list_miner(&self, run: RunId, uid: MinerUid) -> Result<Vec<StepRow>, StoreError> {
        with_conn!(self.0, |c| Ok(steps::table
            .filter(steps::run_id.eq(run.0))
            .filter(steps::miner_uid.eq(uid.as_i32()))
            .order(steps::id)
            .select(StepRow::as_select())
            .load(c)
            .await?))
    }

    /// Counts by `step/substep` and status, for a run or (with `None`) for every run.
    pub async fn counts(&self, run: Option<RunId>) -> Result<StepCounts, StoreError> {
        let rows: Vec<(String, String, String, i64)> = with_conn!(self.0, |c| {
            let mut q = steps::table
                .group_by((steps::step_name, steps::substep, steps::status))
                .select((
                    steps::step_name,
                    steps::substep,
                    steps::status,
                    diesel::dsl::count_star(),
                ))
                .into_boxed();
            if let Some(r) = run {
                q = q.filter(steps::run_id.eq(r.0));
            }
            Ok::<_, StoreError>(q.load(c).await?)
        })?;
        let mut out = StepCounts::default();
        for (step, sub, status, n) in rows {
            out.0
                .entry(format!("{step}/{sub}"))
                .or_default()
                .insert(status, n);
        }
        Ok(out)
    }

    /// Whether the run still has claimable work that is not terminal (its snapshot aside).
    pub async fn run_has_open_work(&self, run: RunId) -> Result<bool, StoreError> {
        with_conn!(self.0, |c| {
            let open = c.open_work_by_status(run).await?;
            Ok(open.iter().any(|(_, n)| *n > 0))
        })
    }
}
