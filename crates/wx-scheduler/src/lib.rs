//! The wx dispatcher.
//!
//! A [`Scheduler`] claims due steps from the queue in `wx-store`, runs each with a
//! [`StepRunner`] under per-resource-class concurrency limits (network-bound verification wide,
//! scoring bounded by a memory budget), heartbeats the leases of everything in flight, rescues
//! steps whose worker died, runs periodic jobs, and shuts down gracefully: it stops claiming,
//! lets in-flight steps finish within a grace period (a second request ends it), and releases
//! the rest without consuming an attempt.
//!
//! The scheduler knows nothing of what steps do: the runner turns a [`wx_store::Claim`] into a
//! [`wx_store::Completion`]. Every claim goes through the one lifecycle, [`run_claim`] (hold
//! the lease, run, record the completion fenced through the batching [`Completer`]), which
//! `wx-step run` uses too. Several schedulers (processes, machines) can share one PostgreSQL
//! database.
//!
//! Modules: `dispatcher.rs` (the loop), `slots.rs` (per-class limits), `lifecycle.rs`,
//! `leases.rs` (heartbeats), `completer.rs`, `backoff.rs` (after failed claim rounds),
//! `runner.rs` (the traits), `metrics.rs`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod completer;
mod dispatcher;
mod leases;
mod lifecycle;
mod metrics;
mod runner;
mod slots;

pub use completer::{Completer, CompleterConfig, Recorded};
pub use dispatcher::{RunSummary, Scheduler, SchedulerConfig, SchedulerError, default_worker_id};
pub use leases::Leases;
pub use lifecycle::{ClaimReport, ClaimServices, ServiceSettings, ServiceTasks, run_claim};
pub use metrics::SchedulerMetrics;
pub use runner::{JobError, PeriodicJob, StepRunner};
