//! Rescue of expired leases: a step whose worker stopped or stalled is scheduled again without
//! consuming an attempt (lost leases are counted apart, in `lease_losses`), or — once its kind's
//! lost-lease budget is spent, or when its run is over — taken over by the rescuer, which
//! finishes it as failed through the same fenced completion as any failure.
//!
//! No transaction spans the round: each row changes in one fenced statement that also requires
//! the lease to be expired still, so a heartbeat that lands first wins and two rescuers never
//! both act on one row.

use super::claim::{kinds_clause, runs_over};
use super::fence::held_by;
use super::{Claim, Queue, claim_from_row, lease_end, step_key};
use crate::StoreError;
use crate::backend::with_conn;
use crate::time::ts;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use rand::SeedableRng;
use std::time::Duration;
use wx_model::retry::RetryDecision;
use wx_model::rows::StepRow;
use wx_model::schema::weather_forecast_steps as steps;
use wx_model::step::Scope;
use wx_model::{Blame, ErrorKind, RetryPolicy, StepError, StepKey, StepKind, StepStatus};

/// A rescue round.
pub struct RescueRequest<'a> {
    /// The rescuer, stored in `claimed_by` of the steps it takes over to give up.
    pub worker: &'a str,
    /// The lease of a step taken over.
    pub lease: Duration,
    /// The current time; leases that ran out before it are expired.
    pub now: DateTime<Utc>,
    /// At most this many rows per round.
    pub limit: usize,
    /// The lost-lease policy of a kind: its delays, and how many lost leases it takes
    /// (`max_retries`) before the step gives up.
    pub policy: &'a (dyn Fn(StepKind) -> RetryPolicy + Sync),
}

/// What a rescue did with one step.
#[derive(Debug, Clone, PartialEq)]
pub enum RescueAction {
    /// `retry_scheduled` again at `at`; no attempt consumed.
    Rescheduled {
        /// When it is due.
        at: DateTime<Utc>,
    },
    /// Out of lost leases, or its run is over: the rescuer holds the step now and must end it
    /// as failed with `error` (and the failure's effects) through the fenced completion. Until
    /// it does, the step is in progress under the rescuer's lease; if the rescuer dies too, the
    /// next round takes it over again.
    GiveUp {
        /// The rescuer's claim.
        claim: Box<Claim>,
        /// Why the step fails.
        error: StepError,
    },
}

/// A step whose lease expired, as handled by [`Queue::rescue_expired`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rescued {
    /// The step.
    pub key: StepKey,
    /// The worker that held it.
    pub claimed_by: Option<String>,
    /// Leases it has lost, this one included.
    pub lease_losses: u32,
    /// What became of it.
    pub action: RescueAction,
}

/// An expired row wx cannot read (e.g. a step kind of a newer version): left alone, reported
/// on every round.
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptRow {
    /// Row id.
    pub id: i64,
    /// What is wrong.
    pub problem: String,
}

/// The result of a rescue round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RescueReport {
    /// Steps rescheduled or taken over.
    pub rescued: Vec<Rescued>,
    /// Expired rows that were left alone because wx cannot read them.
    pub corrupt: Vec<CorruptRow>,
}

/// An expired row's next state.
enum Plan {
    Reschedule(DateTime<Utc>),
    GiveUp(StepError),
}

