//! The leases of running claims: registered while their step runs, extended by one batched
//! heartbeat per interval, cancelled when found lost.

use crate::metrics::SchedulerMetrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use wx_model::Clock;
use wx_store::{Claim, Db};

struct Held {
    claim: Claim,
    cancel: CancellationToken,
}

/// The claims a process holds while their steps run. Cheap to share (`Arc`).
pub struct Leases {
    db: Db,
    clock: Arc<dyn Clock>,
    lease: Duration,
    heartbeat: Duration,
    metrics: Arc<SchedulerMetrics>,
    held: Mutex<HashMap<i64, Held>>,
}

impl Leases {
    /// Leases of `lease`, heartbeated every `heartbeat` once [`Leases::keep`] runs.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        lease: Duration,
        heartbeat: Duration,
        metrics: Arc<SchedulerMetrics>,
    ) -> Arc<Leases> {
        Arc::new(Leases {
            db,
            clock,
            lease,
            heartbeat,
            metrics,
            held: Mutex::default(),
        })
    }

    fn held(&self) -> MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts heartbeating `claim`; the token fires if its lease is found lost (or
    /// [`Leases::cancel_all`] is called).
    pub fn hold(&self, claim: &Claim) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.held().insert(
            claim.id,
            Held {
                claim: claim.clone(),
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    /// Stops heartbeating a claim (its step ended). Done before the completion is written: a
    /// heartbeat racing with it would otherwise see the claim cleared and report it lost.
    pub fn let_go(&self, id: i64) {
        self.held().remove(&id);
    }

    /// How many claims are held.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// Whether no claim is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every running step to stop.
    pub fn cancel_all(&self) {
        for held in self.held().values() {
            held.cancel.cancel();
        }
    }

    /// Removes and returns every claim still held (to release them).
    pub fn take_all(&self) -> Vec<Claim> {
        self.held().drain().map(|(_, h)| h.claim).collect()
    }

    /// Heartbeats the held claims every interval until `stop` fires, cancelling steps whose
    /// lease was lost.
    pub async fn keep(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.beat().await;
        }
    }

    async fn beat(&self) {
        let claims: Vec<Claim> = self.held().values().map(|h| h.claim.clone()).collect();
        if claims.is_empty() {
            return;
        }
        let refs: Vec<&Claim> = claims.iter().collect();
        let now = self.clock.now();
        match self.db.queue().heartbeat(&refs, self.lease, now).await {
            Ok(held) => {
                for (claim, held) in claims.iter().zip(held) {
                    if held {
                        continue;
                    }
                    // A step that let go meanwhile is finishing: its claim was cleared by its
                    // own completion, not lost.
                    if let Some(h) = self.held().get(&claim.id) {
                        self.metrics.leases_lost.inc();
                        warn!(step = %claim.key, "lease lost; cancelling the step");
                        h.cancel.cancel();
                    }
                }
            }
            Err(e) => {
                self.metrics.db_errors.inc();
                warn!(error = %e, "heartbeat failed; will retry at the next interval");
            }
        }
    }
}
