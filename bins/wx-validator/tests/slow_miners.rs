//! Slow miners against the real daemon, on both backends (docs/pipeline.md §4.7): a simulated
//! world whose miners are served over HTTP on 127.0.0.1, some of them slow.
//!
//! * Slow but valid miners (every answer delayed) do not delay the honest ones: their
//!   day1/score and era5/score steps read without a scoring permit, so the permits stay free
//!   for the honest miners' scoring. The honest miners' time is measured with and without the
//!   slow ones in the same test.
//! * A miner whose body is throttled below the minimum throughput fails its step as "too
//!   slow", and a miner whose reads outlast the per-step deadline fails with a "deadline"
//!   reason: miner-blamed failures with their usual effects (not lease losses).

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wx_model::{
    Blame, ErrorKind, ForecastStatus, MinerUid, RunId, StepError, StepKey, StepKind, StepStatus,
};
use wx_sim::{Behaviour, MinerNetwork, MinerSpec, NetworkOptions, WorldSpec};
use wx_steps::ValidatorConfig;
use wx_steps::config::MinerThroughput;
use wx_store::Db;
use wx_store::backend_tests;
use wx_store::testing::TestDb;
use wx_testkit::Fault;
use wx_validator::daemon::{DaemonParts, serve};
use wx_validator::simulation::{Simulation, registry_records};

/// `n` skilled miners, uids 1..=n, of a small world (10°, Day1 lead 12 h, ERA5 leads 24, 48 h).
fn world(n: u16) -> WorldSpec {
    let miners = (1..=n)
        .map(|uid| MinerSpec {
            uid,
            behaviour: Behaviour::Skilled {
                error_scale: 0.3 + 0.1 * f64::from(uid % 5),
            },
        })
        .collect();
    WorldSpec {
        miners,
        ..WorldSpec::small(0)
    }
}

async fn fresh_like(t: &TestDb) -> TestDb {
    if t.url().starts_with("postgres") {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    }
}

async fn step(db: &Db, run: RunId, uid: u16, kind: StepKind) -> Option<wx_model::rows::StepRow> {
    db.steps()
        .get(&StepKey::miner(run, MinerUid::new(uid as u8), kind))
        .await
        .unwrap()
}

async fn status(db: &Db, run: RunId, uid: u16, kind: StepKind) -> Option<StepStatus> {
    step(db, run, uid, kind)
        .await
        .map(|r| r.status().expect("a known status"))
}

