//! Opening a database: backend selection from the URL, pools, per-connection setup, migrations.

use crate::error::{StoreError, redact_url};
use diesel::Connection;
use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// PostgreSQL migrations, embedded at build time.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// SQLite migrations, embedded at build time.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The async SQLite connection type (a sync connection run on the blocking pool).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: production, many processes and machines.
    Postgres,
    /// SQLite: embedded default, one file.
    Sqlite,
}

/// Options for [`Db::open_with`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection (and for the first connection at open).
    pub connect_timeout: Duration,
    /// SQLite: how long a writer waits for the lock before failing.
    pub sqlite_busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// A handle on the wx database: pooled connections to PostgreSQL or SQLite behind one API.
///
/// Cheap to clone; clones share the pool. Migrations run when the database is opened.
#[derive(Clone)]
pub struct Db {
    pub(crate) pools: Pools,
    url: Arc<str>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("url", &self.url).finish()
    }
}

/// The parsed target of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A PostgreSQL connection URL.
    Postgres(String),
    /// A SQLite file.
    Sqlite(PathBuf),
}

impl DbTarget {
    /// Chooses the backend from the URL: `postgres://` or `postgresql://` → PostgreSQL;
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path → SQLite.
    pub fn parse(url: &str) -> Result<DbTarget, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbTarget::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") || path == ":memory:" {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        }
        Ok(DbTarget::Sqlite(PathBuf::from(path)))
    }
}

impl Db {
    /// The default database: `wx.sqlite3` in the current directory.
    pub const DEFAULT_URL: &'static str = "sqlite://wx.sqlite3";

    /// Opens the database named by `url` with default options and runs pending migrations.
    pub async fn open(url: &str) -> Result<Db, StoreError> {
        Db::open_with(url, DbOptions::default()).await
    }

    /// Opens the database named by `url` and runs pending migrations.
    pub async fn open_with(url: &str, options: DbOptions) -> Result<Db, StoreError> {
        match DbTarget::parse(url)? {
            DbTarget::Postgres(url) => open_postgres(&url, &options).await,
            DbTarget::Sqlite(path) => open_sqlite(&path, &options).await,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Pg(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL with any password removed, for messages.
    pub fn display_url(&self) -> &str {
        &self.url
    }
}

pub(crate) fn pool_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Pool(e.to_string())
}

async fn open_postgres(url: &str, options: &DbOptions) -> Result<Db, StoreError> {
    let shown = redact_url(url);
    // Migrations first, on a dedicated connection under an advisory lock, so that several
    // validator processes starting together do not race.
    let migrate_url = url.to_owned();
    let shown_for_task = shown.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&migrate_url)
            .map_err(|e| StoreError::Connect {
                url: shown_for_task.clone(),
                message: e.to_string(),
            })?;
        const LOCK_KEY: i64 = 0x7778_6d69_6772; // "wxmigr"
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})")),
            &mut conn,
        )?;
        let result = conn
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration {
                url: shown_for_task.clone(),
                message: e.to_string(),
            });
        let _ = diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_KEY})")),
            &mut conn,
        );
        result
    })
    .await
    .map_err(|e| StoreError::Migration {
        url: shown.clone(),
        message: format!("migration task failed: {e}"),
    })??;

    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let pool = Pool::builder()
        .max_size(options.max_connections)
        .connection_timeout(options.connect_timeout)
        // no ping per checkout: a broken connection fails one query and is dropped by the pool
        .test_on_check_out(false)
        .build(manager)
        .await
        .map_err(|e| StoreError::Connect {
            url: shown.clone(),
            message: e.to_string(),
        })?;
    Ok(Db {
        pools: Pools::Pg(pool),
        url: shown.into(),
    })
}

/// Per-connection settings. WAL is a property of the file, set once before migrating.
fn sqlite_setup_sql(busy_timeout: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        busy_timeout.as_millis()
    )
}

