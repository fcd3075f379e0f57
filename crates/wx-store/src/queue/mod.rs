//! The durable step queue: claim due steps with a lease and a fresh claim token, heartbeat,
//! fenced completion with the step's results in the same transaction, retry scheduling,
//! waiting without consuming an attempt, rescue of expired leases, release on shutdown.
//!
//! - [`claim`](Queue::claim) and [`claim_key`](Queue::claim_key) (`claim.rs`): `FOR UPDATE
//!   SKIP LOCKED` on PostgreSQL, one `BEGIN IMMEDIATE` writer transaction on SQLite.
//! - `fence.rs`: every later change of a claimed row ([`heartbeat`](Queue::heartbeat),
//!   [`finish`](Queue::finish), [`release`](Queue::release), rescue) is filtered by the one
//!   fence `id AND claim_token AND status = 'in_progress'`: a worker that lost its lease
//!   changes nothing.
//! - `effects.rs`: the writes a completion carries ([`Effects`]), applied in its transaction,
//!   and the run-completion check.
//! - `rescue.rs`: [`rescue_expired`](Queue::rescue_expired), for steps whose worker stopped.
//!
//! `attempt` counts attempts *consumed*: a failure the step reported adds one; success, waiting
//! and lost leases do not (lost leases are counted in `lease_losses`). The attempt running now
//! is `attempt + 1`. Times are passed in by the caller (an injected clock); processes sharing a
//! database must have synchronised clocks (NTP).

mod claim;
mod effects;
mod fence;
mod rescue;

use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use std::time::Duration;
use wx_model::rows::StepRow;
use wx_model::{Clock, MinerUid, RunId, StepError, StepKey, StepStatus};

pub use effects::{Effects, MinerStatsRefresh};
pub use rescue::{CorruptRow, RescueAction, RescueReport, RescueRequest, Rescued};

/// A request to claim due steps.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// Who claims (process/host/worker name), stored in `claimed_by`.
    pub worker: &'a str,
    /// Which kinds may be claimed (per-kind concurrency is the caller's business).
    pub kinds: &'a [wx_model::StepKind],
    /// At most this many rows.
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// A claimed step: the right to run it until `lease_expires_at` (extend with heartbeats).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Row id.
    pub id: i64,
    /// The fencing token of this claim.
    pub token: String,
    /// The step's key.
    pub key: StepKey,
    /// The miner's hotkey (`coordinator` for run-level steps).
    pub hotkey: String,
    /// Attempts consumed before this one (failures the step reported).
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// Leases lost before this claim (its workers stopped or stalled).
    pub lease_losses: u32,
    /// The status the row had when claimed (a claim from `waiting` is a readiness check).
    pub claimed_from: StepStatus,
    /// The row's context.
    pub context: Option<serde_json::Value>,
    /// When this attempt started.
    pub started_at: DateTime<Utc>,
    /// When the lease runs out unless extended.
    pub lease_expires_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done for good.
    Succeeded,
    /// Failed; run again at `at` (consumes an attempt).
    Retry {
        /// When to run again.
        at: DateTime<Utc>,
        /// Why it failed.
        error: StepError,
    },
    /// Failed for good (consumes an attempt).
    Failed {
        /// Why it failed.
        error: StepError,
    },
    /// Data not ready: run again at `until` without consuming an attempt (at once if the step
    /// was woken while it ran).
    Wait {
        /// When to look again.
        until: DateTime<Utc>,
        /// What is awaited, for operators.
        reason: String,
    },
}

impl Outcome {
    fn status(&self) -> StepStatus {
        match self {
            Outcome::Succeeded => StepStatus::Succeeded,
            Outcome::Retry { .. } => StepStatus::RetryScheduled,
            Outcome::Failed { .. } => StepStatus::Failed,
            Outcome::Wait { .. } => StepStatus::Waiting,
        }
    }
}

/// What a step hands back to the queue when an attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// How the attempt ended.
    pub outcome: Outcome,
    /// New context for the row (`None` keeps the current one).
    pub context: Option<serde_json::Value>,
    /// Writes applied atomically with the completion.
    pub effects: Effects,
}

