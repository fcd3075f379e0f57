//! Opening a database: backend selection from the URL, pools, per-connection setup, migrations.

use crate::error::{StoreError, redact_url};
use crate::pg_connect::PgTarget;
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
/// Cheap to clone; clones share the pool. [`Db::open`] creates (SQLite) and migrates the
/// database; [`Db::open_existing`] only opens a database that already has the current schema.
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
    /// `sqlite://PATH` or `sqlite:PATH` → SQLite. A string without a scheme is refused: a bare
    /// word is more often a mistyped setting than a file name.
    pub fn parse(url: &str) -> Result<DbTarget, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbTarget::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        if path.is_empty() || path.contains("://") || path == ":memory:" {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        }
        Ok(DbTarget::Sqlite(PathBuf::from(path)))
    }
}

/// What opening a database may do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    /// Create the SQLite file if needed and run pending migrations.
    Migrate,
    /// Open only a database that exists with exactly this program's schema; write nothing.
    Existing,
}

impl Db {
    /// The default database: `wx.sqlite3` in the current directory.
    pub const DEFAULT_URL: &'static str = "sqlite://wx.sqlite3";

    /// Opens the database named by `url` with default options and runs pending migrations
    /// (creating an SQLite file if needed; a PostgreSQL database must exist).
    pub async fn open(url: &str) -> Result<Db, StoreError> {
        Db::open_with(url, DbOptions::default()).await
    }

    /// Opens the database named by `url` and runs pending migrations.
    pub async fn open_with(url: &str, options: DbOptions) -> Result<Db, StoreError> {
        Db::open_in_mode(url, &options, OpenMode::Migrate).await
    }

    /// Opens a database that already exists with this program's schema, writing nothing to
    /// it: a missing database is [`StoreError::DatabaseMissing`], one without the wx schema
    /// [`StoreError::NotMigrated`], an older or newer schema [`StoreError::SchemaBehind`] /
    /// [`StoreError::SchemaAhead`]. For commands that only read (or must not upgrade).
    pub async fn open_existing(url: &str) -> Result<Db, StoreError> {
        Db::open_existing_with(url, DbOptions::default()).await
    }

    /// [`Db::open_existing`] with options.
    pub async fn open_existing_with(url: &str, options: DbOptions) -> Result<Db, StoreError> {
        Db::open_in_mode(url, &options, OpenMode::Existing).await
    }

