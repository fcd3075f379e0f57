//! The `weather_unavailable_leads` table: leads whose truth was given up on, per run.
//!
//! A row is a fact about the truth source and the clock, not about a miner: the first worker
//! that sees a lead still unpublished `era5_give_up` after it was due records it, and every
//! miner's ERA5 step of the run then leaves that lead out of its aggregates. Recording is
//! insert-if-absent, so concurrent workers agree on one row and a repeat changes nothing; it
//! is not fenced by a claim because it does not depend on which worker observed it.

use crate::backend::with_conn;
use crate::{Db, StoreError};
use chrono::SubsecRound;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use wx_model::RunId;
use wx_model::rows::UnavailableLeadRow;
use wx_model::schema::weather_unavailable_leads as unavailable;

/// The truth source name of ERA5 in `weather_unavailable_leads.source`.
pub const ERA5_SOURCE: &str = "era5";

/// Repository of the `weather_unavailable_leads` table.
pub struct UnavailableLeads<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_unavailable_leads` table.
    pub fn unavailable_leads(&self) -> UnavailableLeads<'_> {
        UnavailableLeads(self)
    }
}

impl UnavailableLeads<'_> {
    /// Records a lead as unavailable unless it already is; returns whether this call
    /// inserted it. Times are truncated to microseconds like every stored time.
    pub async fn record(&self, row: &UnavailableLeadRow) -> Result<bool, StoreError> {
        if row.lead_hours <= 0 || row.source.is_empty() {
            return Err(StoreError::Invalid(format!(
                "an unavailable lead needs a positive lead and a source, got lead {} source {:?}",
                row.lead_hours, row.source
            )));
        }
        let mut row = row.clone();
        row.valid_time_utc = row.valid_time_utc.trunc_subsecs(6);
        row.published_until = row.published_until.map(|t| t.trunc_subsecs(6));
        row.recorded_at = row.recorded_at.trunc_subsecs(6);
        row.reason = wx_model::sanitize_message(&row.reason, &[]);
        with_conn!(self.0, |c| {
            let inserted = diesel::insert_into(unavailable::table)
                .values(&row)
                .on_conflict((
                    unavailable::run_id,
                    unavailable::source,
                    unavailable::lead_hours,
                ))
                .do_nothing()
                .execute(c)
                .await?;
            Ok(inserted == 1)
        })
    }

    /// The unavailable leads of a run for one source, by lead.
    pub async fn list(
        &self,
        run: RunId,
        source: &str,
    ) -> Result<Vec<UnavailableLeadRow>, StoreError> {
        let source = source.to_owned();
        with_conn!(self.0, |c| Ok(unavailable::table
            .filter(unavailable::run_id.eq(run.0))
            .filter(unavailable::source.eq(&source))
            .order(unavailable::lead_hours.asc())
            .select(UnavailableLeadRow::as_select())
            .load(c)
            .await?))
    }
}
