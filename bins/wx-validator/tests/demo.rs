//! The demo on its smallest settings, in process and as the real binary: the run completes, the
//! GFS clone is clamped, the tampered miner is stopped and weighted 0, and the report's files are
//! valid PNGs and a valid HTML page. Then `wx-validator report` on the kept database after the
//! miners are gone: the report is still written, the error maps replaced by notes.

use scraper::{Html, Selector};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use wx_model::score_type;
use wx_model::{ForecastStatus, RunStatus};
use wx_sim::Behaviour;
use wx_store::Db;
use wx_validator::demo::{DemoOptions, run};

const BIN: &str = env!("CARGO_BIN_EXE_wx-validator");

fn smallest(dir: &Path) -> DemoOptions {
    DemoOptions {
        miners: 8,
        resolution_deg: 10.0,
        days: 2,
        keep: Some(dir.join("work")),
        out: Some(dir.join("report")),
        timeout: Duration::from_secs(180),
        progress: false,
        ..DemoOptions::default()
    }
}

/// Decodes a PNG; returns its size. Fails on anything but a complete, valid PNG.
fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(file)
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (info.width, info.height)
}

/// Parses the page; checks the leaderboard has `miners` rows and every image exists and
/// decodes. Returns the image sources and the notes.
fn check_page(dir: &Path, miners: usize) -> (Vec<String>, Vec<String>) {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let rows = doc.select(&sel("table#leaderboard tbody tr")).count();
    assert_eq!(rows, miners, "one leaderboard row per miner");
    let header: Vec<String> = doc
        .select(&sel("table#leaderboard thead th"))
        .map(|h| h.text().collect())
        .collect();
    for row in doc.select(&sel("table#leaderboard tbody tr")) {
        assert_eq!(row.select(&sel("td")).count(), header.len());
    }
    let mut srcs = Vec::new();
    for img in doc.select(&sel("img")) {
        let src = img.value().attr("src").expect("img has a src").to_owned();
        let path = dir.join(&src);
        let (w, h) = png_size(&path);
        assert_eq!(
            (Some(w.to_string().as_str()), Some(h.to_string().as_str())),
            (img.value().attr("width"), img.value().attr("height")),
            "{src}: the page states the PNG's size"
        );
        assert!(w >= 800 && h >= 400, "{src}: {w}×{h}");
        srcs.push(src);
    }
    let notes = doc
        .select(&sel("p.note"))
        .map(|n| n.text().collect())
        .collect();
    (srcs, notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_completes_and_reports_on_its_smallest_settings() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let outcome = run(smallest(dir.path())).await.unwrap();
    eprintln!(
        "demo took {:.1} s: {:?}",
        started.elapsed().as_secs_f64(),
        outcome.timings
    );
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(outcome.behaviours.len(), 8);

    let db = Db::open(&outcome.database_url).await.unwrap();
    let stats = db.stats().list(outcome.run).await.unwrap();
    assert_eq!(stats.len(), 8);
    let scores = db.scores().list_run(outcome.run).await.unwrap();
    let snapshot = db.snapshots().latest().await.unwrap().expect("a snapshot");
    let weights: std::collections::BTreeMap<String, f64> =
        serde_json::from_str(&snapshot.weights).unwrap();
    let min_weight = weights.values().copied().fold(f64::MAX, f64::min);
    let of = |name: &str| {
        let uid = *outcome
            .behaviours
            .iter()
            .find(|(_, b)| b.name() == name)
            .unwrap_or_else(|| panic!("the mix has a {name}"))
            .0;
        stats.iter().find(|s| s.miner_uid == uid).unwrap()
    };

    let clone = of("gfs_clone");
    assert!(
        clone.forecast_score_initial.unwrap() <= 0.05 + 1e-12,
        "the GFS clone is clamped: {clone:?}"
    );
    let tampered = of("tampered");
    assert!(
        matches!(
            tampered.status().unwrap(),
            ForecastStatus::VerifyFailed | ForecastStatus::Failed
        ),
        "{tampered:?}"
    );
    assert!(tampered.era5_combined_score.is_none());
    assert!(
        !scores
            .iter()
            .any(|s| s.miner_uid == tampered.miner_uid
                && s.score_type == score_type::ERA5_LEAD_SCORE),
        "no ERA5 score from unverified bytes"
    );
    let w = weights[&tampered.miner_uid.to_string()];
    assert_eq!(w, 0.0, "the tampered miner gets no weight");
    assert_eq!(min_weight, 0.0);
    // skilled miners are all completed and ranked above the clamped clone's Day1
    for s in &stats {
        if matches!(outcome.behaviours[&s.miner_uid], Behaviour::Skilled { .. }) {
            assert_eq!(s.status().unwrap(), ForecastStatus::Completed, "{s:?}");
            assert!(weights[&s.miner_uid.to_string()] > 0.0);
        }
    }

    // the report: every chart, a page a parser reads, the leaderboard in the terminal text
    let report_dir = dir.path().join("report");
    assert!(
        outcome.report.chart_errors.is_empty(),
        "{:?}",
        outcome.report.chart_errors
    );
    let (srcs, notes) = check_page(&report_dir, 8);
    assert_eq!(
        srcs,
        [
            "lead_scores.png",
            "day1_vs_era5.png",
            "error_map_best.png",
            "error_map_worst.png",
            "weights.png"
        ],
        "notes instead: {notes:?}"
    );
    assert_eq!(outcome.report.images.len(), 5);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(outcome.leaderboard.lines().count(), 2 + 8);
    assert!(outcome.leaderboard.contains("gfs clone"));
    assert!(
        Path::new(&outcome.database_url.replace("sqlite://", "")).is_file(),
        "the database is kept"
    );
}

#[test]
fn the_binary_runs_the_demo_then_reports_without_the_miners() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let output = Command::new(BIN)
        .args(["demo", "--miners", "8", "--resolution", "10", "--days", "2"])
        .arg("--keep")
        .arg(&keep)
        .args(["--timeout-secs", "180"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let index = keep.join("report").join("index.html");
    assert!(
        stdout.contains(&format!("report: {}", index.display())),
        "{stdout}"
    );
    assert!(stdout.contains("status completed"), "{stdout}");
    assert!(
        stdout.contains("tampered") && stdout.contains("gfs clone"),
        "{stdout}"
    );
    let (srcs, _) = check_page(&keep.join("report"), 8);
    assert_eq!(srcs.len(), 5);

    // later, with the miners gone: the report is written, the maps become notes
    let url = format!("sqlite://{}", keep.join("wx-demo.sqlite3").display());
    let out = dir.path().join("later");
    let output = Command::new(BIN)
        .args(["--database-url", &url, "report", "--run-id", "1", "--out"])
        .arg(&out)
        .current_dir(dir.path())
        .env("WX_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("report: "), "{stdout}");
    let (srcs, notes) = check_page(&out, 8);
    assert_eq!(
        srcs,
        ["lead_scores.png", "day1_vs_era5.png", "weights.png"],
        "{notes:?}"
    );
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes.iter().all(|n| n.starts_with("No error map:")),
        "{notes:?}"
    );
}
