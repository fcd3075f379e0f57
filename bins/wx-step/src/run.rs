//! `wx-step run`: re-runs one miner's steps now, in the foreground, through the same sub-step
//! code and the same fencing as the daemon.
//!
//! For each of the miner's step kinds in pipeline order (verify/open_store, day1/score,
//! era5/score; `--step` keeps one) the row is claimed by key with
//! [`wx_store::Queue::claim_key`] (without `force` only when due; with `force` whatever its
//! status, attempts reset; in a run that is over, with no retry), then goes through the
//! daemon's claim lifecycle, [`wx_scheduler::run_claim`]: the pipeline runs it while a
//! heartbeat extends the lease, and the completion is recorded fenced by the claim token,
//! retried on transient database errors. Successors are enqueued by the completions themselves
//! (verify → Day1 → ERA5), so a kind that did not exist before its predecessor ran is found due
//! when its turn comes.

use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wx_model::{Clock, MinerUid, RunId, StepKey, StepKind, StepStatus};
use wx_scheduler::{ClaimServices, Recorded, SchedulerMetrics, ServiceSettings, run_claim};
use wx_steps::Pipeline;
use wx_store::{Db, KeyClaim, Outcome, StoreError};

/// A miner's step kind, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepChoice {
    /// verify/open_store.
    Verify,
    /// day1/score.
    Day1,
    /// era5/score.
    Era5,
}

impl StepChoice {
    /// The step kind.
    pub fn kind(self) -> StepKind {
        match self {
            StepChoice::Verify => StepKind::VerifyOpenStore,
            StepChoice::Day1 => StepKind::Day1Score,
            StepChoice::Era5 => StepKind::Era5Score,
        }
    }
}

/// The miner's units of work, in pipeline order.
pub const MINER_STEPS: [StepKind; 3] = [
    StepKind::VerifyOpenStore,
    StepKind::Day1Score,
    StepKind::Era5Score,
];

/// What to re-run.
#[derive(Debug, Clone)]
pub struct RerunRequest {
    /// The run.
    pub run: RunId,
    /// The miner.
    pub miner: MinerUid,
    /// Only this kind (default: every kind of the miner, in order).
    pub step: Option<StepChoice>,
    /// Run even if not due (succeeded, failed, waiting in the future); attempts reset.
    pub force: bool,
    /// Stored in `claimed_by`.
    pub worker: String,
    /// Lease of each claim.
    pub lease: Duration,
    /// Heartbeat interval (at most half the lease).
    pub heartbeat: Duration,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq)]
pub enum StepResult {
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed; another attempt is scheduled.
    RetryScheduled {
        /// When.
        at: DateTime<Utc>,
        /// Why it failed.
        error: String,
    },
    /// Ran and failed for good.
    Failed {
        /// Why.
        error: String,
    },
    /// Ran; its data is not ready, it waits without consuming an attempt.
    Waiting {
        /// Until when.
        until: DateTime<Utc>,
        /// What it waits for.
        reason: String,
    },
    /// Not run: not due and `--force` not given.
    NotDue {
        /// The row's status.
        status: StepStatus,
        /// When it is due.
        next_run_at: DateTime<Utc>,
    },
    /// Not run: held by a live lease.
    Busy {
        /// The holder.
        claimed_by: Option<String>,
        /// Until when.
        lease_expires_at: Option<DateTime<Utc>>,
    },
    /// Not run: no such row (its predecessor has not succeeded yet).
    Missing,
    /// Ran, but the lease was lost meanwhile: nothing was recorded.
    LeaseLost,
    /// Ran, but the database kept refusing the result until the lease ran out: nothing was
    /// recorded; the daemon will run the step again.
    Unrecorded {
        /// The last database error.
        error: String,
    },
}

