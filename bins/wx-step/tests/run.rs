//! `wx-step run` against real databases (a SQLite file and PostgreSQL) and a simulated world:
//! a fresh run's miner goes verify → Day1 → ERA5 in the foreground; a second run without
//! `--force` changes nothing; `--force` re-runs with bit-identical scores; a step held by a live
//! lease is reported busy and left alone. One test drives the real binary, and checks that
//! `wx-step score` reproduces the scores the pipeline stored.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use wx_model::score_type;
use wx_model::{Clock, MinerUid, RunId, StepKey, StepKind, StepStatus, SystemClock};
use wx_sim::{Behaviour, WorldSpec};
use wx_step::run::{RerunRequest, StepChoice, StepLine, StepResult, rerun};
use wx_steps::{DataHub, Pipeline, RunCreation};
use wx_store::testing::TestDb;
use wx_store::{Db, KeyClaim, backend_tests};
use wx_validator::simulation::Simulation;

struct World {
    sim: Simulation,
    pipeline: Pipeline,
    run: RunId,
    skilled: Vec<MinerUid>,
}

/// A simulated world of 4 miners (3 skilled), its miners registered, and a fresh run seeded
/// (stats rows and pending verify steps), nothing run yet.
async fn world(t: &TestDb, dir: &Path) -> World {
    let sim = Simulation::start(WorldSpec::small(4), dir, t.url())
        .await
        .unwrap();
    sim.import_miners(&t.db).await.unwrap();
    let config = sim.config.clone();
    let data =
        Arc::new(DataHub::new(&config.data, &config.cache_dir, config.pipeline.test_mode).unwrap());
    let pipeline = Pipeline::new(t.db.clone(), config, Arc::new(SystemClock), data).unwrap();
    let RunCreation::Created(run) = pipeline.ensure_run().await.unwrap() else {
        panic!("a fresh database gets a new run");
    };
    let seeded = wx_steps::seed::backfill(pipeline.context(), run)
        .await
        .unwrap();
    assert_eq!(seeded, 4);
    let skilled = sim
        .network
        .endpoints()
        .iter()
        .filter(|m| matches!(m.behaviour, Behaviour::Skilled { .. }))
        .map(|m| MinerUid::new(u8::try_from(m.uid).unwrap()))
        .collect();
    World {
        sim,
        pipeline,
        run,
        skilled,
    }
}

fn request(run: RunId, miner: MinerUid, step: Option<StepChoice>, force: bool) -> RerunRequest {
    RerunRequest {
        run,
        miner,
        step,
        force,
        worker: "wx-step-test".into(),
        lease: Duration::from_secs(20),
        heartbeat: Duration::from_secs(4),
    }
}

async fn rerun_lines(w: &World, db: &Db, req: &RerunRequest) -> Vec<StepLine> {
    let mut printed = Vec::new();
    let lines = rerun(db, &w.pipeline, Arc::new(SystemClock), req, |l| {
        printed.push(l.to_string())
    })
    .await
    .unwrap();
    assert_eq!(printed.len(), lines.len(), "one report per step");
    lines
}

/// Every row of the miner in the run: steps, scores, stats.
async fn state(db: &Db, run: RunId, uid: MinerUid) -> (Vec<String>, Vec<String>, String) {
    let steps = db.steps().list_miner(run, uid).await.unwrap();
    let scores = db.scores().list_miner(run, uid).await.unwrap();
    let stats = db.stats().get(run, uid).await.unwrap();
    (
        steps.iter().map(|s| format!("{s:?}")).collect(),
        scores.iter().map(|s| format!("{s:?}")).collect(),
        format!("{stats:?}"),
    )
}

/// (type, variable, level, lead) → score bits.
async fn score_bits(
    db: &Db,
    run: RunId,
    uid: MinerUid,
) -> BTreeMap<(String, String, i32, i32), Option<u64>> {
    db.scores()
        .list_miner(run, uid)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                (s.score_type, s.variable, s.level, s.lead_hours),
                s.score.map(f64::to_bits),
            )
        })
        .collect()
}

