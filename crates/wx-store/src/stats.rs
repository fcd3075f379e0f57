//! The `weather_forecast_stats` table: one row per miner per run.

use crate::backend::{impl_for_each_conn, with_conn, write_tx};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use wx_model::rows::{NewStats, StatsRow};
use wx_model::schema::weather_forecast_stats as stats;
use wx_model::{ForecastStatus, MinerUid, RunId};

/// A partial update of a stats row: `None` leaves a column unchanged.
///
/// A `forecast_status` that would move the row backwards (see [`ForecastStatus::rank`]) is
/// ignored, so statuses only progress.
#[derive(Debug, Clone, Default, PartialEq, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = stats)]
#[allow(missing_docs)]
pub struct StatsPatch {
    pub forecast_status: Option<ForecastStatus>,
    pub forecast_score_initial: Option<f64>,
    pub era5_score_24h: Option<f64>,
    pub era5_score_48h: Option<f64>,
    pub era5_score_72h: Option<f64>,
    pub era5_score_96h: Option<f64>,
    pub era5_score_120h: Option<f64>,
    pub era5_score_144h: Option<f64>,
    pub era5_score_168h: Option<f64>,
    pub era5_score_192h: Option<f64>,
    pub era5_score_216h: Option<f64>,
    pub era5_score_240h: Option<f64>,
    pub era5_combined_score: Option<f64>,
    pub era5_completeness: Option<f64>,
    pub overall_forecast_score: Option<f64>,
    pub avg_rmse: Option<f64>,
    pub avg_acc: Option<f64>,
    pub avg_skill_score: Option<f64>,
    pub hosting_status: Option<String>,
    pub hosting_latency_ms: Option<i64>,
    pub forecast_error_msg: Option<String>,
    pub miner_rank: Option<i32>,
}

impl StatsPatch {
    /// A patch that only sets the status.
    pub fn status(status: ForecastStatus) -> Self {
        StatsPatch {
            forecast_status: Some(status),
            ..Default::default()
        }
    }

    /// Sets the fixed `era5_score_<lead>h` column for `lead_hours`; leads without a column are
    /// ignored (they are still in `weather_miner_scores`).
    pub fn set_era5_lead(&mut self, lead_hours: u32, score: f64) {
        let slot = match lead_hours {
            24 => &mut self.era5_score_24h,
            48 => &mut self.era5_score_48h,
            72 => &mut self.era5_score_72h,
            96 => &mut self.era5_score_96h,
            120 => &mut self.era5_score_120h,
            144 => &mut self.era5_score_144h,
            168 => &mut self.era5_score_168h,
            192 => &mut self.era5_score_192h,
            216 => &mut self.era5_score_216h,
            240 => &mut self.era5_score_240h,
            _ => return,
        };
        *slot = Some(score);
    }

    fn numbers(&self) -> [Option<f64>; 19] {
        [
            self.forecast_score_initial,
            self.era5_score_24h,
            self.era5_score_48h,
            self.era5_score_72h,
            self.era5_score_96h,
            self.era5_score_120h,
            self.era5_score_144h,
            self.era5_score_168h,
            self.era5_score_192h,
            self.era5_score_216h,
            self.era5_score_240h,
            self.era5_combined_score,
            self.era5_completeness,
            self.overall_forecast_score,
            self.avg_rmse,
            self.avg_acc,
            self.avg_skill_score,
            None,
            None,
        ]
    }

    /// Refuses NaN and infinities (they never reach the database).
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.numbers().iter().flatten().any(|x| !x.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "stats patch holds a non-finite number: {self:?}"
            )));
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        *self == StatsPatch::default()
    }
}