impl StepResult {
    /// Whether this result makes the command fail (a failed attempt, busy, missing, lost).
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            StepResult::RetryScheduled { .. }
                | StepResult::Failed { .. }
                | StepResult::Busy { .. }
                | StepResult::Missing
                | StepResult::LeaseLost
                | StepResult::Unrecorded { .. }
        )
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Succeeded => f.write_str("succeeded"),
            StepResult::RetryScheduled { at, error } => {
                write!(f, "retry scheduled at {}: {error}", time(*at))
            }
            StepResult::Failed { error } => write!(f, "failed: {error}"),
            StepResult::Waiting { until, reason } => {
                write!(f, "waiting until {}: {reason}", time(*until))
            }
            StepResult::NotDue {
                status,
                next_run_at,
            } => write!(
                f,
                "not due (status {status}, next_run_at {}; use --force)",
                time(*next_run_at)
            ),
            StepResult::Busy {
                claimed_by,
                lease_expires_at,
            } => write!(
                f,
                "busy (held by {} until {})",
                claimed_by.as_deref().unwrap_or("unknown"),
                lease_expires_at.map(time).unwrap_or_else(|| "?".into())
            ),
            StepResult::Missing => f.write_str("missing"),
            StepResult::LeaseLost => {
                f.write_str("lease lost while running; the result was discarded")
            }
            StepResult::Unrecorded { error } => {
                write!(f, "the result could not be recorded: {error}")
            }
        }
    }
}

/// One printed line: the step and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLine {
    /// The step.
    pub key: StepKey,
    /// How it went.
    pub result: StepResult,
}

impl fmt::Display for StepLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.result)
    }
}

/// A one-line message (error texts may span lines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Re-runs the requested steps of one miner, calling `report` with each line as soon as the
/// step is done. Returns every line. Database errors abort (steps already run stay recorded).
pub async fn rerun(
    db: &Db,
    pipeline: &Pipeline,
    clock: Arc<dyn Clock>,
    req: &RerunRequest,
    mut report: impl FnMut(&StepLine),
) -> Result<Vec<StepLine>, StoreError> {
    let settings = ServiceSettings {
        lease: req.lease,
        heartbeat: req.heartbeat,
        max_batch: 1,
        writers: 1,
    };
    let (services, tasks) = ClaimServices::start(
        db,
        clock.clone(),
        settings,
        Arc::new(SchedulerMetrics::new()),
    );
    // boxed: the pipeline's futures are deep, and so would be every caller's
    let lines = Box::pin(rerun_each(
        db,
        pipeline,
        &clock,
        &services,
        req,
        &mut report,
    ))
    .await;
    drop(services);
    tasks.stop().await;
    lines
}

async fn rerun_each(
    db: &Db,
    pipeline: &Pipeline,
    clock: &Arc<dyn Clock>,
    services: &ClaimServices,
    req: &RerunRequest,
    report: &mut impl FnMut(&StepLine),
) -> Result<Vec<StepLine>, StoreError> {
    let kinds: Vec<StepKind> = match req.step {
        Some(s) => vec![s.kind()],
        None => MINER_STEPS.to_vec(),
    };
    let mut lines = Vec::new();
    for kind in kinds {
        let key = StepKey::miner(req.run, req.miner, kind);
        let claimed = db
            .queue()
            .claim_key(&key, &req.worker, req.lease, clock.now(), req.force)
            .await?;
        let result = match claimed {
            KeyClaim::Missing => StepResult::Missing,
            KeyClaim::Busy {
                claimed_by,
                lease_expires_at,
            } => StepResult::Busy {
                claimed_by,
                lease_expires_at,
            },
            KeyClaim::NotDue {
                status,
                next_run_at,
            } => StepResult::NotDue {
                status,
                next_run_at,
            },
            KeyClaim::Claimed(claim) => {
                tracing::info!(step = %claim.key, attempt = claim.attempt + 1, "running");
                let ran = run_claim(services, claim, |c, cancel| pipeline.run(c, cancel)).await;
                match ran.recorded {
                    Recorded::Lost => StepResult::LeaseLost,
                    Recorded::Unrecorded(error) => StepResult::Unrecorded { error },
                    Recorded::Applied => match ran.completion.outcome {
                        Outcome::Succeeded => StepResult::Succeeded,
                        Outcome::Retry { at, error } => StepResult::RetryScheduled {
                            at,
                            error: one_line(&error.to_string()),
                        },
                        Outcome::Failed { error } => StepResult::Failed {
                            error: one_line(&error.to_string()),
                        },
                        Outcome::Wait { until, reason } => StepResult::Waiting {
                            until,
                            reason: one_line(&reason),
                        },
                    },
                }
            }
        };
        let line = StepLine { key, result };
        report(&line);
        lines.push(line);
    }
    Ok(lines)
}

/// `wx-step@host:pid`, stored in `claimed_by`.
pub fn default_worker() -> String {
    format!("wx-step@{}", wx_scheduler::default_worker_id())
}
