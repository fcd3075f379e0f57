//! aggregate/snapshot: ranking weights over the window, the run's ranks, and the sweep that
//! completes a run whose work is all done but that no step completed.

use crate::harness::{Harness, skilled_with};
use chrono::Duration;
use std::collections::BTreeMap;
use wx_model::{Clock, RunStatus, StepKey, StepKind};
use wx_steps::wrapper::StepOutcome;
use wx_steps::{aggregate, era5};
use wx_store::testing::TestDb;
use wx_store::{Outcome, backend_tests};

fn as_map(json: &str) -> BTreeMap<String, f64> {
    serde_json::from_str(json).unwrap()
}

/// Two skilled miners, one better, scored to the end with completions recorded without the
/// pipeline's bookkeeping (so no step completes the run): the snapshot weighs and ranks the
/// better one first, completes the run by its sweep, and re-arms itself.
async fn the_snapshot_ranks_weighs_and_sweeps_a_finished_run(t: TestDb) {
    let h = Harness::start(t, vec![skilled_with(1, 0.25), skilled_with(2, 2.0)], 2).await;
    h.publisher.publish_all().unwrap();
    for kind in [StepKind::SeedDownloadGfs, StepKind::Day1ClimCache] {
        let outcome = h.run_step(StepKey::run_level(h.run, kind)).await;
        assert_eq!(outcome, Outcome::Succeeded, "{kind}");
    }
    for uid in [1, 2] {
        h.verify_and_day1(uid).await;
        let claim = h.claim(h.key(uid, StepKind::Era5Score)).await;
        let result = era5::score(h.ctx(), &claim).await;
        assert!(matches!(result, Ok(StepOutcome::Done(_))), "{result:?}");
        h.record(&claim, result).await;
    }
    let run_status = |h: &Harness| {
        let db = h.t.db.clone();
        let run = h.run;
        async move { db.runs().get(run).await.unwrap().unwrap().status().unwrap() }
    };
    assert_ne!(
        run_status(&h).await,
        RunStatus::Completed,
        "no step completed it"
    );

    let claim = h
        .claim_forced(StepKey::run_level(h.run, StepKind::AggregateSnapshot))
        .await;
    let result = aggregate::snapshot(h.ctx(), &claim).await;
    let Ok(StepOutcome::Wait { until, effects, .. }) = &result else {
        panic!("the newest run's snapshot re-arms itself, got {result:?}");
    };
    assert!(*until >= h.clock.now() + Duration::minutes(9), "{until}");
    assert_eq!(
        effects.complete_runs,
        vec![h.run],
        "the sweep completes the run"
    );
    let snapshot = effects.snapshot.as_ref().unwrap();
    assert_eq!(snapshot.taken_at, claim.started_at.naive_utc());
    let weights = as_map(&snapshot.weights);
    let scores = as_map(&snapshot.scores);
    assert!(scores["1"] > scores["2"], "{scores:?}");
    assert!(weights["1"] > weights["2"], "{weights:?}");
    assert!(
        (weights.values().sum::<f64>() - 1.0).abs() < 1e-9,
        "{weights:?}"
    );
    let ranks: BTreeMap<i32, Option<i32>> = effects
        .stats
        .iter()
        .map(|(uid, patch)| (uid.as_i32(), patch.miner_rank))
        .collect();
    assert_eq!(ranks, BTreeMap::from([(1, Some(1)), (2, Some(2))]));

    h.record(&claim, result).await;
    assert_eq!(run_status(&h).await, RunStatus::Completed);
    assert_eq!(h.stats(1).await.miner_rank, Some(1));
    assert_eq!(h.stats(2).await.miner_rank, Some(2));
    let stored = h.t.db.snapshots().latest().await.unwrap().unwrap();
    assert_eq!(as_map(&stored.weights), weights);
}

backend_tests!(the_snapshot_ranks_weighs_and_sweeps_a_finished_run);
