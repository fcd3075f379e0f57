//! Dispatcher instrumentation, registered in a Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a per-kind metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `step/substep`.
    pub kind: String,
}

/// Labels of a per-kind, per-outcome metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `step/substep`.
    pub kind: String,
    /// `succeeded`, `retry_scheduled`, `failed`, `waiting` or `lost`.
    pub outcome: String,
}

/// What the dispatcher counts.
#[derive(Debug)]
pub struct SchedulerMetrics {
    /// Steps claimed, by kind.
    pub claimed: Family<KindLabels, Counter>,
    /// Attempts ended, by kind and outcome.
    pub finished: Family<OutcomeLabels, Counter>,
    /// Wall time of attempts, by kind.
    pub step_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Steps running now, by kind.
    pub in_flight: Family<KindLabels, Gauge>,
    /// Expired leases rescued by this process.
    pub leases_rescued: Counter,
    /// Leases this process lost while a step ran.
    pub leases_lost: Counter,
    /// Claims released at shutdown.
    pub released: Counter,
    /// Database errors seen by the dispatcher loop.
    pub db_errors: Counter,
    /// Claim rounds that failed (the dispatcher backs off exponentially meanwhile).
    pub claim_failures: Counter,
    /// Expired rows a rescue round found unreadable (counted on every round they are seen).
    pub corrupt_rows: Counter,
    /// Completions per batch written by the completer.
    pub completion_batch: Histogram,
    /// Batches the completer wrote (each one transaction, unless it was split after an error).
    pub completion_batches: Counter,
    /// 1 while the dispatcher's last claim round reached the database, 0 before the first
    /// round and after a failed one (the daemon's `/readyz` reads it).
    pub claims_ok: Gauge,
}

fn latency_histogram() -> Histogram {
    // 10 ms .. ~20 min
    Histogram::new(exponential_buckets(0.01, 2.5, 14))
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics::new()
    }
}

impl SchedulerMetrics {
    /// Empty metrics (not registered).
    pub fn new() -> Self {
        SchedulerMetrics {
            claimed: Family::default(),
            finished: Family::default(),
            step_seconds: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            leases_rescued: Counter::default(),
            leases_lost: Counter::default(),
            released: Counter::default(),
            db_errors: Counter::default(),
            claim_failures: Counter::default(),
            corrupt_rows: Counter::default(),
            completion_batch: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            completion_batches: Counter::default(),
            claims_ok: Gauge::default(),
        }
    }

    /// Registers every metric under the `wx_scheduler` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("wx_scheduler");
        r.register(
            "steps_claimed",
            "Steps claimed by this process",
            self.claimed.clone(),
        );
        r.register(
            "steps_finished",
            "Attempts ended, by outcome",
            self.finished.clone(),
        );
        r.register(
            "step_duration_seconds",
            "Wall time of step attempts",
            self.step_seconds.clone(),
        );
        r.register(
            "steps_in_flight",
            "Steps running now",
            self.in_flight.clone(),
        );
        r.register(
            "leases_rescued",
            "Expired leases rescued",
            self.leases_rescued.clone(),
        );
        r.register(
            "leases_lost",
            "Leases lost while a step ran",
            self.leases_lost.clone(),
        );
        r.register(
            "claims_released",
            "Claims released at shutdown",
            self.released.clone(),
        );
        r.register(
            "db_errors",
            "Database errors in the dispatcher loop",
            self.db_errors.clone(),
        );
        r.register(
            "claim_failures",
            "Claim rounds that failed",
            self.claim_failures.clone(),
        );
        r.register(
            "corrupt_rows",
            "Unreadable expired step rows seen by rescue rounds",
            self.corrupt_rows.clone(),
        );
        r.register(
            "completion_batch_size",
            "Completions written per batch",
            self.completion_batch.clone(),
        );
        r.register(
            "completion_batches",
            "Batches of completions written",
            self.completion_batches.clone(),
        );
        r.register(
            "claims_ok",
            "1 when the last claim round reached the database, else 0",
            self.claims_ok.clone(),
        );
    }
}
