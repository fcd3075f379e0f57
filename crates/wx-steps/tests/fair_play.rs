//! Fair play in the pipeline (docs/operating.md, "Fair play"), on both backends, with an
//! injected clock: verification past the submission window is refused as late and its retries
//! end at the window; a uid that changes hands is not scored further by the running run, earns
//! no weight from the previous hotkey, and joins the next run; miners imported after the
//! backfill window wait for the next run.

use chrono::{Duration, Timelike};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wx_model::{Clock, ErrorKind, ForecastStatus, MinerUid, OffsetClock, RunId, StepKey, StepKind};
use wx_steps::{DataHub, Pipeline, RunCreation, ValidatorConfig};
use wx_store::testing::TestDb;
use wx_store::{Fence, KeyClaim, MinerRecord, Outcome, StatsPatch, backend_tests};

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

struct Setup {
    pipeline: Pipeline,
    clock: Arc<OffsetClock>,
    _dir: tempfile::TempDir,
}

/// A test-mode pipeline whose miners' stores refuse connections (127.0.0.1:1).
fn setup(t: &TestDb) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ValidatorConfig {
        cache_dir: dir.path().to_owned(),
        ..ValidatorConfig::default()
    };
    config.pipeline.test_mode = true;
    config.data.allow_loopback_miners = true;
    config.data.allow_plain_http_miners = true;
    let data = Arc::new(DataHub::new(&config.data, &config.cache_dir, true).unwrap());
    let clock = Arc::new(OffsetClock::new());
    let pipeline = Pipeline::new(t.db.clone(), config, clock.clone(), data).unwrap();
    Setup {
        pipeline,
        clock,
        _dir: dir,
    }
}

fn miner(uid: i64, hotkey: &str) -> MinerRecord {
    MinerRecord {
        uid,
        hotkey: hotkey.into(),
        store_url: "http://127.0.0.1:1/forecast.zarr".into(),
        access_token: "secret".into(),
    }
}

async fn run_step(t: &TestDb, s: &Setup, key: StepKey) -> Outcome {
    let now = s.clock.now();
    let KeyClaim::Claimed(claim) =
        t.db.queue()
            .claim_key(&key, "test", LEASE, now, true)
            .await
            .unwrap()
    else {
        panic!("{key} can be claimed");
    };
    let completion = s
        .pipeline
        .run(claim.clone(), CancellationToken::new())
        .await;
    let fence =
        t.db.queue()
            .finish(&claim, &completion, s.clock.now())
            .await
            .unwrap();
    assert_eq!(fence, Fence::Applied);
    completion.outcome
}

/// A new run, seeded (stats rows and verify steps).
async fn seeded_run(t: &TestDb, s: &Setup) -> RunId {
    let RunCreation::Created(run) = s.pipeline.ensure_run().await.unwrap() else {
        panic!("a new run");
    };
    for kind in [StepKind::SeedStatsRows, StepKind::SeedStepsRows] {
        assert_eq!(
            run_step(t, s, StepKey::run_level(run, kind)).await,
            Outcome::Succeeded
        );
    }
    run
}

fn verify(run: RunId, uid: u8) -> StepKey {
    StepKey::miner(run, MinerUid::new(uid), StepKind::VerifyOpenStore)
}

fn failed_kind(outcome: &Outcome) -> (ErrorKind, String) {
    match outcome {
        Outcome::Failed { error } => (error.kind, error.message.clone()),
        other => panic!("expected a final failure, got {other:?}"),
    }
}

async fn status(t: &TestDb, run: RunId, uid: u8) -> ForecastStatus {
    t.db.stats()
        .get(run, MinerUid::new(uid))
        .await
        .unwrap()
        .unwrap()
        .status()
        .unwrap()
}

async fn late_stores_are_refused_and_retries_end_at_the_window(t: TestDb) {
    let s = setup(&t);
    let now = s.clock.now();
    t.db.miners()
        .import(&[miner(1, "5HotkeyA"), miner(2, "5HotkeyB")], now)
        .await
        .unwrap();
    let run = seeded_run(&t, &s).await;

    // within the window, an unreachable store is retried...
    let first = run_step(&t, &s, verify(run, 1)).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    // ...but not past it: 2 s before the window closes, the next retry (5 s in test mode)
    // would come after it, so this failure is final, and says late
    s.clock
        .advance(Duration::minutes(120) - Duration::seconds(2));
    let outcome = run_step(&t, &s, verify(run, 1)).await;
    let (kind, message) = failed_kind(&outcome);
    assert_eq!(kind, ErrorKind::Network, "the cause is kept: {message}");
    assert!(message.contains("late"), "{message}");
    assert_eq!(status(&t, run, 1).await, ForecastStatus::VerifyFailed);

    // past the window, verification is refused without contacting the store
    s.clock.advance(Duration::seconds(3));
    let outcome = run_step(&t, &s, verify(run, 2)).await;
    let (kind, message) = failed_kind(&outcome);
    assert_eq!(kind, ErrorKind::Late, "{message}");
    assert!(message.starts_with("late:"), "{message}");
    assert_eq!(status(&t, run, 2).await, ForecastStatus::VerifyFailed);
    let response = t.db.responses().get(run, MinerUid::new(2)).await.unwrap();
    assert!(
        response.is_none_or(|r| !r.verification_passed && r.manifest_frozen_at.is_none()),
        "nothing was frozen"
    );
}

