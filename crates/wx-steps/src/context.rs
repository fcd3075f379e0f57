//! What every step gets: the database, the configuration, the clock, the data hub and the
//! process's scoring permits.

use crate::config::{Targets, ValidatorConfig};
use crate::data::{DataError, DataHub};
use crate::wrapper::StepFailure;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wx_model::rows::{MinerRow, NewScore};
use wx_model::{Blame, Clock, ErrorKind, StepError, VarLevel};
use wx_store::{Claim, Db, MinerStatsRefresh, StoreError};

/// Shared by every step a process runs.
pub struct StepContext {
    /// The database.
    pub db: Db,
    /// The configuration.
    pub config: Arc<ValidatorConfig>,
    /// The timings of its mode (operator or test), resolved once when the pipeline was built.
    pub timings: wx_model::config::Timings,
    /// Parsed variables and leads.
    pub targets: Targets,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// Data access.
    pub data: Arc<DataHub>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::StepsMetrics>,
    /// The process's scoring permits (`[pipeline.concurrency] scoring`, lowered to the memory
    /// budget), shared by every day1/score and era5/score step: reading the miner's data takes
    /// none, regridding and scoring what was read takes one (docs/pipeline.md §4.7).
    pub scoring_permits: Arc<Semaphore>,
    /// The operator's override of the submission window (`wx-step run --force --allow-late`):
    /// who allowed it, recorded in the verify step's context. None in the daemon.
    pub late_override: Option<String>,
}

impl StepContext {
    /// Runs CPU-bound scoring `work` on the blocking pool under one scoring permit; returns its
    /// result and how long the work itself took (the wait for the permit excluded). The permit
    /// moves into the blocking task and is released when the work ends, even if the step that
    /// asked for it was stopped meanwhile, so the permits never exceed the computations running.
    pub async fn score_blocking<T, F>(&self, work: F) -> Result<(T, Duration), StepFailure>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        score_under_permit(&self.scoring_permits, work).await
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The run's GFS init time.
    pub async fn run_init(&self, claim: &Claim) -> Result<DateTime<Utc>, StepFailure> {
        Ok(self.run_row(claim).await?.gfs_init_time_utc.and_utc())
    }

    /// The run's start (its creation time), from which its submission window counts.
    pub async fn run_start(&self, claim: &Claim) -> Result<DateTime<Utc>, StepFailure> {
        Ok(self.run_row(claim).await?.run_initiation_time.and_utc())
    }

    async fn run_row(&self, claim: &Claim) -> Result<wx_model::rows::RunRow, StepFailure> {
        self.db
            .runs()
            .require(claim.key.run)
            .await
            .map_err(|e| db_failure(&e))
    }

    /// The registered miner of a claim, or a permanent failure if the uid was deregistered or
    /// now belongs to another hotkey: a run scores only the hotkey it seeded, and the new
    /// hotkey joins the next run (docs/operating.md, "Fair play").
    pub async fn miner(&self, claim: &Claim) -> Result<MinerRow, StepFailure> {
        let uid = claim.key.miner;
        let row = self
            .db
            .miners()
            .get(uid.as_i32())
            .await
            .map_err(|e| db_failure(&e))?;
        match row {
            Some(m) if m.hotkey == claim.hotkey => Ok(m),
            Some(m) => {
                tracing::warn!(
                    run = %claim.key.run,
                    miner = %uid,
                    seeded = %claim.hotkey,
                    registered = %m.hotkey,
                    "the uid changed hands during the run: the seeded hotkey is no longer scored"
                );
                Err(StepFailure::permanent(
                    ErrorKind::Identity,
                    Blame::Miner,
                    &format!(
                        "miner {uid}: hotkey {} was registered at this uid after the run was \
                         seeded for hotkey {}; this run scores only the seeded hotkey, the new \
                         one joins the next run",
                        m.hotkey, claim.hotkey
                    ),
                ))
            }
            None => Err(StepFailure::permanent(
                ErrorKind::Identity,
                Blame::Miner,
                &format!(
                    "miner {uid} is no longer registered (removed with `wx-validator miners \
                     remove`); re-import it to score it in the next run"
                ),
            )),
        }
    }

