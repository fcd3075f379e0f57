//! Whether a database holds exactly the schema this program was built with — checked with reads
//! only, for the commands that must not migrate (`status`, `report`, `miners list`, …) and for
//! the daemon's `/readyz` (`Db::pending_migrations`).
//!
//! (Diesel's own `MigrationHarness::applied_migrations` creates the migrations table when it is
//! missing, which is a write; these queries are not.)

use crate::StoreError;
use diesel::migration::MigrationSource;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::EmbeddedMigrations;

/// Diesel's bookkeeping table.
const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The versions of `migrations`, as diesel records them.
fn known_versions<DB: diesel::backend::Backend>(
    migrations: &EmbeddedMigrations,
) -> Result<Vec<String>, StoreError>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let list =
        MigrationSource::<DB>::migrations(migrations).map_err(|e| StoreError::Migration {
            url: String::new(),
            message: e.to_string(),
        })?;
    Ok(list
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Compares applied and known versions.
fn compare(url: &str, applied: Vec<String>, known: Vec<String>) -> Result<(), StoreError> {
    let unknown: Vec<String> = applied
        .iter()
        .filter(|v| !known.contains(v))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::SchemaAhead {
            url: url.to_owned(),
            unknown,
        });
    }
    let pending: Vec<String> = known.into_iter().filter(|v| !applied.contains(v)).collect();
    if !pending.is_empty() {
        return Err(StoreError::SchemaBehind {
            url: url.to_owned(),
            pending,
        });
    }
    Ok(())
}

/// Checks an SQLite database.
pub(crate) fn check_sqlite(
    conn: &mut diesel::SqliteConnection,
    url: &str,
) -> Result<(), StoreError> {
    let tables: Count = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{MIGRATIONS_TABLE}'"
    ))
    .get_result(conn)?;
    if tables.n == 0 {
        return Err(StoreError::NotMigrated {
            url: url.to_owned(),
        });
    }
    let applied: Vec<Version> =
        diesel::sql_query(format!("SELECT version FROM {MIGRATIONS_TABLE}")).load(conn)?;
    compare(
        url,
        applied.into_iter().map(|v| v.version).collect(),
        known_versions::<diesel::sqlite::Sqlite>(&crate::SQLITE_MIGRATIONS)?,
    )
}

/// Checks a PostgreSQL database (in the connection's current schema).
pub(crate) fn check_postgres<C>(conn: &mut C, url: &str) -> Result<(), StoreError>
where
    C: diesel::Connection<Backend = diesel::pg::Pg> + diesel::connection::LoadConnection,
{
    let tables: Count = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{MIGRATIONS_TABLE}'"
    ))
    .get_result(conn)?;
    if tables.n == 0 {
        return Err(StoreError::NotMigrated {
            url: url.to_owned(),
        });
    }
    let applied: Vec<Version> =
        diesel::sql_query(format!("SELECT version FROM {MIGRATIONS_TABLE}")).load(conn)?;
    compare(
        url,
        applied.into_iter().map(|v| v.version).collect(),
        known_versions::<diesel::pg::Pg>(&crate::POSTGRES_MIGRATIONS)?,
    )
}

impl crate::Db {
    /// The migrations embedded in this build that the database has not applied, oldest first
    /// (empty when the schema is current). Never migrates: run `wx-validator migrate` to apply
    /// them. The daemon's `/readyz` asks this while it runs.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        use crate::backend::{Pools, with_conn};
        let known = match &self.pools {
            Pools::Pg(_) => known_versions::<diesel::pg::Pg>(&crate::POSTGRES_MIGRATIONS)?,
            Pools::Sqlite(_) => {
                known_versions::<diesel::sqlite::Sqlite>(&crate::SQLITE_MIGRATIONS)?
            }
        };
        let applied: Vec<Version> = with_conn!(self, |c| {
            diesel_async::RunQueryDsl::load(
                diesel::sql_query(format!("SELECT version FROM {MIGRATIONS_TABLE}")),
                c,
            )
            .await
        })?;
        let applied: Vec<String> = applied.into_iter().map(|v| v.version).collect();
        let mut pending: Vec<String> = known.into_iter().filter(|v| !applied.contains(v)).collect();
        pending.sort();
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compared_both_ways() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        compare("u", v(&["1", "2"]), v(&["1", "2"])).unwrap();
        assert!(matches!(
            compare("u", v(&["1"]), v(&["1", "2"])),
            Err(StoreError::SchemaBehind { pending, .. }) if pending == ["2"]
        ));
        assert!(matches!(
            compare("u", v(&["1", "2", "3"]), v(&["1", "2"])),
            Err(StoreError::SchemaAhead { unknown, .. }) if unknown == ["3"]
        ));
    }

    #[test]
    fn both_dialects_know_the_same_versions() {
        let sqlite = known_versions::<diesel::sqlite::Sqlite>(&crate::SQLITE_MIGRATIONS).unwrap();
        let pg = known_versions::<diesel::pg::Pg>(&crate::POSTGRES_MIGRATIONS).unwrap();
        assert_eq!(sqlite, pg);
        assert!(!sqlite.is_empty());
    }
}
