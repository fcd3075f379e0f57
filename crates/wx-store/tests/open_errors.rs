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
    assert!(err.to_string().contains("does not exist"), "{err}");
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
