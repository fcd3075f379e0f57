//! The queue under the faults a multi-process run exposed: steps whose workers keep dying,
//! forced re-runs in finished runs, last steps finishing together (no deadlock on PostgreSQL),
//! a snapshot running while its run completes, a completion waiting for locks, batches whose
//! completions depend on each other, and rows wx cannot read.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use std::time::Duration;
use wx_model::{
    Backoff, ErrorKind, ForecastStatus, MinerUid, RetryPolicy, RunId, RunStatus, StepKey, StepKind,
    StepStatus, SystemClock,
};
use wx_store::testing::TestDb;
use wx_store::{
    Backend, Claim, ClaimRequest, Completion, Db, Effects, Fence, KeyClaim, MinerStatsRefresh,
    Outcome, RescueAction, RescueRequest, StatsPatch, StepLog, StepSpec, backend_tests,
};

const LEASE: Duration = Duration::from_secs(60);

async fn claim_all(db: &Db, kind: StepKind, n: usize, now: DateTime<Utc>) -> Vec<Claim> {
    db.queue()
        .claim(&ClaimRequest {
            worker: "w",
            kinds: &[kind],
            limit: n,
            lease: LEASE,
            now,
        })
        .await
        .unwrap()
}

async fn rescue(db: &Db, now: DateTime<Utc>, max_lost: u32) -> wx_store::RescueReport {
    let policy = move |_k: StepKind| RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::new(true, 5, max_lost, Backoff::None)
    };
    db.queue()
        .rescue_expired(&RescueRequest {
            worker: "rescuer",
            lease: LEASE,
            now,
            limit: 1,
            policy: &policy,
        })
        .await
        .unwrap()
}

fn snapshot_spec(run: RunId, at: DateTime<Utc>) -> StepSpec {
    StepSpec {
        key: StepKey::run_level(run, StepKind::AggregateSnapshot),
        hotkey: "coordinator".into(),
        status: StepStatus::Waiting,
        next_run_at: at,
        max_retries: 3,
        context: None,
    }
}

/// A miner's last step ending: a log row (its insert takes `FOR KEY SHARE` on the run), a
/// stats patch, a miner_stats refresh, and the run-completion check.
fn last_step_done(run: RunId, uid: u8, now: DateTime<Utc>) -> Completion {
    Completion {
        outcome: Outcome::Succeeded,
        context: None,
        effects: Effects {
            stats: vec![(
                MinerUid::new(uid),
                StatsPatch::status(ForecastStatus::Verified),
            )],
            logs: vec![StepLog {
                key: StepKey::miner(run, MinerUid::new(uid), StepKind::AggregateMinerStats),
                hotkey: format!("5Hotkey{uid:03}"),
                status: StepStatus::Succeeded,
                attempt: 0,
                max_retries: 0,
                started_at: now,
                completed_at: Some(now),
                error: None,
                context: None,
            }],
            refresh_miner_stats: vec![MinerStatsRefresh {
                uid: MinerUid::new(uid),
                hotkey: format!("5Hotkey{uid:03}"),
                day1_pass_threshold: 0.1,
            }],
            complete_run_if_done: true,
            ..Effects::default()
        },
    }
}

