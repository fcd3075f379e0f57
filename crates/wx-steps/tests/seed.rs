//! The seed steps against real databases: seed/steps_rows waits — without consuming an
//! attempt — until seed/stats_rows has written the run's stats rows, and is woken by it; a
//! seed that fails for good fails the run.

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::{MinerUid, RunId, RunStatus, StepKey, StepKind, StepStatus, SystemClock};
use wx_steps::{DataHub, Pipeline, ValidatorConfig};
use wx_store::testing::TestDb;
use wx_store::{Fence, KeyClaim, MinerRecord, Outcome, backend_tests};

const LEASE: Duration = Duration::from_secs(60);

async fn run_step(t: &TestDb, pipeline: &Pipeline, key: StepKey) -> Outcome {
    run_step_at(t, pipeline, key, Utc::now()).await
}

/// Runs `key` as if the clock read `at` when it is claimed (a retry scheduled before `at` is
/// due).
async fn run_step_at(
    t: &TestDb,
    pipeline: &Pipeline,
    key: StepKey,
    at: chrono::DateTime<Utc>,
) -> Outcome {
    let KeyClaim::Claimed(claim) =
        t.db.queue()
            .claim_key(&key, "test", LEASE, at, false)
            .await
            .unwrap()
    else {
        panic!("{key} is due");
    };
    let completion = pipeline.run(claim.clone(), CancellationToken::new()).await;
    let fence =
        t.db.queue()
            .finish(&claim, &completion, Utc::now())
            .await
            .unwrap();
    assert_eq!(fence, Fence::Applied);
    completion.outcome
}

/// A test-mode pipeline over `t` with its cache in `dir`, and the run it creates.
async fn new_run(t: &TestDb, dir: &std::path::Path) -> (Pipeline, RunId) {
    let mut config = ValidatorConfig {
        cache_dir: dir.to_owned(),
        ..ValidatorConfig::default()
    };
    config.pipeline.test_mode = true;
    let data = Arc::new(DataHub::new(&config.data, &config.cache_dir, true).unwrap());
    let pipeline = Pipeline::new(t.db.clone(), config, Arc::new(SystemClock), data).unwrap();
    let wx_steps::RunCreation::Created(run) = pipeline.ensure_run().await.unwrap() else {
        panic!("a fresh database gets a new run");
    };
    (pipeline, run)
}

async fn steps_rows_waits_for_the_stats_rows(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let miners: Vec<MinerRecord> = (1..=2)
        .map(|uid| MinerRecord {
            uid,
            hotkey: format!("5Hotkey{uid:03}"),
            store_url: "https://miner.example/x.zarr".into(),
            access_token: "secret".into(),
        })
        .collect();
    t.db.miners().import(&miners, Utc::now()).await.unwrap();
    let (pipeline, run) = new_run(&t, dir.path()).await;
    let steps_rows = StepKey::run_level(run, StepKind::SeedStepsRows);
    let stats_rows = StepKey::run_level(run, StepKind::SeedStatsRows);

    // steps_rows first: nothing to enqueue yet, so it waits
    let outcome = run_step(&t, &pipeline, steps_rows).await;
    assert!(matches!(outcome, Outcome::Wait { .. }), "{outcome:?}");
    let row = t.db.steps().get(&steps_rows).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.attempt),
        (StepStatus::Waiting, 0),
        "waiting for stats_rows consumes no attempt"
    );
    // stats_rows wakes it: due at once
    assert_eq!(
        run_step(&t, &pipeline, stats_rows).await,
        Outcome::Succeeded
    );
    assert_eq!(
        run_step(&t, &pipeline, steps_rows).await,
        Outcome::Succeeded
    );
    verify_steps_exist(&t, run).await;
}

async fn verify_steps_exist(t: &TestDb, run: RunId) {
    for uid in 1..=2 {
        let key = StepKey::miner(run, MinerUid::new(uid), StepKind::VerifyOpenStore);
        let row = t.db.steps().get(&key).await.unwrap().unwrap();
        assert_eq!(row.status().unwrap(), StepStatus::Pending);
    }
}

async fn a_seed_that_fails_for_good_fails_the_run(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // no miner imported: seed/stats_rows retries, then gives up
    let (pipeline, run) = new_run(&t, dir.path()).await;
    let stats_rows = StepKey::run_level(run, StepKind::SeedStatsRows);
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        assert!(attempts <= 20, "seed/stats_rows never gave up");
        // each retry is due a day later at most
        let at = Utc::now() + chrono::Duration::days(attempts);
        match run_step_at(&t, &pipeline, stats_rows, at).await {
            Outcome::Retry { .. } => {
                let row = t.db.runs().get(run).await.unwrap().unwrap();
                assert_eq!(
                    row.status().unwrap(),
                    RunStatus::Seeded,
                    "a retry keeps the run"
                );
            }
            other => break other,
        }
    };
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert!(attempts > 1, "the failure was retried first");
    let row = t.db.runs().get(run).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), RunStatus::Failed);
    assert!(row.completed_at.is_some());
    let error = row.error.expect("the run says why it failed");
    assert!(
        error.contains("seed/stats_rows failed for good") && error.contains("no miners"),
        "{error}"
    );
    // seed/steps_rows then fails at once (no stats rows); the run keeps the first reason
    let steps_rows = StepKey::run_level(run, StepKind::SeedStepsRows);
    let outcome = run_step(&t, &pipeline, steps_rows).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    let row = t.db.runs().get(run).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), RunStatus::Failed);
    assert_eq!(row.error.as_deref(), Some(error.as_str()));
}

backend_tests!(
    steps_rows_waits_for_the_stats_rows,
    a_seed_that_fails_for_good_fails_the_run
);
