//! The durable step queue: claim order, leases, fencing, retries, waiting, rescue, release.

mod common;

use common::*;
use std::time::Duration;
use wx_model::rows::NewScore;
use wx_model::score_type;
use wx_model::{
    Backoff, Blame, ErrorKind, MinerUid, RetryPolicy, StepError, StepKey, StepKind, StepStatus,
};
use wx_store::testing::TestDb;
use wx_store::{
    ClaimRequest, Completion, Db, Effects, Fence, KeyClaim, Outcome, RescueAction, RescueReport,
    RescueRequest, StatsPatch, StepSpec, backend_tests,
};

const LEASE: Duration = Duration::from_secs(60);

fn req<'a>(
    worker: &'a str,
    kinds: &'a [StepKind],
    limit: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> ClaimRequest<'a> {
    ClaimRequest {
        worker,
        kinds,
        limit,
        lease: LEASE,
        now,
    }
}

/// One rescue round by worker `rescuer` with the lost-lease policy `policy`.
async fn rescue(db: &Db, now: chrono::DateTime<chrono::Utc>, policy: RetryPolicy) -> RescueReport {
    let policy = move |_k: StepKind| policy;
    db.queue()
        .rescue_expired(&RescueRequest {
            worker: "rescuer",
            lease: LEASE,
            now,
            limit: 10,
            policy: &policy,
        })
        .await
        .unwrap()
}

fn miner_error(msg: &str) -> StepError {
    StepError::new(ErrorKind::Network, Blame::Miner, msg, &[])
}

fn a_score(run: wx_model::RunId, uid: i32) -> NewScore {
    NewScore {
        run_id: run.0,
        miner_uid: uid,
        miner_hotkey: "h".into(),
        score_type: score_type::DAY1_QC_SCORE.into(),
        variable: String::new(),
        level: 0,
        lead_hours: 0,
        score: Some(0.5),
        valid_time_utc: None,
        error_message: None,
        metrics: None,
        calculated_at: t0().naive_utc(),
    }
}

async fn claims_only_due_rows_retries_first_then_by_time(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 4).await;
    let verify = [StepKind::VerifyOpenStore];
    db.steps()
        .enqueue(
            &[
                verify_spec(run, 1, t0() - secs(30)),
                verify_spec(run, 2, t0() - secs(60)),
                verify_spec(run, 3, t0() + secs(600)), // not due yet
                verify_spec(run, 4, t0() - secs(10)),
            ],
            t0(),
        )
        .await
        .unwrap();
    // miner 4 fails once and is scheduled for retry at t0: it must come first afterwards
    let c = db.queue().claim(&req("w", &verify, 1, t0())).await.unwrap();
    assert_eq!(c[0].key.miner, MinerUid::new(2), "oldest next_run_at first");
    let fence = db
        .queue()
        .finish(
            &c[0],
            &Completion::bare(Outcome::Retry {
                at: t0(),
                error: miner_error("refused"),
            }),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(fence, Fence::Applied);
    let claims = db
        .queue()
        .claim(&req("w", &verify, 10, t0()))
        .await
        .unwrap();
    let order: Vec<u8> = claims.iter().map(|c| c.key.miner.get()).collect();
    assert_eq!(
        order,
        vec![2, 1, 4],
        "retry_scheduled first, then by next_run_at; miner 3 is not due"
    );
    assert_eq!(claims[0].claimed_from, StepStatus::RetryScheduled);
    assert_eq!(claims[0].attempt, 1, "the failed attempt was consumed");
    assert!(
        db.queue()
            .claim(&req("w", &verify, 10, t0()))
            .await
            .unwrap()
            .is_empty(),
        "claimed rows are not due"
    );
    // other kinds are not claimed when not asked for
    assert!(
        db.queue()
            .claim(&req("w", &[StepKind::Day1Score], 10, t0() + secs(3600)))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.queue().next_due_at(&verify).await.unwrap(),
        Some(t0() + secs(600))
    );
}

