//! The `weather_miner_responses` table: each miner's store for a run and its verification.

use crate::backend::{impl_for_each_conn, with_conn};
use crate::{Db, StoreError};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use wx_model::rows::{NewResponse, ResponseRow};
use wx_model::schema::weather_miner_responses as responses;
use wx_model::{MinerUid, RunId};

/// Response writes inside a caller's transaction.
pub(crate) trait ResponseOps {
    /// Upserts by (run, miner). A verified response is never downgraded to unverified by a
    /// later write that carries `verification_passed = false` with no manifest (a failed
    /// re-check records hosting status only).
    fn upsert_response(
        &mut self,
        row: &NewResponse,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl_for_each_conn!(ResponseOps {
    async fn upsert_response(&mut self, row: &NewResponse) -> Result<(), StoreError> {
        if !row.verification_passed {
            let verified: Option<bool> = responses::table
                .filter(responses::run_id.eq(row.run_id))
                .filter(responses::miner_uid.eq(row.miner_uid))
                .select(responses::verification_passed)
                .first(self)
                .await
                .optional()?;
            if verified == Some(true) {
                diesel::update(responses::table)
                    .filter(responses::run_id.eq(row.run_id))
                    .filter(responses::miner_uid.eq(row.miner_uid))
                    .set((
                        responses::hosting_status.eq(&row.hosting_status),
                        responses::hosting_latency_ms.eq(row.hosting_latency_ms),
                        responses::updated_at.eq(row.updated_at),
                    ))
                    .execute(self)
                    .await?;
                return Ok(());
            }
        }
        diesel::insert_into(responses::table)
            .values(row)
            .on_conflict((responses::run_id, responses::miner_uid))
            .do_update()
            .set((
                responses::miner_hotkey.eq(excluded(responses::miner_hotkey)),
                responses::store_url.eq(excluded(responses::store_url)),
                responses::manifest_hash.eq(excluded(responses::manifest_hash)),
                responses::frozen_manifest.eq(excluded(responses::frozen_manifest)),
                responses::verification_passed.eq(excluded(responses::verification_passed)),
                responses::verified_at.eq(excluded(responses::verified_at)),
                responses::hosting_status.eq(excluded(responses::hosting_status)),
                responses::hosting_latency_ms.eq(excluded(responses::hosting_latency_ms)),
                responses::updated_at.eq(excluded(responses::updated_at)),
            ))
            .execute(self)
            .await?;
        Ok(())
    }
});

/// Repository of the `weather_miner_responses` table.
pub struct Responses<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_miner_responses` table.
    pub fn responses(&self) -> Responses<'_> {
        Responses(self)
    }
}

impl Responses<'_> {
    /// One miner's response in a run.
    pub async fn get(&self, run: RunId, uid: MinerUid) -> Result<Option<ResponseRow>, StoreError> {
        with_conn!(self.0, |c| Ok(responses::table
            .filter(responses::run_id.eq(run.0))
            .filter(responses::miner_uid.eq(uid.as_i32()))
            .select(ResponseRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Every response of a run.
    pub async fn list(&self, run: RunId) -> Result<Vec<ResponseRow>, StoreError> {
        with_conn!(self.0, |c| Ok(responses::table
            .filter(responses::run_id.eq(run.0))
            .order(responses::miner_uid)
            .select(ResponseRow::as_select())
            .load(c)
            .await?))
    }

    /// Every response of one miner across runs (for lifetime statistics).
    pub async fn list_uid(&self, uid: MinerUid) -> Result<Vec<ResponseRow>, StoreError> {
        with_conn!(self.0, |c| Ok(responses::table
            .filter(responses::miner_uid.eq(uid.as_i32()))
            .order(responses::run_id)
            .select(ResponseRow::as_select())
            .load(c)
            .await?))
    }
}
