//! `wx-validator` as an operator meets it (the real binary): which commands may create or
//! migrate a database, exit codes, configuration mistakes, the miners import rules, closed
//! pipes, `runs list` and `weights`, the registry lifecycle and `prune --dry-run`.

use std::path::Path;
use std::process::{Command, Output};
use wx_store::Db;

const BIN: &str = env!("CARGO_BIN_EXE_wx-validator");

/// Alice's and Bob's well-known development hotkeys (valid SS58).
const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

fn wx() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "WX_CONFIG",
        "WX_DATABASE_URL",
        "WX_LOG",
        "WX_LOG_JSON",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `wx-validator --database-url URL ARGS…`.
fn with_db(url: &str, args: &[&str]) -> Output {
    wx().args(["--database-url", url])
        .args(args)
        .output()
        .unwrap()
}

fn migrated(dir: &Path) -> String {
    let url = sqlite_url(&dir.join("wx.sqlite3"));
    let out = with_db(&url, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    url
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite3");
    let url = sqlite_url(&path);
    let out_dir = dir.path().join("report");
    let out_dir = out_dir.to_str().unwrap();
    for args in [
        &["status"][..],
        &["report", "--out", out_dir],
        &["miners", "list"],
        &["runs", "list"],
        &["weights"],
    ] {
        let out = with_db(&url, args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("does not exist") && stderr(&out).contains("migrate"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!path.exists(), "{args:?} created the database");
    }
    // `migrate` creates it
    let out = with_db(&url, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(path.is_file());
    let out = with_db(&url, &["runs", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no run yet");
}

#[test]
fn read_only_commands_refuse_an_old_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    {
        use diesel::Connection;
        let path = dir.path().join("wx.sqlite3");
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .unwrap();
    }
    for args in [&["runs", "list"][..], &["miners", "list"], &["status"]] {
        let out = with_db(&url, args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("out of date") && stderr(&out).contains("wx-validator migrate"),
            "{}",
            stderr(&out)
        );
    }
    // the re-applied migration fails on the existing tables: migrate says so, with no panic
    let out = with_db(&url, &["migrate"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("migration failed"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn run_needs_an_explicit_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = wx().arg("run").current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no database configured"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no default database file appeared"
    );
}

#[test]
fn configuration_mistakes_exit_78_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    // a misspelt variable names the closest known one
    let out = wx()
        .env("WX_DATABSE_URL", &url)
        .args(["runs", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("WX_DATABSE_URL (did you mean WX_DATABASE_URL?)"),
        "{}",
        stderr(&out)
    );
    // a misspelt key in the scoring section
    let config = dir.path().join("wx.toml");
    std::fs::write(&config, "[scoring.weights]\nlookbak_days = 3\n").unwrap();
    let out = wx()
        .arg("-c")
        .arg(&config)
        .args(["--database-url", &url, "runs", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("lookbak_days"), "{}", stderr(&out));
    // -c DIR
    let out = wx()
        .arg("-c")
        .arg(dir.path())
        .args(["runs", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a directory, not a config file"),
        "{}",
        stderr(&out)
    );
    // a database string without a scheme
    let bare = dir.path().join("wx.sqlite3").display().to_string();
    let out = with_db(&bare, &["runs", "list"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("sqlite://"), "{}", stderr(&out));
    // the SQLite directory is missing: no question about a server
    let out = with_db("sqlite:///nonexistent-wx-dir/wx.sqlite3", &["migrate"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("directory /nonexistent-wx-dir does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("server running"), "{}", stderr(&out));
}

#[test]
fn other_exit_codes_tell_usage_outage_and_success_apart() {
    let out = wx().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let out = wx().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(
        help.contains("Exit codes:") && help.contains("69") && help.contains("WX_LOG_JSON"),
        "{help}"
    );
    // nothing listens on port 1: the database is unreachable, and the password stays secret
    let out = with_db(
        "postgres://wx:hunter2-secret@127.0.0.1:1/wx?connect_timeout=5",
        &["runs", "list"],
    );
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2-secret"), "{}", stderr(&out));
}

fn write_miners(dir: &Path, rows: &[(i64, &str, &str, &str)]) -> std::path::PathBuf {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|(uid, hotkey, url, token)| {
            serde_json::json!({"uid": uid, "hotkey": hotkey, "store_url": url, "access_token": token})
        })
        .collect();
    let path = dir.join("miners.json");
    std::fs::write(&path, serde_json::to_string(&list).unwrap()).unwrap();
    path
}

#[test]
fn miners_import_refuses_bad_rows_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    let secret = "tok-\u{7}-secret";
    let file = write_miners(
        dir.path(),
        &[
            (
                1,
                ALICE,
                "https://m1.example/forecasts/{run_id}.zarr",
                "tok-1",
            ),
            (2, "abc", "https://m2.example/f.zarr", "tok-2"),
            (3, BOB, "file:///srv/forecast.zarr", "tok-3"),
            (4, BOB, "https://169.254.10.20/f.zarr", "tok-4"),
            (
                5,
                "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy",
                "https://m5.example/f.zarr",
                secret,
            ),
            (6, ALICE, "https://m6.example/f.zarr", "tok-6"),
        ],
    );
    let out = with_db(&url, &["miners", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    let row_lines: Vec<&str> = err.lines().filter(|l| l.contains(": row ")).collect();
    assert_eq!(row_lines.len(), 5, "one line per bad row: {err}");
    for (row, expected) in [
        (2, "not a valid SS58"),
        (3, "scheme"),
        (4, "link-local"),
        (5, "printable ASCII"),
        (6, "hotkey is already on row 1"),
    ] {
        assert!(
            row_lines
                .iter()
                .any(|l| l.contains(&format!("row {row} (uid {row}): ")) && l.contains(expected)),
            "row {row} should say {expected:?}: {err}"
        );
    }
    assert!(!err.contains("secret"), "no token in messages: {err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let out = with_db(&url, &["miners", "list"]);
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "only the header: {}",
        stdout(&out)
    );

    // the good rows alone are imported
    let file = write_miners(
        dir.path(),
        &[
            (
                1,
                ALICE,
                "https://m1.example/forecasts/{run_id}.zarr",
                "tok-1",
            ),
            (3, BOB, "https://m3.example/f.zarr", "tok-3"),
        ],
    );
    let out = with_db(&url, &["miners", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = with_db(&url, &["miners", "list"]);
    let listed = stdout(&out);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(listed.contains(ALICE) && listed.contains(BOB), "{listed}");
    assert!(
        !listed.contains("tok-"),
        "tokens are never listed: {listed}"
    );
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    // more than a pipe buffer of output, so that the writer meets the closed pipe
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = Db::open_existing(&url).await.unwrap();
        let long_path = "p".repeat(400);
        let records: Vec<wx_store::MinerRecord> = (0..=255)
            .map(|uid| wx_store::MinerRecord {
                uid,
                hotkey: format!("hotkey-{uid}"),
                store_url: format!("https://miner-{uid}.example/{long_path}/{{run_id}}.zarr"),
                access_token: format!("token-{uid}"),
            })
            .collect();
        db.miners()
            .import(&records, chrono::Utc::now())
            .await
            .unwrap();
    });
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#""$0" --database-url "$1" miners list | head -1; echo "wx-validator exit ${PIPESTATUS[0]}" >&2"#)
        .arg(BIN)
        .arg(&url)
        .env_remove("WX_CONFIG")
        .env_remove("WX_DATABASE_URL")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(err.contains("wx-validator exit 0"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
}

#[test]
fn weights_print_u16_values_summing_to_65535_for_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    let out = with_db(&url, &["weights"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no subnet snapshot yet"),
        "{}",
        stderr(&out)
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = Db::open_existing(&url).await.unwrap();
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        for (taken, runs, weights) in [
            (at(1), "[1]", r#"{"1": 0.25, "2": 0.75}"#),
            (at(2), "[1]", r#"{"1": 0.5, "2": 0.5, "7": 0.0}"#),
            (at(3), "[1, 2]", r#"{"1": 1.0, "2": 1.0, "3": 2.0}"#),
        ] {
            db.snapshots()
                .insert(&wx_model::rows::NewSnapshot {
                    taken_at: taken,
                    lookback_days: 15,
                    runs_covered: runs.into(),
                    scores: "{}".into(),
                    weights: weights.into(),
                    note: None,
                })
                .await
                .unwrap();
        }
    });
    let out = with_db(&url, &["weights"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["run_id"], 2);
    assert_eq!(json["snapshot_taken_at"], "2025-01-02T03:00:00Z");
    assert_eq!(json["uids"], serde_json::json!([1, 2, 3]));
    assert_eq!(json["weights"], serde_json::json!([16384, 16384, 32767]));
    assert!(json["version_key"].as_u64().is_some());

    // the weights as they stood while run 1 was the latest: its newest snapshot; uid 7 (0) out
    let out = with_db(
        &url,
        &[
            "weights",
            "--run-id",
            "1",
            "--format",
            "csv",
            "--version-key",
            "4242",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "uid,weight,run_id,snapshot_id,snapshot_taken_at,version_key\n\
         1,32768,1,2,2025-01-02T02:00:00Z,4242\n\
         2,32767,1,2,2025-01-02T02:00:00Z,4242\n"
    );
    let out = with_db(&url, &["weights", "--run-id", "9"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn logs_are_json_on_request_and_never_coloured_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = Db::open_existing(&url).await.unwrap();
        let init = "2025-01-01T00:00:00Z".parse().unwrap();
        db.runs()
            .create_or_get(init, true, "{}", chrono::Utc::now())
            .await
            .unwrap();
    });
    // the report logs a warning when it has no data access (here: no usable cache directory)
    let report = |extra: &[&str]| {
        let out_dir = dir.path().join("report");
        let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
        let status = wx()
            .args(["--database-url", &url])
            .args(extra)
            .args(["report", "--out", out_dir.to_str().unwrap()])
            .env("WX_CACHE_DIR", "/dev/null/no-cache")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .status()
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
        assert!(status.success(), "{text}");
        assert!(
            text.contains("no data access"),
            "the warning is logged: {text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "no ANSI escape in a log file: {text}"
        );
        text
    };
    let text = report(&[]);
    assert!(text.contains("WARN"), "{text}");
    // --log-json as a flag, WX_LOG_JSON from the environment
    let text = report(&["--log-json"]);
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

/// The registry's lifecycle as an operator drives it (docs/operating.md, "The miner
/// registry"): add, change of hotkey (reported, listed with the hotkey it replaced), remove
/// (twice: the second is refused), re-add; and `prune --dry-run` deletes nothing.
async fn the_registry_lifecycle_through_the_cli(t: wx_store::testing::TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let url = t.url().to_owned();
    let import = |rows: &[(i64, &str, &str, &str)]| {
        let file = write_miners(dir.path(), rows);
        let out = with_db(&url, &["miners", "import", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let added = import(&[(7, ALICE, "https://m7.example/f.zarr", "tok-7")]);
    assert!(added.contains("(1 new)"), "{added}");
    let changed = import(&[(7, BOB, "https://m7.example/f.zarr", "tok-7")]);
    assert!(
        changed.contains(&format!("uid 7: hotkey changed from {ALICE} to {BOB}"))
            && changed.contains("new miner"),
        "{changed}"
    );
    let listed = stdout(&with_db(&url, &["miners", "list"]));
    let row = listed
        .lines()
        .find(|l| l.trim_start().starts_with("7 "))
        .unwrap_or_else(|| panic!("uid 7 is listed: {listed}"));
    assert!(
        row.contains(BOB) && row.contains(ALICE),
        "the hotkey and the one it replaced: {row}"
    );
    assert!(listed.contains("previous_hotkey"), "{listed}");

    let out = with_db(&url, &["miners", "remove", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed uid 7"), "{}", stdout(&out));
    let out = with_db(&url, &["miners", "remove", "7"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("not registered"), "{}", stderr(&out));
    let listed = stdout(&with_db(&url, &["miners", "list"]));
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");

    let readded = import(&[(7, BOB, "https://m7.example/f.zarr", "tok-7")]);
    assert!(readded.contains("(1 new)"), "{readded}");
    let events: Vec<String> =
        t.db.miners()
            .events(Some(7), 10)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| e.event)
            .collect();
    assert_eq!(events, ["added", "hotkey_changed", "removed", "added"]);

    let out = with_db(&url, &["prune", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would delete 0 score rows"),
        "{}",
        stdout(&out)
    );
}

wx_store::backend_tests!(the_registry_lifecycle_through_the_cli);
