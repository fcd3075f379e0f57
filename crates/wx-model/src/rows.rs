//! Row structs of the [`schema`](crate::schema) tables: `*Row` for reading, `New*` for writing.
//!
//! Timestamps are `NaiveDateTime` holding UTC. Status columns are text; use the typed accessors
//! (e.g. [`StepRow::status`]) to read them.

use crate::schema::*;
use crate::{ForecastStatus, ParseEnumError, RunStatus, StepKind, StepStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// A registered miner. `Debug` never prints the access token.
#[derive(Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = miners)]
pub struct MinerRow {
    /// Uid 0..=255.
    pub uid: i32,
    /// ss58 hotkey.
    pub hotkey: String,
    /// Store base URL; may contain `{run_id}` and `{init}` placeholders.
    pub store_url: String,
    /// Bearer token for the store (secret).
    pub access_token: String,
    /// Last change.
    pub updated_at: NaiveDateTime,
    /// When the current hotkey was registered at the uid (a URL or token change keeps it; a
    /// new hotkey is a new miner, docs/operating.md "Fair play").
    pub registered_at: NaiveDateTime,
}

impl std::fmt::Debug for MinerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerRow")
            .field("uid", &self.uid)
            .field("hotkey", &self.hotkey)
            .field("store_url", &self.store_url)
            .field("access_token", &"[redacted]")
            .field("updated_at", &self.updated_at)
            .field("registered_at", &self.registered_at)
            .finish()
    }
}

/// One event of the registry's lifecycle (`miner_registry_events`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = miner_registry_events)]
pub struct RegistryEventRow {
    /// Row id (events of a uid are ordered by it).
    pub id: i64,
    /// The uid.
    pub uid: i32,
    /// `added`, `hotkey_changed` or `removed`.
    pub event: String,
    /// The hotkey the event is about (the new one for `hotkey_changed`).
    pub hotkey: String,
    /// The hotkey replaced (`hotkey_changed` only).
    pub previous_hotkey: Option<String>,
    /// When.
    pub at: NaiveDateTime,
}

/// A registry event to insert.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = miner_registry_events)]
#[allow(missing_docs)]
pub struct NewRegistryEvent {
    pub uid: i32,
    pub event: String,
    pub hotkey: String,
    pub previous_hotkey: Option<String>,
    pub at: NaiveDateTime,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = weather_forecast_runs)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// The GFS init time scored (hindcast-shifted in test mode).
    pub gfs_init_time_utc: NaiveDateTime,
    /// Whether the run was created in test mode.
    pub test_mode: bool,
    /// When the run was created.
    pub run_initiation_time: NaiveDateTime,
    /// Run status text.
    pub status: String,
    /// Snapshot of the configuration the run was created with (JSON).
    pub config_json: String,
    /// When the run reached a terminal status.
    pub completed_at: Option<NaiveDateTime>,
    /// Why the run failed.
    pub error: Option<String>,
}

impl RunRow {
    /// The typed status.
    pub fn status(&self) -> Result<RunStatus, ParseEnumError> {
        self.status.parse()
    }
}

/// A run to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weather_forecast_runs)]
pub struct NewRun {
    /// The GFS init time scored.
    pub gfs_init_time_utc: NaiveDateTime,
    /// Test mode.
    pub test_mode: bool,
    /// Creation time.
    pub run_initiation_time: NaiveDateTime,
    /// Initial status (`seeded`).
    pub status: String,
    /// Configuration snapshot (JSON).
    pub config_json: String,
}

