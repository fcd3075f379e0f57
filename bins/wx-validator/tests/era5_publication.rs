//! ERA5 as it is really published, end to end on both backends: the simulated world's ERA5
//! store in the public layout (padded axis, root attributes, no chunk after the ERA5T stop)
//! published day by day on a schedule that follows the daemon's clock, stalled and resumed;
//! and a lead whose truth never comes, given up on for every miner alike.

use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::rows::{StatsRow, StepRow};
use wx_model::score_type;
use wx_model::{Clock, ForecastStatus, RunId, StepStatus, SystemClock};
use wx_sim::{Behaviour, Era5Publication, Era5Schedule, WorldSpec};
use wx_steps::ValidatorConfig;
use wx_store::testing::TestDb;
use wx_store::{Db, backend_tests};
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::{Simulation, wait_for_completion, wait_for_final_snapshot};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A small world whose ERA5 is published through `published_through` (the init is
/// 2025-01-01T00Z; ERA5 leads 24 and 48 h are valid on 2025-01-02 and 2025-01-03).
fn progressive(miners: usize, published_through: &str) -> WorldSpec {
    WorldSpec {
        era5_publication: Era5Publication::Progressive {
            published_through: day(published_through),
            padding_days: 2,
        },
        ..WorldSpec::small(miners)
    }
}

/// The uids of the skilled miners (they reach ERA5 and complete).
fn skilled(sim: &Simulation) -> Vec<i32> {
    sim.network
        .endpoints()
        .iter()
        .filter(|m| matches!(m.behaviour, Behaviour::Skilled { .. }))
        .map(|m| i32::from(m.uid))
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`.
async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latest_run(db: &Db) -> Option<RunId> {
    db.runs().latest().await.unwrap().map(|r| RunId(r.id))
}

/// The step rows of `uid` with this step/substep.
fn step<'a>(steps: &'a [StepRow], uid: i32, name: &str, substep: &str) -> Option<&'a StepRow> {
    steps
        .iter()
        .find(|s| s.miner_uid == uid && s.step_name == name && s.substep == substep)
}

fn stats_of(stats: &[StatsRow], uid: i32) -> &StatsRow {
    stats.iter().find(|s| s.miner_uid == uid).unwrap()
}

/// Every score of a run, by key, as bits.
type ScoreMap = BTreeMap<(i32, String, String, i32, i32), (Option<u64>, Option<String>)>;

async fn score_map(db: &Db, run: RunId) -> ScoreMap {
    db.scores()
        .list_run(run)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                (s.miner_uid, s.score_type, s.variable, s.level, s.lead_hours),
                (s.score.map(f64::to_bits), s.error_message),
            )
        })
        .collect()
}

/// The per-miner aggregates of a run, as bits.
async fn aggregates(db: &Db, run: RunId) -> BTreeMap<i32, [Option<u64>; 3]> {
    db.stats()
        .list(run)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.miner_uid,
                [
                    s.era5_combined_score.map(f64::to_bits),
                    s.era5_completeness.map(f64::to_bits),
                    s.overall_forecast_score.map(f64::to_bits),
                ],
            )
        })
        .collect()
}

/// Starts the daemon on `db` with `clock`.
fn start_daemon(
    config: &ValidatorConfig,
    db: &Db,
    clock: Arc<dyn Clock>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<wx_scheduler::RunSummary>>,
) {
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config.clone(),
        DaemonParts {
            db: Some(db.clone()),
            clock,
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    (stop, daemon)
}

/// Asserts that the skilled miners' ERA5 steps wait (no attempt consumed, nothing failed)
/// with nothing scored for `lead`. A re-check holds the step for a moment every second: the
/// rows are read when none is in one.
async fn assert_waiting(db: &Db, run: RunId, uids: &[i32], lead: i32) {
    let steps = wait_until(
        "no re-check in progress",
        Duration::from_secs(10),
        || async {
            let steps = db.steps().list_run(run).await.unwrap();
            uids.iter()
                .all(|uid| {
                    step(&steps, *uid, "era5", "score")
                        .is_some_and(|s| s.status().unwrap() != StepStatus::InProgress)
                })
                .then_some(steps)
        },
    )
    .await;
    let scores = db.scores().list_run(run).await.unwrap();
    for uid in uids {
        let era5 = step(&steps, *uid, "era5", "score").unwrap();
        assert_eq!(
            era5.status().unwrap(),
            StepStatus::Waiting,
            "miner {uid}: {era5:?}"
        );
        assert_eq!(era5.attempt, 0, "waiting consumes no attempt: {era5:?}");
        assert!(era5.claim_token.is_none(), "a waiting step holds no worker");
        assert!(era5.error_json.is_none(), "{era5:?}");
        assert!(
            !scores
                .iter()
                .any(|s| s.miner_uid == *uid && s.lead_hours == lead),
            "miner {uid}: nothing of lead {lead} is stored before its truth (no zero score)"
        );
    }
}

/// ERA5 appears day by day (the schedule follows the daemon's clock): every lead waits while
/// unpublished, is scored when its day appears (`era5_partial` in between), a stall keeps the
/// next lead waiting without attempts or failures, and the final scores are bit-identical to
/// the same world scored with its ERA5 published all at once.
async fn era5_published_day_by_day_with_a_stall_matches_all_at_once(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(progressive(5, "2025-01-01"), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let uids = skilled(&sim);
    assert!(uids.len() >= 3);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let publisher = Arc::new(sim.world.era5_publisher().unwrap());
    let follow = publisher.follow(
        clock.clone(),
        Era5Schedule {
            first_day: day("2025-01-02"),
            every: chrono::TimeDelta::seconds(5),
        },
        Duration::from_millis(50),
        true, // stalled until every miner waits
    );
    let (stop, daemon) = start_daemon(&sim.config, &t.db, clock);
    let long = Duration::from_secs(180);

    // 1. due by the clock (test mode: at once), not published: every skilled miner waits
    let run = wait_until("a run exists", long, || latest_run(&t.db)).await;
    wait_until("every skilled miner waits for ERA5", long, || async {
        let steps = t.db.steps().list_run(run).await.unwrap();
        uids.iter()
            .all(|uid| {
                let waiting = step(&steps, *uid, "era5", "score")
                    .is_some_and(|s| s.status().unwrap() == StepStatus::Waiting);
                let looked = step(&steps, *uid, "era5", "load_truth").is_some_and(|s| {
                    s.context
                        .as_deref()
                        .is_some_and(|c| c.contains("\"not_yet_published\":[24,48]"))
                });
                waiting && looked
            })
            .then_some(())
    })
    .await;
    assert_waiting(&t.db, run, &uids, 24).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // several re-checks (1 s in test mode)
    assert_waiting(&t.db, run, &uids, 24).await;

    // 2. the day of lead 24 appears: lead 24 is scored, lead 48 waits (era5_partial)
    follow.resume();
    wait_until("ERA5 of 2025-01-02 is published", long, || async {
        (publisher.published_through() >= day("2025-01-02")).then_some(())
    })
    .await;
    follow.stall(); // ERA5 stalls after its first day
    assert_eq!(publisher.published_through(), day("2025-01-02"));
    wait_until(
        "lead 24 is scored for every skilled miner",
        long,
        || async {
            let stats = t.db.stats().list(run).await.unwrap();
            uids.iter()
                .all(|uid| {
                    let s = stats_of(&stats, *uid);
                    s.status().unwrap() == ForecastStatus::Era5Partial
                        && s.era5_score_24h.is_some()
                        && s.era5_score_48h.is_none()
                })
                .then_some(())
        },
    )
    .await;

    // 3. stalled past lead 48's ready time: it waits; nothing is scored 0, nothing fails
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_waiting(&t.db, run, &uids, 48).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_waiting(&t.db, run, &uids, 48).await;
    let stats = t.db.stats().list(run).await.unwrap();
    for uid in &uids {
        let s = stats_of(&stats, *uid);
        assert_eq!(s.status().unwrap(), ForecastStatus::Era5Partial);
        assert_eq!(s.era5_completeness, Some(0.5), "{s:?}");
        assert!(s.forecast_error_msg.is_none(), "{s:?}");
    }

    // 4. ERA5 resumes: lead 48 is scored and the run completes
    follow.resume();
    let done = wait_for_completion(&t.db, Some(run), long).await.unwrap();
    wait_for_final_snapshot(&t.db, done, Duration::from_secs(60))
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();
    follow.shutdown().await.unwrap();
    assert_eq!(publisher.published_through(), day("2025-01-03"));
    let steps = t.db.steps().list_run(run).await.unwrap();
    let stats = t.db.stats().list(run).await.unwrap();
    let scores = t.db.scores().list_run(run).await.unwrap();
    for uid in &uids {
        let era5 = step(&steps, *uid, "era5", "score").unwrap();
        assert_eq!(era5.status().unwrap(), StepStatus::Succeeded);
        assert_eq!(era5.attempt, 0, "all that waiting consumed no attempt");
        let s = stats_of(&stats, *uid);
        assert_eq!(s.status().unwrap(), ForecastStatus::Completed);
        assert_eq!(s.era5_completeness, Some(1.0));
        for lead in [24, 48] {
            let l = scores
                .iter()
                .find(|r| {
                    r.miner_uid == *uid
                        && r.score_type == score_type::ERA5_LEAD_SCORE
                        && r.lead_hours == lead
                })
                .and_then(|r| r.score)
                .unwrap();
            assert!(l > 0.0, "miner {uid} lead {lead}: {l}");
        }
    }
    assert!(
        t.db.unavailable_leads()
            .list(run, wx_store::ERA5_SOURCE)
            .await
            .unwrap()
            .is_empty()
    );
    let day_by_day = score_map(&t.db, run).await;
    let day_by_day_stats = aggregates(&t.db, run).await;

    // 5. the same world, its ERA5 all there from the start, on a fresh database and cache
    let fresh = if t.url().starts_with("postgres") {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    };
    sim.import_miners(&fresh.db).await.unwrap();
    let mut config = sim.config.clone();
    config.cache_dir = dir.path().join("cache-all-at-once");
    let (stop, daemon) = start_daemon(&config, &fresh.db, Arc::new(SystemClock));
    let run2 = wait_for_completion(&fresh.db, None, long).await.unwrap();
    wait_for_final_snapshot(&fresh.db, run2, Duration::from_secs(60))
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();
    let steps2 = fresh.db.steps().list_run(run2).await.unwrap();
    for uid in &uids {
        let load = step(&steps2, *uid, "era5", "load_truth").unwrap();
        assert!(
            load.context
                .as_deref()
                .is_some_and(|c| c.contains("\"ready\":[24,48]")),
            "all at once: both leads ready at the first look: {load:?}"
        );
    }
    assert!(day_by_day.len() > 5 * 20, "{} scores", day_by_day.len());
    assert_eq!(
        score_map(&fresh.db, run2).await,
        day_by_day,
        "publication order changes no score"
    );
    assert_eq!(aggregates(&fresh.db, run2).await, day_by_day_stats);
    sim.shutdown().await;
}

/// ERA5 never publishes lead 48: after `era5_give_up` it is recorded unavailable once for the
/// run, and every miner's E and completeness leave it out alike; nothing is scored 0 or
/// failed for it.
async fn a_lead_never_published_is_given_up_alike_for_every_miner(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // lead 24 (2025-01-02) published, lead 48 (2025-01-03) never
    let sim = Simulation::start(progressive(4, "2025-01-02"), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let uids = skilled(&sim);
    let mut config = sim.config.clone();
    config.pipeline.test_era5_give_up_seconds = 8;
    let (stop, daemon) = start_daemon(&config, &t.db, Arc::new(SystemClock));
    let run = wait_for_completion(&t.db, None, Duration::from_secs(180))
        .await
        .unwrap();
    wait_for_final_snapshot(&t.db, run, Duration::from_secs(60))
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();

    let run_row = t.db.runs().get(run).await.unwrap().unwrap();
    let unavailable =
        t.db.unavailable_leads()
            .list(run, wx_store::ERA5_SOURCE)
            .await
            .unwrap();
    assert_eq!(
        unavailable.iter().map(|u| u.lead_hours).collect::<Vec<_>>(),
        vec![48],
        "one run-level record, whichever miner saw it first"
    );
    let record = &unavailable[0];
    assert!(record.reason.contains("still unpublished"), "{record:?}");
    assert_eq!(
        record.published_until.map(|t| t.and_utc().to_rfc3339()),
        Some("2025-01-02T23:59:59+00:00".to_owned())
    );
    assert!(
        record.recorded_at >= run_row.run_initiation_time + chrono::TimeDelta::seconds(8),
        "given up only after test_era5_give_up_seconds: {record:?}"
    );
    let stats = t.db.stats().list(run).await.unwrap();
    let scores = t.db.scores().list_run(run).await.unwrap();
    let steps = t.db.steps().list_run(run).await.unwrap();
    assert!(uids.len() >= 3);
    for uid in &uids {
        let s = stats_of(&stats, *uid);
        assert_eq!(s.status().unwrap(), ForecastStatus::Completed, "{s:?}");
        assert_eq!(
            s.era5_completeness,
            Some(1.0),
            "1 of 1 available lead: {s:?}"
        );
        let lead24 = scores
            .iter()
            .find(|r| {
                r.miner_uid == *uid
                    && r.score_type == score_type::ERA5_LEAD_SCORE
                    && r.lead_hours == 24
            })
            .and_then(|r| r.score)
            .unwrap();
        assert_eq!(
            s.era5_combined_score.map(f64::to_bits),
            Some(lead24.to_bits()),
            "E over the available lead only"
        );
        assert!(s.era5_score_48h.is_none());
        assert!(
            !scores
                .iter()
                .any(|r| r.miner_uid == *uid && r.lead_hours == 48),
            "nothing stored for the unavailable lead"
        );
        let era5 = step(&steps, *uid, "era5", "score").unwrap();
        assert_eq!(era5.status().unwrap(), StepStatus::Succeeded);
        assert_eq!(era5.attempt, 0, "{era5:?}");
        assert!(s.forecast_error_msg.is_none(), "{s:?}");
    }

    // `wx-validator status` tells the operator: the lag and the lead given up
    let config_path = dir.path().join("wx.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wx-validator"))
        .arg("--config")
        .arg(&config_path)
        .args(["status", "--json", "--run-id", &run.0.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["era5_unavailable_leads"], serde_json::json!([48]));
    let era5 = &json["era5"];
    assert_eq!(era5["published_until"], "2025-01-02T23:59:59Z");
    assert_eq!(era5["basis"], "valid_time_stop_era5t");
    let lag = era5["lag_hours"].as_f64().unwrap();
    let expected = (chrono::Utc::now()
        - "2025-01-02T23:59:59Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap())
    .num_seconds() as f64
        / 3600.0;
    assert!(
        (lag - expected).abs() < 1.0,
        "lag {lag} h, expected about {expected} h"
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_wx-validator"))
        .arg("--config")
        .arg(&config_path)
        .args(["status", "--run-id", &run.0.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("ERA5 published until 2025-01-02T23:59:59Z (valid_time_stop_era5t)")
            && text.contains("behind")
            && text.contains("lack of ERA5")
            && text.contains("[48]"),
        "{text}"
    );
    sim.shutdown().await;
}

backend_tests!(
    era5_published_day_by_day_with_a_stall_matches_all_at_once,
    a_lead_never_published_is_given_up_alike_for_every_miner
);
