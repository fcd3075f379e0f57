//! `Db::pending_migrations`: what the daemon's readiness check reports, on both backends.

use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use wx_store::backend_tests;
use wx_store::testing::TestDb;
use wx_store::{Backend, Db};

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

fn sqlite(url: &str) -> SqliteConnection {
    SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap()
}

/// The applied migration versions, read on a separate connection.
async fn applied(t: &TestDb) -> Vec<String> {
    let sql = diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version");
    let rows: Vec<Version> = match t.db.backend() {
        Backend::Postgres => {
            let mut c = AsyncPgConnection::establish(t.url()).await.unwrap();
            diesel_async::RunQueryDsl::load(sql, &mut c).await.unwrap()
        }
        Backend::Sqlite => diesel::RunQueryDsl::load(sql, &mut sqlite(t.url())).unwrap(),
    };
    rows.into_iter().map(|r| r.version).collect()
}

/// Runs one statement on a separate connection.
async fn execute(t: &TestDb, sql: &str) {
    let sql = diesel::sql_query(sql);
    match t.db.backend() {
        Backend::Postgres => {
            let mut c = AsyncPgConnection::establish(t.url()).await.unwrap();
            diesel_async::RunQueryDsl::execute(sql, &mut c)
                .await
                .unwrap();
        }
        Backend::Sqlite => {
            diesel::RunQueryDsl::execute(sql, &mut sqlite(t.url())).unwrap();
        }
    }
}

async fn pending_migrations_are_listed_without_migrating(t: TestDb) {
    assert_eq!(
        t.db.pending_migrations().await.unwrap(),
        Vec::<String>::new(),
        "a freshly opened database is current"
    );
    // forget the newest migration, as a database restored from an older backup looks
    let newest = applied(&t).await.pop().expect("one applied migration");
    execute(
        &t,
        &format!("DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'"),
    )
    .await;
    assert_eq!(
        t.db.pending_migrations().await.unwrap(),
        vec![newest.clone()]
    );
    // asking twice changes nothing: the check never migrates
    assert_eq!(t.db.pending_migrations().await.unwrap(), vec![newest]);
}

backend_tests!(pending_migrations_are_listed_without_migrating);

#[tokio::test]
async fn a_database_without_the_bookkeeping_table_is_an_error_not_current() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wx.sqlite3").display());
    let db = Db::open(&url).await.unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DROP TABLE __diesel_schema_migrations"),
        &mut sqlite(&url),
    )
    .unwrap();
    let e = db.pending_migrations().await.unwrap_err().to_string();
    assert!(e.contains("__diesel_schema_migrations"), "{e}");
}