async fn completion_applies_effects_atomically(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0())], t0())
        .await
        .unwrap();
    let claim = db
        .queue()
        .claim(&req("w", &[StepKind::VerifyOpenStore], 1, t0()))
        .await
        .unwrap()
        .remove(0);
    let day1 = StepSpec {
        key: StepKey::miner(run, MinerUid::new(1), StepKind::Day1Score),
        hotkey: "5Hotkey001".into(),
        status: StepStatus::Pending,
        next_run_at: t0(),
        max_retries: 3,
        context: None,
    };
    // an effect that violates a constraint (scores for a miner without a stats row) rolls back
    // the whole completion: the step stays claimed and nothing else is written
    let bad = Completion {
        outcome: Outcome::Succeeded,
        context: None,
        effects: Effects {
            scores: vec![a_score(run, 99)],
            enqueue: vec![day1.clone()],
            ..Default::default()
        },
    };
    assert!(db.queue().finish(&claim, &bad, t0()).await.is_err());
    let row = db.steps().get(&claim.key).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), StepStatus::InProgress);
    assert!(db.steps().get(&day1.key).await.unwrap().is_none());

    let good = Completion {
        outcome: Outcome::Succeeded,
        context: Some(serde_json::json!({"latency_ms": 12})),
        effects: Effects {
            scores: vec![a_score(run, 1)],
            stats: vec![(
                MinerUid::new(1),
                StatsPatch::status(wx_model::ForecastStatus::Verified),
            )],
            enqueue: vec![day1.clone()],
            refresh_miner_stats: vec![wx_store::MinerStatsRefresh {
                uid: MinerUid::new(1),
                hotkey: "5Hotkey001".into(),
                day1_pass_threshold: 0.1,
            }],
            ..Default::default()
        },
    };
    assert_eq!(
        db.queue()
            .finish(&claim, &good, t0() + secs(3))
            .await
            .unwrap(),
        Fence::Applied
    );
    let row = db.steps().get(&claim.key).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), StepStatus::Succeeded);
    assert_eq!(row.latency_ms, Some(3000));
    assert!(row.claim_token.is_none() && row.lease_expires_at.is_none());
    assert_eq!(row.context.as_deref(), Some("{\"latency_ms\":12}"));
    assert_eq!(
        db.scores()
            .list_miner(run, MinerUid::new(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        db.steps()
            .get(&day1.key)
            .await
            .unwrap()
            .unwrap()
            .status()
            .unwrap(),
        StepStatus::Pending
    );
    let stats = db
        .stats()
        .get(run, MinerUid::new(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.status().unwrap(), wx_model::ForecastStatus::Verified);
    assert_eq!(
        db.miner_stats()
            .get(MinerUid::new(1), "5Hotkey001")
            .await
            .unwrap()
            .unwrap()
            .runs_total,
        1
    );
    // finishing twice is fenced
    assert_eq!(
        db.queue().finish(&claim, &good, t0()).await.unwrap(),
        Fence::Lost
    );
}

async fn a_worker_that_stops_heartbeating_loses_its_step(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    db.steps()
        .enqueue(&[verify_spec(run, 1, t0())], t0())
        .await
        .unwrap();
    let kinds = [StepKind::VerifyOpenStore];
    let stalled = db
        .queue()
        .claim(&req("stalled", &kinds, 1, t0()))
        .await
        .unwrap()
        .remove(0);
    // a live worker heartbeats; the stalled one does not
    assert_eq!(
        db.queue()
            .heartbeat(&[&stalled], LEASE, t0() + secs(30))
            .await
            .unwrap(),
        vec![true]
    );
    let policy = RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::new(true, 5, 3, Backoff::None)
    };
    assert!(
        rescue(db, t0() + secs(80), policy).await.rescued.is_empty(),
        "lease was extended"
    );
    let rescued = rescue(db, t0() + secs(91), policy).await.rescued;
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].claimed_by.as_deref(), Some("stalled"));
    assert_eq!(
        rescued[0].action,
        RescueAction::Rescheduled {
            at: t0() + secs(96)
        }
    );
    let row = db.steps().get(&stalled.key).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), StepStatus::RetryScheduled);
    assert_eq!(
        (row.attempt, row.lease_losses),
        (0, 1),
        "a lost lease is counted apart: it is not the step's failure"
    );
    assert_eq!(row.next_run_at, (t0() + secs(96)).naive_utc());
    assert!(row.error_json.unwrap().contains("lease_lost"));

    let fresh = db
        .queue()
        .claim(&req("fresh", &kinds, 1, t0() + secs(96)))
        .await
        .unwrap()
        .remove(0);
    assert_ne!(fresh.token, stalled.token);
    // the stalled worker wakes up: its heartbeat and its completion are rejected and leave no trace
    assert_eq!(
        db.queue()
            .heartbeat(&[&stalled], LEASE, t0() + secs(97))
            .await
            .unwrap(),
        vec![false]
    );
    let late = Completion {
        outcome: Outcome::Succeeded,
        context: None,
        effects: Effects {
            scores: vec![a_score(run, 1)],
            ..Default::default()
        },
    };
    assert_eq!(
        db.queue()
            .finish(&stalled, &late, t0() + secs(98))
            .await
            .unwrap(),
        Fence::Lost
    );
    assert!(
        db.scores()
            .list_miner(run, MinerUid::new(1))
            .await
            .unwrap()
            .is_empty(),
        "no trace of the late completion"
    );
    assert_eq!(
        db.steps()
            .get(&stalled.key)
            .await
            .unwrap()
            .unwrap()
            .claimed_by
            .as_deref(),
        Some("fresh")
    );
    assert_eq!(
        db.queue()
            .finish(
                &fresh,
                &Completion::bare(Outcome::Succeeded),
                t0() + secs(99)
            )
            .await
            .unwrap(),
        Fence::Applied
    );
}

