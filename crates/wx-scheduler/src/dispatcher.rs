//! The dispatch loop.

use crate::metrics::{KindLabels, OutcomeLabels, SchedulerMetrics};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use wx_model::config::ConcurrencyConfig;
use wx_model::step::ResourceClass;
use wx_model::{Clock, RetryPolicy, StepKind};
use wx_store::{Claim, ClaimRequest, Completion, Db, Fence, Outcome, StoreError};

/// Runs one claimed step. Implemented by the pipeline (`wx-steps`); the scheduler only
/// dispatches.
pub trait StepRunner: Send + Sync + 'static {
    /// Runs the step and says how the attempt ended. `cancel` fires when the lease was lost or
    /// the process shuts down past its grace period: stop soon (the completion will be fenced).
    fn run(&self, claim: Claim, cancel: CancellationToken) -> BoxFuture<'static, Completion>;

    /// The retry policy of a kind (used when rescuing steps whose worker died).
    fn retry_policy(&self, kind: StepKind) -> RetryPolicy;
}

/// A job the scheduler runs every `interval` (e.g. create the day's run).
pub trait PeriodicJob: Send + Sync + 'static {
    /// For logs.
    fn name(&self) -> &str;
    /// How often.
    fn interval(&self) -> Duration;
    /// One run of the job; errors are logged and the job runs again next interval.
    fn run(&self) -> BoxFuture<'static, Result<(), String>>;
}

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
    /// Estimated peak memory of one scoring step, in bytes (caps scoring concurrency).
    pub scoring_step_bytes: usize,
    /// How often expired leases are looked for.
    pub rescue_interval: Duration,
    /// How long in-flight steps may take to finish after shutdown was requested.
    pub shutdown_grace: Duration,
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
            scoring_step_bytes: 700 << 20,
            rescue_interval: p.lease() / 2,
            shutdown_grace: Duration::from_secs(30),
            kinds: StepKind::ALL
                .iter()
                .copied()
                .filter(|k| k.is_claimable())
                .collect(),
        }
    }

    /// The concurrency limit of a class, the scoring limit lowered to fit the memory budget.
    pub fn limit(&self, class: ResourceClass) -> usize {
        let limit = self.concurrency.limit(class);
        if class == ResourceClass::Scoring && self.scoring_step_bytes > 0 {
            let budget = self
                .concurrency
                .scoring_memory_budget_mib
                .saturating_mul(1 << 20);
            limit.min((budget / self.scoring_step_bytes).max(1))
        } else {
            limit
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
    /// Expired leases rescued.
    pub rescued: u64,
}

struct InFlight {
    claim: Claim,
    cancel: CancellationToken,
}

type Registry = Arc<Mutex<HashMap<i64, InFlight>>>;

/// The dispatcher. Create with [`Scheduler::new`], add periodic jobs, then [`Scheduler::run`].
pub struct Scheduler {
    db: Db,
    config: SchedulerConfig,
    runner: Arc<dyn StepRunner>,
    clock: Arc<dyn Clock>,
    periodic: Vec<Arc<dyn PeriodicJob>>,
    metrics: Arc<SchedulerMetrics>,
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
        let classes = [
            ResourceClass::Network,
            ResourceClass::Scoring,
            ResourceClass::Fetch,
            ResourceClass::Light,
        ];
        let semaphores: HashMap<ResourceClass, Arc<Semaphore>> = classes
            .iter()
            .map(|c| (*c, Arc::new(Semaphore::new(self.config.limit(*c)))))
            .collect();
        let registry: Registry = Arc::default();
        let wake = Arc::new(Notify::new());
        let summary = Arc::new(Mutex::new(RunSummary::default()));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let background = CancellationToken::new();

        // Background loops live in a JoinSet owned by this future: if the future is dropped (the
        // process dies), they stop with it, exactly like a crashed process stops heartbeating.
        let mut background_tasks: JoinSet<()> = JoinSet::new();
        background_tasks.spawn(heartbeat_loop(
            self.db.clone(),
            registry.clone(),
            self.config.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            background.clone(),
        ));
        for job in &self.periodic {
            background_tasks.spawn(periodic_loop(job.clone(), background.clone(), wake.clone()));
        }
        info!(worker = %self.config.worker_id, "scheduler started");

        let mut last_rescue = Instant::now() - self.config.rescue_interval;
        while !shutdown.is_cancelled() {
            if last_rescue.elapsed() >= self.config.rescue_interval {
                last_rescue = Instant::now();
                let runner = self.runner.clone();
                match self
                    .db
                    .queue()
                    .rescue_expired(self.clock.now(), 100, &move |k| runner.retry_policy(k))
                    .await
                {
                    Ok(rescued) if !rescued.is_empty() => {
                        for r in &rescued {
                            warn!(step = %r.key, holder = ?r.claimed_by, status = %r.status, "rescued a step whose lease expired");
                        }
                        self.metrics.leases_rescued.inc_by(rescued.len() as u64);
                        summary.lock().expect("summary lock").rescued += rescued.len() as u64;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.metrics.db_errors.inc();
                        warn!(error = %e, "rescue of expired leases failed");
                    }
                }
            }
            while tasks.try_join_next().is_some() {}

            let mut claimed_any = false;
            for class in classes {
                let kinds: Vec<StepKind> = self
                    .config
                    .kinds
                    .iter()
                    .copied()
                    .filter(|k| k.resource_class() == class)
                    .collect();
                if kinds.is_empty() {
                    continue;
                }
                let sem = semaphores[&class].clone();
                let free = sem
                    .available_permits()
                    .min(self.config.concurrency.claim_batch.max(1));
                if free == 0 {
                    continue;
                }
                let Ok(permits) = sem.clone().try_acquire_many_owned(free as u32) else {
                    continue;
                };
                let req = ClaimRequest {
                    worker: &self.config.worker_id,
                    kinds: &kinds,
                    limit: free,
                    lease: self.config.lease,
                    now: self.clock.now(),
                };
                let claims = match self.db.queue().claim(&req).await {
                    Ok(c) => {
                        self.metrics.claims_ok.set(1);
                        c
                    }
                    Err(e) => {
                        self.metrics.claims_ok.set(0);
                        self.metrics.db_errors.inc();
                        warn!(error = %e, "claiming steps failed; retrying shortly");
                        Vec::new()
                    }
                };
                let mut permits = permits;
                for claim in claims {
                    claimed_any = true;
                    let permit = permits.split(1).expect("one permit per claim");
                    let kind = claim.key.kind.path();
                    self.metrics
                        .claimed
                        .get_or_create(&KindLabels { kind: kind.clone() })
                        .inc();
                    let cancel = CancellationToken::new();
                    registry.lock().expect("registry lock").insert(
                        claim.id,
                        InFlight {
                            claim: claim.clone(),
                            cancel: cancel.clone(),
                        },
                    );
                    let ctx = TaskContext {
                        db: self.db.clone(),
                        runner: self.runner.clone(),
                        clock: self.clock.clone(),
                        metrics: self.metrics.clone(),
                        registry: registry.clone(),
                        wake: wake.clone(),
                        summary: summary.clone(),
                        lease: self.config.lease,
                    };
                    tasks.spawn(async move {
                        let _permit = permit;
                        run_one(ctx, claim, cancel).await;
                    });
                }
                drop(permits); // unused permits go back
            }
            if !claimed_any {
                let sleep = self.idle_sleep().await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(sleep) => {}
                }
            }
        }

        info!(
            in_flight = tasks.len(),
            "shutdown requested: no new claims; waiting for in-flight steps"
        );
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut grace => break,
            }
        }
        if !tasks.is_empty() {
            // past the grace period: ask the runners to stop, give them a moment, then release
            let ids: Vec<(i64, CancellationToken)> = registry
                .lock()
                .expect("registry lock")
                .iter()
                .map(|(id, f)| (*id, f.cancel.clone()))
                .collect();
            for (_, c) in &ids {
                c.cancel();
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            let left: Vec<Claim> = registry
                .lock()
                .expect("registry lock")
                .drain()
                .map(|(_, f)| f.claim)
                .collect();
            if !left.is_empty() {
                let refs: Vec<&Claim> = left.iter().collect();
                match self.db.queue().release(&refs, self.clock.now()).await {
                    Ok(fences) => {
                        let n = fences.iter().filter(|f| **f == Fence::Applied).count() as u64;
                        self.metrics.released.inc_by(n);
                        summary.lock().expect("summary lock").released += n;
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
        }
        background.cancel();
        while background_tasks.join_next().await.is_some() {}
        let summary = summary.lock().expect("summary lock").clone();
        info!(?summary, "scheduler stopped");
        Ok(summary)
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

struct TaskContext {
    db: Db,
    runner: Arc<dyn StepRunner>,
    clock: Arc<dyn Clock>,
    metrics: Arc<SchedulerMetrics>,
    registry: Registry,
    wake: Arc<Notify>,
    summary: Arc<Mutex<RunSummary>>,
    lease: Duration,
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Succeeded => "succeeded",
        Outcome::Retry { .. } => "retry_scheduled",
        Outcome::Failed { .. } => "failed",
        Outcome::Wait { .. } => "waiting",
    }
}

async fn run_one(ctx: TaskContext, claim: Claim, cancel: CancellationToken) {
    let kind = claim.key.kind.path();
    let labels = KindLabels { kind: kind.clone() };
    ctx.metrics.in_flight.get_or_create(&labels).inc();
    let started = Instant::now();
    debug!(step = %claim.key, attempt = claim.attempt + 1, "step started");
    let completion = ctx.runner.run(claim.clone(), cancel.clone()).await;
    ctx.metrics
        .step_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics.in_flight.get_or_create(&labels).dec();

    // Leave the heartbeat registry before finishing: a heartbeat racing with the finish would
    // otherwise see the row's claim cleared and report a lease as lost that was not.
    ctx.registry
        .lock()
        .expect("registry lock")
        .remove(&claim.id);
    // The store may be briefly unavailable: retry the fenced finish until the lease would
    // have expired anyway (after that the step is rescued and runs again; steps are idempotent).
    let deadline = Instant::now() + ctx.lease;
    let mut pause = Duration::from_millis(100);
    let fence = loop {
        match ctx
            .db
            .queue()
            .finish(&claim, &completion, ctx.clock.now())
            .await
        {
            Ok(f) => break Some(f),
            Err(e)
                if Instant::now() < deadline
                    && (e.is_transient() || matches!(e, StoreError::Query(_))) =>
            {
                ctx.metrics.db_errors.inc();
                warn!(step = %claim.key, error = %e, "recording the step's completion failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                ctx.metrics.db_errors.inc();
                warn!(step = %claim.key, error = %e, "could not record the step's completion; its lease will expire and it will run again");
                break None;
            }
        }
    };
    let outcome = match fence {
        Some(Fence::Applied) => {
            ctx.summary.lock().expect("summary lock").finished += 1;
            outcome_label(&completion.outcome)
        }
        Some(Fence::Lost) => {
            ctx.summary.lock().expect("summary lock").lost += 1;
            warn!(step = %claim.key, "lease was lost while the step ran; its result was discarded");
            "lost"
        }
        None => "unrecorded",
    };
    match &completion.outcome {
        Outcome::Failed { error } | Outcome::Retry { error, .. } => {
            info!(step = %claim.key, outcome, error = %error, latency_ms = started.elapsed().as_millis() as u64, "step ended")
        }
        _ => {
            debug!(step = %claim.key, outcome, latency_ms = started.elapsed().as_millis() as u64, "step ended")
        }
    }
    ctx.metrics
        .finished
        .get_or_create(&OutcomeLabels {
            kind,
            outcome: outcome.into(),
        })
        .inc();
    ctx.wake.notify_one();
}

async fn heartbeat_loop(
    db: Db,
    registry: Registry,
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
    metrics: Arc<SchedulerMetrics>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let claims: Vec<Claim> = registry
            .lock()
            .expect("registry lock")
            .values()
            .map(|f| f.claim.clone())
            .collect();
        if claims.is_empty() {
            continue;
        }
        let refs: Vec<&Claim> = claims.iter().collect();
        match db.queue().heartbeat(&refs, config.lease, clock.now()).await {
            Ok(held) => {
                for (claim, held) in claims.iter().zip(held) {
                    if held {
                        continue;
                    }
                    // A step that left the registry meanwhile is finishing: its claim was
                    // cleared by its own completion, not lost.
                    if let Some(f) = registry.lock().expect("registry lock").get(&claim.id) {
                        metrics.leases_lost.inc();
                        warn!(step = %claim.key, "lease lost; cancelling the step");
                        f.cancel.cancel();
                    }
                }
            }
            Err(e) => {
                metrics.db_errors.inc();
                warn!(error = %e, "heartbeat failed; will retry at the next interval");
            }
        }
    }
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
