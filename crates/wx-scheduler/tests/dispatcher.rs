//! The dispatcher against real databases: concurrency limits, heartbeats that outlive the
//! lease, rescue of a dead scheduler's step, graceful shutdown, periodic jobs.

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::{
    ForecastStatus, MinerUid, RetryPolicy, RunId, StepError, StepKey, StepKind, StepStatus,
    SystemClock,
};
use wx_scheduler::{PeriodicJob, Scheduler, SchedulerConfig, StepRunner};
use wx_store::testing::TestDb;
use wx_store::{
    Completion, Db, Effects, MinerRecord, Outcome, StatsPatch, StepSpec, backend_tests,
};

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    max_running: AtomicUsize,
    runs: AtomicUsize,
}

/// Sleeps `work` per step (or until cancelled), tracking concurrency.
struct SleepyRunner {
    work: Duration,
    counters: Arc<Counters>,
    /// Lost leases a step may suffer before it gives up.
    max_lease_losses: u32,
}

impl std::ops::Deref for SleepyRunner {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        &self.counters
    }
}

impl SleepyRunner {
    fn new(work: Duration) -> Arc<Self> {
        Arc::new(SleepyRunner {
            work,
            counters: Arc::default(),
            max_lease_losses: 5,
        })
    }

    /// A runner whose steps give up at their first lost lease.
    fn fragile(work: Duration) -> Arc<Self> {
        Arc::new(SleepyRunner {
            work,
            counters: Arc::default(),
            max_lease_losses: 0,
        })
    }
}

impl StepRunner for SleepyRunner {
    fn run(
        &self,
        _claim: wx_store::Claim,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Completion> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        let work = self.work;
        let me = self.counters.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(work) => {}
                _ = cancel.cancelled() => {}
            }
            me.running.fetch_sub(1, Ordering::SeqCst);
            Completion {
                outcome: Outcome::Succeeded,
                context: None,
                effects: Effects::default(),
            }
        }
        .boxed()
    }

    fn retry_policy(&self, _kind: StepKind) -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::new(true, 0, 5, wx_model::Backoff::None)
        }
    }

    fn lease_loss_policy(&self, kind: StepKind) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_lease_losses,
            ..self.retry_policy(kind)
        }
    }

    /// The failure's effects, as the pipeline's: a terminal forecast status and the error.
    fn give_up(&self, claim: wx_store::Claim, error: StepError) -> BoxFuture<'static, Completion> {
        let patch = StatsPatch {
            forecast_status: Some(ForecastStatus::VerifyFailed),
            forecast_error_msg: Some(error.to_json()),
            ..StatsPatch::default()
        };
        let completion = Completion {
            outcome: Outcome::Failed { error },
            context: None,
            effects: Effects {
                stats: vec![(claim.key.miner, patch)],
                complete_run_if_done: true,
                ..Effects::default()
            },
        };
        futures::future::ready(completion).boxed()
    }
}

fn config(lease: Duration, heartbeat: Duration) -> SchedulerConfig {
    let mut c = SchedulerConfig::from_pipeline(&wx_model::config::PipelineConfig::default());
    c.lease = lease;
    c.heartbeat = heartbeat;
    c.rescue_interval = Duration::from_millis(200);
    c.concurrency.poll_interval_ms = 50;
    c.shutdown_grace = Duration::from_millis(300);
    c
}

