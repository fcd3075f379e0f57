//! Every repository operation, on a real SQLite file and a real PostgreSQL database.

mod common;

use common::*;
use wx_model::rows::{NewResponse, NewScore};
use wx_model::score_type;
use wx_model::{ForecastStatus, MinerUid, RunId, RunStatus, StepKey, StepKind, StepStatus};
use wx_store::testing::TestDb;
use wx_store::{StatsPatch, StepLog, backend_tests};

async fn miners_import_is_an_upsert_and_validates(t: TestDb) {
    let db = &t.db;
    let summary = db
        .miners()
        .import(&[miner(1), miner(2)], t0())
        .await
        .unwrap();
    assert_eq!(summary.upserted, 2);
    let mut changed = miner(2);
    changed.store_url = "https://new.example/store".into();
    db.miners().import(&[changed.clone()], t0()).await.unwrap();
    let all = db.miners().list().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].store_url, "https://new.example/store");
    assert!(
        !format!("{:?}", all[1]).contains("token-secret"),
        "Debug must not print tokens"
    );

    let bad = wx_store::MinerRecord {
        uid: 300,
        ..miner(1)
    };
    assert!(
        db.miners()
            .import(&[bad], t0())
            .await
            .unwrap_err()
            .to_string()
            .contains("300")
    );
    let dup = db
        .miners()
        .import(&[miner(5), miner(5)], t0())
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("twice"), "{dup}");
    assert_eq!(
        db.miners().list().await.unwrap().len(),
        2,
        "a refused import changes nothing"
    );
    assert!(db.miners().remove(1, t0()).await.unwrap());
    assert!(db.miners().get(1).await.unwrap().is_none());
}