async fn a_step_given_up_after_lost_leases_applies_the_failures_effects(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(
            &[
                verify_spec(run, 1, t0()),
                snapshot_spec(run, t0() + secs(86_400)),
            ],
            t0(),
        )
        .await
        .unwrap();
    let dead = claim_all(db, StepKind::VerifyOpenStore, 1, t0())
        .await
        .remove(0);
    // no lost lease allowed: the first rescue takes the step over to give it up
    let rescued = rescue(db, t0() + secs(61), 0).await.rescued;
    let RescueAction::GiveUp { claim, error } = rescued[0].action.clone() else {
        panic!("expected a give-up: {:?}", rescued[0].action);
    };
    assert_eq!(error.kind, ErrorKind::LeaseLost);
    assert_ne!(claim.token, dead.token);
    let row = db.steps().get(&dead.key).await.unwrap().unwrap();
    assert_eq!(
        (
            row.status().unwrap(),
            row.claimed_by.as_deref(),
            row.lease_losses
        ),
        (StepStatus::InProgress, Some("rescuer"), 1)
    );
    // the failure with the effects any final failure of the step has, in one fenced completion
    let mut failed = last_step_done(run, 1, t0());
    failed.outcome = Outcome::Failed {
        error: error.clone(),
    };
    failed.effects.stats = vec![(
        MinerUid::new(1),
        StatsPatch {
            forecast_status: Some(ForecastStatus::VerifyFailed),
            forecast_error_msg: Some(error.to_json()),
            ..StatsPatch::default()
        },
    )];
    let at = t0() + secs(62);
    assert_eq!(
        db.queue().finish(&claim, &failed, at).await.unwrap(),
        Fence::Applied
    );
    assert_eq!(
        db.queue()
            .finish(&dead, &Completion::bare(Outcome::Succeeded), at)
            .await
            .unwrap(),
        Fence::Lost
    );
    let stats = db
        .stats()
        .get(run, MinerUid::new(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.status().unwrap(), ForecastStatus::VerifyFailed);
    assert!(stats.forecast_error_msg.unwrap().contains("lease_lost"));
    let miner = db
        .miner_stats()
        .get(MinerUid::new(1), "5Hotkey001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(miner.runs_total, 1);
    let run_row = db.runs().require(run).await.unwrap();
    assert_eq!(run_row.status().unwrap(), RunStatus::Completed);
    let row = db.steps().get(&dead.key).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.attempt, row.lease_losses),
        (StepStatus::Failed, 1, 1)
    );
}

async fn a_forced_rerun_in_a_finished_run_never_schedules_a_retry(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0()), snapshot_spec(run, t0())], t0())
        .await
        .unwrap();
    let c = claim_all(db, StepKind::VerifyOpenStore, 1, t0())
        .await
        .remove(0);
    db.queue()
        .finish(&c, &last_step_done(run, 1, t0()), t0())
        .await
        .unwrap();
    assert_eq!(
        db.runs().require(run).await.unwrap().status().unwrap(),
        RunStatus::Completed
    );
    // forced: one attempt only, stored with the row
    let KeyClaim::Claimed(forced) = db
        .queue()
        .claim_key(&c.key, "cli", LEASE, t0() + secs(10), true)
        .await
        .unwrap()
    else {
        panic!("force claims a finished step");
    };
    assert_eq!((forced.attempt, forced.max_retries), (0, 0));
    // the process running it dies: its step is given up, not rescheduled, even with lost
    // leases to spare
    let rescued = rescue(db, t0() + secs(80), 5).await.rescued;
    let RescueAction::GiveUp { claim, error } = rescued[0].action.clone() else {
        panic!("expected a give-up: {:?}", rescued[0].action);
    };
    db.queue()
        .finish(
            &claim,
            &Completion::bare(Outcome::Failed { error }),
            t0() + secs(81),
        )
        .await
        .unwrap();
    let rows = db.steps().list_run(run).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status().unwrap() != StepStatus::RetryScheduled),
        "no retry in a finished run: {rows:?}"
    );
    // the run's own snapshot goes on after its run completed: a lost lease reschedules it
    let snap = claim_all(db, StepKind::AggregateSnapshot, 1, t0() + secs(90))
        .await
        .remove(0);
    let rescued = rescue(db, t0() + secs(151), 5).await.rescued;
    assert_eq!(rescued[0].key, snap.key);
    assert!(matches!(
        rescued[0].action,
        RescueAction::Rescheduled { .. }
    ));
}