async fn seed(db: &Db, n: u8, kind: StepKind) -> (RunId, Vec<StepKey>) {
    let now = Utc::now();
    let miners: Vec<MinerRecord> = (1..=n)
        .map(|u| MinerRecord {
            uid: u.into(),
            hotkey: format!("hk{u}"),
            store_url: "https://m.example/x".into(),
            access_token: "tok-x".into(),
        })
        .collect();
    db.miners().import(&miners, now).await.unwrap();
    let run = RunId(
        db.runs()
            .create_or_get(now, true, "{}", now)
            .await
            .unwrap()
            .run
            .id,
    );
    let list: Vec<(MinerUid, String)> = (1..=n)
        .map(|u| (MinerUid::new(u), format!("hk{u}")))
        .collect();
    db.stats().seed(run, &list, now).await.unwrap();
    let keys: Vec<StepKey> = (1..=n)
        .map(|u| StepKey::miner(run, MinerUid::new(u), kind))
        .collect();
    let specs: Vec<StepSpec> = keys
        .iter()
        .map(|k| StepSpec {
            key: *k,
            hotkey: format!("hk{}", k.miner),
            status: StepStatus::Pending,
            next_run_at: now,
            max_retries: 3,
            context: None,
        })
        .collect();
    db.steps().enqueue(&specs, now).await.unwrap();
    (run, keys)
}

async fn wait_until_all(db: &Db, keys: &[StepKey], status: StepStatus, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut done = 0;
        for k in keys {
            if db.steps().get(k).await.unwrap().unwrap().status().unwrap() == status {
                done += 1;
            }
        }
        if done == keys.len() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done}/{} steps {status} after {within:?}",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// day1/score and era5/score are claimed in the miner-data class; the memory budget caps the
/// scoring permits first (700 MiB each), then those steps to what the permits leave (160 MiB
/// each, docs/pipeline.md §4.7).
async fn miner_data_steps_respect_the_memory_budget(t: TestDb) {
    let (_, keys) = seed(&t.db, 8, StepKind::Day1Score).await;
    let runner = SleepyRunner::new(Duration::from_millis(150));
    let mut cfg = config(Duration::from_secs(10), Duration::from_secs(2));
    cfg.concurrency.scoring = 8;
    cfg.concurrency.miner_data = 16;
    cfg.concurrency.scoring_memory_budget_mib = 2048;
    cfg.scoring_step_bytes = 700 << 20;
    // 2 GiB / 700 MiB → 2 permits; (2048 − 1400) MiB / 160 MiB → 4 steps
    assert_eq!(cfg.limit(wx_model::step::ResourceClass::Scoring), 2);
    assert_eq!(cfg.limit(wx_model::step::ResourceClass::MinerData), 4);
    let stop = CancellationToken::new();
    let sched = Scheduler::new(t.db.clone(), cfg, runner.clone(), Arc::new(SystemClock));
    let handle = tokio::spawn(sched.run(stop.clone()));
    wait_until_all(&t.db, &keys, StepStatus::Succeeded, Duration::from_secs(20)).await;
    stop.cancel();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.finished, 8);
    assert_eq!(runner.runs.load(Ordering::SeqCst), 8, "each step ran once");
    let max = runner.max_running.load(Ordering::SeqCst);
    assert!(
        max <= 4,
        "{max} Day1 steps at once exceeded the memory budget's 4"
    );
    assert_eq!(max, 4, "the four permitted slots should all be used");
}

async fn heartbeats_keep_a_step_longer_than_its_lease(t: TestDb) {
    let (_, keys) = seed(&t.db, 1, StepKind::VerifyOpenStore).await;
    // the step takes 3 s, the lease is 1 s: only heartbeats keep it
    let runner = SleepyRunner::new(Duration::from_secs(3));
    let stop = CancellationToken::new();
    let sched = Scheduler::new(
        t.db.clone(),
        config(Duration::from_secs(1), Duration::from_millis(250)),
        runner.clone(),
        Arc::new(SystemClock),
    );
    let metrics = sched.metrics();
    let handle = tokio::spawn(sched.run(stop.clone()));
    wait_until_all(&t.db, &keys, StepStatus::Succeeded, Duration::from_secs(15)).await;
    stop.cancel();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!((summary.finished, summary.lost, summary.rescued), (1, 0, 0));
    assert_eq!(runner.runs.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.leases_lost.get(), 0);
    let row = t.db.steps().get(&keys[0]).await.unwrap().unwrap();
    assert_eq!(row.attempt, 0);
    assert!(row.latency_ms.unwrap() >= 3000);
}