async fn retries_follow_each_backoff_kind_until_failed(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 3).await;
    let kinds = [StepKind::VerifyOpenStore];
    for (uid, backoff, expected) in [
        (1u8, Backoff::Exponential, [10.0, 20.0, 40.0]),
        (2, Backoff::Linear, [10.0, 20.0, 30.0]),
        (3, Backoff::None, [10.0; 3]),
    ] {
        let mut spec = verify_spec(run, uid, t0());
        spec.max_retries = 3;
        db.steps().enqueue(&[spec.clone()], t0()).await.unwrap();
        let policy = RetryPolicy::new(true, 10, 3, backoff);
        let mut now = t0();
        // lost leases drive the lost-lease policy inside the store; each rescue counts a lost
        // lease, not an attempt
        for (i, nominal) in expected.iter().enumerate() {
            let got = db.queue().claim(&req("w", &kinds, 10, now)).await.unwrap();
            let claim = got
                .into_iter()
                .find(|c| c.key == spec.key)
                .unwrap_or_else(|| panic!("step not due at {now}"));
            assert_eq!((claim.attempt, claim.lease_losses as usize), (0, i));
            let expiry = now + secs(61);
            let rescued = rescue(db, expiry, policy).await.rescued;
            assert!(matches!(
                rescued[0].action,
                RescueAction::Rescheduled { .. }
            ));
            let row = db.steps().get(&spec.key).await.unwrap().unwrap();
            assert_eq!(row.status().unwrap(), StepStatus::RetryScheduled);
            let delay = (row.next_run_at - expiry.naive_utc()).as_seconds_f64();
            assert!(
                delay >= nominal * 0.9 - 1e-3 && delay <= nominal * 1.1 + 1e-3,
                "{backoff:?} lost lease {}: delay {delay} outside ±10 % of {nominal}",
                i + 1
            );
            now = chrono::DateTime::from_naive_utc_and_offset(row.next_run_at, chrono::Utc);
        }
        // the fourth lost lease exhausts max_retries = 3: the rescuer takes the step over and
        // ends it as failed through the fenced completion
        let claim = db
            .queue()
            .claim(&req("w", &kinds, 10, now))
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.key == spec.key)
            .unwrap();
        assert_eq!(claim.lease_losses, 3);
        let rescued = rescue(db, now + secs(61), policy).await.rescued;
        let RescueAction::GiveUp {
            claim: taken,
            error,
        } = rescued[0].action.clone()
        else {
            panic!("expected a give-up, got {:?}", rescued[0].action);
        };
        assert_eq!(
            db.queue()
                .finish(
                    &claim,
                    &Completion::bare(Outcome::Succeeded),
                    now + secs(62)
                )
                .await
                .unwrap(),
            Fence::Lost,
            "the worker that lost the lease is fenced out"
        );
        let failed = Completion::bare(Outcome::Failed { error });
        assert_eq!(
            db.queue()
                .finish(&taken, &failed, now + secs(62))
                .await
                .unwrap(),
            Fence::Applied
        );
        let row = db.steps().get(&spec.key).await.unwrap().unwrap();
        assert_eq!(
            (row.status().unwrap(), row.attempt, row.lease_losses),
            (StepStatus::Failed, 1, 4)
        );
        assert!(row.completed_at.is_some());
        assert!(row.error_json.unwrap().contains("lease_lost"));
    }
    // an explicit Failed outcome (decided by the step wrapper) is terminal and counts an attempt
    let mut spec = verify_spec(run, 1, t0());
    spec.key.kind = StepKind::Day1Score;
    db.steps().enqueue(&[spec.clone()], t0()).await.unwrap();
    let c = db
        .queue()
        .claim(&req("w", &[StepKind::Day1Score], 1, t0()))
        .await
        .unwrap()
        .remove(0);
    db.queue()
        .finish(
            &c,
            &Completion::bare(Outcome::Failed {
                error: miner_error("bad store"),
            }),
            t0(),
        )
        .await
        .unwrap();
    let row = db.steps().get(&spec.key).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.attempt),
        (StepStatus::Failed, 1)
    );
    assert!(row.error_json.unwrap().contains("bad store"));
    assert!(
        db.queue()
            .claim(&req("w", &[StepKind::Day1Score], 1, t0() + secs(1_000_000)))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn waiting_steps_become_due_without_consuming_attempts(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    let key = StepKey::miner(run, MinerUid::new(1), StepKind::Era5Score);
    let spec = StepSpec {
        key,
        hotkey: "5Hotkey001".into(),
        status: StepStatus::Waiting,
        next_run_at: t0() + secs(3600),
        max_retries: 2,
        context: None,
    };
    db.steps().enqueue(&[spec], t0()).await.unwrap();
    let kinds = [StepKind::Era5Score];
    assert!(
        db.queue()
            .claim(&req("w", &kinds, 1, t0() + secs(3599)))
            .await
            .unwrap()
            .is_empty()
    );
    let mut now = t0() + secs(3600);
    for _ in 0..5 {
        let c = db
            .queue()
            .claim(&req("w", &kinds, 1, now))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(c.attempt, 0, "waiting never consumes an attempt");
        let until = now + secs(600);
        let done = Completion::bare(Outcome::Wait {
            until,
            reason: "ERA5 for lead 48h".into(),
        });
        db.queue().finish(&c, &done, now).await.unwrap();
        let row = db.steps().get(&key).await.unwrap().unwrap();
        assert_eq!(row.status().unwrap(), StepStatus::Waiting);
        assert!(row.context.unwrap().contains("ERA5 for lead 48h"));
        now = until;
    }
    let c = db
        .queue()
        .claim(&req("w", &kinds, 1, now))
        .await
        .unwrap()
        .remove(0);
    db.queue()
        .finish(&c, &Completion::bare(Outcome::Succeeded), now)
        .await
        .unwrap();
    let row = db.steps().get(&key).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.attempt),
        (StepStatus::Succeeded, 0)
    );
}

