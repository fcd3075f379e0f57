//! The wx dispatcher.
//!
//! A [`Scheduler`] claims due steps from the queue in `wx-store`, runs each with a
//! [`StepRunner`] under per-resource-class concurrency limits (network-bound verification wide,
//! scoring bounded by a memory budget), heartbeats the leases of everything in flight, rescues
//! steps whose worker died, runs periodic jobs, and shuts down gracefully: it stops claiming,
//! lets in-flight steps finish within a grace period, and releases the rest without consuming
//! an attempt.
//!
//! The scheduler knows nothing of what steps do: the runner turns a [`wx_store::Claim`] into a
//! [`wx_store::Completion`], and the scheduler hands that to the store's fenced `finish`.
//! Several schedulers (processes, machines) can share one PostgreSQL database.
#![warn(missing_docs)]

mod dispatcher;
mod metrics;

pub use dispatcher::{
    PeriodicJob, RunSummary, Scheduler, SchedulerConfig, SchedulerError, StepRunner,
    default_worker_id,
};
pub use metrics::SchedulerMetrics;
