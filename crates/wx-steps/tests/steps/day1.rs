//! day1/score: a skilled miner scored (the ERA5 step follows), a tampered chunk failing the
//! store as `verify_failed` (no ERA5 step), and a store failing on the last attempt
//! (`day1_failed`, the ERA5 step still follows).

use crate::harness::{Harness, MINER, skilled};
use wx_model::score_type;
use wx_model::{ErrorKind, ForecastStatus, StepKind};
use wx_sim::{Behaviour, MinerSpec};
use wx_steps::day1;
use wx_steps::wrapper::StepOutcome;
use wx_store::testing::TestDb;
use wx_store::{Outcome, backend_tests};

/// Whether the run has the miner's era5/score step.
async fn has_era5_step(h: &Harness, uid: u16) -> bool {
    h.t.db
        .steps()
        .get(&h.key(uid, StepKind::Era5Score))
        .await
        .unwrap()
        .is_some()
}

async fn a_skilled_miner_is_scored_and_its_era5_step_follows(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 2).await;
    let verify = h.run_step(h.key(MINER, StepKind::VerifyOpenStore)).await;
    assert_eq!(verify, Outcome::Succeeded);
    let claim = h.claim(h.key(MINER, StepKind::Day1Score)).await;
    let result = day1::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Done(effects)) = &result else {
        panic!("scored, got {result:?}");
    };
    let qc: Vec<f64> = effects
        .scores
        .iter()
        .filter(|r| r.score_type == score_type::DAY1_QC_SCORE)
        .filter_map(|r| r.score)
        .collect();
    assert_eq!(qc.len(), 1, "one QC score: {:?}", effects.scores);
    assert!(qc[0].is_finite() && qc[0] > 0.0, "{qc:?}");
    assert_eq!(
        effects.stats[0].1.forecast_status,
        Some(ForecastStatus::Day1Scored)
    );
    assert_eq!(effects.enqueue.len(), 1);
    assert_eq!(effects.enqueue[0].key.kind, StepKind::Era5Score);
    assert!(
        effects
            .logs
            .iter()
            .any(|l| l.key.kind == StepKind::Day1LoadInputs),
        "the load_inputs sub-step is logged"
    );
    h.record(&claim, result).await;
    assert_eq!(h.status(MINER).await, ForecastStatus::Day1Scored);
    assert!(has_era5_step(&h, MINER).await);
    let stored = h.scores(MINER).await;
    assert!(
        stored
            .iter()
            .any(|s| s.score_type == score_type::DAY1_QC_SCORE && s.score == Some(qc[0])),
        "the QC score is stored as computed"
    );
}

/// Every chunk of `2t` is served with a byte flipped: the manifest catches it, the store is
/// failed for good at once (no retry), `verify_failed`, and no ERA5 step follows.
async fn a_tampered_store_fails_as_verify_failed_without_era5(t: TestDb) {
    let tampered = MinerSpec {
        uid: 2,
        behaviour: Behaviour::Tampered,
    };
    let h = Harness::start(t, vec![skilled(MINER), tampered], 2).await;
    let verify = h.run_step(h.key(2, StepKind::VerifyOpenStore)).await;
    assert_eq!(verify, Outcome::Succeeded, "the manifest itself is fine");
    let claim = h.claim(h.key(2, StepKind::Day1Score)).await;
    let result = day1::score(h.ctx(), &claim).await;
    let Err(failure) = &result else {
        panic!("a tampered chunk fails the store, got {result:?}");
    };
    assert_eq!(failure.error.kind, ErrorKind::Integrity, "{failure:?}");
    assert!(!failure.retryable);
    assert_eq!(
        failure.on_final.stats[0].1.forecast_status,
        Some(ForecastStatus::VerifyFailed)
    );
    assert!(
        failure.on_final.enqueue.is_empty(),
        "no ERA5 for a tampered store"
    );
    let completion = h.record(&claim, result).await;
    assert!(
        matches!(completion.outcome, Outcome::Failed { .. }),
        "no retry"
    );
    assert_eq!(h.status(2).await, ForecastStatus::VerifyFailed);
    assert!(!has_era5_step(&h, 2).await);
}

/// The store answers 503 for `2t` on the only attempt: `day1_failed`, the miner's error
/// shown, and the ERA5 step still follows (Day1 is a quality check, not a gate).
async fn a_store_failing_on_the_last_attempt_is_day1_failed(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 0).await;
    let verify = h.run_step(h.key(MINER, StepKind::VerifyOpenStore)).await;
    assert_eq!(verify, Outcome::Succeeded);
    h.fail_chunks(MINER, "2t", 503);
    let claim = h.claim(h.key(MINER, StepKind::Day1Score)).await;
    let result = day1::score(h.ctx(), &claim).await;
    let Err(failure) = &result else {
        panic!("a failing store fails the step, got {result:?}");
    };
    assert_eq!(failure.error.kind, ErrorKind::Network, "{failure:?}");
    assert!(failure.retryable);
    assert_eq!(
        failure.on_final.stats[0].1.forecast_status,
        Some(ForecastStatus::Day1Failed)
    );
    let completion = h.record(&claim, result).await;
    assert!(
        matches!(completion.outcome, Outcome::Failed { .. }),
        "no retry left"
    );
    let stats = h.stats(MINER).await;
    assert_eq!(stats.status().unwrap(), ForecastStatus::Day1Failed);
    assert!(stats.forecast_error_msg.is_some());
    assert!(has_era5_step(&h, MINER).await);
}

backend_tests!(
    a_skilled_miner_is_scored_and_its_era5_step_follows,
    a_tampered_store_fails_as_verify_failed_without_era5,
    a_store_failing_on_the_last_attempt_is_day1_failed,
);
