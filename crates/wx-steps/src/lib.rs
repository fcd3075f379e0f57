//! The sub-steps of a wx forecast run and the wrapper that runs them.
//!
//! A [`Pipeline`] turns a claimed step ([`wx_store::Claim`]) into a [`wx_store::Completion`]:
//! it dispatches on the step kind (seed, verify, Day1, ERA5, snapshot), maps the result through
//! the retry policy ([`wrapper`]), and adds the bookkeeping every step shares (the
//! `aggregate/miner_stats` refresh, run completion). It writes nothing itself: the scheduler
//! hands the completion to the store, which applies it fenced, in one transaction. Successors
//! (verify → Day1 → ERA5) are enqueued as effects, so the database alone says what is next.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod align;
pub mod config;
pub mod context;
pub mod data;
pub mod day1;
pub mod env_check;
pub mod era5;
pub mod give_up;
pub mod inputs;
pub mod metrics;
pub mod plan;
mod runner;
pub mod runs;
pub mod seed;
pub mod verify;
pub mod wrapper;

use context::StepContext;
use futures::future::BoxFuture;
use rand::SeedableRng;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wrapper::{StepFailure, StepResult};
use wx_model::step::Scope;
use wx_model::{Clock, RetryPolicy, StepKey, StepKind, StepStatus};
use wx_store::{Claim, Completion, Db, Outcome, StepLog};

pub use config::{DataConfig, Targets, ValidatorConfig};
pub use data::{DataError, DataHub};
pub use runs::RunCreation;

/// Runs claimed steps. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    ctx: Arc<StepContext>,
}

impl Pipeline {
    /// A pipeline over `db` with the given configuration, clock and data access.
    pub fn new(
        db: Db,
        config: ValidatorConfig,
        clock: Arc<dyn Clock>,
        data: Arc<DataHub>,
    ) -> Result<Pipeline, config::ConfigError> {
        config.validate()?;
        let targets = config.targets()?;
        let permits = config
            .pipeline
            .concurrency
            .scoring_permits(wx_model::config::SCORING_PERMIT_BYTES);
        Ok(Pipeline {
            ctx: Arc::new(StepContext {
                db,
                timings: config.pipeline.timings(),
                config: Arc::new(config),
                targets,
                clock,
                data,
                metrics: Arc::default(),
                scoring_permits: Arc::new(tokio::sync::Semaphore::new(permits)),
                late_override: None,
            }),
        })
    }

    /// This pipeline verifies stores past their run's submission window (`wx-step run
    /// --force --allow-late`): `by` says who allowed it; it is logged and recorded in the
    /// verify step's context. Only for a pipeline built for one operator command.
    pub fn allow_late(self, by: String) -> Pipeline {
        let c = &self.ctx;
        Pipeline {
            ctx: Arc::new(StepContext {
                db: c.db.clone(),
                config: c.config.clone(),
                timings: c.timings.clone(),
                targets: c.targets.clone(),
                clock: c.clock.clone(),
                data: c.data.clone(),
                metrics: c.metrics.clone(),
                scoring_permits: c.scoring_permits.clone(),
                late_override: Some(by),
            }),
        }
    }

    /// The pipeline's counters (register them for `/metrics`).
    pub fn metrics(&self) -> Arc<metrics::StepsMetrics> {
        self.ctx.metrics.clone()
    }

    /// The shared step context.
    pub fn context(&self) -> &Arc<StepContext> {
        &self.ctx
    }

    /// The retry policy of a kind (configuration, test mode applied).
    pub fn retry_policy(&self, kind: StepKind) -> RetryPolicy {
        self.ctx.config.pipeline.retry_policy(kind)
    }

    /// Creates or backfills the current run (the scheduler's periodic job).
    pub async fn ensure_run(&self) -> Result<RunCreation, wx_store::StoreError> {
        runs::ensure_run(&self.ctx, self.ctx.now()).await
    }

    /// Runs one claimed step and says how it ended. When `cancel` fires (lease lost, or
    /// shutdown past its grace period) the step stops and is handed back without consuming an
    /// attempt.
    pub async fn run(&self, claim: Claim, cancel: CancellationToken) -> Completion {
        let ctx = &self.ctx;
        let result = tokio::select! {
            r = self.dispatch(&claim) => r,
            _ = cancel.cancelled() => {
                return Completion::bare(Outcome::Wait { until: ctx.now(), reason: "interrupted (lease lost or shutdown)".into() });
            }
        };
        self.complete(&claim, result).await
    }