/// One miner's statistics for one run.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = weather_forecast_stats)]
#[allow(missing_docs)]
pub struct StatsRow {
    pub id: i64,
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub forecast_status: String,
    pub forecast_score_initial: Option<f64>,
    pub era5_score_24h: Option<f64>,
    pub era5_score_48h: Option<f64>,
    pub era5_score_72h: Option<f64>,
    pub era5_score_96h: Option<f64>,
    pub era5_score_120h: Option<f64>,
    pub era5_score_144h: Option<f64>,
    pub era5_score_168h: Option<f64>,
    pub era5_score_192h: Option<f64>,
    pub era5_score_216h: Option<f64>,
    pub era5_score_240h: Option<f64>,
    pub era5_combined_score: Option<f64>,
    pub era5_completeness: Option<f64>,
    pub overall_forecast_score: Option<f64>,
    pub avg_rmse: Option<f64>,
    pub avg_acc: Option<f64>,
    pub avg_skill_score: Option<f64>,
    pub hosting_status: Option<String>,
    pub hosting_latency_ms: Option<i64>,
    pub forecast_error_msg: Option<String>,
    pub miner_rank: Option<i32>,
    pub updated_at: NaiveDateTime,
}

impl StatsRow {
    /// The typed forecast status.
    pub fn status(&self) -> Result<ForecastStatus, ParseEnumError> {
        self.forecast_status.parse()
    }

    /// The fixed per-lead ERA5 columns as (lead hours, score).
    pub fn era5_lead_scores(&self) -> [(u32, Option<f64>); 10] {
        [
            (24, self.era5_score_24h),
            (48, self.era5_score_48h),
            (72, self.era5_score_72h),
            (96, self.era5_score_96h),
            (120, self.era5_score_120h),
            (144, self.era5_score_144h),
            (168, self.era5_score_168h),
            (192, self.era5_score_192h),
            (216, self.era5_score_216h),
            (240, self.era5_score_240h),
        ]
    }
}

/// A stats row to seed.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weather_forecast_stats)]
#[allow(missing_docs)]
pub struct NewStats {
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub forecast_status: String,
    pub updated_at: NaiveDateTime,
}

/// A miner's store for one run.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = weather_miner_responses)]
#[allow(missing_docs)]
pub struct ResponseRow {
    pub id: i64,
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub store_url: String,
    pub manifest_hash: Option<String>,
    pub frozen_manifest: Option<String>,
    pub verification_passed: bool,
    pub verified_at: Option<NaiveDateTime>,
    pub hosting_status: Option<String>,
    pub hosting_latency_ms: Option<i64>,
    pub updated_at: NaiveDateTime,
    /// When the manifest was frozen (None: no manifest was frozen).
    pub manifest_frozen_at: Option<NaiveDateTime>,
}

/// A response to upsert (keyed by run and miner).
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = weather_miner_responses, treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct NewResponse {
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub store_url: String,
    pub manifest_hash: Option<String>,
    pub frozen_manifest: Option<String>,
    pub verification_passed: bool,
    pub verified_at: Option<NaiveDateTime>,
    pub hosting_status: Option<String>,
    pub hosting_latency_ms: Option<i64>,
    pub updated_at: NaiveDateTime,
    /// When the manifest was frozen (None: no manifest was frozen).
    pub manifest_frozen_at: Option<NaiveDateTime>,
}

/// A row of the step log / work queue.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = weather_forecast_steps)]
#[allow(missing_docs)]
pub struct StepRow {
    pub id: i64,
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub step_name: String,
    pub substep: String,
    pub lead_hours: i32,
    pub status: String,
    pub attempt: i32,
    pub max_retries: i32,
    pub next_run_at: NaiveDateTime,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub claim_token: Option<String>,
    pub claimed_by: Option<String>,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub latency_ms: Option<i64>,
    pub error_json: Option<String>,
    pub context: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Leases that ran out while the step was claimed (a worker stopped or stalled); kept
    /// apart from `attempt`, which counts the failures the step itself reported.
    pub lease_losses: i32,
    /// A wake arrived while the step was in progress: its next wait ends at once.
    pub wake_requested: bool,
}

impl StepRow {
    /// The typed status.
    pub fn status(&self) -> Result<StepStatus, ParseEnumError> {
        self.status.parse()
    }

