//! The `weather_miner_scores` table (docs/scoring.md §8).

use crate::backend::{impl_for_each_conn, with_conn, write_tx};
use crate::{Db, StoreError};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use wx_model::rows::{NewScore, ScoreRow};
use wx_model::schema::weather_miner_scores as scores;
use wx_model::{MinerUid, RunId, score_type};

/// Checks scores before they are written: known type, finite score or a reason.
pub(crate) fn validate_scores(rows: &[NewScore]) -> Result<(), StoreError> {
    for r in rows {
        if !score_type::ALL.contains(&r.score_type.as_str()) {
            return Err(StoreError::Invalid(format!(
                "unknown score type `{}`",
                r.score_type
            )));
        }
        match r.score {
            Some(x) if !x.is_finite() => {
                return Err(StoreError::Invalid(format!(
                    "{} {} lead {}: score {x} is not finite; store the failure with an error_message instead",
                    r.score_type, r.variable, r.lead_hours
                )));
            }
            None if r.error_message.is_none() => {
                return Err(StoreError::Invalid(format!(
                    "{} {} lead {}: a missing score needs an error_message",
                    r.score_type, r.variable, r.lead_hours
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Score writes inside a caller's transaction.
pub(crate) trait ScoreOps {
    /// Upserts by (run, miner, score_type, variable, level, lead).
    fn upsert_scores(
        &mut self,
        rows: &[NewScore],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl_for_each_conn!(ScoreOps {
    async fn upsert_scores(&mut self, rows: &[NewScore]) -> Result<(), StoreError> {
        for row in rows {
            diesel::insert_into(scores::table)
                .values(row)
                .on_conflict((
                    scores::run_id,
                    scores::miner_uid,
                    scores::score_type,
                    scores::variable,
                    scores::level,
                    scores::lead_hours,
                ))
                .do_update()
                .set((
                    scores::miner_hotkey.eq(excluded(scores::miner_hotkey)),
                    scores::score.eq(excluded(scores::score)),
                    scores::valid_time_utc.eq(excluded(scores::valid_time_utc)),
                    scores::error_message.eq(excluded(scores::error_message)),
                    scores::metrics.eq(excluded(scores::metrics)),
                    scores::calculated_at.eq(excluded(scores::calculated_at)),
                ))
                .execute(self)
                .await?;
        }
        Ok(())
    }
});

/// Repository of the `weather_miner_scores` table.
pub struct Scores<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_miner_scores` table.
    pub fn scores(&self) -> Scores<'_> {
        Scores(self)
    }
}

impl Scores<'_> {
    /// Upserts scores in one transaction. Steps write scores through the queue's fenced
    /// completion instead; this is for tools and tests.
    pub async fn upsert(&self, rows: &[NewScore]) -> Result<(), StoreError> {
        validate_scores(rows)?;
        write_tx!(self.0, |c| c.upsert_scores(rows).await)
    }

    /// One miner's scores in a run.
    pub async fn list_miner(&self, run: RunId, uid: MinerUid) -> Result<Vec<ScoreRow>, StoreError> {
        with_conn!(self.0, |c| Ok(scores::table
            .filter(scores::run_id.eq(run.0))
            .filter(scores::miner_uid.eq(uid.as_i32()))
            .order((
                scores::score_type,
                scores::lead_hours,
                scores::variable,
                scores::level
            ))
            .select(ScoreRow::as_select())
            .load(c)
            .await?))
    }

    /// Every score of a run.
    pub async fn list_run(&self, run: RunId) -> Result<Vec<ScoreRow>, StoreError> {
        with_conn!(self.0, |c| Ok(scores::table
            .filter(scores::run_id.eq(run.0))
            .order((
                scores::miner_uid,
                scores::score_type,
                scores::lead_hours,
                scores::variable,
                scores::level
            ))
            .select(ScoreRow::as_select())
            .load(c)
            .await?))
    }

    /// The leads of a miner that already have a stored `era5_lead_score` (progress is derived
    /// from stored scores).
    pub async fn scored_era5_leads(
        &self,
        run: RunId,
        uid: MinerUid,
    ) -> Result<Vec<u32>, StoreError> {
        let leads: Vec<i32> = with_conn!(self.0, |c| Ok::<_, StoreError>(
            scores::table
                .filter(scores::run_id.eq(run.0))
                .filter(scores::miner_uid.eq(uid.as_i32()))
                .filter(scores::score_type.eq(score_type::ERA5_LEAD_SCORE))
                .filter(scores::variable.eq(""))
                .order(scores::lead_hours)
                .select(scores::lead_hours)
                .load(c)
                .await?
        ))?;
        Ok(leads
            .into_iter()
            .filter_map(|l| u32::try_from(l).ok())
            .collect())
    }
}