/// Repository of the `weather_forecast_stats` table.
pub struct Stats<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_forecast_stats` table.
    pub fn stats(&self) -> Stats<'_> {
        Stats(self)
    }
}

impl Stats<'_> {
    /// Inserts a `seeded` row for every listed miner that has none in this run. Idempotent:
    /// seeding the same run twice changes nothing; seeding a reused run backfills new miners.
    /// Returns how many rows were inserted.
    pub async fn seed(
        &self,
        run: RunId,
        miners: &[(MinerUid, String)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let rows = seed_rows(run, miners, now);
        let rows = &rows;
        write_tx!(self.0, |c| c.seed_rows(rows).await)
    }

    /// One miner's row of a run.
    pub async fn get(&self, run: RunId, uid: MinerUid) -> Result<Option<StatsRow>, StoreError> {
        with_conn!(self.0, |c| Ok(stats::table
            .filter(stats::run_id.eq(run.0))
            .filter(stats::miner_uid.eq(uid.as_i32()))
            .select(StatsRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Every row of a run, by uid.
    pub async fn list(&self, run: RunId) -> Result<Vec<StatsRow>, StoreError> {
        with_conn!(self.0, |c| Ok(stats::table
            .filter(stats::run_id.eq(run.0))
            .order(stats::miner_uid)
            .select(StatsRow::as_select())
            .load(c)
            .await?))
    }

    /// Every row of the given runs (for ranking weights over a look-back window).
    pub async fn list_for_runs(&self, runs: &[RunId]) -> Result<Vec<StatsRow>, StoreError> {
        let ids: Vec<i64> = runs.iter().map(|r| r.0).collect();
        let ids = &ids;
        with_conn!(self.0, |c| Ok(stats::table
            .filter(stats::run_id.eq_any(ids))
            .order((stats::run_id, stats::miner_uid))
            .select(StatsRow::as_select())
            .load(c)
            .await?))
    }

    /// Applies a patch outside a step (operators, tests). Steps patch through the queue's
    /// fenced completion instead.
    pub async fn patch(
        &self,
        run: RunId,
        uid: MinerUid,
        patch: &StatsPatch,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        patch.validate()?;
        write_tx!(self.0, |c| c.apply_patch(run, uid, patch, now).await)
    }
}

/// `seeded` stats rows for the given miners of a run.
pub(crate) fn seed_rows(
    run: RunId,
    miners: &[(MinerUid, String)],
    now: DateTime<Utc>,
) -> Vec<NewStats> {
    miners
        .iter()
        .map(|(uid, hotkey)| NewStats {
            run_id: run.0,
            miner_uid: uid.as_i32(),
            miner_hotkey: hotkey.clone(),
            forecast_status: ForecastStatus::Seeded.as_str().to_owned(),
            updated_at: ts(now),
        })
        .collect()
}

/// Stats operations that run inside a caller's transaction.
pub(crate) trait StatsOps {
    /// Inserts stats rows that do not exist yet; returns how many were inserted.
    fn seed_rows(
        &mut self,
        rows: &[NewStats],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Applies a stats patch; statuses never move backwards.
    fn apply_patch(
        &mut self,
        run: RunId,
        uid: MinerUid,
        patch: &StatsPatch,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl_for_each_conn!(StatsOps {
    async fn seed_rows(&mut self, rows: &[NewStats]) -> Result<usize, StoreError> {
        let mut inserted = 0;
        for row in rows {
            inserted += diesel::insert_into(stats::table)
                .values(row)
                .on_conflict((stats::run_id, stats::miner_uid))
                .do_nothing()
                .execute(self)
                .await?;
        }
        Ok(inserted)
    }

    async fn apply_patch(
        &mut self,
        run: RunId,
        uid: MinerUid,
        patch: &StatsPatch,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let current: Option<String> = stats::table
            .filter(stats::run_id.eq(run.0))
            .filter(stats::miner_uid.eq(uid.as_i32()))
            .select(stats::forecast_status)
            .first(self)
            .await
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!(
                "no stats row for run {run} miner {uid}; seed the run first"
            )));
        };
        let mut patch = patch.clone();
        if let Some(new) = patch.forecast_status {
            let cur: ForecastStatus = current
                .parse()
                .map_err(|e: wx_model::ParseEnumError| StoreError::Corrupt { table: "weather_forecast_stats", message: e.to_string() })?;
            if new.rank() < cur.rank() || (cur.is_terminal() && new != cur) {
                patch.forecast_status = None;
            }
        }
        if patch.is_empty() {
            return Ok(false);
        }
        let n = diesel::update(stats::table)
            .filter(stats::run_id.eq(run.0).and(stats::miner_uid.eq(uid.as_i32())))
            .set((&patch, stats::updated_at.eq(ts(now))))
            .execute(self)
            .await?;
        Ok(n == 1)
    }
});