    /// The refresh of the claim's miner's lifetime statistics (its identity: uid and the
    /// hotkey the run seeded), as a completion effect.
    pub fn refresh(&self, claim: &Claim) -> MinerStatsRefresh {
        MinerStatsRefresh {
            uid: claim.key.miner,
            hotkey: claim.hotkey.clone(),
            day1_pass_threshold: self.config.scoring.day1.pass_threshold,
        }
    }
}

/// [`StepContext::score_blocking`] with the given permits.
pub async fn score_under_permit<T, F>(
    permits: &Arc<Semaphore>,
    work: F,
) -> Result<(T, Duration), StepFailure>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let permit = Arc::clone(permits).acquire_owned().await.map_err(|e| {
        StepFailure::retryable(ErrorKind::Internal, Blame::Infrastructure, &e.to_string())
    })?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = work();
        drop(permit);
        (out, started.elapsed())
    })
    .await
    .map_err(|e| StepFailure::retryable(ErrorKind::Internal, Blame::Infrastructure, &e.to_string()))
}

/// The time one day1/score or era5/score run may still spend waiting on the miner's store
/// (`pipeline.miner_step_deadline_seconds`, docs/pipeline.md §4.7). Only the miner's reads are
/// timed: waiting for a scoring permit, scoring and reading the truth are the validator's own
/// time and never turn into the miner's failure.
#[derive(Debug)]
pub struct MinerDeadline {
    limit: Option<Duration>,
    used: Duration,
}

impl MinerDeadline {
    /// A deadline of `limit` (`None`: none).
    pub fn new(limit: Option<Duration>) -> MinerDeadline {
        MinerDeadline {
            limit,
            used: Duration::ZERO,
        }
    }

    /// Time spent on the miner's reads so far.
    pub fn used(&self) -> Duration {
        self.used
    }

    /// Runs one read of the miner's store within what is left of the deadline. Past it the read
    /// is dropped (its connections closed) and the result is a miner-blamed timeout whose
    /// message starts with "deadline".
    pub async fn run<T>(&mut self, read: impl Future<Output = T>) -> Result<T, DataError> {
        let started = Instant::now();
        let Some(limit) = self.limit else {
            let out = read.await;
            self.used += started.elapsed();
            return Ok(out);
        };
        let left = limit.saturating_sub(self.used);
        if left.is_zero() {
            return Err(self.passed(limit));
        }
        let out = tokio::time::timeout(left, read).await;
        self.used += started.elapsed();
        out.map_err(|_| self.passed(limit))
    }

    fn passed(&self, limit: Duration) -> DataError {
        DataError::new(
            ErrorKind::Timeout,
            Blame::Miner,
            format!(
                "deadline: the step spent {:.0} s reading the miner's store, the limit of one run \
                 (pipeline.miner_step_deadline_seconds = {}); the store must serve its forecast \
                 faster",
                self.used.as_secs_f64(),
                limit.as_secs()
            ),
        )
    }
}

/// A database error as a (retryable, infrastructure) step failure.
pub fn db_failure(e: &StoreError) -> StepFailure {
    StepFailure::retryable(ErrorKind::Database, Blame::Infrastructure, &e.to_string())
}

/// A data error as a step failure (retryable or not by its kind). `secrets` are removed from
/// the message (the miner's token).
pub fn data_failure(e: &DataError, secrets: &[&str]) -> StepFailure {
    StepFailure {
        error: StepError::new(e.kind, e.blame, &e.message, secrets),
        retryable: e.is_retryable(),
        effects: Box::default(),
        on_final: Box::default(),
        retry_until: None,
    }
}