async fn step_status(db: &Db, run: RunId, uid: MinerUid, kind: StepKind) -> StepStatus {
    db.steps()
        .get(&StepKey::miner(run, uid, kind))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} exists"))
        .status()
        .unwrap()
}

async fn reruns_through_the_pipeline(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let w = world(&t, dir.path()).await;
    let db = &t.db;
    let uid = w.skilled[0];

    // day1 and era5 do not exist before verify ran: `--step day1` finds nothing
    let lines = rerun_lines(&w, db, &request(w.run, uid, Some(StepChoice::Day1), false)).await;
    assert_eq!(lines[0].result, StepResult::Missing);
    assert!(lines[0].result.is_problem());

    // a fresh miner: verify → day1 → era5, each enqueued by its predecessor's completion
    let lines = rerun_lines(&w, db, &request(w.run, uid, None, false)).await;
    let kinds: Vec<StepKind> = lines.iter().map(|l| l.key.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::VerifyOpenStore,
            StepKind::Day1Score,
            StepKind::Era5Score
        ]
    );
    for l in &lines {
        assert_eq!(l.result, StepResult::Succeeded, "{l}");
        assert!(l.to_string().ends_with(": succeeded"), "{l}");
    }
    for kind in [
        StepKind::VerifyOpenStore,
        StepKind::Day1Score,
        StepKind::Era5Score,
    ] {
        assert_eq!(
            step_status(db, w.run, uid, kind).await,
            StepStatus::Succeeded
        );
    }
    let era5 = db
        .steps()
        .get(&StepKey::miner(w.run, uid, StepKind::Era5Score))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(era5.claimed_by.as_deref(), Some("wx-step-test"));
    let bits = score_bits(db, w.run, uid).await;
    for lead in [24, 48] {
        let key = (
            score_type::ERA5_LEAD_SCORE.to_owned(),
            String::new(),
            0,
            lead,
        );
        assert!(
            bits.get(&key).copied().flatten().is_some(),
            "lead {lead} scored: {bits:?}"
        );
    }
    assert!(bits.contains_key(&(score_type::DAY1_QC_SCORE.to_owned(), String::new(), 0, 0)));
    let stats = db.stats().get(w.run, uid).await.unwrap().unwrap();
    assert_eq!(stats.forecast_status, "completed");
    assert!(stats.overall_forecast_score.unwrap() > 0.0);
    // the other miners were not touched
    for other in w.skilled.iter().skip(1) {
        assert_eq!(
            step_status(db, w.run, *other, StepKind::VerifyOpenStore).await,
            StepStatus::Pending
        );
    }

    // again, without --force: every step is reported not due and nothing changes
    let before = state(db, w.run, uid).await;
    let lines = rerun_lines(&w, db, &request(w.run, uid, None, false)).await;
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert!(
            matches!(
                l.result,
                StepResult::NotDue {
                    status: StepStatus::Succeeded,
                    ..
                }
            ),
            "{l}"
        );
        assert!(l.to_string().contains("use --force"), "{l}");
        assert!(!l.result.is_problem());
    }
    assert_eq!(
        state(db, w.run, uid).await,
        before,
        "a not-due re-run writes nothing"
    );

    // --force: everything runs again, the scores are bit-identical
    let lines = rerun_lines(&w, db, &request(w.run, uid, None, true)).await;
    for l in &lines {
        assert_eq!(l.result, StepResult::Succeeded, "{l}");
    }
    assert_eq!(
        score_bits(db, w.run, uid).await,
        bits,
        "re-scoring is deterministic"
    );
    for kind in [
        StepKind::VerifyOpenStore,
        StepKind::Day1Score,
        StepKind::Era5Score,
    ] {
        let row = db
            .steps()
            .get(&StepKey::miner(w.run, uid, kind))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status().unwrap(), StepStatus::Succeeded);
        assert_eq!(row.attempt, 0);
        assert!(row.claim_token.is_none() && row.lease_expires_at.is_none());
    }

    // a step held by a live lease: busy, untouched, with or without --force
    let key = StepKey::miner(w.run, uid, StepKind::Day1Score);
    let now = SystemClock.now();
    let KeyClaim::Claimed(held) = db
        .queue()
        .claim_key(&key, "another-worker", Duration::from_secs(600), now, true)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    let before = state(db, w.run, uid).await;
    for force in [false, true] {
        let lines = rerun_lines(&w, db, &request(w.run, uid, Some(StepChoice::Day1), force)).await;
        assert_eq!(lines.len(), 1);
        match &lines[0].result {
            StepResult::Busy {
                claimed_by,
                lease_expires_at,
            } => {
                assert_eq!(claimed_by.as_deref(), Some("another-worker"));
                assert!(lease_expires_at.unwrap() > now);
            }
            other => panic!("expected busy, got {other}"),
        }
        assert!(lines[0].result.is_problem());
        assert!(
            lines[0]
                .to_string()
                .contains("busy (held by another-worker until")
        );
    }
    assert_eq!(
        state(db, w.run, uid).await,
        before,
        "a busy step is left alone"
    );
    db.queue()
        .release(&[&held], SystemClock.now())
        .await
        .unwrap();

    // --step era5 --force alone: only that step runs
    let lines = rerun_lines(&w, db, &request(w.run, uid, Some(StepChoice::Era5), true)).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].key.kind, StepKind::Era5Score);
    assert_eq!(lines[0].result, StepResult::Succeeded);
    assert_eq!(score_bits(db, w.run, uid).await, bits);
    w.sim.shutdown().await;
}

