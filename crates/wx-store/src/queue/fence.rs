//! The fence: every change of a claimed row is filtered by [`held_by`] (the array form of the
//! same predicate is [`BATCH_FENCE`], for PostgreSQL's one-statement batches), so a worker
//! whose lease was lost — rescued, re-claimed — changes nothing. Heartbeats, the fenced status
//! change that ends an attempt, and release live here.

use super::effects::{Prepared, apply_batch};
use super::{Claim, Completion, Fence, Outcome, Queue, lease_end};
use crate::StoreError;
use crate::backend::{impl_for_each_conn, with_conn, write_tx};
use crate::scores::validate_scores;
use crate::steps::{log_row, new_step};
use crate::time::ts;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{And, Eq, EqAny, case_when};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::time::Duration;
use wx_model::StepStatus;
use wx_model::schema::weather_forecast_steps as steps;

/// The status of a claimed row, as stored.
pub(crate) const IN_PROGRESS: &str = "in_progress";

/// The type of [`held_by`].
pub(crate) type HeldBy<'a> = And<
    And<EqAny<steps::id, &'a [i64]>, Eq<steps::claim_token, &'a str>>,
    Eq<steps::status, &'static str>,
>;

/// THE fence: rows among `ids` still held by the claim token `token` (`id AND claim_token AND
/// status = 'in_progress'`).
pub(crate) fn held_by<'a>(ids: &'a [i64], token: &'a str) -> HeldBy<'a> {
    steps::id
        .eq_any(ids)
        .and(steps::claim_token.eq(token))
        .and(steps::status.eq(IN_PROGRESS))
}

/// [`held_by`] over a batch: step row `s` against the claim `(u.id, u.token)` of the batch.
const BATCH_FENCE: &str = "s.id = u.id AND s.claim_token = u.token AND s.status = 'in_progress'";

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

    fn waits(&self) -> bool {
        self.status == StepStatus::Waiting.as_str()
    }
}

