//! A full test-mode run, end to end, on both backends: a simulated world and 12 miners served
//! over HTTP on 127.0.0.1 (skilled miners of different skill, a GFS clone, an offline miner, a
//! flaky one, a tampered store, NaN injection, missing variables, a climatology forecaster),
//! the real daemon (scheduler + pipeline), and assertions on the final database.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::score_type;
use wx_model::{ForecastStatus, MinerUid, RunId, StepKind, StepStatus};
use wx_sim::{Behaviour, WorldSpec};
use wx_store::backend_tests;
use wx_store::testing::TestDb;
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::{Simulation, wait_for_completion, wait_for_final_snapshot};

fn behaviour_of(sim: &Simulation, uid: i32) -> Behaviour {
    sim.network
        .endpoints()
        .iter()
        .find(|m| i32::from(m.uid) == uid)
        .expect("a simulated miner")
        .behaviour
        .clone()
}

async fn full_run(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(WorldSpec::small(12), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let mut config = sim.config.clone();
    config.metrics_addr = Some("127.0.0.1:0".into());
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config,
        DaemonParts {
            db: Some(t.db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    let run = wait_for_completion(&t.db, None, Duration::from_secs(240))
        .await
        .unwrap();
    let snap = wait_for_final_snapshot(&t.db, run, Duration::from_secs(30))
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();

    let stats = t.db.stats().list(run).await.unwrap();
    assert_eq!(stats.len(), 12, "one stats row per miner");
    let scores = t.db.scores().list_run(run).await.unwrap();
    let lead_score = |uid: i32, lead: i32| {
        scores
            .iter()
            .find(|s| {
                s.miner_uid == uid
                    && s.score_type == score_type::ERA5_LEAD_SCORE
                    && s.lead_hours == lead
            })
            .and_then(|s| s.score)
    };
    let mut skilled: Vec<(f64, f64)> = Vec::new();
    for s in &stats {
        let status = s.status().unwrap();
        let b = behaviour_of(&sim, s.miner_uid);
        match &b {
            Behaviour::Skilled { error_scale } => {
                assert_eq!(
                    status,
                    ForecastStatus::Completed,
                    "skilled miner {} ({b:?})",
                    s.miner_uid
                );
                assert_eq!(s.era5_completeness, Some(1.0));
                assert!(s.overall_forecast_score.unwrap() > 0.0);
                assert!(s.era5_score_24h.is_some() && s.era5_score_48h.is_some());
                assert!(
                    s.forecast_score_initial.unwrap() >= 0.1,
                    "a skilled miner passes Day1: {s:?}"
                );
                skilled.push((*error_scale, s.era5_combined_score.unwrap()));
            }
            Behaviour::GfsClone => {
                assert!(
                    s.forecast_score_initial.unwrap() <= 0.05 + 1e-12,
                    "the clone is clamped: {s:?}"
                );
                let clamp = scores
                    .iter()
                    .find(|r| {
                        r.miner_uid == s.miner_uid && r.score_type == score_type::DAY1_QC_SCORE
                    })
                    .unwrap();
                assert!(
                    clamp
                        .metrics
                        .as_deref()
                        .unwrap()
                        .contains("\"strict_clamp_fired\":true")
                );
            }
            Behaviour::Offline => {
                assert_eq!(status, ForecastStatus::VerifyFailed);
                let err = s
                    .forecast_error_msg
                    .as_deref()
                    .expect("the error is recorded");
                assert!(err.contains("\"blame\":\"miner\""), "{err}");
                let step = verify_step(&t.db, run, s.miner_uid).await;
                assert_eq!(step.status().unwrap(), StepStatus::Failed);
                assert_eq!(step.attempt, 3, "max_retries 2 → 3 attempts");
                assert!(s.overall_forecast_score.is_none());
            }
            Behaviour::FlakyThenOk { .. } => {
                assert_eq!(
                    status,
                    ForecastStatus::Completed,
                    "the flaky miner recovers"
                );
                let step = verify_step(&t.db, run, s.miner_uid).await;
                assert_eq!(step.status().unwrap(), StepStatus::Succeeded);
                assert!(step.attempt >= 1, "it failed first: {step:?}");
            }
            Behaviour::Tampered => {
                assert!(
                    matches!(
                        status,
                        ForecastStatus::VerifyFailed | ForecastStatus::Failed
                    ),
                    "tampered: {status}"
                );
                let err = s.forecast_error_msg.as_deref().unwrap();
                assert!(
                    err.contains("integrity") && err.contains("2t/"),
                    "the offending key is named: {err}"
                );
                assert!(
                    lead_score(s.miner_uid, 24).is_none(),
                    "no score from unverified bytes"
                );
            }
            Behaviour::NanInjection { .. } => {
                let errors: Vec<_> = scores
                    .iter()
                    .filter(|r| {
                        r.miner_uid == s.miner_uid && r.score_type == score_type::ERA5_ERROR
                    })
                    .collect();
                assert!(
                    !errors.is_empty()
                        && errors.iter().all(|e| e
                            .error_message
                            .as_deref()
                            .unwrap()
                            .contains("coverage")),
                    "{errors:?}"
                );
                assert_eq!(
                    lead_score(s.miner_uid, 24),
                    Some(0.0),
                    "every variable fails coverage: lead score 0"
                );
            }
            Behaviour::MissingVariables { variables } => {
                assert_eq!(status, ForecastStatus::Completed);
                for v in variables {
                    assert!(
                        scores.iter().any(|r| r.miner_uid == s.miner_uid
                            && r.score_type == score_type::ERA5_ERROR
                            && r.variable == v.as_str()),
                        "missing {v} is scored as an error, not dropped"
                    );
                }
                let l = lead_score(s.miner_uid, 24).unwrap();
                assert!(l > 0.0 && l < 1.0);
            }
            Behaviour::Climatology => assert_eq!(status, ForecastStatus::Completed),
        }
    }
    // better miners score higher
    skilled.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(skilled.len() >= 3);
    assert!(
        skilled.first().unwrap().1 > skilled.last().unwrap().1,
        "{skilled:?}"
    );

    // no key is duplicated
    let keys: BTreeSet<_> = scores
        .iter()
        .map(|s| {
            (
                s.miner_uid,
                s.score_type.clone(),
                s.variable.clone(),
                s.level,
                s.lead_hours,
            )
        })
        .collect();
    assert_eq!(keys.len(), scores.len());
    let steps = t.db.steps().list_run(run).await.unwrap();
    let step_keys: BTreeSet<_> = steps
        .iter()
        .map(|s| {
            (
                s.miner_uid,
                s.step_name.clone(),
                s.substep.clone(),
                s.lead_hours,
            )
        })
        .collect();
    assert_eq!(step_keys.len(), steps.len());
    assert!(
        steps
            .iter()
            .any(|s| s.step_name == "era5" && s.substep == "lead"),
        "per-lead events are logged"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.step_name == "day1" && s.substep == "load_inputs")
    );

    // miner_stats, the snapshot and its weights
    let ms = t.db.miner_stats().list().await.unwrap();
    assert_eq!(ms.len(), 12);
    let weights: BTreeMap<String, f64> = serde_json::from_str(&snap.weights).unwrap();
    let total: f64 = weights.values().sum();
    assert!((total - 1.0).abs() < 1e-9, "weights sum to 1: {weights:?}");
    let best = skilled_best(&sim, &stats);
    let top = weights.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
    assert_eq!(
        top.0,
        &best.to_string(),
        "the best miner gets the largest weight"
    );
    // no secret at rest outside the registry
    for s in &steps {
        for text in [&s.error_json, &s.context].into_iter().flatten() {
            assert!(
                !text.contains("tok")
                    || !sim
                        .network
                        .endpoints()
                        .iter()
                        .any(|m| text.contains(&m.access_token))
            );
        }
    }
    sim.shutdown().await;
}

fn skilled_best(sim: &Simulation, stats: &[wx_model::rows::StatsRow]) -> i32 {
    stats
        .iter()
        .filter(|s| matches!(behaviour_of(sim, s.miner_uid), Behaviour::Skilled { .. }))
        .max_by(|a, b| {
            a.overall_forecast_score
                .unwrap()
                .total_cmp(&b.overall_forecast_score.unwrap())
        })
        .unwrap()
        .miner_uid
}

/// A miner's verify/open_store step.
async fn verify_step(db: &wx_store::Db, run: RunId, uid: i32) -> wx_model::rows::StepRow {
    let key = wx_model::StepKey::miner(
        run,
        MinerUid::try_from(uid).unwrap(),
        StepKind::VerifyOpenStore,
    );
    db.steps()
        .get(&key)
        .await
        .unwrap()
        .expect("every miner has a verify step")
}

/// A fresh database on the same backend as `t`.
async fn fresh_like(t: &TestDb) -> TestDb {
    if t.url().starts_with("postgres") {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    }
}

/// Every score of a run, by key, as bits (calculation times aside).
type ScoreMap = BTreeMap<(i32, String, String, i32, i32), (Option<u64>, Option<String>)>;

async fn score_map(db: &wx_store::Db, run: RunId) -> ScoreMap {
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

/// Runs the in-process daemon on `db` until the run completes and its final snapshot is taken.
async fn run_to_completion(config: &wx_steps::ValidatorConfig, db: &wx_store::Db) -> RunId {
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config.clone(),
        DaemonParts {
            db: Some(db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    let run = wait_for_completion(db, None, Duration::from_secs(240))
        .await
        .unwrap();
    wait_for_final_snapshot(db, run, Duration::from_secs(60))
        .await
        .unwrap();
    stop.cancel();
    daemon.await.unwrap().unwrap();
    run
}

/// A `wx-validator run` process is killed (SIGKILL: no release, leases left behind) in the
/// middle of the run; another daemon finishes it. The final scores are bit-identical to an
/// uninterrupted run of the same world, and a further pass over the finished run changes
/// nothing.
async fn a_killed_daemon_changes_no_score(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(WorldSpec::small(6), dir.path(), t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let mut config = sim.config.clone();
    config.pipeline.lease_seconds = 6;
    config.pipeline.heartbeat_seconds = 2;
    let config_path = dir.path().join("wx.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

    let log_path = dir.path().join("daemon.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wx-validator"))
        .arg("--config")
        .arg(&config_path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start wx-validator run");
    let daemon_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // kill it once scoring is under way but before the run is done
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let killed_with = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "wx-validator run exited early ({status}):\n{}",
                daemon_log()
            );
        }
        let scores = match t.db.runs().latest().await.unwrap() {
            Some(r) => t.db.scores().list_run(RunId(r.id)).await.unwrap().len(),
            None => 0,
        };
        if scores > 0 {
            break scores;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon scored nothing within 120 s:\n{}",
            daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let run = t.db.runs().latest().await.unwrap().unwrap();
    assert_ne!(
        run.status().unwrap(),
        wx_model::RunStatus::Completed,
        "killed before the end ({killed_with} scores)"
    );

    let run = run_to_completion(&config, &t.db).await;
    let restarted = score_map(&t.db, run).await;
    let steps_before = t.db.steps().list_run(run).await.unwrap();
    assert!(
        steps_before.iter().all(|s| s.claim_token.is_none()),
        "no claim is left behind"
    );

    // the same world scored without interruption, on a fresh database
    let clean_db = fresh_like(&t).await;
    sim.import_miners(&clean_db.db).await.unwrap();
    let clean_run = run_to_completion(&config, &clean_db.db).await;
    let clean = score_map(&clean_db.db, clean_run).await;
    assert!(clean.len() > 6 * 4, "a real run: {} scores", clean.len());
    assert_eq!(restarted, clean, "a crash and a restart change no score");

    // a further pass over the finished run changes nothing
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config.clone(),
        DaemonParts {
            db: Some(t.db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    daemon.await.unwrap().unwrap();
    assert_eq!(score_map(&t.db, run).await, restarted);
    let steps_after = t.db.steps().list_run(run).await.unwrap();
    let units = |steps: &[wx_model::rows::StepRow]| -> Vec<_> {
        steps
            .iter()
            .filter(|s| s.step_name != "aggregate")
            .map(|s| {
                (
                    s.miner_uid,
                    s.step_name.clone(),
                    s.substep.clone(),
                    s.lead_hours,
                    s.status.clone(),
                    s.attempt,
                )
            })
            .collect()
    };
    assert_eq!(units(&steps_after), units(&steps_before));
    sim.shutdown().await;
}

backend_tests!(full_run, a_killed_daemon_changes_no_score);