async fn last_steps_finishing_together_neither_deadlock_nor_miss_the_completion(t: TestDb) {
    const MINERS: u8 = 12;
    let db = &t.db;
    seeded_run(db, i64::from(MINERS)).await;
    let mut watch = t.raw().await;
    let deadlocks =
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()";
    let before = match db.backend() {
        Backend::Postgres => watch.number(deadlocks).await.unwrap(),
        Backend::Sqlite => 0,
    };
    // separate pools, like separate processes
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(Db::open(t.url()).await.unwrap());
    }
    for day in 1..=6 {
        let init: DateTime<Utc> = format!("2025-03-{day:02}T00:00:00Z").parse().unwrap();
        let run = RunId(
            db.runs()
                .create_or_get(init, true, "{}", t0())
                .await
                .unwrap()
                .run
                .id,
        );
        let miners: Vec<(MinerUid, String)> = (1..=MINERS)
            .map(|u| (MinerUid::new(u), format!("5Hotkey{u:03}")))
            .collect();
        db.stats().seed(run, &miners, t0()).await.unwrap();
        let specs: Vec<StepSpec> = (1..=MINERS).map(|u| verify_spec(run, u, t0())).collect();
        db.steps().enqueue(&specs, t0()).await.unwrap();
        let claims = claim_all(db, StepKind::VerifyOpenStore, MINERS.into(), t0()).await;
        assert_eq!(claims.len(), usize::from(MINERS));
        let finishes = claims.iter().enumerate().map(|(i, c)| {
            let worker = workers[i % workers.len()].clone();
            let done = last_step_done(run, c.key.miner.get(), t0());
            let c = c.clone();
            async move { worker.queue().finish(&c, &done, t0()).await }
        });
        for result in futures::future::join_all(finishes).await {
            assert_eq!(
                result.unwrap(),
                Fence::Applied,
                "no finish fails (no deadlock)"
            );
        }
        assert_eq!(
            db.runs().require(run).await.unwrap().status().unwrap(),
            RunStatus::Completed,
            "run of {init}: the last finish completed it"
        );
    }
    if db.backend() == Backend::Postgres {
        // a backend reports its counters when it exits
        drop(workers);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = watch.number(deadlocks).await.unwrap();
        assert_eq!(after, before, "PostgreSQL detected deadlocks");
    }
}

async fn a_snapshot_running_when_its_run_completes_is_re_armed(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0()), snapshot_spec(run, t0())], t0())
        .await
        .unwrap();
    let step = claim_all(db, StepKind::VerifyOpenStore, 1, t0())
        .await
        .remove(0);
    let snapshot = claim_all(db, StepKind::AggregateSnapshot, 1, t0())
        .await
        .remove(0);
    let done = t0() + secs(5);
    db.queue()
        .finish(&step, &last_step_done(run, 1, done), done)
        .await
        .unwrap();
    let completed_at = db.runs().require(run).await.unwrap().completed_at.unwrap();
    assert!(
        snapshot.started_at.naive_utc() < completed_at,
        "a snapshot claimed before the completion does not count as final"
    );
    // the snapshot, which read the stats before the completion, ends with its usual wait
    let later = t0() + secs(8);
    let wait = Completion::bare(Outcome::Wait {
        until: later + secs(600),
        reason: "next snapshot".into(),
    });
    db.queue().finish(&snapshot, &wait, later).await.unwrap();
    let row = db.steps().get(&snapshot.key).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.next_run_at, row.wake_requested),
        (StepStatus::Waiting, later.naive_utc(), false),
        "re-armed: the next snapshot is due at once, and it will see the final scores"
    );
    // without a wake, a wait keeps its time
    let again = claim_all(db, StepKind::AggregateSnapshot, 1, later)
        .await
        .remove(0);
    db.queue().finish(&again, &wait, later).await.unwrap();
    let row = db.steps().get(&snapshot.key).await.unwrap().unwrap();
    assert_eq!(row.next_run_at, (later + secs(600)).naive_utc());
}