/// The fenced update of one attempt, the same statement on both backends.
pub(crate) trait FenceOne {
    /// Applies `u` if its claim is still held; whether it was.
    fn fence_one(
        &mut self,
        u: &FenceUpdate,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl_for_each_conn!(FenceOne {
    async fn fence_one(&mut self, u: &FenceUpdate) -> Result<bool, StoreError> {
        // a wait ends at once when the step was woken while it ran
        let next = case_when::<_, _, diesel::sql_types::Timestamp>(steps::wake_requested.and(u.waits().into_sql::<diesel::sql_types::Bool>()), u.now)
            .otherwise(u.next_run_at);
        let n = diesel::update(steps::table.filter(held_by(&[u.id], &u.token)))
            .set((
                steps::status.eq(u.status),
                steps::attempt.eq(u.attempt),
                steps::next_run_at.eq(next),
                steps::lease_expires_at.eq(None::<NaiveDateTime>),
                steps::claim_token.eq(None::<String>),
                steps::completed_at.eq(u.completed_at),
                steps::latency_ms.eq(Some(u.latency_ms)),
                steps::error_json.eq(&u.error_json),
                steps::wake_requested.eq(false),
                steps::updated_at.eq(u.now),
            ))
            .execute(self)
            .await?;
        Ok(n == 1)
    }
});

/// Applies fenced updates; per update, whether its claim was still held.
pub(crate) trait FenceMany {
    /// PostgreSQL sends a batch as one statement; SQLite runs them one by one (inside its
    /// single writer transaction).
    fn fence_many(
        &mut self,
        updates: &[FenceUpdate],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
}

impl FenceMany for diesel_async::AsyncPgConnection {
    async fn fence_many(&mut self, updates: &[FenceUpdate]) -> Result<Vec<bool>, StoreError> {
        match updates {
            [only] => Ok(vec![self.fence_one(only).await?]),
            _ => fence_batch_postgres(self, updates).await,
        }
    }
}

impl FenceMany for crate::backend::SqliteConn {
    async fn fence_many(&mut self, updates: &[FenceUpdate]) -> Result<Vec<bool>, StoreError> {
        let mut held = Vec::with_capacity(updates.len());
        for u in updates {
            held.push(self.fence_one(u).await?);
        }
        Ok(held)
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
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        token: String,
    }
    let column = |f: fn(&FenceUpdate) -> i64| updates.iter().map(f).collect::<Vec<_>>();
    let query = format!(
        "UPDATE weather_forecast_steps s SET status = u.status, attempt = u.attempt, \
            next_run_at = CASE WHEN s.wake_requested AND u.waits THEN u.now ELSE u.next_run_at END, \
            lease_expires_at = NULL, claim_token = NULL, completed_at = u.completed_at, \
            latency_ms = u.latency_ms, error_json = u.error_json, wake_requested = FALSE, \
            updated_at = u.now \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamp[], \
                     $6::timestamp[], $7::bigint[], $8::text[], $9::timestamp[], $10::bool[]) \
              AS u(id, token, status, attempt, next_run_at, completed_at, latency_ms, \
                   error_json, now, waits) \
         WHERE {BATCH_FENCE} \
         RETURNING s.id, u.token"
    );
    let held: Vec<Held> = diesel::sql_query(query)
        .bind::<Array<BigInt>, _>(column(|u| u.id))
        .bind::<Array<Text>, _>(updates.iter().map(|u| u.token.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(updates.iter().map(|u| u.status).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(updates.iter().map(|u| u.attempt).collect::<Vec<_>>())
        .bind::<Array<Timestamp>, _>(updates.iter().map(|u| u.next_run_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamp>>, _>(
            updates.iter().map(|u| u.completed_at).collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(column(|u| u.latency_ms))
        .bind::<Array<Nullable<Text>>, _>(
            updates
                .iter()
                .map(|u| u.error_json.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamp>, _>(updates.iter().map(|u| u.now).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(updates.iter().map(FenceUpdate::waits).collect::<Vec<_>>())
        .load(conn)
        .await?;
    let mut held: std::collections::HashSet<(i64, String)> =
        held.into_iter().map(|h| (h.id, h.token)).collect();
    Ok(updates
        .iter()
        .map(|u| held.remove(&(u.id, u.token.clone())))
        .collect())
}

fn fences(held: Vec<bool>) -> Vec<Fence> {
    held.into_iter()
        .map(|held| if held { Fence::Applied } else { Fence::Lost })
        .collect()
}

impl Queue<'_> {
    /// Extends the leases of running claims. Returns, per claim, whether it is still held.
    pub async fn heartbeat(
        &self,
        claims: &[&Claim],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let until = ts(lease_end(now, lease));
        let nowt = ts(now);
        let held: Vec<i64> = write_tx!(self.db, |c| {
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
                let ok: Vec<i64> = diesel::update(steps::table.filter(held_by(&ids, token)))
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
    ///
    /// The locks of run completion are taken first and in key order (see `effects.rs`), then
    /// the fences, then every completion's writes, then the run-completion checks: the check
    /// of one completion sees the successors another completion of the batch enqueued.
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
            return Ok(fences(with_conn!(self.db, |c| c
                .fence_many(updates)
                .await)?));
        }
        let stamp = || self.stamp(now);
        let stamp: &(dyn Fn() -> DateTime<Utc> + Sync) = &stamp;
        write_tx!(self.db, |c| apply_batch(c, prepared, updates, now, stamp)
            .await)
    }

    /// Gives claims back without consuming an attempt (graceful shutdown): the rows become
    /// pending (or `retry_scheduled`, if claimed from there) and due now. Fenced like
    /// [`Queue::finish`].
    pub async fn release(
        &self,
        claims: &[&Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError> {
        let nowt = ts(now);
        write_tx!(self.db, |c| {
            let mut out = Vec::with_capacity(claims.len());
            for claim in claims {
                let back = match claim.claimed_from {
                    StepStatus::RetryScheduled => StepStatus::RetryScheduled,
                    _ => StepStatus::Pending,
                };
                let n = diesel::update(steps::table.filter(held_by(&[claim.id], &claim.token)))
                    .set((
                        steps::status.eq(back.as_str()),
                        steps::next_run_at.eq(nowt),
                        steps::lease_expires_at.eq(None::<NaiveDateTime>),
                        steps::claim_token.eq(None::<String>),
                        steps::wake_requested.eq(false),
                        steps::updated_at.eq(nowt),
                    ))
                    .execute(c)
                    .await?;
                out.push(if n == 1 { Fence::Applied } else { Fence::Lost });
            }
            Ok::<_, StoreError>(out)
        })
    }
}