async fn release_and_claim_by_key(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    db.steps()
        .enqueue(
            &[
                verify_spec(run, 1, t0()),
                verify_spec(run, 2, t0() + secs(3600)),
            ],
            t0(),
        )
        .await
        .unwrap();
    let kinds = [StepKind::VerifyOpenStore];
    let c = db.queue().claim(&req("w", &kinds, 5, t0())).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        db.queue().release(&[&c[0]], t0() + secs(1)).await.unwrap(),
        vec![Fence::Applied]
    );
    let row = db.steps().get(&c[0].key).await.unwrap().unwrap();
    assert_eq!(
        (row.status().unwrap(), row.attempt),
        (StepStatus::Pending, 0)
    );

    let key2 = StepKey::miner(run, MinerUid::new(2), StepKind::VerifyOpenStore);
    match db
        .queue()
        .claim_key(&key2, "cli", LEASE, t0(), false)
        .await
        .unwrap()
    {
        KeyClaim::NotDue { status, .. } => assert_eq!(status, StepStatus::Pending),
        other => panic!("expected NotDue, got {other:?}"),
    }
    let KeyClaim::Claimed(forced) = db
        .queue()
        .claim_key(&key2, "cli", LEASE, t0(), true)
        .await
        .unwrap()
    else {
        panic!("force must claim");
    };
    match db
        .queue()
        .claim_key(&key2, "other", LEASE, t0(), true)
        .await
        .unwrap()
    {
        KeyClaim::Busy { claimed_by, .. } => assert_eq!(claimed_by.as_deref(), Some("cli")),
        other => panic!("expected Busy, got {other:?}"),
    }
    db.queue()
        .finish(&forced, &Completion::bare(Outcome::Succeeded), t0())
        .await
        .unwrap();
    // a forced re-run of a finished step starts over with fresh attempts
    let KeyClaim::Claimed(again) = db
        .queue()
        .claim_key(&key2, "cli", LEASE, t0(), true)
        .await
        .unwrap()
    else {
        panic!("force must re-claim a finished step");
    };
    assert_eq!(
        (again.attempt, again.claimed_from),
        (0, StepStatus::Succeeded)
    );
    let missing = StepKey::miner(run, MinerUid::new(9), StepKind::VerifyOpenStore);
    assert_eq!(
        db.queue()
            .claim_key(&missing, "cli", LEASE, t0(), true)
            .await
            .unwrap(),
        KeyClaim::Missing
    );
}