async fn a_dead_schedulers_step_is_rescued_and_run_once_more(t: TestDb) {
    let (_, keys) = seed(&t.db, 1, StepKind::VerifyOpenStore).await;
    let lease = Duration::from_secs(1);
    // scheduler A claims the step, then dies (its task is aborted: no heartbeat, no release)
    let slow = SleepyRunner::new(Duration::from_secs(60));
    let a = tokio::spawn(
        Scheduler::new(
            t.db.clone(),
            config(lease, Duration::from_millis(250)),
            slow.clone(),
            Arc::new(SystemClock),
        )
        .run(CancellationToken::new()),
    );
    wait_until_all(
        &t.db,
        &keys,
        StepStatus::InProgress,
        Duration::from_secs(10),
    )
    .await;
    a.abort();
    let _ = a.await;
    // scheduler B, on another connection pool, rescues it after the lease and runs it
    let db_b = Db::open(t.url()).await.unwrap();
    let fast = SleepyRunner::new(Duration::from_millis(10));
    let stop = CancellationToken::new();
    let b = tokio::spawn(
        Scheduler::new(
            db_b,
            config(lease, Duration::from_millis(250)),
            fast.clone(),
            Arc::new(SystemClock),
        )
        .run(stop.clone()),
    );
    wait_until_all(&t.db, &keys, StepStatus::Succeeded, Duration::from_secs(15)).await;
    stop.cancel();
    let summary = b.await.unwrap().unwrap();
    assert_eq!(summary.rescued, 1);
    assert_eq!(fast.runs.load(Ordering::SeqCst), 1);
    let row = t.db.steps().get(&keys[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.attempt, row.lease_losses),
        (0, 1),
        "the lost lease is counted apart, not as a consumed attempt"
    );
    assert!(row.claimed_by.is_some());
}

async fn shutdown_releases_unfinished_steps_without_consuming_attempts(t: TestDb) {
    let (_, keys) = seed(&t.db, 3, StepKind::Day1Score).await;
    // runs far longer than the grace period and ignores nothing: it stops when cancelled
    let runner = SleepyRunner::new(Duration::from_secs(120));
    let stop = CancellationToken::new();
    let mut cfg = config(Duration::from_secs(10), Duration::from_secs(2));
    cfg.concurrency.scoring = 3;
    cfg.scoring_step_bytes = 1;
    let sched = Scheduler::new(t.db.clone(), cfg, runner.clone(), Arc::new(SystemClock));
    let handle = tokio::spawn(sched.run(stop.clone()));
    wait_until_all(
        &t.db,
        &keys,
        StepStatus::InProgress,
        Duration::from_secs(10),
    )
    .await;
    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("shutdown within the grace period")
        .unwrap()
        .unwrap();
    // The cancelled runner returned Succeeded quickly after cancel: the scheduler either
    // recorded that or released the claim; with the grace period shorter than the work, the
    // steps were cancelled, and their completions applied after cancellation are legitimate.
    let mut pending_or_done = 0;
    for k in &keys {
        let row = t.db.steps().get(k).await.unwrap().unwrap();
        let status = row.status().unwrap();
        assert!(
            matches!(status, StepStatus::Pending | StepStatus::Succeeded),
            "{k}: {status}"
        );
        assert_eq!(row.attempt, 0, "shutdown must not consume attempts");
        assert!(row.claim_token.is_none());
        pending_or_done += 1;
    }
    assert_eq!(pending_or_done, 3);
    assert_eq!(summary.finished + summary.released, 3);
}

struct CountingJob(Arc<AtomicUsize>);

impl PeriodicJob for CountingJob {
    fn name(&self) -> &str {
        "count"
    }
    fn interval(&self) -> Duration {
        Duration::from_millis(100)
    }
    fn run(&self) -> BoxFuture<'static, Result<(), wx_scheduler::JobError>> {
        let n = self.0.clone();
        async move {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        .boxed()
    }
}

