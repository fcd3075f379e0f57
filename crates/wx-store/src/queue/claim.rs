//! Claiming: due rows of some kinds (`claim`), or one row by key (`claim_key`, a manual re-run).

use super::effects::RowLocks;
use super::{Claim, ClaimRequest, KeyClaim, Queue, claim_from_row, lease_end};
use crate::StoreError;
use crate::backend::{Pools, pool_error, with_conn, write_tx};
use crate::time::{ts, utc};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use std::time::Duration;
use wx_model::rows::StepRow;
use wx_model::schema::weather_forecast_runs as runs;
use wx_model::schema::weather_forecast_steps as steps;
use wx_model::{RunStatus, StepKey, StepKind, StepStatus};

/// SQL of the due statuses, written literally so that the partial index `ix_steps_due` applies.
const DUE_CLAUSE: &str = "status IN ('pending', 'retry_scheduled', 'waiting')";
/// SQL of the retry status, matching the partial index `ix_steps_retry`.
const RETRY_CLAUSE: &str = "status = 'retry_scheduled'";

/// SQL selecting rows of the given claimable kinds (`1 = 0` for none).
pub(crate) fn kinds_clause(kinds: &[StepKind]) -> String {
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

impl Queue<'_> {
    /// Claims up to `limit` due rows of the given kinds: `retry_scheduled` rows first, then by
    /// `next_run_at`. Each claimed row moves to `in_progress` with a fresh token and a lease.
    pub async fn claim(&self, req: &ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if req.limit == 0 || req.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let kinds = kinds_clause(req.kinds);
        let token = uuid::Uuid::new_v4().to_string();
        let picked = Picking {
            kinds: &kinds,
            token: &token,
            worker: req.worker,
            now: ts(req.now),
            lease_until: ts(lease_end(req.now, req.lease)),
            limit: req.limit as i64,
        };
        let rows: Vec<(StepRow, StepStatus)> = match &self.db.pools {
            Pools::Pg(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                claim_postgres(&mut conn, &picked).await?
            }
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                conn.immediate_transaction(async |c| claim_sqlite(c, &picked).await)
                    .await?
            }
        };
        // `rows` is in claim order: retries first, then by next_run_at
        rows.into_iter()
            .map(|(row, from)| claim_from_row(row, from))
            .collect()
    }

    /// Claims one row by key, e.g. for a manual re-run. Without `force` the row must be due;
    /// with `force` any row not held by a live lease is claimed and its attempts and lost
    /// leases reset to 0. A forced claim in a run that is over (completed or failed) gets no
    /// retry (`max_retries` 0, stored): its failure is final, so it never leaves work due in a
    /// finished run.
    pub async fn claim_key(
        &self,
        key: &StepKey,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<KeyClaim, StoreError> {
        let Some(row) = self.db.steps().get(key).await? else {
            return Ok(KeyClaim::Missing);
        };
        let run_over =
            self.db.runs().get(key.run).await?.is_some_and(|r| {
                matches!(r.status(), Ok(RunStatus::Completed | RunStatus::Failed))
            });
        let token = uuid::Uuid::new_v4().to_string();
        let (nowt, lease_until, token) = (ts(now), ts(lease_end(now, lease)), &token);
        let id = row.id;
        write_tx!(self.db, |c| {
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
            let (attempt, lease_losses) = if force {
                (0, 0)
            } else {
                (row.attempt, row.lease_losses)
            };
            let max_retries = if force && run_over {
                0
            } else {
                row.max_retries
            };
            let taken: StepRow = diesel::update(steps::table.find(id))
                .set((
                    steps::status.eq(StepStatus::InProgress.as_str()),
                    steps::attempt.eq(attempt),
                    steps::lease_losses.eq(lease_losses),
                    steps::max_retries.eq(max_retries),
                    steps::claim_token.eq(token),
                    steps::claimed_by.eq(worker),
                    steps::lease_expires_at.eq(lease_until),
                    steps::started_at.eq(nowt),
                    steps::completed_at.eq(None::<NaiveDateTime>),
                    steps::wake_requested.eq(false),
                    steps::updated_at.eq(nowt),
                ))
                .returning(StepRow::as_returning())
                .get_result(c)
                .await?;
            Ok(KeyClaim::Claimed(claim_from_row(taken, status)?))
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
        let t: Option<NaiveDateTime> = with_conn!(self.db, |c| Ok::<_, StoreError>(
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

/// What a claim picks and how it marks the rows it takes.
struct Picking<'a> {
    kinds: &'a str,
    token: &'a str,
    worker: &'a str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
}

/// One statement: lock due rows (retries first, then by time; rows other workers hold are
/// skipped) and move them to in_progress. Returns rows in claim order with their previous status.
async fn claim_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
    p: &Picking<'_>,
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
    let kinds = p.kinds;
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
            lease_expires_at = $5, started_at = $1, wake_requested = FALSE, updated_at = $1 \
         FROM picked WHERE s.id = picked.id \
         RETURNING s.*, picked.status AS prev_status, picked.pri"
    );
    let mut rows: Vec<Claimed> = diesel::sql_query(query)
        .bind::<Timestamp, _>(p.now)
        .bind::<BigInt, _>(p.limit)
        .bind::<Text, _>(p.token)
        .bind::<Text, _>(p.worker)
        .bind::<Timestamp, _>(p.lease_until)
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
    p: &Picking<'_>,
    limit: i64,
    exclude: &[i64],
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(steps::table
        .select((steps::id, steps::status))
        .filter(sql::<Bool>(status_clause))
        .filter(steps::next_run_at.le(p.now))
        .filter(sql::<Bool>(p.kinds))
        .filter(steps::id.ne_all(exclude))
        .order((steps::next_run_at.asc(), steps::id.asc()))
        .limit(limit)
        .load(c)
        .await?)
}

/// Claims inside the caller's `BEGIN IMMEDIATE` transaction (the single SQLite writer).
async fn claim_sqlite(
    c: &mut crate::backend::SqliteConn,
    p: &Picking<'_>,
) -> Result<Vec<(StepRow, StepStatus)>, StoreError> {
    let mut picked = sqlite_due(c, RETRY_CLAUSE, p, p.limit, &[]).await?;
    if (picked.len() as i64) < p.limit {
        let exclude: Vec<i64> = picked.iter().map(|(id, _)| *id).collect();
        let more = sqlite_due(c, DUE_CLAUSE, p, p.limit - picked.len() as i64, &exclude).await?;
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
        steps::claim_token.eq(p.token),
        steps::claimed_by.eq(p.worker),
        steps::lease_expires_at.eq(p.lease_until),
        steps::started_at.eq(p.now),
        steps::wake_requested.eq(false),
        steps::updated_at.eq(p.now),
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

/// The runs among `ids` that are over (completed or failed).
pub(crate) async fn runs_over(
    db: &crate::Db,
    ids: &[i64],
) -> Result<std::collections::BTreeSet<i64>, StoreError> {
    let over = [RunStatus::Completed.as_str(), RunStatus::Failed.as_str()];
    let rows: Vec<i64> = with_conn!(db, |c| Ok::<_, StoreError>(
        runs::table
            .filter(runs::id.eq_any(ids))
            .filter(runs::status.eq_any(over))
            .select(runs::id)
            .load(c)
            .await?
    ))?;
    Ok(rows.into_iter().collect())
}
