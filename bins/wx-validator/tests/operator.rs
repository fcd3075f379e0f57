//! `/readyz`, `/healthz` and `wx_build_info` of a real daemon: readiness follows the schema
//! (a pending migration makes the daemon unready, on both backends) and the database (a
//! PostgreSQL database that refuses connections makes it unready, and ready again when it
//! comes back), while liveness stays up.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_sim::WorldSpec;
use wx_store::testing::{DEFAULT_PG_URL, PG_URL_ENV, TestDb};
use wx_store::{Backend, backend_tests};
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::Simulation;

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon on a small simulated world, with its operator endpoints on `addr`.
struct Daemon {
    addr: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<wx_scheduler::RunSummary>>,
    sim: Simulation,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Daemon {
    async fn start(t: &TestDb) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulation::start(WorldSpec::small(2), dir.path(), t.url())
            .await
            .unwrap();
        sim.import_miners(&t.db).await.unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut config = sim.config.clone();
        config.metrics_addr = Some(addr.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(
            config,
            DaemonParts {
                db: Some(t.db.clone()),
                ..DaemonParts::default()
            },
            stop.clone(),
        ));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Daemon {
            addr,
            stop,
            task,
            sim,
            _dir: dir,
            client,
        }
    }

    /// Status code and body of `GET path`.
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Polls `/readyz` until its status is `status`; returns the last body.
    async fn wait_readyz(&self, status: u16, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // the endpoints come up while the daemon starts: connection errors mean "not yet"
            let answer = self
                .client
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await;
            if let Ok(r) = answer {
                let code = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                if code == status {
                    return body;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "/readyz stayed {code} ({body:?}) instead of {status} for {within:?}"
                );
            } else {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "/readyz did not answer within {within:?}: {answer:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.sim.shutdown().await;
    }
}

/// Runs one statement on the test database through a separate connection.
async fn execute(t: &TestDb, sql: &str) {
    let sql = diesel::sql_query(sql);
    match t.db.backend() {
        Backend::Postgres => {
            let mut c = AsyncPgConnection::establish(t.url()).await.unwrap();
            sql.execute(&mut c).await.unwrap();
        }
        Backend::Sqlite => {
            use diesel::Connection;
            let path = t.url().trim_start_matches("sqlite://");
            let mut c = diesel::SqliteConnection::establish(path).unwrap();
            // the daemon writes at the same time: wait for its lock like it waits for ours
            diesel::connection::SimpleConnection::batch_execute(
                &mut c,
                "PRAGMA busy_timeout = 30000;",
            )
            .unwrap();
            diesel::RunQueryDsl::execute(sql, &mut c).unwrap();
        }
    }
}

async fn readiness_follows_the_schema(t: TestDb) {
    let daemon = Daemon::start(&t).await;
    assert_eq!(
        daemon.wait_readyz(200, Duration::from_secs(60)).await,
        "ready\n"
    );

    // the newest migration forgotten: what a database restored from an older backup looks like
    let version = "20261128000001";
    execute(
        &t,
        &format!("DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"),
    )
    .await;
    let body = daemon.wait_readyz(503, Duration::from_secs(10)).await;
    assert!(body.contains("migrations pending"), "{body}");
    assert!(body.contains(version), "{body}");
    assert!(
        body.contains("wx-validator migrate"),
        "says what to do: {body}"
    );
    assert_eq!(
        daemon.get("/healthz").await,
        (200, "ok\n".to_owned()),
        "liveness does not depend on the schema"
    );

    execute(
        &t,
        &format!(
            "INSERT INTO __diesel_schema_migrations (version, run_on) VALUES ('{version}', CURRENT_TIMESTAMP)"
        ),
    )
    .await;
    assert_eq!(
        daemon.wait_readyz(200, Duration::from_secs(10)).await,
        "ready\n"
    );
    daemon.stop().await;
}

backend_tests!(readiness_follows_the_schema);

/// The name of a PostgreSQL test database (the last path segment of its URL).
fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_makes_the_daemon_unready_until_it_ends() {
    let t = TestDb::postgres().await;
    let daemon = Daemon::start(&t).await;
    daemon.wait_readyz(200, Duration::from_secs(60)).await;

    // the database refuses new connections and its open ones are cut
    let admin_url = std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let name = database_name(t.url());
    let mut admin = AsyncPgConnection::establish(&admin_url).await.unwrap();
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();

    let body = daemon.wait_readyz(503, Duration::from_secs(30)).await;
    assert!(body.contains("database unavailable"), "{body}");
    assert!(!body.contains("password"), "{body}");
    assert_eq!(
        daemon.get("/healthz").await,
        (200, "ok\n".to_owned()),
        "liveness stays up during a database outage"
    );
    // the scrape still answers, and shows the dispatcher's claims failing
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, metrics) = daemon.get("/metrics").await;
        assert_eq!(status, 200, "{metrics}");
        if metrics.contains("wx_scheduler_claims_ok 0") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "wx_scheduler_claims_ok stayed up during the outage:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        daemon.wait_readyz(200, Duration::from_secs(60)).await,
        "ready\n"
    );
    daemon.stop().await;
}

/// The commit `git` reports for the source tree (the tests run inside the repository).
fn git_head() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is needed to check the build-info metric: install git");
    assert!(out.status.success(), "git rev-parse failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The version of the compiler that built this test (the same rustc built the daemon code).
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .expect("rustc runs");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_info_names_version_commit_and_compiler() {
    let t = TestDb::sqlite().await;
    let daemon = Daemon::start(&t).await;
    daemon.wait_readyz(200, Duration::from_secs(60)).await;
    let (status, text) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let info: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "wx_build_info")
        .collect();
    assert_eq!(info.len(), 1, "one wx_build_info series in:\n{text}");
    let labels = &info[0].labels;
    assert_eq!(labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(labels.get("git_commit"), Some(git_head().as_str()));
    assert_eq!(labels.get("rustc"), Some(rustc_version().as_str()));
    assert!(matches!(info[0].value, prometheus_parse::Value::Gauge(v) if v == 1.0));
    assert_eq!(
        wx_validator::operator::BUILD_INFO.git_commit,
        git_head(),
        "the library reports the same commit"
    );
    daemon.stop().await;
}