async fn wx_step(args: &[String]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wx-step"))
        .args(args)
        .env_remove("WX_CONFIG")
        .env_remove("WX_DATABASE_URL")
        .output()
        .await
        .expect("run wx-step")
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn the_binary_reruns_and_reproduces_the_scores(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let w = world(&t, dir.path()).await;
    let db = &t.db;
    let uid = w.skilled[1];
    let run = w.run.0.to_string();
    let miner = uid.to_string();
    // the configuration file, loaded exactly as wx-validator loads it; the database URL
    // given on the command line
    let mut config = w.sim.config.clone();
    let url = config.database_url.clone();
    config.database_url = "sqlite:///nonexistent/dir/overridden.sqlite3".into();
    let config_path = dir.path().join("wx.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let base = strings(&[
        "--config",
        config_path.to_str().unwrap(),
        "--database-url",
        &url,
        "run",
        "--run-id",
        &run,
        "--miner",
        &miner,
    ]);

    let out = wx_step(&base).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{:?}", stdout_lines(&out));
    assert!(out.stderr.is_empty(), "silent without -v: {stderr}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, kind) in lines
        .iter()
        .zip(["verify/open_store", "day1/score", "era5/score"])
    {
        assert_eq!(line, &format!("run {run} miner {miner} {kind}: succeeded"));
    }
    let bits = score_bits(db, w.run, uid).await;

    // again: not due, exit 0, nothing changed
    let before = state(db, w.run, uid).await;
    let out = wx_step(&base).await;
    assert!(out.status.success());
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l.contains("not due (status succeeded")),
        "{lines:?}"
    );
    assert_eq!(state(db, w.run, uid).await, before);

    // --force --step day1: re-run, identical scores
    let mut args = base.clone();
    args.extend(strings(&["--step", "day1", "--force"]));
    let out = wx_step(&args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout_lines(&out),
        [format!("run {run} miner {miner} day1/score: succeeded")]
    );
    assert_eq!(score_bits(db, w.run, uid).await, bits);

    // busy: exit code 2, the holder named
    let key = StepKey::miner(w.run, uid, StepKind::Era5Score);
    let KeyClaim::Claimed(held) = db
        .queue()
        .claim_key(
            &key,
            "another-worker",
            Duration::from_secs(600),
            SystemClock.now(),
            true,
        )
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    let mut args = base.clone();
    args.extend(strings(&["--step", "era5", "--force"]));
    let out = wx_step(&args).await;
    assert_eq!(out.status.code(), Some(2));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("busy (held by another-worker until"),
        "{lines:?}"
    );
    db.queue()
        .release(&[&held], SystemClock.now())
        .await
        .unwrap();

    // a miner without steps in the run: missing, exit code 2
    let mut args = base.clone();
    args[8] = "200".into();
    let out = wx_step(&args).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout_lines(&out).iter().all(|l| l.ends_with(": missing")));
    // a run that does not exist: one error line
    let mut args = base.clone();
    args[6] = "987654".into();
    let out = wx_step(&args).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("987654"),
        "{err}"
    );

    // `wx-step score` on the same miner store, ERA5 and climatology gives the stored scores
    let endpoint = w
        .sim
        .network
        .endpoints()
        .iter()
        .find(|m| m.uid == u16::from(uid.get()))
        .unwrap()
        .clone();
    let world = &w.sim.world;
    let init = world.spec.gfs_init.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let leads: Vec<String> = config
        .scoring
        .era5
        .leads
        .iter()
        .map(u32::to_string)
        .collect();
    let out = wx_step(&strings(&[
        "score",
        "--forecast",
        &endpoint.store_url,
        "--token",
        &endpoint.access_token,
        "--allow-loopback",
        "--truth",
        world.paths.era5.to_str().unwrap(),
        "--climatology",
        world.paths.climatology.to_str().unwrap(),
        "--init",
        &init,
        "--leads",
        &leads.join(","),
        "--variables",
        &config.scoring.era5.variables.join(","),
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |got: &Value, want: f64, what: &str| {
        let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
        assert!(
            g == want || (g - want).abs() <= 1e-12 * want.abs(),
            "{what}: {g} vs stored {want}"
        );
    };
    let stored = db.scores().list_miner(w.run, uid).await.unwrap();
    let mut compared = 0;
    for s in &stored {
        let Some(value) = s.score else { continue };
        let lead = u64::try_from(s.lead_hours).unwrap();
        let entry = json["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["variable"] == s.variable.as_str() && v["lead_hours"] == lead);
        let metric = match s.score_type.as_str() {
            score_type::ERA5_LEAD_SCORE => {
                close(&json["lead_scores"][lead.to_string()], value, "lead score");
                compared += 1;
                continue;
            }
            score_type::ERA5_RMSE => "rmse",
            score_type::ERA5_ACC => "acc",
            score_type::ERA5_SKILL_CLIM => "skill_clim",
            _ => continue,
        };
        close(
            &entry.unwrap()[metric],
            value,
            &format!("{} {} {lead}", s.score_type, s.variable),
        );
        compared += 1;
    }
    let n_vars = config.scoring.era5.variables.len();
    assert_eq!(
        compared,
        leads.len() * (1 + 3 * n_vars),
        "every stored ERA5 number was compared"
    );
    w.sim.shutdown().await;
}

/// A forced re-run in a run that is over gets one attempt: a miner whose store is gone fails
/// for good, and no `retry_scheduled` row is left in the finished run.
async fn a_forced_rerun_in_a_finished_run_leaves_no_retry(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let World {
        sim,
        pipeline,
        run,
        skilled,
    } = world(&t, dir.path()).await;
    let db = &t.db;
    db.runs()
        .set_status(run, wx_model::RunStatus::Completed, None, SystemClock.now())
        .await
        .unwrap();
    sim.shutdown().await; // every store is unreachable now
    let req = request(run, skilled[0], Some(StepChoice::Verify), true);
    let lines = rerun(db, &pipeline, Arc::new(SystemClock), &req, |_| {})
        .await
        .unwrap();
    assert!(
        matches!(lines[0].result, StepResult::Failed { .. }),
        "{}",
        lines[0]
    );
    for row in db.steps().list_run(run).await.unwrap() {
        assert_ne!(row.status().unwrap(), StepStatus::RetryScheduled, "{row:?}");
    }
}

/// The submission window (docs/operating.md, "Fair play"): a store verified within it records
/// when its manifest was frozen; past it, `--force` alone is refused as late (`verify_failed`),
/// and only the explicit override verifies, recorded in the step's context.
async fn verification_past_the_submission_window_needs_the_override(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let w = world(&t, dir.path()).await;
    let db = &t.db;
    let run_row = db.runs().require(w.run).await.unwrap();
    let deadline = run_row.run_initiation_time
        + chrono::Duration::minutes(i64::from(w.sim.config.pipeline.submission_window_minutes));

    // on time: verified, with the time its manifest was frozen
    let on_time = w.skilled[0];
    let lines = rerun_lines(
        &w,
        db,
        &request(w.run, on_time, Some(StepChoice::Verify), false),
    )
    .await;
    assert_eq!(lines[0].result, StepResult::Succeeded, "{}", lines[0]);
    let response = db.responses().get(w.run, on_time).await.unwrap().unwrap();
    let frozen = response
        .manifest_frozen_at
        .expect("the frozen time is recorded");
    assert!(
        frozen >= run_row.run_initiation_time && frozen <= deadline,
        "{frozen} within the window"
    );

    // three hours later the window (2 h) is closed: --force is refused as late
    let clock = Arc::new(wx_model::OffsetClock::new());
    clock.advance(chrono::Duration::hours(3));
    let data = Arc::new(
        DataHub::new(
            &w.sim.config.data,
            &w.sim.config.cache_dir,
            w.sim.config.pipeline.test_mode,
        )
        .unwrap(),
    );
    let late_pipeline =
        Pipeline::new(db.clone(), w.sim.config.clone(), clock.clone(), data).unwrap();
    let late = w.skilled[1];
    let req = request(w.run, late, Some(StepChoice::Verify), true);
    let lines = rerun(db, &late_pipeline, clock.clone(), &req, |_| {})
        .await
        .unwrap();
    match &lines[0].result {
        StepResult::Failed { error } => assert!(error.contains("late"), "{error}"),
        other => panic!("a late store is refused: {other}"),
    }
    let stats = db.stats().get(w.run, late).await.unwrap().unwrap();
    assert_eq!(stats.forecast_status, "verify_failed");
    assert!(
        !db.responses()
            .get(w.run, late)
            .await
            .unwrap()
            .is_some_and(|r| r.verification_passed),
        "nothing verified"
    );

    // the operator's override verifies it, and says so in the step's context
    let overridden = late_pipeline.allow_late("operator@test".into());
    let lines = rerun(db, &overridden, clock.clone(), &req, |_| {})
        .await
        .unwrap();
    assert_eq!(lines[0].result, StepResult::Succeeded, "{}", lines[0]);
    let step = db
        .steps()
        .get(&StepKey::miner(w.run, late, StepKind::VerifyOpenStore))
        .await
        .unwrap()
        .unwrap();
    let context = step.context.expect("the override is recorded");
    assert!(
        context.contains("late_override") && context.contains("operator@test"),
        "{context}"
    );
    let response = db.responses().get(w.run, late).await.unwrap().unwrap();
    assert!(response.verification_passed);
    assert!(response.manifest_frozen_at.unwrap() > deadline);
    w.sim.shutdown().await;
}

backend_tests!(
    verification_past_the_submission_window_needs_the_override,
    a_forced_rerun_in_a_finished_run_leaves_no_retry,
    reruns_through_the_pipeline,
    the_binary_reruns_and_reproduces_the_scores
);
