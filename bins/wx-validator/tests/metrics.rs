//! The operator endpoints of a running daemon, on both backends: a small simulated run, then
//! `/metrics` scraped with a real HTTP client and parsed (prometheus-parse, plus a strict check
//! of the OpenMetrics text structure), and `/healthz`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::RunId;
use wx_sim::WorldSpec;
use wx_store::Db;
use wx_store::backend_tests;
use wx_store::testing::TestDb;
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::Simulation;

/// Waits until the first run has a stats row per miner and every one is terminal (the run's own
/// completion may follow a little later; the metrics do not need it).
async fn every_miner_done(db: &Db, timeout: Duration) -> RunId {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(run) = db.runs().latest().await.unwrap() {
            let stats = db.stats().list(RunId(run.id)).await.unwrap();
            if !stats.is_empty()
                && stats
                    .iter()
                    .all(|s| s.status().is_ok_and(|st| st.is_terminal()))
            {
                return RunId(run.id);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the miners were not done within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks the OpenMetrics text structure line by line and returns the families declared by
/// `# TYPE` lines with their types.
fn check_exposition(text: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad family name in {line:?}");
            match keyword {
                "TYPE" => {
                    let ty = parts.next().unwrap_or("");
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "unknown",
                            "stateset",
                            "gaugehistogram"
                        ]
                        .contains(&ty),
                        "{line:?}"
                    );
                    assert!(
                        families.insert(name.to_owned(), ty.to_owned()).is_none(),
                        "family {name} declared twice"
                    );
                }
                "HELP" | "UNIT" => {}
                other => panic!("unknown descriptor {other:?} in {line:?}"),
            }
            continue;
        }
        // a sample: name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "bad sample name in {line:?}");
        let labels = &series[name.len()..];
        assert!(
            labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
            "{line:?}"
        );
        let family = families
            .keys()
            .filter(|f| name.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {name} precedes its # TYPE"));
        let suffix = &name[family.len()..];
        let allowed: &[&str] = match families[family].as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            _ => &[""],
        };
        assert!(
            allowed.contains(&suffix),
            "{name} does not belong to {family}"
        );
    }
    families
}

async fn metrics_and_health(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(WorldSpec::small(4), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
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
    let run = every_miner_done(&t.db, Duration::from_secs(180)).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    // the dispatcher counts an attempt just after its completion is stored: poll briefly
    let mut tries = 0;
    let (content_type, text) = loop {
        let response = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        tries += 1;
        if text
            .contains(r#"wx_scheduler_steps_finished_total{kind="era5/score",outcome="succeeded"}"#)
            || tries >= 50
        {
            break (content_type, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let families = check_exposition(&text);
    for (family, ty) in [
        ("wx_scheduler_steps_claimed", "counter"),
        ("wx_scheduler_steps_finished", "counter"),
        ("wx_scheduler_step_duration_seconds", "histogram"),
        ("wx_scheduler_steps_in_flight", "gauge"),
        ("wx_scheduler_leases_rescued", "counter"),
        ("wx_scheduler_db_errors", "counter"),
        ("wx_pipeline_miner_bytes_verified", "counter"),
        ("wx_pipeline_scoring_seconds", "histogram"),
        ("wx_pipeline_pairs_scored", "counter"),
        ("wx_pipeline_era5_lag_hours", "gauge"),
        ("wx_pipeline_era5_published_until_seconds", "gauge"),
        ("wx_pipeline_era5_leads_given_up", "counter"),
        ("wx_steps", "gauge"),
    ] {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(ty),
            "family {family} in:\n{text}"
        );
    }

    // the same text through a Prometheus parser
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let names: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    assert!(
        names.contains("wx_scheduler_steps_claimed_total"),
        "{names:?}"
    );
    assert!(
        value(
            "wx_scheduler_steps_claimed_total",
            &[("kind", "verify/open_store")]
        ) >= 4.0
    );
    assert!(
        value(
            "wx_scheduler_steps_finished_total",
            &[("kind", "era5/score"), ("outcome", "succeeded")]
        ) >= 1.0
    );
    assert!(value("wx_pipeline_pairs_scored_total", &[("phase", "era5")]) >= 1.0);
    assert!(value("wx_pipeline_miner_bytes_verified_total", &[]) > 0.0);
    // the world's ERA5 has no publication attributes: its axis ends at the last lead, and the
    // lag is measured from there to what the (test-mode, zero) delay expects by now
    let last_valid = sim.world.valid_time(sim.world.spec.max_lead());
    assert_eq!(
        value("wx_pipeline_era5_published_until_seconds", &[]),
        last_valid.timestamp() as f64
    );
    let lag = value("wx_pipeline_era5_lag_hours", &[]);
    let expected = (chrono::Utc::now() - last_valid).num_seconds() as f64 / 3600.0;
    assert!(
        (lag - expected).abs() < 1.0,
        "lag {lag} h, expected about {expected} h"
    );
    assert_eq!(value("wx_pipeline_era5_leads_given_up_total", &[]), 0.0);
    // the database-derived gauge agrees with the step table of the run
    let counts = t.db.steps().counts(Some(run)).await.unwrap();
    let verified = counts.0["verify/open_store"]
        .get("succeeded")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        value(
            "wx_steps",
            &[("kind", "verify/open_store"), ("status", "succeeded")]
        ),
        verified as f64
    );
    assert!(
        scrape
            .docs
            .get("wx_scheduler_steps_claimed")
            .is_some_and(|d| d.contains("claimed")),
        "HELP text parsed: {:?}",
        scrape.docs
    );

    stop.cancel();
    daemon.await.unwrap().unwrap();
    // the endpoints stop with the daemon (a new client: no pooled connection)
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(
        fresh
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    sim.shutdown().await;
}

backend_tests!(metrics_and_health);
