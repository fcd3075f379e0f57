//! The dispatch loop: claim rounds per resource class, rescue rounds, periodic jobs, shutdown.

use crate::backoff::ClaimBackoff;
use crate::completer::Recorded;
use crate::lifecycle::{ClaimServices, ServiceSettings, run_claim};
use crate::metrics::{KindLabels, OutcomeLabels, SchedulerMetrics};
use crate::runner::{PeriodicJob, StepRunner};
use crate::slots::{CLASSES, Slots, kinds_of};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use wx_model::config::ConcurrencyConfig;
use wx_model::step::ResourceClass;
use wx_model::{Clock, StepError, StepKind};
use wx_store::{
    Claim, ClaimRequest, Db, Fence, Outcome, RescueAction, RescueReport, RescueRequest, StoreError,
};

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Name stored in `claimed_by` (host/pid by default).
    pub worker_id: String,
    /// Lease of a claimed step.
    pub lease: Duration,
    /// Heartbeat interval (well below the lease).
    pub heartbeat: Duration,
    /// Per-class limits and the scoring memory budget.
    pub concurrency: ConcurrencyConfig,
    /// Estimated peak memory of one scoring permit's work, in bytes (caps the scoring permits,
    /// and with them what is left for day1/score and era5/score steps; 0: no lowering).
    pub scoring_step_bytes: usize,
    /// How often expired leases are looked for.
    pub rescue_interval: Duration,
    /// How long in-flight steps may take to finish after shutdown was requested (a second
    /// request, see [`Scheduler::with_urgent_stop`], ends it at once).
    pub shutdown_grace: Duration,
    /// Most completions recorded in one transaction (1: one by one).
    pub completion_batch: usize,
    /// Completion batches written at once.
    pub completion_writers: usize,
    /// Which kinds this process runs (default: every claimable kind).
    pub kinds: Vec<StepKind>,
}

impl SchedulerConfig {
    /// Defaults derived from the pipeline configuration.
    pub fn from_pipeline(p: &wx_model::config::PipelineConfig) -> Self {
        SchedulerConfig {
            worker_id: default_worker_id(),
            lease: p.lease(),
            heartbeat: p.heartbeat(),
            concurrency: p.concurrency.clone(),
            scoring_step_bytes: wx_model::config::SCORING_PERMIT_BYTES,
            rescue_interval: p.lease() / 2,
            shutdown_grace: p.shutdown_grace(),
            completion_batch: 32,
            completion_writers: 2,
            kinds: StepKind::ALL
                .iter()
                .copied()
                .filter(|k| k.is_claimable())
                .collect(),
        }
    }

    /// The concurrency limit of a class: the scoring permits lowered to fit the memory budget,
    /// the day1/score and era5/score steps lowered to what the permits leave of it
    /// (wx-model's `ConcurrencyConfig::scoring_permits` and `miner_data_steps`).
    pub fn limit(&self, class: ResourceClass) -> usize {
        match class {
            ResourceClass::Scoring => self.concurrency.scoring_permits(self.scoring_step_bytes),
            ResourceClass::MinerData => self.concurrency.miner_data_steps(self.scoring_step_bytes),
            _ => self.concurrency.limit(class),
        }
    }

    /// The settings of the claim services (leases and completer).
    pub fn services(&self) -> ServiceSettings {
        ServiceSettings {
            lease: self.lease,
            heartbeat: self.heartbeat,
            max_batch: self.completion_batch.max(1),
            writers: self.completion_writers.max(1),
        }
    }
}

/// `host:pid`, unique per process on a network of validators.
pub fn default_worker_id() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// Errors that stop the dispatcher.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A configuration that cannot work.
    #[error("invalid scheduler configuration: {0}")]
    Config(String),
}

/// What a dispatcher run did (returned on shutdown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Attempts that ended with their completion applied.
    pub finished: u64,
    /// Attempts whose completion was rejected (lease lost).
    pub lost: u64,
    /// Claims released at shutdown.
    pub released: u64,
    /// Expired leases rescued (rescheduled or taken over to give up).
    pub rescued: u64,
    /// Steps given up after losing too many leases (or whose run was over).
    pub given_up: u64,
}

