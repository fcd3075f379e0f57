//! The one claim lifecycle — hold the lease (heartbeats), run, let go, record the completion
//! fenced — shared by the daemon's dispatcher and `wx-step run`.

use crate::completer::{Completer, CompleterConfig, Recorded};
use crate::leases::Leases;
use crate::metrics::SchedulerMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use wx_model::Clock;
use wx_store::{Claim, Completion, Db};

/// What running claims needs: the leases they hold and the completer that records them.
pub struct ClaimServices {
    /// The leases of running claims.
    pub leases: Arc<Leases>,
    /// Records completions.
    pub completer: Completer,
}

/// Settings of [`ClaimServices::start`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceSettings {
    /// Lease of a claim.
    pub lease: Duration,
    /// Heartbeat interval (at most half the lease).
    pub heartbeat: Duration,
    /// Most completions written in one batch.
    pub max_batch: usize,
    /// Batches written at once.
    pub writers: usize,
}

/// The background tasks of [`ClaimServices`]: the heartbeat loop and the completer. Dropping
/// this aborts them, as a crashed process stops heartbeating.
pub struct ServiceTasks {
    stop: CancellationToken,
    heartbeat: AbortOnDropHandle<()>,
    completer: AbortOnDropHandle<()>,
}

impl ClaimServices {
    /// Starts the heartbeat loop and the completer on the current runtime.
    pub fn start(
        db: &Db,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
        metrics: Arc<SchedulerMetrics>,
    ) -> (Arc<ClaimServices>, ServiceTasks) {
        let leases = Leases::new(
            db.clone(),
            clock.clone(),
            settings.lease,
            settings.heartbeat,
            metrics.clone(),
        );
        let stop = CancellationToken::new();
        let heartbeat = AbortOnDropHandle::new(tokio::spawn(leases.clone().keep(stop.clone())));
        let (completer, completer_task) = Completer::start(
            db.clone(),
            clock,
            CompleterConfig {
                max_batch: settings.max_batch,
                writers: settings.writers,
                lease: settings.lease,
            },
            metrics,
        );
        (
            Arc::new(ClaimServices { leases, completer }),
            ServiceTasks {
                stop,
                heartbeat,
                completer: AbortOnDropHandle::new(completer_task),
            },
        )
    }
}

impl ServiceTasks {
    /// Stops heartbeating and waits until the completer has written everything it was given.
    /// Drop every [`ClaimServices`] first: the completer ends when the last handle is gone.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.heartbeat.await;
        let _ = self.completer.await;
    }
}

/// How one claim went.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimReport {
    /// What the step returned.
    pub completion: Completion,
    /// Whether it was recorded.
    pub recorded: Recorded,
    /// How long the step ran.
    pub ran_for: Duration,
}

/// Runs one claim: its lease is heartbeated while `work` runs (and `work`'s token fires if the
/// lease is lost), then the completion is recorded through the completer — fenced, with
/// retries on transient errors until the lease would have run out.
pub async fn run_claim<F, Fut>(services: &ClaimServices, claim: Claim, work: F) -> ClaimReport
where
    F: FnOnce(Claim, CancellationToken) -> Fut,
    Fut: Future<Output = Completion>,
{
    let cancel = services.leases.hold(&claim);
    let started = Instant::now();
    let completion = work(claim.clone(), cancel).await;
    let ran_for = started.elapsed();
    services.leases.let_go(claim.id);
    let recorded = services.completer.finish(claim, completion.clone()).await;
    ClaimReport {
        completion,
        recorded,
        ran_for,
    }
}