impl Completion {
    /// A completion without effects.
    pub fn bare(outcome: Outcome) -> Self {
        Completion {
            outcome,
            context: None,
            effects: Effects::default(),
        }
    }

    /// Whether applying this completion writes nothing but the step row's fenced update (no
    /// effects, no new context; a wait records its reason as context).
    fn writes_only_the_step(&self) -> bool {
        self.context.is_none()
            && !matches!(self.outcome, Outcome::Wait { .. })
            && self.effects == Effects::default()
    }
}

/// Whether a fenced write took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// The claim was still held; the write was applied.
    Applied,
    /// The claim was lost (lease expired and the row was rescued or re-claimed); nothing changed.
    Lost,
}

/// The result of [`Queue::claim_key`].
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// Claimed.
    Claimed(Claim),
    /// The row is held by a live worker.
    Busy {
        /// Who holds it.
        claimed_by: Option<String>,
        /// Until when.
        lease_expires_at: Option<DateTime<Utc>>,
    },
    /// The row is not due and `force` was not given.
    NotDue {
        /// Its status.
        status: StepStatus,
        /// When it becomes due (for non-terminal rows).
        next_run_at: DateTime<Utc>,
    },
    /// No such row.
    Missing,
}

/// The queue operations of a [`Db`].
pub struct Queue<'a> {
    db: &'a Db,
    clock: Option<&'a dyn Clock>,
}

impl Db {
    /// The durable step queue.
    pub fn queue(&self) -> Queue<'_> {
        Queue {
            db: self,
            clock: None,
        }
    }
}

impl<'a> Queue<'a> {
    /// The same queue, reading `clock` inside completion transactions once their locks are
    /// held, for the times recorded there (a run's `completed_at`): a run is then never stamped
    /// earlier than a snapshot that could not yet see its completion. Without a clock the
    /// `now` passed to [`Queue::finish`] is used.
    pub fn with_clock(self, clock: &'a dyn Clock) -> Queue<'a> {
        Queue {
            clock: Some(clock),
            ..self
        }
    }

    /// The time to record inside a transaction whose locks are held: the clock's, never before
    /// `now`.
    fn stamp(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.map_or(now, |c| c.now().max(now))
    }
}

/// The key of a step row: the one conversion from a row to a [`StepKey`]. A row wx cannot read
/// (an unknown kind, e.g. written by a newer version) is [`StoreError::Corrupt`].
pub(crate) fn step_key(row: &StepRow) -> Result<StepKey, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "weather_forecast_steps",
        message: format!("step row {}: {message}", row.id),
    };
    Ok(StepKey {
        run: RunId(row.run_id),
        miner: MinerUid::try_from(row.miner_uid).map_err(|e| corrupt(e.to_string()))?,
        kind: row.kind().map_err(|e| corrupt(e.to_string()))?,
        lead_hours: u32::try_from(row.lead_hours).map_err(|e| corrupt(e.to_string()))?,
    })
}

/// The claim a claimed row stands for.
pub(crate) fn claim_from_row(row: StepRow, claimed_from: StepStatus) -> Result<Claim, StoreError> {
    let key = step_key(&row)?;
    let token = row.claim_token.clone().ok_or_else(|| StoreError::Corrupt {
        table: "weather_forecast_steps",
        message: format!("claimed step row {} has no claim token", row.id),
    })?;
    Ok(Claim {
        id: row.id,
        token,
        key,
        hotkey: row.miner_hotkey,
        attempt: row.attempt.max(0) as u32,
        max_retries: row.max_retries.max(0) as u32,
        lease_losses: row.lease_losses.max(0) as u32,
        claimed_from,
        context: row
            .context
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
        started_at: crate::time::utc(row.started_at.unwrap_or(row.updated_at)),
        lease_expires_at: crate::time::utc(row.lease_expires_at.unwrap_or(row.updated_at)),
    })
}

/// When a lease taken at `now` runs out.
pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60))
}
