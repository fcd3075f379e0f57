//! Fair play in the store (docs/operating.md, "Fair play" and "Retention"), on a real SQLite
//! file and a real PostgreSQL database: the registry's lifecycle (add, change of hotkey,
//! remove, re-add) with its events; lifetime statistics per (uid, hotkey); retention that
//! prunes a finished old run in small batches and never a run in progress or a recent one.

mod common;

use chrono::Duration;
use common::*;
use wx_model::rows::{NewScore, NewSnapshot};
use wx_model::{MinerUid, RunId, RunStatus, StepKey, StepKind, StepStatus};
use wx_store::testing::TestDb;
use wx_store::{Db, MinerRecord, StatsPatch, StepLog, StepSpec, backend_tests, registry_event};

fn with_hotkey(uid: i64, hotkey: &str) -> MinerRecord {
    MinerRecord {
        hotkey: hotkey.into(),
        ..miner(uid)
    }
}

async fn registry_lifecycle_is_recorded_and_identity_is_uid_and_hotkey(t: TestDb) {
    let db = &t.db;
    let miners = db.miners();
    // add
    let s = miners.import(&[miner(1), miner(2)], t0()).await.unwrap();
    assert_eq!(s.added, vec![1, 2]);
    assert!(s.hotkey_changed.is_empty());
    let first = miners.get(1).await.unwrap().unwrap();
    assert_eq!(first.registered_at, t0().naive_utc());

    // same hotkey, new URL: not a new miner, registration time kept, no event
    let mut moved = miner(1);
    moved.store_url = "https://moved.example/x.zarr".into();
    let s = miners.import(&[moved], t0() + secs(60)).await.unwrap();
    assert!(s.added.is_empty() && s.hotkey_changed.is_empty());
    let row = miners.get(1).await.unwrap().unwrap();
    assert_eq!(row.registered_at, t0().naive_utc());
    assert_eq!(row.store_url, "https://moved.example/x.zarr");

    // lifetime statistics of the first hotkey, from a run it was seeded in
    let run = seeded_run(db, 2).await;
    db.stats()
        .patch(
            run,
            MinerUid::new(1),
            &StatsPatch {
                overall_forecast_score: Some(0.8),
                ..Default::default()
            },
            t0(),
        )
        .await
        .unwrap();
    db.miner_stats()
        .refresh(MinerUid::new(1), "5Hotkey001", 0.1, t0())
        .await
        .unwrap();

    // another hotkey at uid 1: a new miner
    let s = miners
        .import(&[with_hotkey(1, "5NewOwner")], t0() + secs(120))
        .await
        .unwrap();
    assert_eq!(s.hotkey_changed.len(), 1);
    assert_eq!(s.hotkey_changed[0].previous, "5Hotkey001");
    let row = miners.get(1).await.unwrap().unwrap();
    assert_eq!(row.hotkey, "5NewOwner");
    assert_eq!(row.registered_at, (t0() + secs(120)).naive_utc());

    // the newcomer's statistics start empty; the previous hotkey's keep their history
    db.miner_stats()
        .refresh(MinerUid::new(1), "5NewOwner", 0.1, t0() + secs(130))
        .await
        .unwrap();
    let old = db
        .miner_stats()
        .get(MinerUid::new(1), "5Hotkey001")
        .await
        .unwrap()
        .expect("the previous hotkey keeps its row");
    assert_eq!((old.runs_total, old.avg_overall_score), (1, Some(0.8)));
    assert!(
        db.miner_stats()
            .get(MinerUid::new(1), "5NewOwner")
            .await
            .unwrap()
            .is_none(),
        "no run of the new hotkey yet: nothing inherited"
    );
    // the old hotkey's rows of the run keep their attribution
    let stats = db
        .stats()
        .get(run, MinerUid::new(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.miner_hotkey, "5Hotkey001");

    // remove, then re-add
    assert!(miners.remove(2, t0() + secs(180)).await.unwrap());
    assert!(!miners.remove(2, t0() + secs(181)).await.unwrap(), "once");
    assert!(miners.get(2).await.unwrap().is_none());
    assert!(
        db.stats()
            .get(run, MinerUid::new(2))
            .await
            .unwrap()
            .is_some(),
        "history is kept"
    );
    let s = miners.import(&[miner(2)], t0() + secs(240)).await.unwrap();
    assert_eq!(s.added, vec![2]);

    let events: Vec<(i32, String, Option<String>)> = miners
        .events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.uid, e.event, e.previous_hotkey))
        .collect();
    assert_eq!(
        events,
        vec![
            (1, registry_event::ADDED.to_owned(), None),
            (2, registry_event::ADDED.to_owned(), None),
            (
                1,
                registry_event::HOTKEY_CHANGED.to_owned(),
                Some("5Hotkey001".to_owned())
            ),
            (2, registry_event::REMOVED.to_owned(), None),
            (2, registry_event::ADDED.to_owned(), None),
        ]
    );
    assert_eq!(miners.events(Some(1), 100).await.unwrap().len(), 2);
}

