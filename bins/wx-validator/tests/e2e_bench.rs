//! The end-to-end benchmark's code path (`cargo xtask bench e2e`) on a tiny world, so that a
//! change that breaks it shows in the test suite; the real 0.25° figures come only from
//! `cargo xtask bench e2e`.

use std::time::Duration;
use wx_validator::e2e_bench::{E2eOptions, measure};

#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_runs_end_to_end_on_a_tiny_world() {
    let dir = tempfile::tempdir().unwrap();
    let options = E2eOptions {
        resolution_deg: 10.0,
        miners: 3,
        validator: env!("CARGO_BIN_EXE_wx-validator").into(),
        work: dir.path().join("bench"),
        seed: 7,
        run_timeout: Duration::from_secs(120),
        daemon_verbose: 0,
        repeats: 2,
    };
    let report = measure(&options).await.unwrap();

    // 2 rounds of the 2 × 2 design (1 and 3 miners × 1 and 2 leads), the second round's order
    // rotated by one corner, then 3 × 2 on one scoring permit
    let plans: Vec<_> = report
        .runs
        .iter()
        .map(|r| (r.plan.miners, r.plan.leads, r.plan.scoring_permits))
        .collect();
    assert_eq!(
        plans,
        vec![
            (1, 1, 2),
            (1, 2, 2),
            (3, 1, 2),
            (3, 2, 2),
            (1, 2, 2),
            (3, 1, 2),
            (3, 2, 2),
            (1, 1, 2),
            (3, 2, 1)
        ]
    );
    for r in &report.runs {
        assert!(r.wall > Duration::ZERO, "{r:?}");
        assert!(r.cpu > Duration::ZERO, "{r:?}");
        assert!(r.peak_rss > 1 << 20, "{r:?}");
        assert!(r.day1_step_median > Duration::ZERO, "{r:?}");
        assert!(r.era5_step_per_lead_median > Duration::ZERO, "{r:?}");
    }
    // the fit reproduces every corner's median (of two runs: their mean)
    for r in report.runs.iter().filter(|r| r.plan.scoring_permits == 2) {
        let predicted = report.wall.predict(r.plan.miners, r.plan.leads);
        let twins: Vec<f64> = report
            .runs
            .iter()
            .filter(|o| o.plan == r.plan)
            .map(|o| o.wall.as_secs_f64())
            .collect();
        assert_eq!(twins.len(), 2, "{r:?}");
        let mean = (twins[0] + twins[1]) / 2.0;
        assert!(
            (predicted - mean).abs() < 1e-6,
            "{r:?}: {predicted} vs {mean}"
        );
    }
    assert!(report.full_run_seconds().is_finite());
    // the full run is never extrapolated below its CPU time spread over every core
    assert!(report.cores >= 1);
    assert!(report.full_run_seconds() >= report.cpu_floor_seconds());
    assert!(report.full_run_seconds() >= report.wall.predict(255, 10));
    let (one, two) = report.peak_rss_by_permits().unwrap();
    assert!(one > 0 && two > 0);
    let text = report.to_string();
    println!("{text}");
    for figure in [
        "per miner-lead",
        "per lead",
        "per miner",
        "255 miners × 10 leads",
        "peak RSS",
        "(targets are for 0.25°)",
        "2 run(s)",
        "spread over this machine's",
    ] {
        assert!(text.contains(figure), "{figure} missing from:\n{text}");
    }
}