async fn completed_at_is_read_once_the_locks_are_held(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0())], t0())
        .await
        .unwrap();
    let step = claim_all(db, StepKind::VerifyOpenStore, 1, t0())
        .await
        .remove(0);
    let mut blocker = t.raw().await;
    let hold = match db.backend() {
        Backend::Postgres => format!(
            "BEGIN; SELECT id FROM weather_forecast_runs WHERE id = {} FOR UPDATE;",
            run.0
        ),
        Backend::Sqlite => "BEGIN IMMEDIATE;".to_owned(),
    };
    blocker.batch(&hold).await.unwrap();
    let started = Utc::now();
    let finisher = {
        let db = db.clone();
        tokio::spawn(async move {
            let clock = SystemClock;
            db.queue()
                .with_clock(&clock)
                .finish(&step, &last_step_done(run, 1, Utc::now()), Utc::now())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let released = Utc::now();
    blocker.batch("COMMIT;").await.unwrap();
    assert_eq!(finisher.await.unwrap().unwrap(), Fence::Applied);
    let completed_at = db.runs().require(run).await.unwrap().completed_at.unwrap();
    assert!(
        completed_at >= released.naive_utc(),
        "completed_at {completed_at} predates the end of the lock wait {released} (started {started})"
    );
}

async fn a_batch_checks_completion_after_every_write_of_the_batch(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    db.steps()
        .enqueue(
            &[verify_spec(run, 1, t0()), verify_spec(run, 2, t0())],
            t0(),
        )
        .await
        .unwrap();
    let claims = claim_all(db, StepKind::VerifyOpenStore, 2, t0()).await;
    let (last, other) = if claims[0].key.miner == MinerUid::new(1) {
        (&claims[0], &claims[1])
    } else {
        (&claims[1], &claims[0])
    };
    // miner 2's step succeeds and enqueues its successor in the same batch as miner 1's last
    // step: the run is not done
    let successor = Completion {
        outcome: Outcome::Succeeded,
        context: None,
        effects: Effects {
            enqueue: vec![StepSpec {
                key: StepKey::miner(run, MinerUid::new(2), StepKind::Day1Score),
                ..verify_spec(run, 2, t0())
            }],
            ..Effects::default()
        },
    };
    let done = last_step_done(run, 1, t0());
    let fences = db
        .queue()
        .finish_many(&[(last, &done), (other, &successor)], t0())
        .await
        .unwrap();
    assert_eq!(fences, vec![Fence::Applied, Fence::Applied]);
    assert_ne!(
        db.runs().require(run).await.unwrap().status().unwrap(),
        RunStatus::Completed,
        "miner 2's Day1 step is open"
    );
}

async fn unreadable_rows_are_reported_on_every_round_and_block_no_rescue(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0())], t0())
        .await
        .unwrap();
    let step = claim_all(db, StepKind::VerifyOpenStore, 1, t0() + secs(10))
        .await
        .remove(0);
    // a step of a kind this version does not know (a newer wx on the same database), whose
    // lease expired before the known one's
    t.execute(&format!(
        "INSERT INTO weather_forecast_steps (run_id, miner_uid, miner_hotkey, step_name, substep, \
         lead_hours, status, attempt, max_retries, next_run_at, lease_expires_at, claim_token, \
         claimed_by, created_at, updated_at) VALUES ({}, 1, 'h', 'future', 'kind', 0, \
         'in_progress', 0, 3, '2025-01-10 12:00:00', '2025-01-10 12:00:01', 'tok', 'new-wx', \
         '2025-01-10 12:00:00', '2025-01-10 12:00:00')",
        run.0
    ))
    .await
    .unwrap();
    for round in 0..2 {
        let report = rescue(db, t0() + secs(600 + round), 3).await;
        assert_eq!(report.corrupt.len(), 1, "round {round}: {report:?}");
        assert!(report.corrupt[0].problem.contains("future/kind"));
        if round == 0 {
            // with a limit of one row per round, the known step is still rescued
            assert_eq!(report.rescued.len(), 1);
            assert_eq!(report.rescued[0].key, step.key);
        }
    }
}

backend_tests!(
    a_step_given_up_after_lost_leases_applies_the_failures_effects,
    a_forced_rerun_in_a_finished_run_never_schedules_a_retry,
    last_steps_finishing_together_neither_deadlock_nor_miss_the_completion,
    a_snapshot_running_when_its_run_completes_is_re_armed,
    completed_at_is_read_once_the_locks_are_held,
    a_batch_checks_completion_after_every_write_of_the_batch,
    unreadable_rows_are_reported_on_every_round_and_block_no_rescue,
);
