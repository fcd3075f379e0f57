//! Throwaway databases for tests (feature `testing`): a SQLite file in a temp dir, or a fresh
//! PostgreSQL database created on the server named by `WX_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards.
//!
//! Tests never skip when PostgreSQL is missing: they fail with a message saying how to provide
//! it (`cargo xtask test` starts a private server when none is configured).

pub mod cluster;

use crate::{Backend, Db, DbOptions};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Environment variable naming the PostgreSQL server (an admin URL) that tests create their
/// databases on.
pub const PG_URL_ENV: &str = "WX_TEST_PG_URL";
/// Used when [`PG_URL_ENV`] is unset.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// A database that exists for the lifetime of this value.
pub struct TestDb {
    /// The open database.
    pub db: Db,
    url: String,
    cleanup: Cleanup,
}

impl TestDb {
    /// A fresh database of the given backend.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A fresh SQLite file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temp dir for the test database");
        let url = format!("sqlite://{}", dir.path().join("wx-test.sqlite3").display());
        let db = Db::open(&url)
            .await
            .unwrap_or_else(|e| panic!("open test SQLite database {url}: {e}"));
        TestDb {
            db,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database.
    pub async fn postgres() -> TestDb {
        TestDb::postgres_with(DbOptions::default()).await
    }

    /// A fresh PostgreSQL database opened with the given options.
    pub async fn postgres_with(options: DbOptions) -> TestDb {
        let admin_url = std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let name = format!("wx_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin_url} ({e}). Run the tests with `cargo xtask test`, \
                 which starts a private PostgreSQL when none is configured, or set {PG_URL_ENV} to an admin URL \
                 of a running server"
            )
        });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create test database {name} on {admin_url}: {e}"));
        let url = replace_db_name(&admin_url, &name);
        let db = Db::open_with(&url, options)
            .await
            .unwrap_or_else(|e| panic!("open test database {url}: {e}"));
        TestDb {
            db,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    /// The URL of this database (to open more handles, e.g. separate worker pools).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection of its own, outside the pool (to hold locks, or to write what wx never
    /// writes, in fault tests).
    pub async fn raw(&self) -> RawConn {
        use diesel_async::AsyncConnection;
        match self.db.backend() {
            Backend::Postgres => RawConn::Pg(Box::new(
                AsyncPgConnection::establish(&self.url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url)),
            )),
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                let conn = crate::backend::SqliteConn::establish(path)
                    .await
                    .unwrap_or_else(|e| panic!("open {path}: {e}"));
                let mut raw = RawConn::Sqlite(conn);
                raw.batch("PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;")
                    .await
                    .expect("configure the connection");
                raw
            }
        }
    }

    /// Runs SQL statements on a connection of its own.
    pub async fn execute(&self, sql: &str) -> Result<(), crate::StoreError> {
        self.raw().await.batch(sql).await
    }
}

/// A connection outside the pool, see [`TestDb::raw`].
pub enum RawConn {
    /// PostgreSQL.
    Pg(Box<AsyncPgConnection>),
    /// SQLite.
    Sqlite(crate::backend::SqliteConn),
}

impl RawConn {
    /// Runs SQL statements (e.g. `BEGIN; SELECT … FOR UPDATE` to hold a lock until `COMMIT`).
    pub async fn batch(&mut self, sql: &str) -> Result<(), crate::StoreError> {
        use diesel_async::SimpleAsyncConnection;
        match self {
            RawConn::Pg(c) => c.as_mut().batch_execute(sql).await?,
            RawConn::Sqlite(c) => c.batch_execute(sql).await?,
        }
        Ok(())
    }

    /// The value of a query returning one `BIGINT` column named `n`.
    pub async fn number(&mut self, sql: &str) -> Result<i64, crate::StoreError> {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let row: N = match self {
            RawConn::Pg(c) => diesel::sql_query(sql).get_result(c.as_mut()).await?,
            RawConn::Sqlite(c) => diesel::sql_query(sql).get_result(c).await?,
        };
        Ok(row.n)
    }
}

/// Replaces the database name (the path) of a PostgreSQL URL.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop the database from a separate thread with its own runtime: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                            let _ = diesel::sql_query(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut admin)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Declares each listed `async fn name(t: TestDb)` as two tests, `sqlite::name` and
/// `postgres::name`, on a multi-threaded runtime.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDb::sqlite().await).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDb::postgres().await).await
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            super::replace_db_name("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::replace_db_name("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
        assert_eq!(
            super::replace_db_name("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