fn snapshot_spec(run: wx_model::RunId, at: chrono::DateTime<chrono::Utc>) -> StepSpec {
    StepSpec {
        key: StepKey::run_level(run, StepKind::AggregateSnapshot),
        hotkey: String::new(),
        status: StepStatus::Waiting,
        next_run_at: at,
        max_retries: 3,
        context: None,
    }
}

fn done_if_last() -> Completion {
    Completion {
        outcome: Outcome::Succeeded,
        context: None,
        effects: Effects {
            complete_run_if_done: true,
            ..Effects::default()
        },
    }
}

async fn the_last_finish_completes_the_run_and_wakes_its_snapshot(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    let tomorrow = t0() + secs(86_400);
    let mut specs = vec![verify_spec(run, 1, t0()), verify_spec(run, 2, t0())];
    specs.push(snapshot_spec(run, tomorrow));
    db.steps().enqueue(&specs, t0()).await.unwrap();
    let kinds = [StepKind::VerifyOpenStore];
    let claims = db.queue().claim(&req("w", &kinds, 2, t0())).await.unwrap();
    assert_eq!(claims.len(), 2);

    let first = t0() + secs(5);
    db.queue()
        .finish(&claims[0], &done_if_last(), first)
        .await
        .unwrap();
    let row = db.runs().require(run).await.unwrap();
    assert_ne!(
        row.status().unwrap(),
        wx_model::RunStatus::Completed,
        "one step is still open"
    );
    let snap_key = StepKey::run_level(run, StepKind::AggregateSnapshot);
    let snap = db.steps().get(&snap_key).await.unwrap().unwrap();
    assert_eq!(
        snap.next_run_at,
        tomorrow.naive_utc(),
        "the snapshot keeps its period"
    );

    let last = t0() + secs(9);
    db.queue()
        .finish(&claims[1], &done_if_last(), last)
        .await
        .unwrap();
    let row = db.runs().require(run).await.unwrap();
    assert_eq!(row.status().unwrap(), wx_model::RunStatus::Completed);
    assert_eq!(row.completed_at, Some(last.naive_utc()));
    let snap = db.steps().get(&snap_key).await.unwrap().unwrap();
    assert_eq!(
        (snap.status().unwrap(), snap.next_run_at, snap.attempt),
        (StepStatus::Waiting, last.naive_utc(), 0),
        "the run's snapshot is woken without consuming an attempt"
    );
    let due = db
        .queue()
        .claim(&req("w", &[StepKind::AggregateSnapshot], 1, last))
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "the woken snapshot is due at once");
}

async fn two_last_steps_finishing_at_once_complete_the_run(t: TestDb) {
    let db = &t.db;
    seeded_run(db, 2).await;
    let kinds = [StepKind::VerifyOpenStore];
    for day in 1..=12 {
        let init = chrono::NaiveDate::from_ymd_opt(2025, 2, day)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let run = wx_model::RunId(
            db.runs()
                .create_or_get(init, true, "{}", t0())
                .await
                .unwrap()
                .run
                .id,
        );
        db.steps()
            .enqueue(
                &[verify_spec(run, 1, t0()), verify_spec(run, 2, t0())],
                t0(),
            )
            .await
            .unwrap();
        let claims = db.queue().claim(&req("w", &kinds, 2, t0())).await.unwrap();
        assert_eq!(claims.len(), 2);
        let done = done_if_last();
        let (qa, qb) = (db.queue(), db.queue());
        let (a, b) = tokio::join!(
            qa.finish(&claims[0], &done, t0()),
            qb.finish(&claims[1], &done, t0())
        );
        assert_eq!((a.unwrap(), b.unwrap()), (Fence::Applied, Fence::Applied));
        let row = db.runs().require(run).await.unwrap();
        assert_eq!(
            row.status().unwrap(),
            wx_model::RunStatus::Completed,
            "run of {init}: neither finish may miss that the other was the last"
        );
    }
}