    /// Ends a claimed step as failed with `error` without running it (it lost too many leases,
    /// or its run is over), with the effects of the step's own final failure.
    pub async fn give_up(&self, claim: Claim, error: wx_model::StepError) -> Completion {
        let result = give_up::result(&self.ctx, &claim, error).await;
        self.complete(&claim, result).await
    }

    /// The completion of a step's result: the retry policy applied, then the bookkeeping.
    async fn complete(&self, claim: &Claim, result: StepResult) -> Completion {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let now = self.ctx.now();
        let mut completion = wrapper::complete(
            claim,
            &self.retry_policy(claim.key.kind),
            result,
            now,
            &mut rng,
        );
        self.bookkeeping(claim, &mut completion).await;
        self.record_late_override(claim, &mut completion).await;
        completion
    }

    /// A verification that ran past its run's submission window by the operator's override
    /// records who allowed it in the step's context (docs/operating.md, "Fair play").
    async fn record_late_override(&self, claim: &Claim, completion: &mut Completion) {
        let ctx = &self.ctx;
        let (Some(by), StepKind::VerifyOpenStore) = (&ctx.late_override, claim.key.kind) else {
            return;
        };
        let Ok(start) = ctx.run_start(claim).await else {
            return;
        };
        let deadline = ctx.config.pipeline.submission_deadline(start);
        let now = ctx.now();
        if now > deadline {
            completion.context = Some(serde_json::json!({
                "late_override": {
                    "by": by,
                    "deadline": deadline.to_rfc3339(),
                    "at": now.to_rfc3339(),
                }
            }));
        }
    }

    /// Runs the step's function. Each is boxed as a `dyn Future`: the steps' futures nest the
    /// data layer's reads many levels deep, and without the box every caller's future type
    /// (a test's, `wx-step run`'s) inherits that depth and can overflow the compiler's
    /// recursion limit. One allocation per step is nothing next to what a step does.
    async fn dispatch(&self, claim: &Claim) -> StepResult {
        let ctx = &*self.ctx;
        let step: BoxFuture<'_, StepResult> = match claim.key.kind {
            StepKind::SeedStatsRows => Box::pin(seed::stats_rows(ctx, claim)),
            StepKind::SeedStepsRows => Box::pin(seed::steps_rows(ctx, claim)),
            StepKind::SeedDownloadGfs => Box::pin(day1::download_gfs(ctx, claim)),
            StepKind::Day1ClimCache => Box::pin(day1::clim_cache(ctx, claim)),
            StepKind::VerifyOpenStore => Box::pin(verify::open_store(ctx, claim)),
            StepKind::Day1Score => Box::pin(day1::score(ctx, claim)),
            StepKind::Era5Score => Box::pin(era5::score(ctx, claim)),
            StepKind::AggregateSnapshot => Box::pin(aggregate::snapshot(ctx, claim)),
            other => {
                return Err(StepFailure::permanent(
                    wx_model::ErrorKind::Internal,
                    wx_model::Blame::Infrastructure,
                    &format!("{other} is a sub-step log row, not a unit of work"),
                ));
            }
        };
        step.await
    }

    /// The `aggregate/miner_stats` log row of a refresh, and the request to complete the run
    /// if this was its last open unit of work.
    async fn bookkeeping(&self, claim: &Claim, completion: &mut Completion) {
        let ctx = &self.ctx;
        let now = ctx.now();
        for refresh in completion.effects.refresh_miner_stats.clone() {
            completion.effects.logs.push(StepLog {
                key: StepKey::miner(claim.key.run, refresh.uid, StepKind::AggregateMinerStats),
                hotkey: claim.hotkey.clone(),
                status: StepStatus::Succeeded,
                attempt: 0,
                max_retries: 0,
                started_at: now,
                completed_at: Some(now),
                error: None,
                context: Some(serde_json::json!({ "after": claim.key.kind.path() })),
            });
        }
        let terminal = matches!(
            completion.outcome,
            Outcome::Succeeded | Outcome::Failed { .. }
        );
        if terminal && claim.key.kind.scope() != Scope::Run && completion.effects.enqueue.is_empty()
        {
            // whether this was the run's last open unit of work is decided in the completion's
            // transaction, where concurrent finishes cannot hide from each other
            completion.effects.complete_run_if_done = true;
        }
    }
}