/// The dispatcher. Create with [`Scheduler::new`], add periodic jobs, then [`Scheduler::run`].
pub struct Scheduler {
    db: Db,
    config: SchedulerConfig,
    runner: Arc<dyn StepRunner>,
    clock: Arc<dyn Clock>,
    periodic: Vec<Arc<dyn PeriodicJob>>,
    metrics: Arc<SchedulerMetrics>,
    urgent: CancellationToken,
}

/// What a claimed step is run for.
enum Job {
    /// Its attempt.
    Run,
    /// Its failure, without running (rescue gave it up).
    GiveUp(StepError),
}

/// What the tasks of running steps share.
#[derive(Clone)]
struct Dispatch {
    runner: Arc<dyn StepRunner>,
    services: Arc<ClaimServices>,
    metrics: Arc<SchedulerMetrics>,
    summary: Arc<Mutex<RunSummary>>,
    wake: Arc<Notify>,
}

impl Scheduler {
    /// A dispatcher over `db` running steps with `runner`.
    pub fn new(
        db: Db,
        config: SchedulerConfig,
        runner: Arc<dyn StepRunner>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Scheduler {
            db,
            config,
            runner,
            clock,
            periodic: Vec::new(),
            metrics: Arc::new(SchedulerMetrics::new()),
            urgent: CancellationToken::new(),
        }
    }

    /// Adds a periodic job.
    pub fn with_periodic(mut self, job: Arc<dyn PeriodicJob>) -> Self {
        self.periodic.push(job);
        self
    }

    /// Uses the given metrics (e.g. already registered for `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<SchedulerMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Ends the shutdown grace period at once when `urgent` fires (e.g. a second SIGTERM):
    /// in-flight steps are cancelled and released.
    pub fn with_urgent_stop(mut self, urgent: CancellationToken) -> Self {
        self.urgent = urgent;
        self
    }