    /// The typed (step, substep).
    pub fn kind(&self) -> Result<StepKind, ParseEnumError> {
        StepKind::from_names(&self.step_name, &self.substep)
    }
}

/// A step row to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weather_forecast_steps)]
#[allow(missing_docs)]
pub struct NewStep {
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub step_name: String,
    pub substep: String,
    pub lead_hours: i32,
    pub status: String,
    pub attempt: i32,
    pub max_retries: i32,
    pub next_run_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub latency_ms: Option<i64>,
    pub error_json: Option<String>,
    pub context: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A stored score.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = weather_miner_scores)]
#[allow(missing_docs)]
pub struct ScoreRow {
    pub id: i64,
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub score_type: String,
    pub variable: String,
    pub level: i32,
    pub lead_hours: i32,
    pub score: Option<f64>,
    pub valid_time_utc: Option<NaiveDateTime>,
    pub error_message: Option<String>,
    pub metrics: Option<String>,
    pub calculated_at: NaiveDateTime,
}

/// A score to upsert, keyed by (run, miner, score_type, variable, level, lead).
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = weather_miner_scores, treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct NewScore {
    pub run_id: i64,
    pub miner_uid: i32,
    pub miner_hotkey: String,
    pub score_type: String,
    pub variable: String,
    pub level: i32,
    pub lead_hours: i32,
    pub score: Option<f64>,
    pub valid_time_utc: Option<NaiveDateTime>,
    pub error_message: Option<String>,
    pub metrics: Option<String>,
    pub calculated_at: NaiveDateTime,
}

/// Lifetime aggregates of one uid.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = miner_stats, treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct MinerStatsRow {
    pub uid: i32,
    pub hotkey: String,
    pub runs_total: i32,
    pub runs_scored: i32,
    pub avg_overall_score: Option<f64>,
    pub best_overall_score: Option<f64>,
    pub worst_overall_score: Option<f64>,
    pub std_overall_score: Option<f64>,
    pub day1_pass_rate: Option<f64>,
    pub avg_era5_completeness: Option<f64>,
    pub hosting_successes: i32,
    pub hosting_failures: i32,
    pub avg_hosting_latency_ms: Option<f64>,
    pub current_success_streak: i32,
    pub longest_success_streak: i32,
    pub current_failure_streak: i32,
    /// JSON object: error kind → count.
    pub error_counts: String,
    pub first_seen: NaiveDateTime,
    pub last_active: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// A subnet snapshot.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = subnet_snapshots)]
#[allow(missing_docs)]
pub struct SnapshotRow {
    pub id: i64,
    pub taken_at: NaiveDateTime,
    pub lookback_days: i32,
    /// JSON array of run ids.
    pub runs_covered: String,
    /// JSON object uid → mean overall score.
    pub scores: String,
    /// JSON object uid → ranking weight.
    pub weights: String,
    pub note: Option<String>,
}

/// A snapshot to insert.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = subnet_snapshots)]
#[allow(missing_docs)]
pub struct NewSnapshot {
    pub taken_at: NaiveDateTime,
    pub lookback_days: i32,
    pub runs_covered: String,
    pub scores: String,
    pub weights: String,
    pub note: Option<String>,
}

/// A lead of a run whose truth was given up on: unpublished `era5_give_up` after it was due.
/// A run-level fact shared by every miner of the run.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = weather_unavailable_leads)]
pub struct UnavailableLeadRow {
    /// The run.
    pub run_id: i64,
    /// The truth source (`era5`).
    pub source: String,
    /// The lead, hours.
    pub lead_hours: i32,
    /// Its valid time.
    pub valid_time_utc: NaiveDateTime,
    /// How far the source was published when the lead was given up (`None`: nothing known).
    pub published_until: Option<NaiveDateTime>,
    /// What was observed, for operators.
    pub reason: String,
    /// When it was recorded.
    pub recorded_at: NaiveDateTime,
}