/// Waits for the first run, then until `done` holds for every miner of `uids`; returns the run.
async fn wait_for(
    db: &Db,
    uids: &[u16],
    kind: StepKind,
    done: impl Fn(Option<StepStatus>) -> bool,
    timeout: Duration,
) -> RunId {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(run) = db.runs().latest().await.unwrap() {
            let run = RunId(run.id);
            let mut all = true;
            for uid in uids {
                if !done(status(db, run, *uid, kind).await) {
                    all = false;
                    break;
                }
            }
            if all {
                return run;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{kind} of miners {uids:?} did not finish within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn succeeded(s: Option<StepStatus>) -> bool {
    s == Some(StepStatus::Succeeded)
}

/// Runs the daemon on `db` until every miner of `honest` has its ERA5 scored (its last step);
/// returns how long that took and the run, with the daemon stopped.
async fn honest_time(config: &ValidatorConfig, db: &Db, honest: &[u16]) -> (Duration, RunId) {
    let stop = CancellationToken::new();
    let started = Instant::now();
    let daemon = tokio::spawn(serve(
        config.clone(),
        DaemonParts {
            db: Some(db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    let run = wait_for(
        db,
        honest,
        StepKind::Era5Score,
        succeeded,
        Duration::from_secs(240),
    )
    .await;
    let took = started.elapsed();
    stop.cancel();
    daemon.await.unwrap().unwrap();
    (took, run)
}

/// 16 honest miners and 2 slow but valid ones (every chunk answered 2 s late, under the
/// test-mode read timeout of 5 s, so nothing stops them; their manifest and metadata come at
/// once, so they are verified as soon as the others and compete for the same capacity). The same world is scored twice at the same time, by
/// two daemons on two fresh databases and caches, each against its own servers of the world's
/// stores: in one the slow miners answer at once, in the other they are slow. Running both at
/// once puts them under the same load (other tests, the other run), so the comparison does not
/// depend on when each ran. The honest miners of the slowed run finish within
/// `max(1.5 × baseline, baseline + 5 s)`: the absolute floor keeps scheduling noise on a loaded
/// machine (a baseline of a few seconds) from failing the test, while a slow pair holding the
/// scoring capacity (as before the fix) costs far more — each of their steps makes several
/// reads of 2 s, and both would hold the two scoring slots in turn, for Day1 then for ERA5.
async fn slow_miners_do_not_delay_honest_ones(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::start(world(18), dir.path(), t.url())
        .await
        .unwrap();
    // the slow miners have the lowest uids: their steps are among the first claimed
    let slow = [1u16, 2];
    let honest: Vec<u16> = (3..=18).collect();

    // the baseline: the simulation's own servers, the test's database
    sim.import_miners(&t.db).await.unwrap();
    let mut base_config = sim.config.clone();
    base_config.cache_dir = dir.path().join("cache-baseline");

    // the slowed run: a second set of servers of the same stores, a second database
    let network = MinerNetwork::start(&sim.world, NetworkOptions::default())
        .await
        .unwrap();
    for uid in slow {
        assert!(network.delay_chunks(uid, Duration::from_secs(2)) > 0);
    }
    let with_slow = fresh_like(&t).await;
    let records = registry_records(&network);
    with_slow
        .db
        .miners()
        .import(&records, chrono::Utc::now())
        .await
        .unwrap();
    let mut slow_config = sim.config.clone();
    slow_config.database_url = with_slow.url().to_owned();
    slow_config.cache_dir = dir.path().join("cache-slow");

    let ((baseline, _), (slowed, run)) = tokio::join!(
        honest_time(&base_config, &t.db, &honest),
        honest_time(&slow_config, &with_slow.db, &honest)
    );
    // the slow miners really were slow, and competed with the honest ones: each Day1 took at
    // least two delayed reads, and started before the honest miners were all scored
    let mut last_honest = None;
    for uid in &honest {
        let done = step(&with_slow.db, run, *uid, StepKind::Era5Score)
            .await
            .and_then(|r| r.completed_at);
        last_honest = last_honest.max(done);
    }
    let mut slow_day1 = Vec::new();
    for uid in slow {
        let row = step(&with_slow.db, run, uid, StepKind::Day1Score)
            .await
            .expect("the slow miner's Day1 exists");
        slow_day1.push((uid, row.started_at, row.completed_at));
    }
    network.shutdown().await;
    sim.shutdown().await;

    eprintln!(
        "honest miners scored in {:.1} s without the slow miners, {:.1} s with them",
        baseline.as_secs_f64(),
        slowed.as_secs_f64()
    );
    for (uid, started, completed) in &slow_day1 {
        let started = started.expect("the slow miner's Day1 started");
        assert!(
            Some(started) < last_honest,
            "slow miner {uid} started Day1 at {started} after the honest miners were scored \
             ({last_honest:?}): the test measured nothing"
        );
        if let Some(completed) = completed {
            assert!(
                *completed - started >= chrono::Duration::seconds(4),
                "slow miner {uid}: Day1 took {} s, the delays did not apply",
                (*completed - started).num_milliseconds() as f64 / 1000.0
            );
        }
    }
    let bound = baseline.mul_f64(1.5).max(baseline + Duration::from_secs(5));
    assert!(
        slowed <= bound,
        "honest miners took {slowed:?} with slow miners, {baseline:?} without (bound {bound:?})"
    );
}

fn error_of(row: &wx_model::rows::StepRow) -> StepError {
    serde_json::from_str(row.error_json.as_deref().expect("an error is recorded"))
        .expect("error_json is a StepError")
}

/// Two honest miners, a throttled one (its `2t` chunks served at 1 kB/s) and an overdue one
/// (every answer 2.5 s late, with a 4 s per-step deadline). The minimum throughput is 64 KiB/s
/// over 1 s windows; Day1 is not retried. The throttled miner's Day1 fails as too slow, the
/// overdue one's with the deadline reason: both timeouts blamed on the miner, neither a lease
/// loss, both with a Day1 failure's effects (forecast status `day1_failed` and the error in the
/// stats, ERA5 still enqueued). The honest miners are scored.
async fn throttled_and_overdue_miners_fail_with_their_reason(t: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let spec = world(4);
    let steps = spec.steps;
    let sim = Simulation::start(spec, dir.path(), t.url()).await.unwrap();
    let (throttled, overdue) = (3u16, 4u16);
    for step in 0..steps {
        assert!(sim.network.set_fault(
            throttled,
            &format!("2t/{step}.0.0"),
            Fault::Slow {
                bytes_per_second: 1000
            }
        ));
    }
    assert!(
        sim.network
            .set_response_delay(overdue, Duration::from_millis(2500))
    );
    sim.import_miners(&t.db).await.unwrap();
    let mut config = sim.config.clone();
    config.data.miner_throughput = MinerThroughput {
        min_kib_per_second: 64,
        window_seconds: 1,
        grace_seconds: 0,
    };
    config.pipeline.miner_step_deadline_seconds = 4;
    // ERA5 is enqueued after Day1 but not due before the test ends (init + lead + 11 years):
    // the Day1 failures' effects are what the stats show
    config.pipeline.test_era5_delay_hours = 100_000;
    let mut no_retry = config.pipeline.retry_policy(StepKind::Day1Score);
    no_retry.max_retries = 0;
    config.pipeline.retry.insert("day1/score".into(), no_retry);

    let stop = CancellationToken::new();
    let daemon = tokio::spawn(serve(
        config,
        DaemonParts {
            db: Some(t.db.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    let run = wait_for(
        &t.db,
        &[throttled, overdue],
        StepKind::Day1Score,
        |s| s == Some(StepStatus::Failed),
        Duration::from_secs(180),
    )
    .await;
    wait_for(
        &t.db,
        &[1, 2],
        StepKind::Day1Score,
        succeeded,
        Duration::from_secs(120),
    )
    .await;
    stop.cancel();
    daemon.await.unwrap().unwrap();
    sim.shutdown().await;

    let stats = t.db.stats().list(run).await.unwrap();
    let forecast = |uid: u16| {
        stats
            .iter()
            .find(|s| s.miner_uid == i32::from(uid))
            .expect("a stats row")
            .status()
            .unwrap()
    };
    for (uid, reason) in [
        (throttled, "too slow: "),
        (overdue, "deadline: the step spent"),
    ] {
        let row = step(&t.db, run, uid, StepKind::Day1Score).await.unwrap();
        let error = error_of(&row);
        assert_eq!(
            (error.kind, error.blame),
            (ErrorKind::Timeout, Blame::Miner),
            "miner {uid}: {error:?}"
        );
        assert!(
            error.message.contains(reason),
            "miner {uid}: expected `{reason}` in {:?}",
            error.message
        );
        assert_eq!(row.lease_losses, 0, "miner {uid}: not a lost lease");
        assert_eq!(forecast(uid), ForecastStatus::Day1Failed, "miner {uid}");
        let stats_error = stats
            .iter()
            .find(|s| s.miner_uid == i32::from(uid))
            .and_then(|s| s.forecast_error_msg.clone())
            .unwrap_or_default();
        assert!(stats_error.contains(reason), "miner {uid}: {stats_error}");
        assert!(
            step(&t.db, run, uid, StepKind::Era5Score).await.is_some(),
            "miner {uid}: a Day1 failure still enqueues ERA5"
        );
    }
    let throttled_error = error_of(
        &step(&t.db, run, throttled, StepKind::Day1Score)
            .await
            .unwrap(),
    );
    assert!(
        throttled_error
            .message
            .contains("below the minimum 65536 bytes/s"),
        "{}",
        throttled_error.message
    );
    for uid in [1u16, 2] {
        assert!(
            forecast(uid) == ForecastStatus::Day1Scored,
            "honest miner {uid}: {:?}",
            forecast(uid)
        );
    }
}

backend_tests!(
    slow_miners_do_not_delay_honest_ones,
    throttled_and_overdue_miners_fail_with_their_reason
);
