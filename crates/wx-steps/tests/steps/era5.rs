//! era5/score: partial progress (the published leads scored, the step waits, a re-run scores
//! only what is missing), a lead given up for lack of ERA5, and the final failures.

use crate::harness::{Harness, MINER, skilled};
use chrono::Duration;
use wx_model::score_type;
use wx_model::{Blame, Clock, ErrorKind, ForecastStatus, StepKind};
use wx_steps::era5;
use wx_steps::wrapper::StepOutcome;
use wx_store::testing::TestDb;
use wx_store::{Outcome, backend_tests};

/// The ERA5 lead score rows among `rows`, by lead.
fn scored_leads(rows: &[wx_model::rows::NewScore]) -> Vec<i32> {
    rows.iter()
        .filter(|r| r.score_type == score_type::ERA5_LEAD_SCORE)
        .map(|r| r.lead_hours)
        .collect()
}

/// A re-check is due (the test-mode recheck is 1 s).
fn recheck(h: &Harness) {
    h.clock.advance(Duration::seconds(2));
}

/// Nothing published: the step waits and stores nothing; lead 24 published: it is scored and
/// the step waits for lead 48 (`era5_partial`); lead 48 published: only lead 48 is scored, the
/// stored lead 24 is kept bit for bit, and the forecast is completed.
async fn partial_progress_scores_ready_leads_and_rerun_scores_only_the_missing(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 2).await;
    h.verify_and_day1(MINER).await;
    let key = h.key(MINER, StepKind::Era5Score);

    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Wait { until, effects, .. }) = &result else {
        panic!("nothing published: wait, got {result:?}");
    };
    assert!(*until > h.clock.now(), "looks again later");
    assert!(
        effects.scores.is_empty() && effects.stats.is_empty(),
        "{effects:?}"
    );
    assert_eq!(effects.logs.len(), 1, "the load_truth log");
    assert_eq!(effects.logs[0].key.kind, StepKind::Era5LoadTruth);
    h.record(&claim, result).await;
    assert_eq!(h.status(MINER).await, ForecastStatus::Day1Scored);

    h.publish_through("2025-01-02");
    recheck(&h);
    let claim = h.claim(key).await;
    assert_eq!(claim.attempt, 0, "waiting consumed no attempt");
    let result = era5::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Wait {
        effects, reason, ..
    }) = &result
    else {
        panic!("lead 48 unpublished: wait, got {result:?}");
    };
    assert!(reason.contains("48"), "{reason}");
    assert_eq!(scored_leads(&effects.scores), vec![24]);
    let lead_logs: Vec<_> = effects
        .logs
        .iter()
        .filter(|l| l.key.kind == StepKind::Era5Lead)
        .map(|l| l.key.lead_hours)
        .collect();
    assert_eq!(lead_logs, vec![24]);
    h.record(&claim, result).await;
    assert_eq!(h.status(MINER).await, ForecastStatus::Era5Partial);
    let first = h.lead_scores(MINER).await;
    assert_eq!(first.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![24]);

    h.publish_through("2025-01-03");
    recheck(&h);
    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Done(effects)) = &result else {
        panic!("every lead published: done, got {result:?}");
    };
    assert_eq!(
        scored_leads(&effects.scores),
        vec![48],
        "lead 24 is not scored again"
    );
    assert!(
        effects.scores.iter().all(|r| r.lead_hours == 48),
        "only lead 48's rows are written"
    );
    h.record(&claim, result).await;
    let stats = h.stats(MINER).await;
    assert_eq!(stats.status().unwrap(), ForecastStatus::Completed);
    assert_eq!(stats.era5_completeness, Some(1.0));
    let last = h.lead_scores(MINER).await;
    assert_eq!(last.len(), 2);
    assert_eq!(last[0], first[0], "lead 24 kept bit for bit");
}

/// Lead 48 never published: once `era5_give_up` has passed it is recorded unavailable for the
/// run, left out of the aggregates, and the forecast completes with lead 24 alone.
async fn an_unpublished_lead_is_given_up_and_the_forecast_completes(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 2).await;
    h.verify_and_day1(MINER).await;
    let key = h.key(MINER, StepKind::Era5Score);
    h.publish_through("2025-01-02");
    let outcome = h.run_step(key).await;
    assert!(matches!(outcome, Outcome::Wait { .. }), "{outcome:?}");
    let partial = h.stats(MINER).await;

    h.pass_give_up();
    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Done(effects)) = &result else {
        panic!("lead 48 given up: done, got {result:?}");
    };
    assert!(effects.scores.is_empty(), "nothing new to score");
    let load = &effects.logs[0];
    assert_eq!(load.key.kind, StepKind::Era5LoadTruth);
    assert_eq!(
        load.context.as_ref().unwrap()["unavailable"],
        serde_json::json!([48])
    );
    h.record(&claim, result).await;

    let unavailable = h.unavailable_leads().await;
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0].0, 48);
    assert!(
        unavailable[0].1.contains("test_era5_give_up_seconds"),
        "{}",
        unavailable[0].1
    );
    let stats = h.stats(MINER).await;
    assert_eq!(stats.status().unwrap(), ForecastStatus::Completed);
    assert_eq!(
        stats.era5_completeness,
        Some(1.0),
        "the unavailable lead counts nowhere"
    );
    assert_ne!(
        stats.era5_combined_score, partial.era5_combined_score,
        "the combined score is over lead 24 alone now"
    );
    assert_eq!(h.lead_scores(MINER).await.len(), 1);
}