async fn a_batch_of_bare_completions_is_fenced_per_step(t: TestDb) {
    // Batched ends of attempts without effects (one statement on PostgreSQL): each is fenced
    // on its own claim, and each outcome lands on its own row.
    let db = &t.db;
    let run = seeded_run(db, 4).await;
    let specs: Vec<_> = (1..=4).map(|uid| verify_spec(run, uid, t0())).collect();
    db.steps().enqueue(&specs, t0()).await.unwrap();
    let kinds = [StepKind::VerifyOpenStore];
    let claims = db.queue().claim(&req("w", &kinds, 4, t0())).await.unwrap();
    assert_eq!(claims.len(), 4);
    // the third claim is lost: rescued after its lease and claimed again by another worker
    let mut lost = claims[2].clone();
    lost.token = "a token nobody holds".into();
    let ok = Completion::bare(Outcome::Succeeded);
    let retry = Completion::bare(Outcome::Retry {
        at: t0() + secs(50),
        error: miner_error("timeout"),
    });
    let failed = Completion::bare(Outcome::Failed {
        error: miner_error("gone"),
    });
    let items = [
        (&claims[0], &ok),
        (&claims[1], &retry),
        (&lost, &ok),
        (&claims[3], &failed),
    ];
    let fences = db
        .queue()
        .finish_many(&items, t0() + secs(2))
        .await
        .unwrap();
    assert_eq!(
        fences,
        vec![Fence::Applied, Fence::Applied, Fence::Lost, Fence::Applied]
    );
    let row = |i: usize| {
        let key = claims[i].key;
        async move { db.steps().get(&key).await.unwrap().unwrap() }
    };
    let r0 = row(0).await;
    assert_eq!(r0.status().unwrap(), StepStatus::Succeeded);
    assert_eq!(r0.latency_ms, Some(2000));
    assert!(r0.claim_token.is_none() && r0.lease_expires_at.is_none());
    assert!(r0.completed_at.is_some() && r0.error_json.is_none());
    let r1 = row(1).await;
    assert_eq!(r1.status().unwrap(), StepStatus::RetryScheduled);
    assert_eq!(r1.attempt, claims[1].attempt as i32 + 1);
    assert_eq!(r1.next_run_at, (t0() + secs(50)).naive_utc());
    assert!(r1.completed_at.is_none());
    assert!(r1.error_json.unwrap().contains("timeout"));
    let r2 = row(2).await;
    assert_eq!(
        r2.status().unwrap(),
        StepStatus::InProgress,
        "a lost claim changes nothing"
    );
    assert_eq!(r2.claim_token.as_deref(), Some(claims[2].token.as_str()));
    let r3 = row(3).await;
    assert_eq!(r3.status().unwrap(), StepStatus::Failed);
    assert!(r3.error_json.unwrap().contains("gone"));
    // a claim listed twice in one batch is applied once, as two finishes in a row would be
    let again = db
        .queue()
        .claim(&req("w", &kinds, 1, t0() + secs(60)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.key, claims[1].key);
    let fences = db
        .queue()
        .finish_many(&[(&again, &ok), (&again, &ok)], t0() + secs(61))
        .await
        .unwrap();
    assert_eq!(fences, vec![Fence::Applied, Fence::Lost]);
    assert_eq!(row(1).await.status().unwrap(), StepStatus::Succeeded);
    // one bare completion alone (a single statement without a transaction) is fenced too
    assert_eq!(
        db.queue()
            .finish(&claims[0], &ok, t0() + secs(3))
            .await
            .unwrap(),
        Fence::Lost
    );
    assert_eq!(
        db.queue()
            .finish(&claims[2], &ok, t0() + secs(3))
            .await
            .unwrap(),
        Fence::Applied
    );
    assert_eq!(row(2).await.status().unwrap(), StepStatus::Succeeded);
}

backend_tests!(
    the_last_finish_completes_the_run_and_wakes_its_snapshot,
    two_last_steps_finishing_at_once_complete_the_run,
    claims_only_due_rows_retries_first_then_by_time,
    completion_applies_effects_atomically,
    a_worker_that_stops_heartbeating_loses_its_step,
    retries_follow_each_backoff_kind_until_failed,
    waiting_steps_become_due_without_consuming_attempts,
    release_and_claim_by_key,
    a_batch_of_bare_completions_is_fenced_per_step,
);
