//! Whether the database schema is the one this build expects, checked without migrating (the
//! daemon's `/readyz` asks this while it runs).

use crate::backend::{Pools, with_conn};
use crate::{Db, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, StoreError};
use diesel::QueryableByName;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;

/// One row of diesel's migration bookkeeping table.
#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The versions of migrations in `source`, oldest first.
fn embedded_versions<DB: diesel::backend::Backend>(
    source: &impl MigrationSource<DB>,
) -> Result<Vec<String>, StoreError> {
    let migrations = source.migrations().map_err(|e| StoreError::Migration {
        url: String::new(),
        message: format!("the embedded migrations cannot be listed: {e}"),
    })?;
    let mut versions: Vec<String> = migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

impl Db {
    /// The migrations embedded in this build that the database has not applied, oldest first
    /// (empty when the schema is current). Never migrates: run `wx-validator migrate` to apply
    /// them.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let embedded = match &self.pools {
            Pools::Pg(_) => embedded_versions::<Pg>(&POSTGRES_MIGRATIONS)?,
            Pools::Sqlite(_) => embedded_versions::<Sqlite>(&SQLITE_MIGRATIONS)?,
        };
        let applied: Vec<AppliedVersion> = with_conn!(self, |c| {
            diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                .load(c)
                .await
        })?;
        let applied: BTreeSet<String> = applied.into_iter().map(|r| r.version).collect();
        Ok(embedded
            .into_iter()
            .filter(|v| !applied.contains(v))
            .collect())
    }
}