    /// The dispatcher's metrics.
    pub fn metrics(&self) -> Arc<SchedulerMetrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` fires, then stops claiming, waits up to the grace period for
    /// in-flight steps, cancels and releases what is left, and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<RunSummary, SchedulerError> {
        if self.config.heartbeat.is_zero() || self.config.heartbeat * 2 > self.config.lease {
            return Err(SchedulerError::Config(format!(
                "heartbeat {:?} must be positive and at most half of the lease {:?}",
                self.config.heartbeat, self.config.lease
            )));
        }
        let slots = Slots::new(&self.config);
        // The heartbeat loop, the completer and the periodic jobs are owned by this future: if
        // it is dropped (the process dies), they stop with it, exactly like a crashed process
        // stops heartbeating.
        let (services, service_tasks) = ClaimServices::start(
            &self.db,
            self.clock.clone(),
            self.config.services(),
            self.metrics.clone(),
        );
        let dispatch = Dispatch {
            runner: self.runner.clone(),
            services,
            metrics: self.metrics.clone(),
            summary: Arc::default(),
            wake: Arc::new(Notify::new()),
        };
        let mut tasks: JoinSet<()> = JoinSet::new();
        let background = CancellationToken::new();
        let mut periodic_tasks: JoinSet<()> = JoinSet::new();
        for job in &self.periodic {
            periodic_tasks.spawn(periodic_loop(
                job.clone(),
                background.clone(),
                dispatch.wake.clone(),
            ));
        }
        info!(worker = %self.config.worker_id, "scheduler started");

        let mut last_rescue = Instant::now() - self.config.rescue_interval;
        let mut backoff = ClaimBackoff::default();
        while !shutdown.is_cancelled() {
            if last_rescue.elapsed() >= self.config.rescue_interval {
                last_rescue = Instant::now();
                self.rescue(&dispatch, &mut tasks).await;
            }
            while tasks.try_join_next().is_some() {}
            let (pause, backing_off) = match self.claim_round(&slots, &dispatch, &mut tasks).await {
                Ok(claimed) => {
                    self.metrics.claims_ok.set(1);
                    if let Some(rounds) = backoff.succeeded() {
                        info!(failed_rounds = rounds, "claiming steps works again");
                    }
                    if claimed {
                        continue;
                    }
                    (self.idle_sleep().await, false)
                }
                Err(e) => {
                    self.metrics.claims_ok.set(0);
                    self.metrics.db_errors.inc();
                    self.metrics.claim_failures.inc();
                    let after = backoff.failed(Instant::now());
                    if let Some(rounds) = after.report {
                        warn!(error = %e, failed_rounds = rounds, pause = ?after.pause, "claiming steps failed; backing off");
                    }
                    (after.pause, true)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = dispatch.wake.notified(), if !backing_off => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }

        self.shut_down(&dispatch, &mut tasks).await;
        background.cancel();
        while periodic_tasks.join_next().await.is_some() {}
        let summary = dispatch.summary.lock().expect("summary lock").clone();
        drop(dispatch);
        service_tasks.stop().await;
        info!(?summary, "scheduler stopped");
        Ok(summary)
    }

    /// One claim round: each resource class claims up to its free slots. Whether any step was
    /// claimed; the first failed claim ends the round.
    async fn claim_round(
        &self,
        slots: &Slots,
        dispatch: &Dispatch,
        tasks: &mut JoinSet<()>,
    ) -> Result<bool, StoreError> {
        let mut claimed_any = false;
        for class in CLASSES {
            let kinds = kinds_of(&self.config.kinds, class);
            if kinds.is_empty() {
                continue;
            }
            let Some(mut permits) = slots.take(class, self.config.concurrency.claim_batch.max(1))
            else {
                continue;
            };
            let req = ClaimRequest {
                worker: &self.config.worker_id,
                kinds: &kinds,
                limit: permits.num_permits(),
                lease: self.config.lease,
                now: self.clock.now(),
            };
            for claim in self.db.queue().claim(&req).await? {
                claimed_any = true;
                let permit = permits.split(1).expect("one permit per claim");
                spawn_step(dispatch, tasks, claim, Some(permit), Job::Run);
            }
            // unused permits go back when `permits` is dropped
        }
        Ok(claimed_any)
    }

    /// One rescue round: expired leases are rescheduled; steps out of lost leases are given up
    /// through the runner, as failures with their effects.
    async fn rescue(&self, dispatch: &Dispatch, tasks: &mut JoinSet<()>) {
        let runner = self.runner.clone();
        let policy = move |k: StepKind| runner.lease_loss_policy(k);
        let req = RescueRequest {
            worker: &self.config.worker_id,
            lease: self.config.lease,
            now: self.clock.now(),
            limit: 100,
            policy: &policy,
        };
        let RescueReport { rescued, corrupt } = match self.db.queue().rescue_expired(&req).await {
            Ok(report) => report,
            Err(e) => {
                self.metrics.db_errors.inc();
                warn!(error = %e, "rescue of expired leases failed");
                return;
            }
        };
        for row in &corrupt {
            warn!(row = row.id, problem = %row.problem, "an expired step row cannot be read and is left alone; is a newer wx sharing this database?");
        }
        self.metrics.corrupt_rows.inc_by(corrupt.len() as u64);
        self.metrics.leases_rescued.inc_by(rescued.len() as u64);
        dispatch.summary.lock().expect("summary lock").rescued += rescued.len() as u64;
        for r in rescued {
            match r.action {
                RescueAction::Rescheduled { at } => {
                    warn!(step = %r.key, holder = ?r.claimed_by, lease_losses = r.lease_losses, due = %at, "rescued a step whose lease expired");
                }
                RescueAction::GiveUp { claim, error } => {
                    warn!(step = %r.key, holder = ?r.claimed_by, lease_losses = r.lease_losses, error = %error, "giving up a step whose lease expired");
                    dispatch.summary.lock().expect("summary lock").given_up += 1;
                    spawn_step(dispatch, tasks, *claim, None, Job::GiveUp(error));
                }
            }
        }
    }

    /// Waits up to the grace period (or the urgent stop) for in-flight steps, then cancels
    /// and releases what is left.
    async fn shut_down(&self, dispatch: &Dispatch, tasks: &mut JoinSet<()>) {
        info!(
            in_flight = tasks.len(),
            grace = ?self.config.shutdown_grace,
            "shutdown requested: no new claims; waiting for in-flight steps (signal again to stop at once)"
        );
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut grace => break,
                _ = self.urgent.cancelled() => {
                    info!(in_flight = tasks.len(), "stopping at once: cancelling in-flight steps");
                    break;
                }
            }
        }
        if tasks.is_empty() {
            return;
        }
        // past the grace period: ask the runners to stop, give them a moment, then release
        let leases = &dispatch.services.leases;
        leases.cancel_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let left = leases.take_all();
        if left.is_empty() {
            return;
        }
        let refs: Vec<&Claim> = left.iter().collect();
        match self.db.queue().release(&refs, self.clock.now()).await {
            Ok(fences) => {
                let n = fences.iter().filter(|f| **f == Fence::Applied).count() as u64;
                self.metrics.released.inc_by(n);
                dispatch.summary.lock().expect("summary lock").released += n;
                info!(
                    released = n,
                    "released unfinished steps without consuming an attempt"
                );
            }
            Err(e) => {
                warn!(error = %e, "releasing claims failed; their leases will expire and be rescued")
            }
        }
    }

    /// How long to sleep when nothing was claimable: until the next due row, bounded by the
    /// poll interval.
    async fn idle_sleep(&self) -> Duration {
        let poll = Duration::from_millis(self.config.concurrency.poll_interval_ms.max(10));
        match self.db.queue().next_due_at(&self.config.kinds).await {
            Ok(Some(t)) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(10), poll),
            Ok(None) => poll,
            Err(_) => poll,
        }
    }
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Succeeded => "succeeded",
        Outcome::Retry { .. } => "retry_scheduled",
        Outcome::Failed { .. } => "failed",
        Outcome::Wait { .. } => "waiting",
    }
}

/// Runs a claimed step (or its give-up) in a task holding its slot.
fn spawn_step(
    dispatch: &Dispatch,
    tasks: &mut JoinSet<()>,
    claim: Claim,
    slot: Option<OwnedSemaphorePermit>,
    job: Job,
) {
    let d = dispatch.clone();
    let labels = KindLabels {
        kind: claim.key.kind.path(),
    };
    d.metrics.claimed.get_or_create(&labels).inc();
    tasks.spawn(async move {
        let _slot = slot;
        let key = claim.key;
        d.metrics.in_flight.get_or_create(&labels).inc();
        debug!(step = %key, attempt = claim.attempt + 1, "step started");
        let runner = d.runner.clone();
        let report = match job {
            Job::Run => run_claim(&d.services, claim, |c, cancel| runner.run(c, cancel)).await,
            Job::GiveUp(error) => {
                run_claim(&d.services, claim, |c, _| runner.give_up(c, error)).await
            }
        };
        d.metrics.in_flight.get_or_create(&labels).dec();
        d.metrics
            .step_seconds
            .get_or_create(&labels)
            .observe(report.ran_for.as_secs_f64());
        let outcome = match &report.recorded {
            Recorded::Applied => {
                d.summary.lock().expect("summary lock").finished += 1;
                outcome_label(&report.completion.outcome)
            }
            Recorded::Lost => {
                d.summary.lock().expect("summary lock").lost += 1;
                warn!(step = %key, "lease was lost while the step ran; its result was discarded");
                "lost"
            }
            Recorded::Unrecorded(_) => "unrecorded",
        };
        let latency_ms = report.ran_for.as_millis() as u64;
        match &report.completion.outcome {
            Outcome::Failed { error } | Outcome::Retry { error, .. } => {
                info!(step = %key, outcome, error = %error, latency_ms, "step ended")
            }
            _ => debug!(step = %key, outcome, latency_ms, "step ended"),
        }
        d.metrics
            .finished
            .get_or_create(&OutcomeLabels {
                kind: labels.kind.clone(),
                outcome: outcome.into(),
            })
            .inc();
        d.wake.notify_one();
    });
}

async fn periodic_loop(job: Arc<dyn PeriodicJob>, stop: CancellationToken, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(job.interval().max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match job.run().await {
            Ok(()) => wake.notify_one(),
            Err(e) => {
                warn!(job = job.name(), error = %e, "periodic job failed; it runs again next interval")
            }
        }
    }
}