    async fn open_in_mode(
        url: &str,
        options: &DbOptions,
        mode: OpenMode,
    ) -> Result<Db, StoreError> {
        match DbTarget::parse(url)? {
            DbTarget::Postgres(url) => open_postgres(&url, options, mode).await,
            DbTarget::Sqlite(path) => open_sqlite(&path, options, mode).await,
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

async fn open_postgres(url: &str, options: &DbOptions, mode: OpenMode) -> Result<Db, StoreError> {
    let target = Arc::new(PgTarget::parse(url)?);
    let shown = target.shown().to_owned();
    // The first connection migrates (under an advisory lock, so that several validator
    // processes starting together do not race) or checks the schema.
    let first = target.connect(options.connect_timeout).await?;
    let shown_for_task = shown.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(first);
        match mode {
            OpenMode::Existing => crate::schema_check::check_postgres(&mut conn, &shown_for_task),
            OpenMode::Migrate => migrate_postgres(&mut conn, &shown_for_task),
        }
    })
    .await
    .map_err(|e| StoreError::Migration {
        url: shown.clone(),
        message: format!("migration task failed: {e}"),
    })??;

    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    let (pool_target, timeout) = (target.clone(), options.connect_timeout);
    config.custom_setup = Box::new(move |_url| {
        let target = pool_target.clone();
        Box::pin(async move {
            target
                .connect(timeout)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
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

fn migrate_postgres(
    conn: &mut AsyncConnectionWrapper<AsyncPgConnection>,
    shown: &str,
) -> Result<(), StoreError> {
    const LOCK_KEY: i64 = 0x7778_6d69_6772; // "wxmigr"
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})")),
        conn,
    )?;
    let result = conn
        .run_pending_migrations(POSTGRES_MIGRATIONS)
        .map(|_| ())
        .map_err(|e| StoreError::Migration {
            url: shown.to_owned(),
            message: e.to_string(),
        });
    let _ = diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_KEY})")),
        conn,
    );
    result
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

async fn open_sqlite(path: &Path, options: &DbOptions, mode: OpenMode) -> Result<Db, StoreError> {
    let shown = format!("sqlite://{}", path.display());
    let missing = |message: String| StoreError::DatabaseMissing {
        url: shown.clone(),
        message,
    };
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        return Err(missing(format!(
            "directory {} does not exist; fix the path, or create the directory first",
            parent.display()
        )));
    }
    if path.is_dir() {
        return Err(missing(format!(
            "{} is a directory; name the database file inside it, e.g. sqlite://{}",
            path.display(),
            path.join("wx.sqlite3").display()
        )));
    }
    if mode == OpenMode::Existing && !path.is_file() {
        return Err(missing(format!(
            "file {} does not exist; check the path, or create the database with `wx-validator migrate`",
            path.display()
        )));
    }
    let path_str = path
        .to_str()
        .ok_or_else(|| StoreError::UnsupportedUrl(shown.clone()))?
        .to_owned();
    // An existing database is opened through a `mode=rw` URI: SQLite then refuses to create
    // the file, even if it disappears between the check above and the open.
    let open_str = match mode {
        OpenMode::Migrate => path_str.clone(),
        OpenMode::Existing => sqlite_rw_uri(&path_str),
    };
    let setup = sqlite_setup_sql(options.sqlite_busy_timeout);

    let (p, s, shown_task) = (open_str.clone(), setup.clone(), shown.clone());
    let busy = options.sqlite_busy_timeout;
    tokio::task::spawn_blocking(move || match mode {
        OpenMode::Migrate => migrate_sqlite(&p, &s, &shown_task, busy),
        OpenMode::Existing => check_sqlite(&p, &s, &shown_task),
    })
    .await
    .map_err(|e| StoreError::Migration {
        url: shown.clone(),
        message: format!("migration task failed: {e}"),
    })??;
    let path_str = open_str;

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

/// A `file:` URI that opens `path` read-write without creating it (SQLite URI syntax: `%`, `?`
/// and `#` escaped).
fn sqlite_rw_uri(path: &str) -> String {
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=rw")
}

/// Opens an existing SQLite file and checks its schema, writing nothing.
fn check_sqlite(open_str: &str, setup: &str, shown: &str) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::establish(open_str).map_err(|e| StoreError::Connect {
        url: shown.to_owned(),
        message: e.to_string(),
    })?;
    diesel::connection::SimpleConnection::batch_execute(&mut conn, setup)?;
    crate::schema_check::check_sqlite(&mut conn, shown).map_err(|e| match e {
        // a file that is not a database at all
        StoreError::Query(q) if q.to_string().contains("not a database") => {
            StoreError::NotMigrated {
                url: shown.to_owned(),
            }
        }
        other => other,
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
            DbTarget::parse("sqlite:///var/lib/wx/wx.db").unwrap(),
            DbTarget::Sqlite("/var/lib/wx/wx.db".into())
        );
        assert!(
            DbTarget::parse("/var/lib/wx/wx.db").is_err(),
            "scheme-less strings are refused"
        );
        assert!(DbTarget::parse("wx.sqlite3").is_err());
        assert!(DbTarget::parse("mysql://h/db").is_err());
        assert!(DbTarget::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn rw_uris_escape_uri_characters() {
        assert_eq!(sqlite_rw_uri("/a/b.db"), "file:/a/b.db?mode=rw");
        assert_eq!(sqlite_rw_uri("/a/x?#%.db"), "file:/a/x%3f%23%25.db?mode=rw");
    }
}