/// A run of `miners` miners with `per_miner` score rows and 3 step rows each, started at
/// `start`, with status `status`.
async fn run_with_rows(
    db: &Db,
    init: &str,
    start: chrono::DateTime<chrono::Utc>,
    status: RunStatus,
    miners: u8,
    per_miner: i32,
    open_step: bool,
) -> RunId {
    let run = RunId(
        db.runs()
            .create_or_get(init.parse().unwrap(), true, "{}", start)
            .await
            .unwrap()
            .run
            .id,
    );
    let list: Vec<(MinerUid, String)> = (1..=miners)
        .map(|u| (MinerUid::new(u), format!("5Hotkey{u:03}")))
        .collect();
    db.stats().seed(run, &list, start).await.unwrap();
    // an open run: units of work still pending; a finished one: sub-step log rows
    let kinds = if open_step {
        [
            StepKind::VerifyOpenStore,
            StepKind::Day1Score,
            StepKind::Era5Score,
        ]
    } else {
        [
            StepKind::Day1LoadInputs,
            StepKind::Era5LoadTruth,
            StepKind::AggregateMinerStats,
        ]
    };
    let mut specs = Vec::new();
    for u in 1..=miners {
        for kind in kinds {
            specs.push(StepSpec {
                key: StepKey::miner(run, MinerUid::new(u), kind),
                hotkey: format!("5Hotkey{u:03}"),
                status: StepStatus::Pending,
                next_run_at: start,
                max_retries: 3,
                context: None,
            });
        }
        let rows: Vec<NewScore> = (0..per_miner)
            .map(|i| NewScore {
                run_id: run.0,
                miner_uid: i32::from(u),
                miner_hotkey: format!("5Hotkey{u:03}"),
                score_type: "era5_rmse".into(),
                variable: "2t".into(),
                level: 0,
                lead_hours: i,
                score: Some(f64::from(i)),
                valid_time_utc: None,
                error_message: None,
                metrics: None,
                calculated_at: start.naive_utc(),
            })
            .collect();
        db.scores().upsert(&rows).await.unwrap();
    }
    if open_step {
        db.steps().enqueue(&specs, start).await.unwrap();
    } else {
        let logs: Vec<StepLog> = specs
            .into_iter()
            .map(|s| StepLog {
                key: s.key,
                hotkey: s.hotkey,
                status: StepStatus::Succeeded,
                attempt: 1,
                max_retries: 3,
                started_at: start,
                completed_at: Some(start),
                error: None,
                context: None,
            })
            .collect();
        db.steps().log(&logs, start).await.unwrap();
    }
    db.runs()
        .set_status(run, status, None, start)
        .await
        .unwrap();
    run
}

async fn counts(db: &Db, run: RunId) -> (usize, usize) {
    (
        db.scores().list_run(run).await.unwrap().len(),
        db.steps().list_run(run).await.unwrap().len(),
    )
}

async fn retention_prunes_finished_old_runs_in_batches_only(t: TestDb) {
    let db = &t.db;
    let now = t0();
    let old = now - Duration::days(100);
    // a finished old run, an old run still in progress (open work), a finished recent run
    let pruned = run_with_rows(
        db,
        "2024-10-01T00:00:00Z",
        old,
        RunStatus::Completed,
        3,
        40,
        false,
    )
    .await;
    let running = run_with_rows(
        db,
        "2024-10-02T00:00:00Z",
        old,
        RunStatus::Scoring,
        2,
        10,
        true,
    )
    .await;
    let recent = run_with_rows(
        db,
        "2025-01-09T00:00:00Z",
        now - Duration::days(1),
        RunStatus::Completed,
        2,
        10,
        false,
    )
    .await;
    for (at, note) in [(old, "old"), (old + secs(1), "old"), (now, "new")] {
        db.snapshots()
            .insert(&NewSnapshot {
                taken_at: at.naive_utc(),
                lookback_days: 7,
                runs_covered: "[]".into(),
                scores: "{}".into(),
                weights: "{}".into(),
                note: Some(note.into()),
            })
            .await
            .unwrap();
    }
    let before = [
        counts(db, pruned).await,
        counts(db, running).await,
        counts(db, recent).await,
    ];
    assert_eq!(before[0], (120, 9));
    let cutoff = now - Duration::days(90);

    // dry run: counts, deletes nothing
    let dry = db.retention().prune(cutoff, 50, true).await.unwrap();
    assert_eq!(
        (dry.runs.clone(), dry.scores, dry.steps, dry.snapshots),
        (vec![pruned.0], 120, 9, 2)
    );
    assert_eq!(dry.runs_in_progress, vec![running.0]);
    assert_eq!(dry.transactions, 0);
    assert_eq!(
        [
            counts(db, pruned).await,
            counts(db, running).await,
            counts(db, recent).await
        ],
        before
    );

    // prune: 120 scores in batches of 50 = 3 transactions, 9 steps = 1, 2 snapshots = 1
    let report = db.retention().prune(cutoff, 50, false).await.unwrap();
    assert_eq!((report.scores, report.steps, report.snapshots), (120, 9, 2));
    assert_eq!(report.transactions, 5, "at most 50 rows per transaction");
    assert_eq!(counts(db, pruned).await, (0, 0));
    assert_eq!(
        counts(db, running).await,
        before[1],
        "a run in progress is untouched"
    );
    assert_eq!(
        counts(db, recent).await,
        before[2],
        "a recent run is untouched"
    );
    assert!(
        db.stats().list(pruned).await.unwrap().len() == 3,
        "stats rows are kept"
    );
    let left = db.snapshots().list(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].note.as_deref(), Some("new"));

    // again: nothing left to do
    let again = db.retention().prune(cutoff, 50, false).await.unwrap();
    assert_eq!((again.scores, again.steps, again.snapshots), (0, 0, 0));
    assert!(db.retention().prune(cutoff, 5001, true).await.is_err());
}

backend_tests!(
    registry_lifecycle_is_recorded_and_identity_is_uid_and_hotkey,
    retention_prunes_finished_old_runs_in_batches_only,
);
