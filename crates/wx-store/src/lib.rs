//! The wx database: PostgreSQL and SQLite behind one repository API, migrations, and the
//! durable step queue (claim, lease, heartbeat, fenced completion, rescue).
//!
//! Open a [`Db`] from a URL (`postgres://…` or `sqlite://path`); migrations run automatically.
//! Repositories are methods grouped by table ([`Db::miners`], [`Db::runs`], …); the queue is
//! [`Db::queue`]. Every state change of the pipeline goes through this crate.
#![warn(missing_docs)]

mod backend;
mod error;
pub mod miner_stats;
pub mod miners;
pub mod queue;
pub mod responses;
pub mod runs;
pub mod scores;
pub mod snapshots;
pub mod stats;
pub mod steps;
#[cfg(feature = "testing")]
pub mod testing;
pub(crate) mod time;
pub mod unavailable;

pub use backend::{Backend, Db, DbOptions, DbTarget, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use error::StoreError;
pub use miner_stats::MinerStatsRepo;
pub use miners::{ImportSummary, MinerRecord, Miners};
pub use queue::{
    Claim, ClaimRequest, Completion, Effects, Fence, KeyClaim, MinerStatsRefresh, Outcome,
    PoolState, Queue, Rescued,
};
pub use responses::Responses;
pub use runs::{RunHandle, Runs};
pub use scores::{Scores, score_type};
pub use snapshots::Snapshots;
pub use stats::{Stats, StatsPatch};
pub use steps::{StepCounts, StepLog, StepSpec, Steps};
pub use unavailable::{ERA5_SOURCE, UnavailableLeads};