async fn a_uid_that_changes_hands_starts_over_in_the_next_run(t: TestDb) {
    let s = setup(&t);
    // start a minute into a test-mode GFS cycle (6-hourly, from the wall clock), so that the
    // 40 minutes below stay within one run whatever the time of day the test runs at
    let now = s.clock.now();
    let into_cycle = Duration::hours(i64::from(now.hour() % 6))
        + Duration::minutes(i64::from(now.minute()))
        + Duration::seconds(i64::from(now.second()));
    s.clock
        .advance(Duration::hours(6) - into_cycle + Duration::minutes(1));
    let t0 = s.clock.now();
    t.db.miners()
        .import(&[miner(1, "5OldOwner"), miner(2, "5Other")], t0)
        .await
        .unwrap();
    let run = seeded_run(&t, &s).await;
    // the old owner did well in this run, the other miner less so
    for (uid, score) in [(1, 0.9), (2, 0.5)] {
        t.db.stats()
            .patch(
                run,
                MinerUid::new(uid),
                &StatsPatch {
                    overall_forecast_score: Some(score),
                    ..Default::default()
                },
                t0,
            )
            .await
            .unwrap();
    }

    // 10 minutes in: uid 1 changes hands, uid 3 is imported (within the backfill window)
    s.clock.advance(Duration::minutes(10));
    let summary =
        t.db.miners()
            .import(&[miner(1, "5NewOwner"), miner(3, "5Third")], s.clock.now())
            .await
            .unwrap();
    assert_eq!(summary.hotkey_changed.len(), 1);
    assert_eq!(
        s.pipeline.ensure_run().await.unwrap(),
        RunCreation::Reused { run, backfilled: 1 },
        "uid 3 joins; uid 1 keeps its seeded hotkey in this run"
    );
    let stats =
        t.db.stats()
            .get(run, MinerUid::new(1))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        stats.miner_hotkey, "5OldOwner",
        "rows keep their attribution"
    );

    // the running run stops scoring the old hotkey: verification fails on identity
    let (kind, message) = failed_kind(&run_step(&t, &s, verify(run, 1)).await);
    assert_eq!(kind, ErrorKind::Identity);
    assert!(
        message.contains("5NewOwner") && message.contains("next run"),
        "{message}"
    );

    // no weight for the uid from the previous owner's run; the other miner has it all
    let snapshot = StepKey::run_level(run, StepKind::AggregateSnapshot);
    let outcome = run_step(&t, &s, snapshot).await;
    assert!(matches!(outcome, Outcome::Wait { .. }), "{outcome:?}");
    let snap = t.db.snapshots().latest().await.unwrap().unwrap();
    let weights: serde_json::Value = serde_json::from_str(&snap.weights).unwrap();
    assert_eq!(weights["1"].as_f64(), Some(0.0), "{weights}");
    assert!(weights["2"].as_f64().unwrap() > 0.0, "{weights}");

    // 40 minutes in: past the backfill window (30 min), a new uid waits for the next run
    s.clock.advance(Duration::minutes(30));
    t.db.miners()
        .import(&[miner(4, "5Fourth")], s.clock.now())
        .await
        .unwrap();
    assert_eq!(
        s.pipeline.ensure_run().await.unwrap(),
        RunCreation::Reused { run, backfilled: 0 }
    );
    assert!(
        t.db.stats()
            .get(run, MinerUid::new(4))
            .await
            .unwrap()
            .is_none()
    );

    // the next run seeds the new owner and uid 4
    s.clock.advance(Duration::hours(6));
    let next = seeded_run(&t, &s).await;
    assert_ne!(next, run);
    let hotkeys: Vec<(i32, String)> =
        t.db.stats()
            .list(next)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.miner_uid, r.miner_hotkey))
            .collect();
    assert_eq!(
        hotkeys,
        vec![
            (1, "5NewOwner".to_owned()),
            (2, "5Other".to_owned()),
            (3, "5Third".to_owned()),
            (4, "5Fourth".to_owned()),
        ]
    );

    // a removed uid: the runs in progress stop scoring it
    t.db.miners().remove(2, s.clock.now()).await.unwrap();
    let (kind, message) = failed_kind(&run_step(&t, &s, verify(next, 2)).await);
    assert_eq!(kind, ErrorKind::Identity);
    assert!(message.contains("no longer registered"), "{message}");
}

backend_tests!(
    late_stores_are_refused_and_retries_end_at_the_window,
    a_uid_that_changes_hands_starts_over_in_the_next_run,
);
