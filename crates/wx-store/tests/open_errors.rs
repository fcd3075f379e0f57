//! Opening a database that is unreachable, or whose migration fails, gives a clear error.

use wx_store::{Db, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_a_clear_error() {
    // port 1 on loopback: nothing listens there
    let err = Db::open("postgres://wx:secret-password@127.0.0.1:1/wx")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(
        !msg.contains("secret-password"),
        "the password must not appear: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sqlite_directory_is_a_clear_error() {
    let err = Db::open("sqlite:///nonexistent-dir/wx.sqlite3")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DatabaseMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("directory /nonexistent-dir does not exist"),
        "{msg}"
    );
    assert!(
        !msg.contains("server running"),
        "SQLite has no server to ask about: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_existing_never_creates_an_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite3");
    let err = Db::open_existing(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DatabaseMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("wx-validator migrate"), "{err}");
    assert!(!path.exists(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_existing_refuses_a_database_without_the_current_schema() {
    use diesel::Connection;
    let dir = tempfile::tempdir().unwrap();
    // an SQLite file that is not a wx database
    let empty = dir.path().join("empty.sqlite3");
    diesel::SqliteConnection::establish(empty.to_str().unwrap()).unwrap();
    std::fs::write(&empty, b"").unwrap();
    let err = Db::open_existing(&format!("sqlite://{}", empty.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated { .. }), "{err:?}");
    assert!(err.to_string().contains("not a wx database"), "{err}");
    let size = std::fs::metadata(&empty).unwrap().len();
    assert_eq!(size, 0, "the check wrote nothing");

    // a wx database one migration behind: every applied version row but the last removed
    let old = dir.path().join("old.sqlite3");
    let url = format!("sqlite://{}", old.display());
    drop(Db::open(&url).await.unwrap());
    Db::open_existing(&url)
        .await
        .expect("a current schema opens");
    {
        let mut c = diesel::SqliteConnection::establish(old.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .unwrap();
    }
    let err = Db::open_existing(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaBehind { .. }), "{err:?}");
    assert!(
        err.to_string().contains("run `wx-validator migrate`"),
        "{err}"
    );

    // one migrated by a newer wx
    {
        let mut c = diesel::SqliteConnection::establish(old.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "DELETE FROM __diesel_schema_migrations; INSERT INTO __diesel_schema_migrations (version) VALUES ('99991231000001')",
        )
        .unwrap();
    }
    let err = Db::open_existing(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaAhead { .. }), "{err:?}");
    assert!(err.to_string().contains("99991231000001"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_existing_on_postgres_checks_the_database_and_its_schema() {
    let t = wx_store::testing::TestDb::postgres().await;
    Db::open_existing(t.url())
        .await
        .expect("a migrated database opens");
    // a database name that does not exist on the server
    let missing = wx_store::testing::replace_db_name(t.url(), "wx_no_such_database");
    let err = Db::open_existing(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::DatabaseMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("wx_no_such_database"), "{err}");
    // migrate mode does not create PostgreSQL databases either
    let err = Db::open(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::DatabaseMissing { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_urls_are_refused() {
    let err = Db::open("mysql://root@localhost/wx").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_is_a_clear_error_and_not_a_panic() {
    // A file that is not a SQLite database cannot be migrated.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db.sqlite3");
    std::fs::write(
        &path,
        b"this is not a sqlite database, just text padding it out to a page",
    )
    .unwrap();
    let err = Db::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Connect { .. } | StoreError::Migration { .. } | StoreError::Query(_)
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("not a database") || msg.contains("migration"),
        "{msg}"
    );

    // A database whose schema conflicts with the first migration (a table already exists with
    // another shape): the migration fails and says so.
    let path = dir.path().join("conflict.sqlite3");
    {
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "CREATE TABLE miners (x INTEGER);",
        )
        .unwrap();
    }
    let err = Db::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Migration { .. }), "{err:?}");
    assert!(err.to_string().contains("migration failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_twice_runs_migrations_once() {
    let t = wx_store::testing::TestDb::postgres().await;
    // several processes start at once: the advisory lock serialises their migrations
    let (a, b) = tokio::join!(Db::open(t.url()), Db::open(t.url()));
    a.unwrap();
    b.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.sqlite3").display());
    let (a, b) = tokio::join!(Db::open(&url), Db::open(&url));
    a.unwrap();
    b.unwrap();
}
