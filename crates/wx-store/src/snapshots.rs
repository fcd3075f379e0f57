//! The `subnet_snapshots` table.

use crate::backend::with_conn;
use crate::{Db, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use wx_model::rows::{NewSnapshot, SnapshotRow};
use wx_model::schema::subnet_snapshots as snapshots;

/// Repository of the `subnet_snapshots` table.
pub struct Snapshots<'a>(pub(crate) &'a Db);

impl Db {
    /// The `subnet_snapshots` table.
    pub fn snapshots(&self) -> Snapshots<'_> {
        Snapshots(self)
    }
}

impl Snapshots<'_> {
    /// Stores a snapshot; returns its id.
    pub async fn insert(&self, snapshot: &NewSnapshot) -> Result<i64, StoreError> {
        with_conn!(self.0, |c| Ok(diesel::insert_into(snapshots::table)
            .values(snapshot)
            .returning(snapshots::id)
            .get_result(c)
            .await?))
    }

    /// The newest snapshot.
    pub async fn latest(&self) -> Result<Option<SnapshotRow>, StoreError> {
        with_conn!(self.0, |c| Ok(snapshots::table
            .order(snapshots::id.desc())
            .select(SnapshotRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Up to `limit` snapshots older than snapshot `before` (all when `None`), newest first:
    /// for paging back through the history.
    pub async fn page(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SnapshotRow>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        with_conn!(self.0, |c| Ok(snapshots::table
            .filter(snapshots::id.lt(before))
            .order(snapshots::id.desc())
            .limit(limit)
            .select(SnapshotRow::as_select())
            .load(c)
            .await?))
    }

    /// The newest snapshots, newest first.
    pub async fn list(&self, limit: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        with_conn!(self.0, |c| Ok(snapshots::table
            .order(snapshots::id.desc())
            .limit(limit)
            .select(SnapshotRow::as_select())
            .load(c)
            .await?))
    }
}
