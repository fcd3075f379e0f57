//! The daemon's completion rate: a scheduler with an instant runner drains 3,000 due steps
//! (each completion a stats patch and a sub-step log, i.e. a transaction), recording
//! completions one by one (`completion_batch` 1, the daemon before batching) and in batches
//! (the default). Run with `cargo xtask bench queue`.

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wx_model::{MinerUid, RetryPolicy, RunId, StepKey, StepKind, StepStatus, SystemClock};
use wx_scheduler::{Scheduler, SchedulerConfig, StepRunner};
use wx_store::testing::TestDb;
use wx_store::{Claim, Completion, Db, Effects, Outcome, StatsPatch, StepLog, StepSpec};

const STEPS: usize = 3000;

/// Ends every step at once with a small result.
struct Instant0;

impl StepRunner for Instant0 {
    fn run(&self, claim: Claim, _cancel: CancellationToken) -> BoxFuture<'static, Completion> {
        let now = Utc::now();
        let completion = Completion {
            outcome: Outcome::Succeeded,
            context: None,
            effects: Effects {
                stats: vec![(
                    claim.key.miner,
                    StatsPatch {
                        hosting_latency_ms: Some(1),
                        ..StatsPatch::default()
                    },
                )],
                logs: vec![StepLog {
                    key: StepKey::lead(
                        claim.key.run,
                        claim.key.miner,
                        StepKind::Era5Lead,
                        claim.key.lead_hours,
                    ),
                    hotkey: claim.hotkey.clone(),
                    status: StepStatus::Succeeded,
                    attempt: 0,
                    max_retries: 0,
                    started_at: now,
                    completed_at: Some(now),
                    error: None,
                    context: None,
                }],
                ..Effects::default()
            },
        };
        futures::future::ready(completion).boxed()
    }

    fn retry_policy(&self, _kind: StepKind) -> RetryPolicy {
        RetryPolicy::default()
    }
}

async fn seed(db: &Db) -> RunId {
    let now = Utc::now();
    db.miners()
        .import(
            &[wx_store::MinerRecord {
                uid: 1,
                hotkey: "5Bench".into(),
                store_url: "https://bench.example/x.zarr".into(),
                access_token: "t0ken".into(),
            }],
            now,
        )
        .await
        .unwrap();
    let run = RunId(
        db.runs()
            .create_or_get(now, true, "{}", now)
            .await
            .unwrap()
            .run
            .id,
    );
    db.stats()
        .seed(run, &[(MinerUid::new(1), "5Bench".into())], now)
        .await
        .unwrap();
    let specs: Vec<StepSpec> = (0..STEPS)
        .map(|i| StepSpec {
            key: StepKey::lead(
                run,
                MinerUid::new(1),
                StepKind::VerifyOpenStore,
                i as u32 + 1,
            ),
            hotkey: "5Bench".into(),
            status: StepStatus::Pending,
            next_run_at: now,
            max_retries: 3,
            context: None,
        })
        .collect();
    for chunk in specs.chunks(1000) {
        db.steps().enqueue(chunk, now).await.unwrap();
    }
    run
}

async fn drain(t: &TestDb, run: RunId, batch: usize) -> f64 {
    let mut config = SchedulerConfig::from_pipeline(&wx_model::config::PipelineConfig::default());
    config.concurrency.network = 64;
    config.concurrency.claim_batch = 64;
    config.concurrency.poll_interval_ms = 10;
    config.completion_batch = batch;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let handle = tokio::spawn(
        Scheduler::new(
            t.db.clone(),
            config,
            Arc::new(Instant0),
            Arc::new(SystemClock),
        )
        .run(stop.clone()),
    );
    loop {
        let done =
            t.db.steps()
                .counts(Some(run))
                .await
                .unwrap()
                .get(StepKind::VerifyOpenStore, StepStatus::Succeeded);
        if done as usize == STEPS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.finished as usize, STEPS);
    STEPS as f64 / elapsed.as_secs_f64()
}

async fn measure(label: &str, make: impl AsyncFn() -> TestDb) {
    let mut rates = Vec::new();
    for batch in [1, 32] {
        let t = make().await;
        let run = seed(&t.db).await;
        let rate = drain(&t, run, batch).await;
        println!(
            "completion/{label}: {STEPS} steps, completion batch ≤ {batch}: {rate:.0} completions/s"
        );
        rates.push(rate);
    }
    println!(
        "completion/{label}: batched / one by one = {:.2}",
        rates[1] / rates[0]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("WX_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only.is_empty() || only == "postgres" {
            measure("postgres", TestDb::postgres).await;
        }
        if only.is_empty() || only == "sqlite" {
            measure("sqlite", TestDb::sqlite).await;
        }
    });
}
