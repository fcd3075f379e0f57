//! Many workers with separate connections drain one queue: every step completes exactly once
//! and no step is ever held by two live workers.

mod common;

use chrono::Utc;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wx_model::{Blame, ErrorKind, MinerUid, StepError, StepKey, StepKind, StepStatus};
use wx_store::testing::TestDb;
use wx_store::{ClaimRequest, Completion, Db, Fence, Outcome, StepSpec};

const STEPS: usize = 2000;

/// Per step: the (worker, start, end) intervals during which a worker held it.
type Holds = Arc<Mutex<HashMap<i64, Vec<(usize, Instant, Instant)>>>>;

async fn drain(t: TestDb, workers: usize) {
    let run = seeded_run(&t.db, 1).await;
    // 2000 steps: per-lead rows of one miner's era5/score are not realistic, so use distinct
    // runs' keys via lead_hours on a claimable kind; the queue treats them as independent rows.
    let now = Utc::now();
    let specs: Vec<StepSpec> = (0..STEPS)
        .map(|i| StepSpec {
            key: StepKey::lead(run, MinerUid::new(1), StepKind::Era5Score, i as u32 + 1),
            hotkey: "5Hotkey001".into(),
            status: StepStatus::Pending,
            next_run_at: now,
            max_retries: 5,
            context: None,
        })
        .collect();
    assert_eq!(t.db.steps().enqueue(&specs, now).await.unwrap(), STEPS);

    let holds: Holds = Arc::default();
    let completed: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..workers {
        // each worker has its own pool: separate connections, like separate processes
        let db = Db::open(t.url()).await.unwrap();
        let (holds, completed) = (holds.clone(), completed.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("worker-{w}");
            let kinds = [StepKind::Era5Score];
            let mut idle_rounds = 0;
            loop {
                let claims = db
                    .queue()
                    .claim(&ClaimRequest {
                        worker: &name,
                        kinds: &kinds,
                        limit: 8,
                        lease: Duration::from_secs(300),
                        now: Utc::now(),
                    })
                    .await
                    .unwrap();
                if claims.is_empty() {
                    idle_rounds += 1;
                    if idle_rounds > 20 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                idle_rounds = 0;
                for claim in claims {
                    let start = Instant::now();
                    // every 7th step fails once and is retried immediately by whoever claims it
                    let outcome = if claim.key.lead_hours % 7 == 0 && claim.attempt == 0 {
                        Outcome::Retry {
                            at: Utc::now(),
                            error: StepError::new(
                                ErrorKind::Network,
                                Blame::Miner,
                                "transient",
                                &[],
                            ),
                        }
                    } else {
                        Outcome::Succeeded
                    };
                    let succeeded = outcome == Outcome::Succeeded;
                    let end = Instant::now();
                    holds
                        .lock()
                        .unwrap()
                        .entry(claim.id)
                        .or_default()
                        .push((w, start, end));
                    let fence = db
                        .queue()
                        .finish(&claim, &Completion::bare(outcome), Utc::now())
                        .await
                        .unwrap();
                    assert_eq!(fence, Fence::Applied, "no lease can expire in this test");
                    if succeeded {
                        *completed.lock().unwrap().entry(claim.id).or_default() += 1;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let completed = std::mem::take(&mut *completed.lock().unwrap());
    assert_eq!(completed.len(), STEPS, "every step completed");
    assert!(
        completed.values().all(|n| *n == 1),
        "a step completed more than once"
    );
    let holds = std::mem::take(&mut *holds.lock().unwrap());
    for (id, intervals) in holds.iter() {
        for (i, a) in intervals.iter().enumerate() {
            for b in &intervals[i + 1..] {
                let overlap = a.1 < b.2 && b.1 < a.2;
                assert!(
                    !overlap || a.0 == b.0,
                    "step {id} held by workers {} and {} at once",
                    a.0,
                    b.0
                );
            }
        }
    }
    let retried = holds.values().filter(|v| v.len() > 1).count();
    assert_eq!(
        retried,
        STEPS / 7,
        "each step that failed once ran exactly twice"
    );
    let counts = t.db.steps().counts(None).await.unwrap();
    assert_eq!(
        counts.get(StepKind::Era5Score, StepStatus::Succeeded),
        STEPS as i64
    );
    let used: std::collections::BTreeSet<usize> = holds.values().flatten().map(|h| h.0).collect();
    assert!(
        used.len() > 1,
        "work should spread over several workers, got {used:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_eight_workers_drain_2000_steps_exactly_once() {
    drain(TestDb::postgres().await, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_four_workers_drain_2000_steps_exactly_once() {
    drain(TestDb::sqlite().await, 4).await;
}
