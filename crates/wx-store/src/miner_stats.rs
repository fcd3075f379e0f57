//! The `miner_stats` table: lifetime aggregates per miner identity (uid, hotkey), recomputed
//! from that identity's facts (stats rows, responses, step errors) — never incremented, so
//! recomputing twice changes nothing. A new hotkey at a uid is a new miner: its row starts
//! empty, and the previous hotkey's row keeps its history (docs/operating.md, "Fair play").

use crate::backend::{impl_for_each_conn, with_conn};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use std::collections::BTreeMap;
use wx_model::rows::{MinerStatsRow, ResponseRow, StatsRow};
use wx_model::schema::{
    miner_stats, weather_forecast_stats as stats, weather_forecast_steps as steps,
    weather_miner_responses as responses,
};
use wx_model::{HostingStatus, MinerUid, StepError};

/// The facts one uid's aggregates are computed from.
pub(crate) struct MinerFacts {
    pub stats: Vec<StatsRow>,
    pub responses: Vec<ResponseRow>,
    pub errors: Vec<String>,
    pub first_seen: Option<NaiveDateTime>,
}

/// Computes the aggregates of one uid (pure; exposed for tests).
pub(crate) fn aggregate(
    uid: MinerUid,
    facts: &MinerFacts,
    day1_pass_threshold: f64,
    now: NaiveDateTime,
) -> Option<MinerStatsRow> {
    let latest = facts.stats.last()?;
    let overall: Vec<f64> = facts
        .stats
        .iter()
        .filter_map(|s| s.overall_forecast_score)
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let avg = mean(&overall);
    let std = avg.map(|m| {
        (overall.iter().map(|x| (x - m).powi(2)).sum::<f64>() / overall.len() as f64).sqrt()
    });
    let day1: Vec<f64> = facts
        .stats
        .iter()
        .filter_map(|s| s.forecast_score_initial)
        .collect();
    let day1_pass_rate = (!day1.is_empty()).then(|| {
        day1.iter().filter(|x| **x >= day1_pass_threshold).count() as f64 / day1.len() as f64
    });
    let completeness: Vec<f64> = facts
        .stats
        .iter()
        .filter_map(|s| s.era5_completeness)
        .collect();

    // Hosting: one outcome per run that reached a verdict, in run order.
    let outcomes: Vec<bool> = facts
        .responses
        .iter()
        .filter_map(|r| {
            if r.verification_passed {
                Some(true)
            } else {
                r.hosting_status
                    .as_deref()
                    .map(|h| h == HostingStatus::Available.as_str())
            }
        })
        .collect();
    let successes = outcomes.iter().filter(|x| **x).count();
    let failures = outcomes.len() - successes;
    let (mut current_ok, mut longest_ok, mut current_fail) = (0i32, 0i32, 0i32);
    for ok in &outcomes {
        if *ok {
            current_ok += 1;
            current_fail = 0;
            longest_ok = longest_ok.max(current_ok);
        } else {
            current_fail += 1;
            current_ok = 0;
        }
    }
    let latencies: Vec<f64> = facts
        .responses
        .iter()
        .filter(|r| r.verification_passed)
        .filter_map(|r| r.hosting_latency_ms.map(|l| l as f64))
        .collect();
    let mut error_counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &facts.errors {
        let kind = serde_json::from_str::<StepError>(e)
            .map(|e| e.kind.as_str().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        *error_counts.entry(kind).or_default() += 1;
    }
    Some(MinerStatsRow {
        uid: uid.as_i32(),
        hotkey: latest.miner_hotkey.clone(),
        runs_total: facts.stats.len() as i32,
        runs_scored: overall.len() as i32,
        avg_overall_score: avg,
        best_overall_score: overall.iter().copied().reduce(f64::max),
        worst_overall_score: overall.iter().copied().reduce(f64::min),
        std_overall_score: std,
        day1_pass_rate,
        avg_era5_completeness: mean(&completeness),
        hosting_successes: successes as i32,
        hosting_failures: failures as i32,
        avg_hosting_latency_ms: mean(&latencies),
        current_success_streak: current_ok,
        longest_success_streak: longest_ok,
        current_failure_streak: current_fail,
        error_counts: serde_json::to_string(&error_counts).unwrap_or_else(|_| "{}".into()),
        first_seen: facts.first_seen.unwrap_or(now),
        last_active: facts.responses.iter().filter_map(|r| r.verified_at).max(),
        updated_at: now,
    })
}

/// miner_stats writes inside a caller's transaction.
pub(crate) trait MinerStatsOps {
    /// Recomputes and upserts one (uid, hotkey)'s aggregates.
    fn refresh_miner_stats(
        &mut self,
        uid: MinerUid,
        hotkey: &str,
        day1_pass_threshold: f64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl_for_each_conn!(MinerStatsOps {
    async fn refresh_miner_stats(&mut self, uid: MinerUid, hotkey: &str, day1_pass_threshold: f64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let u = uid.as_i32();
        let facts = MinerFacts {
            stats: stats::table.filter(stats::miner_uid.eq(u)).filter(stats::miner_hotkey.eq(hotkey)).order(stats::run_id).select(StatsRow::as_select()).load(self).await?,
            responses: responses::table
                .filter(responses::miner_uid.eq(u))
                .filter(responses::miner_hotkey.eq(hotkey))
                .order(responses::run_id)
                .select(ResponseRow::as_select())
                .load(self)
                .await?,
            errors: steps::table
                .filter(steps::miner_uid.eq(u))
                .filter(steps::miner_hotkey.eq(hotkey))
                .filter(steps::step_name.ne("seed"))
                .filter(steps::step_name.ne("aggregate"))
                .filter(steps::error_json.is_not_null())
                .select(steps::error_json.assume_not_null())
                .load(self)
                .await?,
            first_seen: miner_stats::table.find((u, hotkey)).select(miner_stats::first_seen).first(self).await.optional()?,
        };
        let Some(row) = aggregate(uid, &facts, day1_pass_threshold, ts(now)) else {
            return Ok(());
        };
        diesel::insert_into(miner_stats::table)
            .values(&row)
            .on_conflict((miner_stats::uid, miner_stats::hotkey))
            .do_update()
            .set((
                miner_stats::runs_total.eq(excluded(miner_stats::runs_total)),
                miner_stats::runs_scored.eq(excluded(miner_stats::runs_scored)),
                miner_stats::avg_overall_score.eq(excluded(miner_stats::avg_overall_score)),
                miner_stats::best_overall_score.eq(excluded(miner_stats::best_overall_score)),
                miner_stats::worst_overall_score.eq(excluded(miner_stats::worst_overall_score)),
                miner_stats::std_overall_score.eq(excluded(miner_stats::std_overall_score)),
                miner_stats::day1_pass_rate.eq(excluded(miner_stats::day1_pass_rate)),
                miner_stats::avg_era5_completeness.eq(excluded(miner_stats::avg_era5_completeness)),
                miner_stats::hosting_successes.eq(excluded(miner_stats::hosting_successes)),
                miner_stats::hosting_failures.eq(excluded(miner_stats::hosting_failures)),
                miner_stats::avg_hosting_latency_ms.eq(excluded(miner_stats::avg_hosting_latency_ms)),
                miner_stats::current_success_streak.eq(excluded(miner_stats::current_success_streak)),
                miner_stats::longest_success_streak.eq(excluded(miner_stats::longest_success_streak)),
                miner_stats::current_failure_streak.eq(excluded(miner_stats::current_failure_streak)),
                miner_stats::error_counts.eq(excluded(miner_stats::error_counts)),
                miner_stats::last_active.eq(excluded(miner_stats::last_active)),
                miner_stats::updated_at.eq(excluded(miner_stats::updated_at)),
            ))
            .execute(self)
            .await?;
        Ok(())
    }
});

/// Repository of the `miner_stats` table.
pub struct MinerStatsRepo<'a>(pub(crate) &'a Db);

impl Db {
    /// The `miner_stats` table.
    pub fn miner_stats(&self) -> MinerStatsRepo<'_> {
        MinerStatsRepo(self)
    }
}

impl MinerStatsRepo<'_> {
    /// Recomputes one (uid, hotkey) from facts (idempotent).
    pub async fn refresh(
        &self,
        uid: MinerUid,
        hotkey: &str,
        day1_pass_threshold: f64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::backend::write_tx!(self.0, |c| c
            .refresh_miner_stats(uid, hotkey, day1_pass_threshold, now)
            .await)
    }

    /// One miner identity's aggregates.
    pub async fn get(
        &self,
        uid: MinerUid,
        hotkey: &str,
    ) -> Result<Option<MinerStatsRow>, StoreError> {
        with_conn!(self.0, |c| Ok(miner_stats::table
            .find((uid.as_i32(), hotkey))
            .select(MinerStatsRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Every identity's aggregates, by uid, then oldest first (a uid's previous hotkeys keep
    /// their rows).
    pub async fn list(&self) -> Result<Vec<MinerStatsRow>, StoreError> {
        with_conn!(self.0, |c| Ok(miner_stats::table
            .order((miner_stats::uid, miner_stats::first_seen))
            .select(MinerStatsRow::as_select())
            .load(c)
            .await?))
    }
}