async fn periodic_jobs_run_until_shutdown(t: TestDb) {
    let count = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let sched = Scheduler::new(
        t.db.clone(),
        config(Duration::from_secs(10), Duration::from_secs(2)),
        SleepyRunner::new(Duration::ZERO),
        Arc::new(SystemClock),
    )
    .with_periodic(Arc::new(CountingJob(count.clone())));
    let handle = tokio::spawn(sched.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(650)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let n = count.load(Ordering::SeqCst);
    assert!(
        (4..=9).contains(&n),
        "expected about 6 runs in 650 ms, got {n}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count.load(Ordering::SeqCst), n, "no runs after shutdown");
}

/// Scheduler A claims every step and dies (no heartbeat, no release); B takes over.
async fn die_holding_everything(t: &TestDb, lease: Duration, keys: &[StepKey]) {
    let a = tokio::spawn(
        Scheduler::new(
            t.db.clone(),
            config(lease, Duration::from_millis(250)),
            SleepyRunner::new(Duration::from_secs(60)),
            Arc::new(SystemClock),
        )
        .run(CancellationToken::new()),
    );
    wait_until_all(&t.db, keys, StepStatus::InProgress, Duration::from_secs(10)).await;
    a.abort();
    let _ = a.await;
}

async fn a_step_out_of_lost_leases_fails_with_the_runners_failure_effects(t: TestDb) {
    let (run, keys) = seed(&t.db, 2, StepKind::VerifyOpenStore).await;
    let lease = Duration::from_secs(1);
    die_holding_everything(&t, lease, &keys).await;
    let b = SleepyRunner::fragile(Duration::from_millis(10));
    let stop = CancellationToken::new();
    let handle = tokio::spawn(
        Scheduler::new(
            Db::open(t.url()).await.unwrap(),
            config(lease, Duration::from_millis(250)),
            b.clone(),
            Arc::new(SystemClock),
        )
        .run(stop.clone()),
    );
    wait_until_all(&t.db, &keys, StepStatus::Failed, Duration::from_secs(15)).await;
    stop.cancel();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!((summary.given_up, summary.finished), (2, 2));
    assert_eq!(
        b.runs.load(Ordering::SeqCst),
        0,
        "a given-up step does not run"
    );
    for k in &keys {
        let row = t.db.steps().get(k).await.unwrap().unwrap();
        assert_eq!(row.lease_losses, 1);
        assert!(row.error_json.unwrap().contains("lease_lost"));
        let stats = t.db.stats().get(run, k.miner).await.unwrap().unwrap();
        assert_eq!(stats.status().unwrap(), ForecastStatus::VerifyFailed);
        assert!(stats.forecast_error_msg.unwrap().contains("lease_lost"));
    }
    let run_row = t.db.runs().require(run).await.unwrap();
    assert_eq!(run_row.status().unwrap(), wx_model::RunStatus::Completed);
}

async fn failed_claims_back_off_and_recover(t: TestDb) {
    let (_, keys) = seed(&t.db, 2, StepKind::VerifyOpenStore).await;
    // the database refuses every change of a step row
    let refuse = match t.db.backend() {
        wx_store::Backend::Postgres => {
            "CREATE FUNCTION wx_refuse() RETURNS trigger LANGUAGE plpgsql AS              $$ BEGIN RAISE EXCEPTION 'writes refused'; END $$;              CREATE TRIGGER wx_refuse BEFORE UPDATE ON weather_forecast_steps              FOR EACH STATEMENT EXECUTE FUNCTION wx_refuse();"
        }
        wx_store::Backend::Sqlite => {
            "CREATE TRIGGER wx_refuse BEFORE UPDATE ON weather_forecast_steps              BEGIN SELECT RAISE(ABORT, 'writes refused'); END;"
        }
    };
    t.execute(refuse).await.unwrap();
    let runner = SleepyRunner::new(Duration::from_millis(10));
    let stop = CancellationToken::new();
    let sched = Scheduler::new(
        t.db.clone(),
        config(Duration::from_secs(10), Duration::from_secs(2)),
        runner.clone(),
        Arc::new(SystemClock),
    );
    let metrics = sched.metrics();
    let handle = tokio::spawn(sched.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // pauses of 0.1, 0.2, 0.4, 0.8 s: about 5 rounds in 1.6 s (a 50 ms poll would make 30)
    let failed = metrics.claim_failures.get();
    assert!(
        (2..=7).contains(&failed),
        "{failed} failed claim rounds in 1.6 s: no back-off"
    );
    let allow = match t.db.backend() {
        wx_store::Backend::Postgres => "DROP TRIGGER wx_refuse ON weather_forecast_steps;",
        wx_store::Backend::Sqlite => "DROP TRIGGER wx_refuse;",
    };
    t.execute(allow).await.unwrap();
    wait_until_all(&t.db, &keys, StepStatus::Succeeded, Duration::from_secs(15)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
}

async fn a_second_stop_request_ends_the_grace_period(t: TestDb) {
    let (_, keys) = seed(&t.db, 2, StepKind::Day1Score).await;
    let runner = SleepyRunner::new(Duration::from_secs(120));
    let (stop, urgent) = (CancellationToken::new(), CancellationToken::new());
    let mut cfg = config(Duration::from_secs(10), Duration::from_secs(2));
    cfg.shutdown_grace = Duration::from_secs(600);
    cfg.scoring_step_bytes = 1;
    let sched = Scheduler::new(t.db.clone(), cfg, runner.clone(), Arc::new(SystemClock))
        .with_urgent_stop(urgent.clone());
    let handle = tokio::spawn(sched.run(stop.clone()));
    wait_until_all(
        &t.db,
        &keys,
        StepStatus::InProgress,
        Duration::from_secs(10),
    )
    .await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !handle.is_finished(),
        "the first request waits for in-flight steps"
    );
    urgent.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the second request ends the 600 s grace period")
        .unwrap()
        .unwrap();
    assert_eq!(summary.finished + summary.released, 2);
    for k in &keys {
        let row = t.db.steps().get(k).await.unwrap().unwrap();
        assert_eq!(row.attempt, 0);
        assert!(row.claim_token.is_none());
    }
}

async fn steps_finishing_together_are_recorded_in_batches(t: TestDb) {
    let (_, keys) = seed(&t.db, 40, StepKind::VerifyOpenStore).await;
    let runner = SleepyRunner::new(Duration::ZERO);
    let mut cfg = config(Duration::from_secs(10), Duration::from_secs(2));
    cfg.concurrency.network = 40;
    cfg.concurrency.claim_batch = 40;
    cfg.completion_writers = 1;
    let stop = CancellationToken::new();
    let sched = Scheduler::new(t.db.clone(), cfg, runner.clone(), Arc::new(SystemClock));
    let metrics = sched.metrics();
    let handle = tokio::spawn(sched.run(stop.clone()));
    wait_until_all(&t.db, &keys, StepStatus::Succeeded, Duration::from_secs(20)).await;
    stop.cancel();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.finished, 40);
    let batches = metrics.completion_batches.get();
    assert!(
        batches < 40,
        "40 steps ending together were written in {batches} transactions"
    );
}

backend_tests!(
    a_step_out_of_lost_leases_fails_with_the_runners_failure_effects,
    failed_claims_back_off_and_recover,
    a_second_stop_request_ends_the_grace_period,
    steps_finishing_together_are_recorded_in_batches,
    miner_data_steps_respect_the_memory_budget,
    heartbeats_keep_a_step_longer_than_its_lease,
    a_dead_schedulers_step_is_rescued_and_run_once_more,
    shutdown_releases_unfinished_steps_without_consuming_attempts,
    periodic_jobs_run_until_shutdown,
);
