//! Queue throughput: claim → complete transitions per second while N workers (separate
//! connection pools) drain 20,000 due steps. Run with `cargo xtask bench queue`.
//!
//! Two completion modes are measured: one transaction per step, and batched completion (one
//! transaction for the batch a worker claimed).

use chrono::Utc;
use std::time::{Duration, Instant};
use wx_model::{MinerUid, RunId, StepKey, StepKind, StepStatus};
use wx_store::testing::TestDb;
use wx_store::{ClaimRequest, Completion, Db, Fence, Outcome, StepSpec};

const STEPS: usize = 20_000;
const BATCH: usize = 16;

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
            key: StepKey::lead(run, MinerUid::new(1), StepKind::Era5Score, i as u32 + 1),
            hotkey: "5Bench".into(),
            status: StepStatus::Pending,
            next_run_at: now,
            max_retries: 3,
            context: None,
        })
        .collect();
    for chunk in specs.chunks(2000) {
        db.steps().enqueue(chunk, now).await.unwrap();
    }
    run
}

async fn drain(url: &str, workers: usize, batched: bool) -> (Duration, usize) {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for w in 0..workers {
        let db = Db::open(url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            let kinds = [StepKind::Era5Score];
            let mut done = 0usize;
            loop {
                let req = ClaimRequest {
                    worker: &name,
                    kinds: &kinds,
                    limit: BATCH,
                    lease: Duration::from_secs(60),
                    now: Utc::now(),
                };
                let claims = db.queue().claim(&req).await.unwrap();
                if claims.is_empty() {
                    break;
                }
                let ok = Completion::bare(Outcome::Succeeded);
                if batched {
                    let items: Vec<_> = claims.iter().map(|c| (c, &ok)).collect();
                    let fences = db.queue().finish_many(&items, Utc::now()).await.unwrap();
                    done += fences.iter().filter(|f| **f == Fence::Applied).count();
                } else {
                    for c in &claims {
                        if db.queue().finish(c, &ok, Utc::now()).await.unwrap() == Fence::Applied {
                            done += 1;
                        }
                    }
                }
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (start.elapsed(), total)
}

async fn measure(label: &str, make: impl AsyncFn() -> TestDb, workers: usize, target: f64) {
    for batched in [false, true] {
        let t = make().await;
        seed(&t.db).await;
        let (elapsed, done) = drain(t.url(), workers, batched).await;
        assert_eq!(done, STEPS, "every step must complete exactly once");
        let rate = done as f64 / elapsed.as_secs_f64();
        println!(
            "queue/{label}: {workers} workers, {} completion: {done} transitions in {:.2} s = {rate:.0}/s (target ≥ {target:.0}/s: {})",
            if batched { "batched" } else { "per-step" },
            elapsed.as_secs_f64(),
            if rate >= target { "met" } else { "NOT met" }
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("WX_BENCH_ONLY").unwrap_or_default();
    let workers = |default: usize| {
        std::env::var("WX_BENCH_WORKERS")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(default)
    };
    rt.block_on(async {
        if only.is_empty() || only == "postgres" {
            measure("postgres", TestDb::postgres, workers(8), 5000.0).await;
        }
        if only.is_empty() || only == "sqlite" {
            measure("sqlite", TestDb::sqlite, workers(4), 2000.0).await;
        }
    });
}
