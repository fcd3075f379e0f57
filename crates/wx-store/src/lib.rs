//! The wx database: PostgreSQL and SQLite behind one repository API, migrations, and the
//! durable step queue (claim, lease, heartbeat, fenced completion, rescue).
//!
//! Open a [`Db`] from a URL (`postgres://…?sslmode=…` or `sqlite://path`): [`Db::open`] runs
//! pending migrations, [`Db::open_existing`] only opens a database with the current schema.
//! Repositories are methods grouped by table ([`Db::miners`], [`Db::runs`], …); the queue is
//! [`Db::queue`]. Every state change of the pipeline goes through this crate.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod error;
pub mod miner_stats;
pub mod miners;
mod pg_connect;
mod pool;
pub mod queue;
pub mod responses;
pub mod retention;
pub mod runs;
mod schema_check;
pub mod scores;
pub mod snapshots;
pub mod stats;
pub mod steps;
#[cfg(feature = "testing")]
pub mod testing;
pub(crate) mod time;
pub mod tls;
pub mod unavailable;

pub use backend::{Backend, Db, DbOptions, DbTarget, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use error::{StoreError, redact_url};
pub use miner_stats::MinerStatsRepo;
pub use miners::{HotkeyChange, ImportSummary, MinerRecord, Miners, event as registry_event};
pub use pool::PoolState;
pub use queue::{
    Claim, ClaimRequest, Completion, CorruptRow, Effects, Fence, KeyClaim, MinerStatsRefresh,
    Outcome, Queue, RescueAction, RescueReport, RescueRequest, Rescued,
};
pub use responses::Responses;
pub use retention::{PruneReport, Retention};
pub use runs::{RunHandle, Runs};
pub use scores::Scores;
pub use snapshots::Snapshots;
pub use stats::{Stats, StatsPatch};
pub use steps::{StepCounts, StepLog, StepSpec, Steps};
pub use unavailable::{ERA5_SOURCE, UnavailableLeads};