impl Queue<'_> {
    /// Handles rows whose lease expired before `now` (their worker stopped or stalled): each
    /// loses a lease and is scheduled again per its kind's lost-lease policy, or is taken over
    /// to be given up (see [`RescueAction`]). Handles at most `limit` rows per call; rows of
    /// kinds wx does not know are reported, not touched.
    pub async fn rescue_expired(
        &self,
        req: &RescueRequest<'_>,
    ) -> Result<RescueReport, StoreError> {
        let nowt = ts(req.now);
        let known = kinds_clause(StepKind::ALL);
        let limit = req.limit as i64;
        let (known, unknown) = (&known, &format!("NOT ({known})"));
        let expired: Vec<StepRow> = with_conn!(self.db, |c| Ok::<_, StoreError>(
            steps::table
                .filter(steps::status.eq(StepStatus::InProgress.as_str()))
                .filter(steps::lease_expires_at.lt(nowt))
                .filter(sql::<Bool>(known))
                .order(steps::lease_expires_at.asc())
                .limit(limit)
                .select(StepRow::as_select())
                .load(c)
                .await?
        ))?;
        let strangers: Vec<(i64, String, String)> = with_conn!(self.db, |c| Ok::<_, StoreError>(
            steps::table
                .filter(steps::status.eq(StepStatus::InProgress.as_str()))
                .filter(steps::lease_expires_at.lt(nowt))
                .filter(sql::<Bool>(unknown))
                .limit(limit)
                .select((steps::id, steps::step_name, steps::substep))
                .load(c)
                .await?
        ))?;
        let mut report = RescueReport {
            corrupt: strangers
                .into_iter()
                .map(|(id, step, sub)| CorruptRow {
                    id,
                    problem: format!("unknown step kind {step}/{sub}"),
                })
                .collect(),
            ..RescueReport::default()
        };
        let run_ids: Vec<i64> = expired.iter().map(|r| r.run_id).collect();
        let over = runs_over(self.db, &run_ids).await?;
        let mut rng = rand::rngs::StdRng::from_entropy();
        for row in expired {
            let key = match step_key(&row) {
                Ok(key) => key,
                Err(e) => {
                    report.corrupt.push(CorruptRow {
                        id: row.id,
                        problem: e.to_string(),
                    });
                    continue;
                }
            };
            let losses = row.lease_losses.max(0) as u32 + 1;
            let holder = row.claimed_by.as_deref().unwrap_or("unknown");
            let lost = format!(
                "lease of worker {holder} expired at {:?}; the worker stopped or stalled \
                 (lease lost {losses} time(s))",
                row.lease_expires_at
            );
            let policy = (req.policy)(key.kind);
            // a miner's step re-run by hand in a finished run is not retried (run-level steps,
            // e.g. the latest run's periodic snapshot, go on after their run completed)
            let run_over = over.contains(&row.run_id) && key.kind.scope() != Scope::Run;
            let plan = if run_over {
                Plan::GiveUp(lease_error(&format!(
                    "{lost}; its run is over, so it is not retried"
                )))
            } else {
                match policy.decide(losses, &mut rng) {
                    RetryDecision::RetryAfter(d) => Plan::Reschedule(
                        req.now + chrono::Duration::from_std(d).unwrap_or_default(),
                    ),
                    RetryDecision::GiveUp => Plan::GiveUp(lease_error(&format!(
                        "{lost}; giving up after {} lost leases",
                        policy.max_retries
                    ))),
                }
            };
            let action = match plan {
                Plan::Reschedule(at) => {
                    let rescheduled = self.reschedule(&row, losses, at, &lost, nowt).await?;
                    rescheduled.then_some(RescueAction::Rescheduled { at })
                }
                Plan::GiveUp(error) => {
                    self.take_over(&row, losses, req)
                        .await?
                        .map(|claim| RescueAction::GiveUp {
                            claim: Box::new(claim),
                            error,
                        })
                }
            };
            if let Some(action) = action {
                report.rescued.push(Rescued {
                    key,
                    claimed_by: row.claimed_by.clone(),
                    lease_losses: losses,
                    action,
                });
            }
        }
        Ok(report)
    }

    /// Makes an expired row due again at `at`; whether its lease was still expired and held by
    /// the same claim.
    async fn reschedule(
        &self,
        row: &StepRow,
        losses: u32,
        at: DateTime<Utc>,
        lost: &str,
        nowt: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let token = row.claim_token.as_deref().unwrap_or_default();
        let error = lease_error(lost).to_json();
        let n = with_conn!(self.db, |c| Ok::<_, StoreError>(
            diesel::update(
                steps::table
                    .filter(held_by(&[row.id], token))
                    .filter(steps::lease_expires_at.lt(nowt)),
            )
            .set((
                steps::status.eq(StepStatus::RetryScheduled.as_str()),
                steps::lease_losses.eq(losses.min(i32::MAX as u32) as i32),
                steps::next_run_at.eq(ts(at)),
                steps::lease_expires_at.eq(None::<NaiveDateTime>),
                steps::claim_token.eq(None::<String>),
                steps::error_json.eq(&error),
                steps::wake_requested.eq(false),
                steps::updated_at.eq(nowt),
            ))
            .execute(c)
            .await?
        ))?;
        Ok(n == 1)
    }

    /// Moves an expired claim to the rescuer (a fresh token and lease) so that it can end the
    /// step as failed; `None` if the lease was renewed or the row taken meanwhile.
    async fn take_over(
        &self,
        row: &StepRow,
        losses: u32,
        req: &RescueRequest<'_>,
    ) -> Result<Option<Claim>, StoreError> {
        let token = row.claim_token.as_deref().unwrap_or_default();
        let fresh = uuid::Uuid::new_v4().to_string();
        let (nowt, until) = (ts(req.now), ts(lease_end(req.now, req.lease)));
        let taken: Option<StepRow> = with_conn!(self.db, |c| Ok::<_, StoreError>(
            diesel::update(
                steps::table
                    .filter(held_by(&[row.id], token))
                    .filter(steps::lease_expires_at.lt(nowt)),
            )
            .set((
                steps::lease_losses.eq(losses.min(i32::MAX as u32) as i32),
                steps::claim_token.eq(&fresh),
                steps::claimed_by.eq(req.worker),
                steps::lease_expires_at.eq(until),
                steps::started_at.eq(nowt),
                steps::updated_at.eq(nowt),
            ))
            .returning(StepRow::as_returning())
            .get_result(c)
            .await
            .optional()?
        ))?;
        // released at shutdown, a taken-over step goes back to `retry_scheduled`
        taken
            .map(|row| claim_from_row(row, StepStatus::RetryScheduled))
            .transpose()
    }
}

/// The error of a lost lease (the infrastructure's, not the miner's).
fn lease_error(message: &str) -> StepError {
    StepError::new(ErrorKind::LeaseLost, Blame::Infrastructure, message, &[])
}
