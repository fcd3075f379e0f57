//! The deployment kit in `deploy/`, checked against the real thing: the example configuration
//! is what `wx-validator config show --defaults` prints, the sample registry imports, the
//! systemd unit passes `systemd-analyze`, the alert rules pass `promtool check rules`, and every
//! metric the alerts and the Grafana dashboard query is exported by a running daemon. Also the
//! LICENSE and the release profile.
//!
//! Missing tools fail the test with what to install; nothing is skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::RunId;
use wx_sim::WorldSpec;
use wx_store::Db;
use wx_store::testing::TestDb;
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::Simulation;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `wx-validator ARGS` with no `WX_*` variable of the test's environment.
fn validator(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wx-validator"));
    cmd.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WX_")) {
        cmd.env_remove(key);
    }
    cmd
}

fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs an external tool; a missing one fails the test with the package to install.
fn tool(program: &str, args: &[&str], install: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("`{program}` cannot run ({e}): install it ({install}); .ci/run does")
        })
}

#[test]
fn the_example_config_is_what_config_show_prints() {
    let committed = read("deploy/wx.example.toml");
    let defaults = succeeded(
        "config show --defaults",
        validator(&["config", "show", "--defaults"])
            .output()
            .unwrap(),
    );
    assert!(
        committed == defaults,
        "deploy/wx.example.toml is stale: run `cargo xtask deploy-config` and commit it.\n\
         --- committed\n{committed}\n--- config show --defaults\n{defaults}"
    );
    // with no file and no environment, the effective configuration is the defaults
    let dir = tempfile::tempdir().unwrap();
    let effective = succeeded(
        "config show",
        validator(&["config", "show"])
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(effective, committed);
}

#[test]
fn the_example_config_loads_back_to_the_defaults() {
    let loaded =
        wx_steps::ValidatorConfig::load(Some(&root().join("deploy/wx.example.toml"))).unwrap();
    assert_eq!(loaded, wx_steps::ValidatorConfig::default());
}

#[test]
fn config_show_layers_file_environment_and_flags_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wx.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://wx:hunter2@db.example:5432/wx?sslmode=require\"\n\
         metrics_addr = \"127.0.0.1:9184\"\n[pipeline.concurrency]\nscoring = 3\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let shown = succeeded(
        "config show --config",
        validator(&["--config", file_arg, "config", "show"])
            .env("WX_DATA__MEMORY_CACHE_MIB", "512")
            .output()
            .unwrap(),
    );
    assert!(!shown.contains("hunter2"), "the password leaked:\n{shown}");
    assert!(
        shown.contains(
            "database_url = \"postgres://wx:REDACTED@db.example:5432/wx?sslmode=require\""
        ),
        "{shown}"
    );
    assert!(
        shown.contains("metrics_addr = \"127.0.0.1:9184\""),
        "{shown}"
    );
    assert!(shown.contains("scoring = 3"), "the file applies:\n{shown}");
    assert!(
        shown.contains("memory_cache_mib = 512"),
        "the environment applies:\n{shown}"
    );
    assert!(
        shown.contains("coverage_floor = 0.9985"),
        "defaults are shown:\n{shown}"
    );
    assert!(
        shown.contains(file_arg) && shown.contains("WX_* environment"),
        "the header names the sources:\n{shown}"
    );
    // the output is a valid configuration that gives the same values back (bar the secret)
    let reread = dir.path().join("shown.toml");
    std::fs::write(&reread, &shown).unwrap();
    let mut expected = wx_steps::ValidatorConfig::load(Some(&file)).unwrap();
    expected.data.memory_cache_mib = 512;
    expected.database_url = "postgres://wx:REDACTED@db.example:5432/wx?sslmode=require".into();
    assert_eq!(
        wx_steps::ValidatorConfig::load(Some(&reread)).unwrap(),
        expected
    );

    // --database-url wins and is redacted too
    let flagged = succeeded(
        "config show --database-url",
        validator(&[
            "--database-url",
            "postgres://ops:s3cr3t@10.0.0.5/wx",
            "config",
            "show",
        ])
        .output()
        .unwrap(),
    );
    assert!(!flagged.contains("s3cr3t"), "{flagged}");
    assert!(
        flagged.contains("postgres://ops:REDACTED@10.0.0.5/wx"),
        "{flagged}"
    );

    // a broken file is an error that names it, not a half-shown configuration
    std::fs::write(&file, "[pipline]\n").unwrap();
    let out = validator(&["--config", file_arg, "config", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pipline"));
}

#[test]
fn the_sample_miners_file_imports() {
    let sample = root().join("deploy/miners.json");
    let records: Vec<serde_json::Value> = serde_json::from_str(&read("deploy/miners.json"))
        .expect("deploy/miners.json is a JSON list");
    assert!(records.len() >= 2);
    for r in &records {
        let hotkey = r["hotkey"].as_str().unwrap();
        wx_data::manifest::ss58_decode(hotkey)
            .unwrap_or_else(|e| panic!("sample hotkey {hotkey} is not valid SS58: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wx.sqlite3").display());
    succeeded(
        "migrate",
        validator(&["--database-url", &url, "migrate"])
            .output()
            .unwrap(),
    );
    let imported = succeeded(
        "miners import",
        validator(&[
            "--database-url",
            &url,
            "miners",
            "import",
            sample.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    assert!(
        imported.contains(&format!("imported {} miners", records.len())),
        "{imported}"
    );
    let listed = succeeded(
        "miners list",
        validator(&["--database-url", &url, "miners", "list"])
            .output()
            .unwrap(),
    );
    for r in &records {
        assert!(listed.contains(r["hotkey"].as_str().unwrap()), "{listed}");
        assert!(
            !listed.contains(r["access_token"].as_str().unwrap()),
            "{listed}"
        );
    }
}

/// `key=value` lines of a unit file's `[Service]` section (repeated keys all kept).
fn service_settings(unit: &str) -> Vec<(String, String)> {
    let mut section = "";
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]"
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            settings.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    settings
}

#[test]
fn the_systemd_unit_is_valid_and_hardened() {
    let unit = read("deploy/wx-validator.service");
    let settings = service_settings(&unit);
    let value = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for (key, expected) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("User", "wx"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(value(key), vec![expected], "{key} in the unit");
    }
    assert!(
        value("ExecStart")[0].ends_with(" run"),
        "{:?}",
        value("ExecStart")
    );
    assert!(value("SystemCallFilter").contains(&"@system-service"));

    // systemd's own checks, on a copy whose ExecStart is the binary just built (verify
    // requires the executable to exist)
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("wx-validator.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/wx-validator",
            env!("CARGO_BIN_EXE_wx-validator"),
        ),
    )
    .unwrap();
    let copy = copy.to_str().unwrap();
    let verify = tool(
        "systemd-analyze",
        &["verify", copy],
        "apt-get install systemd",
    );
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify complains:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // exposure 0 (locked down) … 10 (unprotected); threshold 20 means at most 2.0, "OK"
    let security = tool(
        "systemd-analyze",
        &[
            "security",
            "--offline=true",
            "--threshold=20",
            "--no-pager",
            copy,
        ],
        "apt-get install systemd",
    );
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(
        security.status.success(),
        "the unit's exposure is above 2.0:\n{report}{}",
        String::from_utf8_lossy(&security.stderr)
    );
    assert!(report.contains("Overall exposure level"), "{report}");
}

#[test]
fn the_alert_rules_pass_promtool() {
    let rules = root().join("deploy/prometheus/wx-validator.rules.yml");
    let out = tool(
        "promtool",
        &["check", "rules", rules.to_str().unwrap()],
        "apt-get install prometheus",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

/// The PromQL expressions of the alert rules.
fn alert_expressions() -> Vec<String> {
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&read("deploy/prometheus/wx-validator.rules.yml"))
            .unwrap();
    let mut exprs = Vec::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            exprs.push(rule["expr"].as_str().expect("expr").to_owned());
        }
    }
    exprs
}

/// Every `expr` of the dashboard's panels (nested rows included), and the metric of every
/// `label_values(metric, label)` template query.
fn dashboard_expressions() -> (Vec<String>, Vec<String>) {
    fn walk(v: &serde_json::Value, exprs: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => exprs.push(e.clone()),
                        _ => walk(v, exprs),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/wx-validator-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let mut template_metrics = Vec::new();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let query = var["query"]["query"].as_str().unwrap();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected template query {query}"));
        template_metrics.push(inner.split(',').next().unwrap().trim().to_owned());
    }
    (exprs, template_metrics)
}

/// The metric names an expression selects.
fn selected_metrics(expr: &str) -> BTreeSet<String> {
    struct Names(BTreeSet<String>);
    impl promql_parser::util::ExprVisitor for Names {
        type Error = String;
        fn pre_visit(&mut self, e: &promql_parser::parser::Expr) -> Result<bool, String> {
            use promql_parser::parser::Expr;
            let vs = match e {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            let name = vs
                .name
                .clone()
                .ok_or(format!("a selector without a metric name: {vs}"))?;
            self.0.insert(name);
            Ok(true)
        }
    }
    let ast = promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut names = Names(BTreeSet::new());
    promql_parser::util::walk_expr(&mut names, &ast).unwrap();
    assert!(!names.0.is_empty(), "{expr} selects no metric");
    names.0
}

/// The series names Prometheus ingests from an exposition: every sample's name, plus the
/// names a declared family has before its first sample (a labelled family with no child yet,
/// e.g. no pair has failed), by its `# TYPE`.
fn exported_series_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (family, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_count", "_sum"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Waits until the latest run has a stats row per miner and every one is terminal.
async fn every_miner_done(db: &Db, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(run) = db.runs().latest().await.unwrap() {
            let stats = db.stats().list(RunId(run.id)).await.unwrap();
            if !stats.is_empty()
                && stats
                    .iter()
                    .all(|s| s.status().is_ok_and(|st| st.is_terminal()))
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the miners were not done within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_query_only_metrics_the_daemon_exports() {
    let (panel_exprs, template_metrics) = dashboard_expressions();
    let alert_exprs = alert_expressions();
    assert!(panel_exprs.len() >= 10, "{panel_exprs:?}");
    let mut queried: BTreeSet<String> = template_metrics.into_iter().collect();
    for e in panel_exprs.iter().chain(&alert_exprs) {
        queried.extend(selected_metrics(e));
    }
    // `up` is made by Prometheus itself for every scrape target
    queried.remove("up");

    // a real daemon after a small run, so that labelled families have samples
    let t = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(WorldSpec::small(2), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut config = sim.config.clone();
    config.metrics_addr = Some(addr.clone());
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config,
        DaemonParts {
            db: Some(t.db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    every_miner_done(&t.db, Duration::from_secs(180)).await;
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();
    sim.shutdown().await;

    let exported = exported_series_names(&text);
    let missing: Vec<&String> = queried.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "queried but not in /metrics: {missing:?}\nexported: {exported:?}"
    );
    for family in [
        "wx_build_info",
        "wx_scheduler_claims_ok",
        "wx_steps",
        "wx_scheduler_step_duration_seconds_bucket",
    ] {
        assert!(queried.contains(family), "nothing queries {family}");
    }
}

#[test]
fn the_license_file_matches_cargo_toml() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    assert_eq!(
        manifest["workspace"]["package"]["license"].as_str(),
        Some("Apache-2.0")
    );
    let license = read("LICENSE");
    assert!(
        license.trim_start().starts_with("Apache License"),
        "LICENSE"
    );
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

#[test]
fn the_release_profile_strips_debug_info_and_profiling_keeps_it() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let profile = &manifest["profile"];
    let release = &profile["release"];
    assert!(
        matches!(release.get("debug"), Some(toml::Value::Boolean(false))),
        "release: debug = false"
    );
    assert!(
        matches!(
            release.get("strip").and_then(|s| s.as_str()),
            Some("debuginfo" | "symbols")
        ),
        "release strips debug info"
    );
    let profiling = &profile["profiling"];
    assert_eq!(profiling["inherits"].as_str(), Some("release"));
    assert_eq!(profiling["debug"].as_str(), Some("line-tables-only"));
    assert_eq!(profiling["strip"].as_str(), Some("none"));
}