/// No lead ever published: both are given up, nothing is scored, and the forecast still
/// ends (completed with nothing to score, never a zero score for late truth).
async fn every_lead_given_up_ends_the_step_without_scores(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 2).await;
    h.verify_and_day1(MINER).await;
    let key = h.key(MINER, StepKind::Era5Score);
    h.pass_give_up();
    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Ok(StepOutcome::Done(effects)) = &result else {
        panic!("every lead given up: done, got {result:?}");
    };
    assert!(effects.scores.is_empty());
    h.record(&claim, result).await;
    let leads: Vec<i32> = h.unavailable_leads().await.iter().map(|u| u.0).collect();
    assert_eq!(leads, vec![24, 48]);
    assert!(h.lead_scores(MINER).await.is_empty(), "no zero score");
    assert!(h.status(MINER).await.is_terminal());
}

/// The miner's store fails every read of `2t` (503): a retryable network failure blamed on
/// the miner, nothing scored; on the last attempt the forecast fails.
async fn a_miner_read_failure_on_the_last_attempt_fails_the_forecast(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 1).await;
    h.verify_and_day1(MINER).await;
    let key = h.key(MINER, StepKind::Era5Score);
    h.publisher.publish_all().unwrap();
    h.fail_chunks(MINER, "2t", 503);

    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Err(failure) = &result else {
        panic!("a failing store fails the step, got {result:?}");
    };
    assert!(failure.retryable, "{failure:?}");
    assert_eq!(failure.error.blame, Blame::Miner, "{failure:?}");
    assert_eq!(failure.error.kind, ErrorKind::Network, "{failure:?}");
    assert!(failure.effects.scores.is_empty(), "no lead was scored");
    let final_status = &failure.on_final.stats[0].1;
    assert_eq!(final_status.forecast_status, Some(ForecastStatus::Failed));
    let completion = h.record(&claim, result).await;
    assert!(matches!(completion.outcome, Outcome::Retry { .. }));
    assert_eq!(
        h.status(MINER).await,
        ForecastStatus::Day1Scored,
        "not final yet"
    );

    h.clock.advance(Duration::minutes(1));
    let outcome = h.run_step(key).await;
    let Outcome::Failed { error } = outcome else {
        panic!("the last attempt fails for good, got {outcome:?}");
    };
    assert_eq!(error.kind, ErrorKind::Network);
    let stats = h.stats(MINER).await;
    assert_eq!(stats.status().unwrap(), ForecastStatus::Failed);
    assert!(
        stats
            .forecast_error_msg
            .is_some_and(|m| m.contains("network")),
        "the miner's error is shown"
    );
    assert!(h.lead_scores(MINER).await.is_empty());
}

/// Lead 24 scored, then lead 48's read fails on the last attempt: the forecast ends
/// `era5_partial`, with lead 24's scores kept.
async fn a_final_failure_after_scored_leads_keeps_them(t: TestDb) {
    let h = Harness::start(t, vec![skilled(MINER)], 0).await;
    h.verify_and_day1(MINER).await;
    let key = h.key(MINER, StepKind::Era5Score);
    h.publish_through("2025-01-02");
    assert!(matches!(h.run_step(key).await, Outcome::Wait { .. }));
    let scored = h.lead_scores(MINER).await;
    assert_eq!(scored.len(), 1);

    h.publish_through("2025-01-03");
    h.fail_chunks(MINER, "2t", 503);
    recheck(&h);
    let claim = h.claim(key).await;
    let result = era5::score(h.ctx(), &claim).await;
    let Err(failure) = &result else {
        panic!("lead 48's read fails, got {result:?}");
    };
    assert_eq!(
        failure.on_final.stats[0].1.forecast_status,
        Some(ForecastStatus::Era5Partial)
    );
    let completion = h.record(&claim, result).await;
    assert!(
        matches!(completion.outcome, Outcome::Failed { .. }),
        "no retry left"
    );
    assert_eq!(h.status(MINER).await, ForecastStatus::Era5Partial);
    assert_eq!(h.lead_scores(MINER).await, scored, "lead 24 kept");
}

backend_tests!(
    partial_progress_scores_ready_leads_and_rerun_scores_only_the_missing,
    an_unpublished_lead_is_given_up_and_the_forecast_completes,
    every_lead_given_up_ends_the_step_without_scores,
    a_miner_read_failure_on_the_last_attempt_fails_the_forecast,
    a_final_failure_after_scored_leads_keeps_them,
);
