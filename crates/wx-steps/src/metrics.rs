//! What the pipeline counts, for the operator's `/metrics` endpoint.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels naming a scoring phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `day1` or `era5`.
    pub phase: String,
}

/// Pipeline counters, shared by every step of a process.
#[derive(Debug)]
pub struct StepsMetrics {
    /// Bytes fetched from miner stores (every one of them verified against the frozen manifest
    /// before it was decoded).
    pub miner_bytes_verified: Counter,
    /// Wall time of scoring one (variable, lead) — alignment plus kernels — by phase.
    pub scoring_seconds: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    /// (variable, lead) pairs scored, by phase.
    pub pairs_scored: Family<PhaseLabels, Counter>,
    /// (variable, lead) pairs that failed (missing variable, coverage, …), by phase.
    pub pairs_failed: Family<PhaseLabels, Counter>,
    /// Hours the ERA5 store is behind the expected availability at its last check: the
    /// latest valid time the delay and buffer say should be published, minus the end of the
    /// published extent (negative: ahead of the expectation).
    pub era5_lag_hours: Gauge<f64, AtomicU64>,
    /// The end of the ERA5 store's published extent at its last check, Unix seconds.
    pub era5_published_until_seconds: Gauge<f64, AtomicU64>,
    /// Leads given up on for lack of ERA5 (recorded unavailable for their run).
    pub era5_leads_given_up: Counter,
}

fn scoring_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 14))
}

/// The scoring phases, whose counters exist from the start.
const PHASES: [&str; 2] = ["day1", "era5"];

impl Default for StepsMetrics {
    fn default() -> Self {
        let metrics = StepsMetrics {
            miner_bytes_verified: Counter::default(),
            scoring_seconds: Family::new_with_constructor(scoring_histogram),
            pairs_scored: Family::default(),
            pairs_failed: Family::default(),
            era5_lag_hours: Gauge::default(),
            era5_published_until_seconds: Gauge::default(),
            era5_leads_given_up: Counter::default(),
        };
        // A labelled series appears only once created: at 0 from the start, the first failure
        // is an increase that rate() and the alert rules see, and the dashboard has a series.
        for phase in PHASES {
            let labels = PhaseLabels {
                phase: phase.into(),
            };
            drop(metrics.pairs_scored.get_or_create(&labels));
            drop(metrics.pairs_failed.get_or_create(&labels));
        }
        metrics
    }
}

impl StepsMetrics {
    /// Registers every metric under the `wx_pipeline` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("wx_pipeline");
        r.register(
            "miner_bytes_verified",
            "Bytes fetched from miner stores and verified",
            self.miner_bytes_verified.clone(),
        );
        r.register(
            "scoring_seconds",
            "Time to align and score one variable at one lead",
            self.scoring_seconds.clone(),
        );
        r.register(
            "pairs_scored",
            "Variable-lead pairs scored",
            self.pairs_scored.clone(),
        );
        r.register(
            "pairs_failed",
            "Variable-lead pairs that failed",
            self.pairs_failed.clone(),
        );
        r.register(
            "era5_lag_hours",
            "Hours the ERA5 store is behind the expected availability (negative: ahead)",
            self.era5_lag_hours.clone(),
        );
        r.register(
            "era5_published_until_seconds",
            "End of the ERA5 store's published extent, Unix seconds",
            self.era5_published_until_seconds.clone(),
        );
        r.register(
            "era5_leads_given_up",
            "Leads recorded unavailable for lack of ERA5",
            self.era5_leads_given_up.clone(),
        );
    }

    /// Records the ERA5 extent seen at `now`, against the latest valid time expected to be
    /// published by then.
    pub fn era5_extent(
        &self,
        published_until: Option<chrono::DateTime<chrono::Utc>>,
        expected_until: chrono::DateTime<chrono::Utc>,
    ) {
        if let Some(until) = published_until {
            self.era5_published_until_seconds
                .set(until.timestamp() as f64);
            self.era5_lag_hours
                .set(crate::data::era5_lag_hours(until, expected_until));
        }
    }

    /// Records one scored or failed pair.
    pub fn pair(&self, phase: &str, seconds: f64, ok: bool) {
        let labels = PhaseLabels {
            phase: phase.into(),
        };
        self.scoring_seconds.get_or_create(&labels).observe(seconds);
        if ok {
            self.pairs_scored.get_or_create(&labels).inc();
        } else {
            self.pairs_failed.get_or_create(&labels).inc();
        }
    }
}
