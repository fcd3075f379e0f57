//! The `miners` table: who is registered, where their store is, the token to read it.

use crate::backend::{with_conn, write_tx};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use wx_model::rows::MinerRow;
use wx_model::schema::miners;

/// One miner as listed in an import file (`wx-validator miners import FILE`).
///
/// `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerRecord {
    /// Uid 0..=255.
    pub uid: i64,
    /// ss58 hotkey.
    pub hotkey: String,
    /// Store base URL; may contain `{run_id}` and `{init}` placeholders.
    pub store_url: String,
    /// Bearer token of the store (secret).
    pub access_token: String,
}

impl std::fmt::Debug for MinerRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerRecord")
            .field("uid", &self.uid)
            .field("hotkey", &self.hotkey)
            .field("store_url", &self.store_url)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

impl MinerRecord {
    /// Checks the record; the error says which field of which uid is wrong.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Invalid(m));
        if !(0..=255).contains(&self.uid) {
            return bad(format!("miner uid {} is outside 0..=255", self.uid));
        }
        if self.hotkey.trim().is_empty() {
            return bad(format!("miner {}: hotkey is empty", self.uid));
        }
        let url = self.store_url.trim();
        if !(url.starts_with("https://")
            || url.starts_with("http://")
            || url.starts_with("file://")
            || url.starts_with('/'))
        {
            return bad(format!(
                "miner {}: store_url must be an http(s):// URL or a local path, got `{}`",
                self.uid,
                wx_model::sanitize_message(url, &[&self.access_token])
            ));
        }
        if self.access_token.is_empty() {
            return bad(format!("miner {}: access_token is empty", self.uid));
        }
        Ok(())
    }
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ImportSummary {
    /// Miners upserted (new or changed).
    pub upserted: usize,
}

/// Repository of the `miners` table.
pub struct Miners<'a>(pub(crate) &'a Db);

impl Db {
    /// The `miners` table.
    pub fn miners(&self) -> Miners<'_> {
        Miners(self)
    }
}

impl Miners<'_> {
    /// Inserts or updates miners by uid, all in one transaction. Every record is validated first;
    /// duplicates uids in one import are refused.
    pub async fn import(
        &self,
        records: &[MinerRecord],
        now: DateTime<Utc>,
    ) -> Result<ImportSummary, StoreError> {
        let mut seen = std::collections::BTreeSet::new();
        for r in records {
            r.validate()?;
            if !seen.insert(r.uid) {
                return Err(StoreError::Invalid(format!(
                    "miner uid {} appears twice in the import",
                    r.uid
                )));
            }
        }
        let rows: Vec<MinerRow> = records
            .iter()
            .map(|r| MinerRow {
                uid: r.uid as i32,
                hotkey: r.hotkey.trim().to_owned(),
                store_url: r.store_url.trim().to_owned(),
                access_token: r.access_token.clone(),
                updated_at: ts(now),
            })
            .collect();
        let rows = &rows;
        write_tx!(self.0, |c| {
            for row in rows {
                diesel::insert_into(miners::table)
                    .values(row)
                    .on_conflict(miners::uid)
                    .do_update()
                    .set((
                        miners::hotkey.eq(excluded(miners::hotkey)),
                        miners::store_url.eq(excluded(miners::store_url)),
                        miners::access_token.eq(excluded(miners::access_token)),
                        miners::updated_at.eq(excluded(miners::updated_at)),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok::<_, StoreError>(ImportSummary {
                upserted: rows.len(),
            })
        })
    }

    /// All registered miners by uid.
    pub async fn list(&self) -> Result<Vec<MinerRow>, StoreError> {
        with_conn!(self.0, |c| Ok(miners::table
            .order(miners::uid)
            .select(MinerRow::as_select())
            .load(c)
            .await?))
    }

    /// One miner.
    pub async fn get(&self, uid: i32) -> Result<Option<MinerRow>, StoreError> {
        with_conn!(self.0, |c| Ok(miners::table
            .find(uid)
            .select(MinerRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Removes a miner (deregistration). History rows of past runs are kept.
    pub async fn remove(&self, uid: i32) -> Result<bool, StoreError> {
        with_conn!(self.0, |c| Ok(diesel::delete(miners::table.find(uid))
            .execute(c)
            .await?
            > 0))
    }
}