/// Resolves the `{run_id}` and `{init}` placeholders of a miner's store URL.
pub fn store_url(template: &str, run: wx_model::RunId, init: DateTime<Utc>) -> String {
    template
        .replace("{run_id}", &run.to_string())
        .replace("{init}", &init.format("%Y%m%d%H").to_string())
}

/// A score row of a miner.
#[allow(clippy::too_many_arguments)]
pub fn score_row(
    claim: &Claim,
    score_type: &str,
    selection: Option<&VarLevel>,
    lead_hours: u32,
    score: Result<f64, String>,
    valid_time: Option<DateTime<Utc>>,
    metrics: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> NewScore {
    let (score, error_message) = match score {
        Ok(x) if x.is_finite() => (Some(x), None),
        Ok(x) => (None, Some(format!("not a finite number ({x})"))),
        Err(e) => (None, Some(wx_model::sanitize_message(&e, &[]))),
    };
    NewScore {
        run_id: claim.key.run.0,
        miner_uid: claim.key.miner.as_i32(),
        miner_hotkey: claim.hotkey.clone(),
        score_type: score_type.to_owned(),
        variable: selection
            .map(|v| v.variable.as_str().to_owned())
            .unwrap_or_default(),
        level: selection.and_then(|v| v.level).map(i32::from).unwrap_or(0),
        lead_hours: lead_hours as i32,
        score,
        valid_time_utc: valid_time.map(|t| t.naive_utc()),
        error_message,
        metrics: metrics.map(|m| m.to_string()),
        calculated_at: now.naive_utc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step stopped while its computation runs (deadline, lost lease, shutdown) neither
    /// leaks its permit nor frees it early: the permit follows the computation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_permit_is_held_by_the_computation_not_by_the_step() {
        let permits = Arc::new(Semaphore::new(1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stopped = tokio::time::timeout(
            Duration::from_millis(100),
            score_under_permit(&permits, move || wait.recv().is_ok()),
        )
        .await;
        assert!(stopped.is_err(), "the step was stopped mid-computation");
        assert_eq!(
            permits.available_permits(),
            0,
            "still computing: still held"
        );
        release.send(()).unwrap();
        let back = tokio::time::timeout(Duration::from_secs(30), permits.acquire())
            .await
            .expect("the permit comes back when the computation ends");
        drop(back);
        // and a step that runs to its end returns the permit with its result
        let (out, _) = score_under_permit(&permits, || 7).await.unwrap();
        assert_eq!((out, permits.available_permits()), (7, 1));
    }

    /// Only the miner's reads count against the deadline; past it the read is stopped with a
    /// miner-blamed timeout whose message starts with "deadline".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deadline_stops_the_read_that_outlasts_it() {
        let mut deadline = MinerDeadline::new(Some(Duration::from_millis(300)));
        assert_eq!(deadline.run(async { 1 }).await.unwrap(), 1);
        // time outside reads is not counted
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(deadline.used() < Duration::from_millis(300));
        let err = deadline
            .run(tokio::time::sleep(Duration::from_secs(60)))
            .await
            .unwrap_err();
        assert_eq!((err.kind, err.blame), (ErrorKind::Timeout, Blame::Miner));
        assert!(err.message.starts_with("deadline: "), "{}", err.message);
        assert!(err.is_retryable());
        // nothing is left: the next read fails at once
        assert!(deadline.run(async { 2 }).await.is_err());
        let mut none = MinerDeadline::new(None);
        assert_eq!(none.run(async { 3 }).await.unwrap(), 3);
    }

    #[test]
    fn store_url_placeholders_are_resolved() {
        let init = "2025-01-02T12:00:00Z".parse().unwrap();
        assert_eq!(
            super::store_url(
                "https://m.example/forecasts/{init}-{run_id}.zarr",
                wx_model::RunId(7),
                init
            ),
            "https://m.example/forecasts/2025010212-7.zarr"
        );
    }
}
