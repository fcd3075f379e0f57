//! The daemon: the scheduler running the pipeline, with the periodic jobs, until a signal.

use anyhow::{Context, Result};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::{Clock, SystemClock};
use wx_scheduler::{
    JobError, PeriodicJob, RunSummary, Scheduler, SchedulerConfig, SchedulerMetrics,
};
use wx_steps::{DataHub, Pipeline, ValidatorConfig};
use wx_store::Db;

/// Creates (or backfills) the current run.
struct EnsureRun {
    pipeline: Pipeline,
    every: Duration,
}

impl PeriodicJob for EnsureRun {
    fn name(&self) -> &str {
        "ensure-run"
    }
    fn interval(&self) -> Duration {
        self.every
    }
    fn run(&self) -> BoxFuture<'static, Result<(), JobError>> {
        let p = self.pipeline.clone();
        async move { p.ensure_run().await.map(|_| ()).map_err(JobError::from) }.boxed()
    }
}

/// Deletes old disk-cache entries.
struct PurgeCache(Pipeline);

impl PeriodicJob for PurgeCache {
    fn name(&self) -> &str {
        "purge-cache"
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(6 * 3600)
    }
    fn run(&self) -> BoxFuture<'static, Result<(), JobError>> {
        let p = self.0.clone();
        async move {
            wx_steps::runs::purge_cache(p.context())
                .await
                .map_err(JobError::from)
        }
        .boxed()
    }
}

/// Deletes scores, step rows and snapshots past the retention (docs/operating.md,
/// "Retention").
struct Prune {
    pipeline: Pipeline,
    every: Duration,
}

impl PeriodicJob for Prune {
    fn name(&self) -> &str {
        "prune"
    }
    fn interval(&self) -> Duration {
        self.every
    }
    fn run(&self) -> BoxFuture<'static, Result<(), JobError>> {
        let p = self.pipeline.clone();
        async move {
            wx_steps::runs::prune(p.context(), false)
                .await
                .map(|_| ())
                .map_err(JobError::from)
        }
        .boxed()
    }
}

/// What a daemon needs besides its configuration (the demo and tests inject their own).
pub struct DaemonParts {
    /// The database (opened from the configuration when `None`).
    pub db: Option<Db>,
    /// Data access (built from the configuration when `None`).
    pub data: Option<Arc<DataHub>>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Dispatcher metrics (e.g. registered for `/metrics`).
    pub metrics: Option<Arc<SchedulerMetrics>>,
    /// Overrides of the scheduler settings.
    pub scheduler: Option<SchedulerConfig>,
    /// Ends the shutdown grace period at once when it fires (a second signal).
    pub urgent_stop: Option<CancellationToken>,
}

impl Default for DaemonParts {
    fn default() -> Self {
        DaemonParts {
            db: None,
            data: None,
            clock: Arc::new(SystemClock),
            metrics: None,
            scheduler: None,
            urgent_stop: None,
        }
    }
}

/// Builds the pipeline and runs the scheduler until `shutdown` fires.
pub async fn serve(
    config: ValidatorConfig,
    parts: DaemonParts,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    let db = match parts.db {
        Some(db) => db,
        None => Db::open(config.require_database_url()?)
            .await
            .context("opening the database")?,
    };
    let data = match parts.data {
        Some(d) => d,
        None => Arc::new(
            DataHub::new(&config.data, &config.cache_dir, config.pipeline.test_mode)
                .map_err(|e| anyhow::anyhow!("setting up the data sources: {e}"))?,
        ),
    };
    let config_prune_minutes = config.pipeline.prune_interval_minutes.max(1);
    let every = config.pipeline.timings().ensure_run_every;
    let scheduler_config = parts
        .scheduler
        .unwrap_or_else(|| SchedulerConfig::from_pipeline(&config.pipeline));
    let metrics_addr = config.metrics_addr.clone();
    let pipeline = Pipeline::new(db.clone(), config, parts.clock.clone(), data)?;
    let scheduler_metrics = parts.metrics.unwrap_or_default();
    if let Some(addr) = metrics_addr {
        let (sm, pm) = (scheduler_metrics.clone(), pipeline.metrics());
        let claims_ok = Some(scheduler_metrics.claims_ok.clone());
        let state = crate::operator::OperatorState::new(db.clone(), claims_ok, |r| {
            sm.register(r);
            pm.register(r);
        });
        crate::operator::serve(&addr, state, shutdown.clone()).await?;
    }
    tracing::info!(db = db.display_url(), worker = %scheduler_config.worker_id, "wx-validator starting");
    let scheduler = Scheduler::new(
        db,
        scheduler_config,
        Arc::new(pipeline.clone()),
        parts.clock,
    )
    .with_urgent_stop(parts.urgent_stop.unwrap_or_default())
    .with_periodic(Arc::new(EnsureRun {
        pipeline: pipeline.clone(),
        every,
    }))
    .with_periodic(Arc::new(Prune {
        every: Duration::from_secs(u64::from(config_prune_minutes) * 60),
        pipeline: pipeline.clone(),
    }))
    .with_periodic(Arc::new(PurgeCache(pipeline)))
    .with_metrics(scheduler_metrics);
    Ok(scheduler.run(shutdown).await?)
}

/// `wx-validator run`: serve until SIGINT or SIGTERM; a second signal ends the shutdown grace
/// period at once.
pub async fn run(config: ValidatorConfig) -> Result<()> {
    let shutdown = CancellationToken::new();
    let urgent = CancellationToken::new();
    tokio::spawn(stop_on_signals(shutdown.clone(), urgent.clone()));
    let parts = DaemonParts {
        urgent_stop: Some(urgent),
        ..DaemonParts::default()
    };
    let summary = serve(config, parts, shutdown).await?;
    tracing::info!(?summary, "wx-validator stopped");
    Ok(())
}

/// Cancels `shutdown` at the first SIGINT or SIGTERM and `urgent` at the second.
pub async fn stop_on_signals(shutdown: CancellationToken, urgent: CancellationToken) {
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM; stop the daemon with SIGKILL");
            return;
        }
    };
    signals.next().await;
    tracing::info!(
        "shutdown signal received: finishing in-flight steps (signal again to stop at once)"
    );
    shutdown.cancel();
    signals.next().await;
    tracing::info!("second shutdown signal: cancelling in-flight steps and releasing them");
    urgent.cancel();
}

/// SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