async fn runs_are_unique_per_init_and_mode(t: TestDb) {
    let db = &t.db;
    let init = "2025-01-01T00:00:00Z".parse().unwrap();
    let a = db
        .runs()
        .create_or_get(init, false, "{\"a\":1}", t0())
        .await
        .unwrap();
    let b = db
        .runs()
        .create_or_get(init, false, "{\"a\":2}", t0())
        .await
        .unwrap();
    let c = db
        .runs()
        .create_or_get(init, true, "{}", t0())
        .await
        .unwrap();
    assert!(a.created && !b.created && c.created);
    assert_eq!(a.run.id, b.run.id);
    assert_ne!(a.run.id, c.run.id);
    assert_eq!(
        b.run.config_json, "{\"a\":1}",
        "a reused run keeps its config snapshot"
    );
    assert_eq!(db.runs().latest().await.unwrap().unwrap().id, c.run.id);
    let id = RunId(a.run.id);
    assert!(
        db.runs()
            .set_status(id, RunStatus::Scoring, None, t0())
            .await
            .unwrap()
    );
    assert!(
        db.runs()
            .set_status(id, RunStatus::Completed, None, t0())
            .await
            .unwrap()
    );
    assert!(
        !db.runs()
            .set_status(id, RunStatus::Scoring, None, t0())
            .await
            .unwrap(),
        "terminal runs are not reopened"
    );
    let row = db.runs().require(id).await.unwrap();
    assert_eq!(row.status().unwrap(), RunStatus::Completed);
    assert!(row.completed_at.is_some());
    assert!(
        db.runs()
            .require(RunId(9999))
            .await
            .unwrap_err()
            .to_string()
            .contains("9999")
    );
    assert_eq!(
        db.runs()
            .since("2024-12-31T00:00:00Z".parse().unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn seeding_twice_leaves_the_same_rows_and_backfills(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 5).await;
    let before = db.stats().list(run).await.unwrap();
    assert_eq!(before.len(), 5);
    let again: Vec<(MinerUid, String)> = (1..=5)
        .map(|u| (MinerUid::new(u), format!("5Hotkey{u:03}")))
        .collect();
    assert_eq!(
        db.stats().seed(run, &again, t0() + secs(60)).await.unwrap(),
        0
    );
    assert_eq!(
        db.stats().list(run).await.unwrap(),
        before,
        "seeding twice changes nothing"
    );
    let mut more = again.clone();
    more.push((MinerUid::new(6), "5Hotkey006".into()));
    assert_eq!(
        db.stats().seed(run, &more, t0()).await.unwrap(),
        1,
        "a reused run backfills the new miner"
    );
    assert_eq!(db.stats().list(run).await.unwrap().len(), 6);
}

async fn stats_patches_never_move_status_backwards(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    let uid = MinerUid::new(1);
    let mut p = StatsPatch::status(ForecastStatus::Day1Scored);
    p.forecast_score_initial = Some(0.42);
    p.set_era5_lead(48, 0.5);
    p.set_era5_lead(36, 0.9); // no column: ignored
    assert!(db.stats().patch(run, uid, &p, t0()).await.unwrap());
    db.stats()
        .patch(
            run,
            uid,
            &StatsPatch::status(ForecastStatus::Verified),
            t0(),
        )
        .await
        .unwrap();
    let row = db.stats().get(run, uid).await.unwrap().unwrap();
    assert_eq!(
        row.status().unwrap(),
        ForecastStatus::Day1Scored,
        "status must not regress"
    );
    assert_eq!(row.forecast_score_initial, Some(0.42));
    assert_eq!(row.era5_score_48h, Some(0.5));
    assert_eq!(
        row.era5_lead_scores()
            .iter()
            .filter(|(_, s)| s.is_some())
            .count(),
        1
    );
    let nan = StatsPatch {
        avg_rmse: Some(f64::NAN),
        ..Default::default()
    };
    assert!(db.stats().patch(run, uid, &nan, t0()).await.is_err());
    let missing = db
        .stats()
        .patch(run, MinerUid::new(77), &p, t0())
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("seed"), "{missing}");
}

fn score(run: RunId, ty: &str, var: &str, level: i32, lead: i32, value: Option<f64>) -> NewScore {
    NewScore {
        run_id: run.0,
        miner_uid: 1,
        miner_hotkey: "5Hotkey001".into(),
        score_type: ty.into(),
        variable: var.into(),
        level,
        lead_hours: lead,
        score: value,
        valid_time_utc: None,
        error_message: value.is_none().then(|| "coverage 0.5 below 0.9985".into()),
        metrics: None,
        calculated_at: t0().naive_utc(),
    }
}

async fn scores_upsert_overwrites_and_never_duplicates(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    let rows = vec![
        score(run, score_type::ERA5_RMSE, "2t", 0, 24, Some(1.5)),
        score(run, score_type::ERA5_RMSE, "t", 500, 24, Some(0.9)),
        score(run, score_type::DAY1_QC_SCORE, "", 0, 0, Some(0.3)),
        score(run, score_type::ERA5_ERROR, "q", 0, 24, None),
    ];
    db.scores().upsert(&rows).await.unwrap();
    let mut rescored = rows.clone();
    rescored[0].score = Some(1.25);
    db.scores().upsert(&rescored).await.unwrap();
    let stored = db.scores().list_miner(run, MinerUid::new(1)).await.unwrap();
    assert_eq!(
        stored.len(),
        4,
        "re-scoring overwrites, it never duplicates"
    );
    let rmse = stored.iter().find(|s| s.variable == "2t").unwrap();
    assert_eq!(rmse.score, Some(1.25));
    let err = db
        .scores()
        .upsert(&[score(
            run,
            score_type::ERA5_ACC,
            "2t",
            0,
            24,
            Some(f64::INFINITY),
        )])
        .await;
    assert!(err.unwrap_err().to_string().contains("not finite"));
    let unknown = db
        .scores()
        .upsert(&[score(run, "era5_rmse_2t_24h", "2t", 0, 24, Some(1.0))])
        .await;
    assert!(unknown.is_err());
    db.scores()
        .upsert(&[score(
            run,
            score_type::ERA5_LEAD_SCORE,
            "",
            0,
            48,
            Some(0.7),
        )])
        .await
        .unwrap();
    assert_eq!(
        db.scores()
            .scored_era5_leads(run, MinerUid::new(1))
            .await
            .unwrap(),
        vec![48]
    );
    assert_eq!(db.scores().list_run(run).await.unwrap().len(), 5);
}

async fn steps_enqueue_is_idempotent_and_logs_upsert(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    let specs = vec![verify_spec(run, 1, t0()), verify_spec(run, 2, t0())];
    assert_eq!(db.steps().enqueue(&specs, t0()).await.unwrap(), 2);
    assert_eq!(
        db.steps().enqueue(&specs, t0()).await.unwrap(),
        0,
        "upserting the same key twice leaves one row"
    );
    assert_eq!(db.steps().list_run(run).await.unwrap().len(), 2);

    let key = StepKey::lead(run, MinerUid::new(1), StepKind::Era5Lead, 24);
    let mut log = StepLog {
        key,
        hotkey: "5Hotkey001".into(),
        status: StepStatus::InProgress,
        attempt: 0,
        max_retries: 3,
        started_at: t0(),
        completed_at: None,
        error: None,
        context: None,
    };
    db.steps().log(&[log.clone()], t0()).await.unwrap();
    log.status = StepStatus::Succeeded;
    log.completed_at = Some(t0() + secs(2));
    db.steps().log(&[log.clone()], t0()).await.unwrap();
    let row = db.steps().get(&key).await.unwrap().unwrap();
    assert_eq!(row.status().unwrap(), StepStatus::Succeeded);
    assert_eq!(row.latency_ms, Some(2000));
    assert_eq!(
        db.steps()
            .list_miner(run, MinerUid::new(1))
            .await
            .unwrap()
            .len(),
        2
    );

    let counts = db.steps().counts(Some(run)).await.unwrap();
    assert_eq!(
        counts.get(StepKind::VerifyOpenStore, StepStatus::Pending),
        2
    );
    assert_eq!(counts.get(StepKind::Era5Lead, StepStatus::Succeeded), 1);
    assert!(db.steps().run_has_open_work(run).await.unwrap());

    // a log row can't be enqueued as work and work can't be logged
    let mut bad = verify_spec(run, 1, t0());
    bad.key.kind = StepKind::Era5Lead;
    assert!(db.steps().enqueue(&[bad], t0()).await.is_err());
    log.key.kind = StepKind::VerifyOpenStore;
    assert!(db.steps().log(&[log], t0()).await.is_err());
}

async fn responses_and_snapshots_round_trip(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 1).await;
    assert!(
        db.responses()
            .get(run, MinerUid::new(1))
            .await
            .unwrap()
            .is_none()
    );
    let snap = wx_model::rows::NewSnapshot {
        taken_at: t0().naive_utc(),
        lookback_days: 15,
        runs_covered: "[1]".into(),
        scores: "{\"1\":0.5}".into(),
        weights: "{\"1\":1.0}".into(),
        note: None,
    };
    let id = db.snapshots().insert(&snap).await.unwrap();
    let latest = db.snapshots().latest().await.unwrap().unwrap();
    assert_eq!(latest.id, id);
    assert_eq!(latest.weights, "{\"1\":1.0}");
    assert_eq!(db.snapshots().list(10).await.unwrap().len(), 1);
    let newer = db.snapshots().insert(&snap).await.unwrap();
    let page: Vec<i64> = db
        .snapshots()
        .page(None, 1)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(page, [newer], "newest first");
    let older: Vec<i64> = db
        .snapshots()
        .page(Some(newer), 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(older, [id], "only those before the cursor");
    let _ = NewResponse {
        run_id: run.0,
        miner_uid: 1,
        miner_hotkey: "h".into(),
        store_url: "u".into(),
        manifest_hash: None,
        frozen_manifest: None,
        verification_passed: false,
        verified_at: None,
        hosting_status: None,
        hosting_latency_ms: None,
        updated_at: t0().naive_utc(),
        manifest_frozen_at: None,
    };
}

/// A run-level fact: recorded once whoever records it, listed per run and source, never a
/// duplicate, refused without a lead.
async fn unavailable_leads_are_recorded_once_per_run(t: TestDb) {
    let db = &t.db;
    let run = seeded_run(db, 2).await;
    let other = RunId(
        db.runs()
            .create_or_get("2025-01-02T00:00:00Z".parse().unwrap(), true, "{}", t0())
            .await
            .unwrap()
            .run
            .id,
    );
    assert_ne!(run, other);
    let row = |run: RunId, lead: i32, reason: &str| wx_model::rows::UnavailableLeadRow {
        run_id: run.0,
        source: wx_store::ERA5_SOURCE.to_owned(),
        lead_hours: lead,
        valid_time_utc: (t0() + chrono::Duration::hours(i64::from(lead))).naive_utc(),
        published_until: Some(t0().naive_utc()),
        reason: reason.to_owned(),
        recorded_at: (t0() + secs(1)).naive_utc(),
    };
    let repo = db.unavailable_leads();
    assert!(repo.record(&row(run, 48, "first")).await.unwrap());
    assert!(
        !repo.record(&row(run, 48, "second")).await.unwrap(),
        "a second worker's record changes nothing"
    );
    assert!(repo.record(&row(run, 24, "first")).await.unwrap());
    assert!(repo.record(&row(other, 48, "first")).await.unwrap());
    let listed = repo.list(run, wx_store::ERA5_SOURCE).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.lead_hours).collect::<Vec<_>>(),
        vec![24, 48]
    );
    assert_eq!(listed[1].reason, "first", "the first record is kept");
    assert_eq!(listed[1].published_until, Some(t0().naive_utc()));
    assert!(repo.list(run, "gfs").await.unwrap().is_empty());
    assert!(repo.record(&row(run, 0, "bad")).await.is_err());
}

backend_tests!(
    unavailable_leads_are_recorded_once_per_run,
    miners_import_is_an_upsert_and_validates,
    runs_are_unique_per_init_and_mode,
    seeding_twice_leaves_the_same_rows_and_backfills,
    stats_patches_never_move_status_backwards,
    scores_upsert_overwrites_and_never_duplicates,
    steps_enqueue_is_idempotent_and_logs_upsert,
    responses_and_snapshots_round_trip,
);