/// Sets the connection up and runs pending migrations in one exclusive transaction.
///
/// Several processes opening a new file at once can see "database is locked" without the busy
/// handler being consulted (SQLite refuses to wait where waiting could deadlock, e.g. while
/// another connection switches the file to WAL); that case is retried until `busy` has passed.
fn migrate_sqlite(path: &str, setup: &str, shown: &str, busy: Duration) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let attempt = (|| -> Result<(), StoreError> {
            let mut conn = SqliteConnection::establish(path).map_err(|e| StoreError::Connect {
                url: shown.to_owned(),
                message: e.to_string(),
            })?;
            diesel::connection::SimpleConnection::batch_execute(&mut conn, setup)?;
            diesel::connection::SimpleConnection::batch_execute(
                &mut conn,
                "PRAGMA journal_mode = WAL;",
            )?;
            conn.exclusive_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|_| ())
                    .map_err(diesel::result::Error::QueryBuilderError)
            })
            .map_err(|e| StoreError::Migration {
                url: shown.to_owned(),
                message: e.to_string(),
            })
        })();
        match attempt {
            Err(e) if e.to_string().contains("database is locked") && started.elapsed() < busy => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

async fn open_sqlite(path: &Path, options: &DbOptions) -> Result<Db, StoreError> {
    let shown = format!("sqlite://{}", path.display());
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        return Err(StoreError::Connect {
            url: shown,
            message: format!(
                "directory {} does not exist; create it first",
                parent.display()
            ),
        });
    }
    let path_str = path
        .to_str()
        .ok_or_else(|| StoreError::UnsupportedUrl(shown.clone()))?
        .to_owned();
    let setup = sqlite_setup_sql(options.sqlite_busy_timeout);

    let (p, s, shown_task) = (path_str.clone(), setup.clone(), shown.clone());
    let busy = options.sqlite_busy_timeout;
    tokio::task::spawn_blocking(move || migrate_sqlite(&p, &s, &shown_task, busy))
        .await
        .map_err(|e| StoreError::Migration {
            url: shown.clone(),
            message: format!("migration task failed: {e}"),
        })??;

    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(move |url| {
        let (url, setup) = (url.to_owned(), setup.clone());
        Box::pin(async move {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = SqliteConn::establish(&url).await?;
            conn.batch_execute(&setup)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path_str, config);
    let pool = Pool::builder()
        .max_size(options.max_connections)
        .connection_timeout(options.connect_timeout)
        // no ping per checkout: a broken connection fails one query and is dropped by the pool
        .test_on_check_out(false)
        .build(manager)
        .await
        .map_err(|e| StoreError::Connect {
            url: shown.clone(),
            message: e.to_string(),
        })?;
    Ok(Db {
        pools: Pools::Sqlite(pool),
        url: shown.into(),
    })
}

/// Runs `$body` with `$c` bound to a pooled connection of whichever backend the [`Db`] uses.
/// The body is compiled once per backend; it must evaluate to `Result<_, StoreError>`.
macro_rules! with_conn {
    ($db:expr, |$c:ident| $body:expr) => {
        match &$db.pools {
            $crate::backend::Pools::Pg(pool) => {
                let mut guard = pool.get().await.map_err($crate::backend::pool_error)?;
                let $c = &mut *guard;
                $body
            }
            $crate::backend::Pools::Sqlite(pool) => {
                let mut guard = pool.get().await.map_err($crate::backend::pool_error)?;
                let $c = &mut *guard;
                $body
            }
        }
    };
}

/// Runs `$body` in a write transaction: a plain transaction on PostgreSQL, `BEGIN IMMEDIATE`
/// on SQLite (so that a reading transaction never has to upgrade to a writer and fail with
/// SQLITE_BUSY). The body is an async closure body returning `Result<_, StoreError>`.
macro_rules! write_tx {
    ($db:expr, |$c:ident| $body:expr) => {
        match &$db.pools {
            $crate::backend::Pools::Pg(pool) => {
                let mut guard = pool.get().await.map_err($crate::backend::pool_error)?;
                diesel_async::AsyncConnection::transaction(&mut *guard, async |$c| $body).await
            }
            $crate::backend::Pools::Sqlite(pool) => {
                let mut guard = pool.get().await.map_err($crate::backend::pool_error)?;
                guard.immediate_transaction(async |$c| $body).await
            }
        }
    };
}

/// Pastes one trait impl for each backend's connection type, so that code running inside a
/// transaction is written once and compiled for PostgreSQL and SQLite.
macro_rules! impl_for_each_conn {
    ($trait:ident { $($items:tt)* }) => {
        impl $trait for diesel_async::AsyncPgConnection { $($items)* }
        impl $trait for $crate::backend::SqliteConn { $($items)* }
    };
}

pub(crate) use {impl_for_each_conn, with_conn, write_tx};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(
            DbTarget::parse("postgres://u@h/db").unwrap(),
            DbTarget::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            DbTarget::parse("sqlite://data/wx.sqlite3").unwrap(),
            DbTarget::Sqlite("data/wx.sqlite3".into())
        );
        assert_eq!(
            DbTarget::parse("sqlite:wx.db").unwrap(),
            DbTarget::Sqlite("wx.db".into())
        );
        assert_eq!(
            DbTarget::parse("/var/lib/wx/wx.db").unwrap(),
            DbTarget::Sqlite("/var/lib/wx/wx.db".into())
        );
        assert!(DbTarget::parse("mysql://h/db").is_err());
        assert!(DbTarget::parse("sqlite::memory:").is_err());
    }
}
