//! The `miners` table: who is registered, where their store is, the token to read it.

use crate::backend::{with_conn, write_tx};
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use wx_model::rows::{MinerRow, NewRegistryEvent, RegistryEventRow};
use wx_model::schema::{miner_registry_events, miners};

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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImportSummary {
    /// Miners upserted (new or changed).
    pub upserted: usize,
    /// Uids registered that were not registered before.
    pub added: Vec<i32>,
    /// Uids whose hotkey changed: a new miner at the uid (no inherited history).
    pub hotkey_changed: Vec<HotkeyChange>,
}

/// A uid that changed hands in an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotkeyChange {
    /// The uid.
    pub uid: i32,
    /// The hotkey registered before.
    pub previous: String,
    /// The hotkey registered now.
    pub hotkey: String,
}

/// The registry's lifecycle events (`miner_registry_events.event`).
pub mod event {
    /// A uid registered that was not registered.
    pub const ADDED: &str = "added";
    /// A registered uid got another hotkey: a new miner.
    pub const HOTKEY_CHANGED: &str = "hotkey_changed";
    /// A uid was deregistered (`miners remove`).
    pub const REMOVED: &str = "removed";
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
                registered_at: ts(now),
            })
            .collect();
        let rows = &rows;
        let summary = write_tx!(self.0, |c| {
            let mut summary = ImportSummary::default();
            for row in rows {
                let before: Option<String> = miners::table
                    .find(row.uid)
                    .select(miners::hotkey)
                    .first(c)
                    .await
                    .optional()?;
                let event = match &before {
                    None => Some(NewRegistryEvent {
                        uid: row.uid,
                        event: event::ADDED.into(),
                        hotkey: row.hotkey.clone(),
                        previous_hotkey: None,
                        at: ts(now),
                    }),
                    Some(previous) if *previous != row.hotkey => Some(NewRegistryEvent {
                        uid: row.uid,
                        event: event::HOTKEY_CHANGED.into(),
                        hotkey: row.hotkey.clone(),
                        previous_hotkey: Some(previous.clone()),
                        at: ts(now),
                    }),
                    Some(_) => None,
                };
                match &before {
                    // same identity: where the store is and how to read it may change, the
                    // registration time stays
                    Some(previous) if *previous == row.hotkey => {
                        diesel::update(miners::table.find(row.uid))
                            .set((
                                miners::store_url.eq(&row.store_url),
                                miners::access_token.eq(&row.access_token),
                                miners::updated_at.eq(row.updated_at),
                            ))
                            .execute(c)
                            .await?;
                    }
                    // a new miner at the uid, or a new uid
                    _ => {
                        diesel::insert_into(miners::table)
                            .values(row)
                            .on_conflict(miners::uid)
                            .do_update()
                            .set((
                                miners::hotkey.eq(excluded(miners::hotkey)),
                                miners::store_url.eq(excluded(miners::store_url)),
                                miners::access_token.eq(excluded(miners::access_token)),
                                miners::updated_at.eq(excluded(miners::updated_at)),
                                miners::registered_at.eq(excluded(miners::registered_at)),
                            ))
                            .execute(c)
                            .await?;
                    }
                }
                if let Some(e) = event {
                    match &e.previous_hotkey {
                        None => summary.added.push(e.uid),
                        Some(previous) => summary.hotkey_changed.push(HotkeyChange {
                            uid: e.uid,
                            previous: previous.clone(),
                            hotkey: e.hotkey.clone(),
                        }),
                    }
                    diesel::insert_into(miner_registry_events::table)
                        .values(&e)
                        .execute(c)
                        .await?;
                }
                summary.upserted += 1;
            }
            Ok::<_, StoreError>(summary)
        })?;
        for change in &summary.hotkey_changed {
            tracing::warn!(
                uid = change.uid,
                previous = %change.previous,
                hotkey = %change.hotkey,
                "the uid changed hands: a new miner without history; it joins the next run"
            );
        }
        Ok(summary)
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

    /// Removes a miner (deregistration): no new run seeds it; its history rows (stats, scores,
    /// responses, `miner_stats`) are kept for reports. The removal is recorded as a registry
    /// event. Returns whether the uid was registered.
    pub async fn remove(&self, uid: i32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        write_tx!(self.0, |c| {
            let hotkey: Option<String> = miners::table
                .find(uid)
                .select(miners::hotkey)
                .first(c)
                .await
                .optional()?;
            let Some(hotkey) = hotkey else {
                return Ok::<_, StoreError>(false);
            };
            diesel::delete(miners::table.find(uid)).execute(c).await?;
            diesel::insert_into(miner_registry_events::table)
                .values(&NewRegistryEvent {
                    uid,
                    event: event::REMOVED.into(),
                    hotkey,
                    previous_hotkey: None,
                    at: ts(now),
                })
                .execute(c)
                .await?;
            Ok(true)
        })
    }

    /// Registry events, newest first: of one uid, or of every uid; at most `limit`.
    pub async fn events(
        &self,
        uid: Option<i32>,
        limit: i64,
    ) -> Result<Vec<RegistryEventRow>, StoreError> {
        with_conn!(self.0, |c| {
            let mut q = miner_registry_events::table
                .select(RegistryEventRow::as_select())
                .order(miner_registry_events::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(u) = uid {
                q = q.filter(miner_registry_events::uid.eq(u));
            }
            Ok(q.load(c).await?)
        })
    }
}
