//! What every step gets: the database, the configuration, the clock and the data hub.

use crate::config::{Targets, ValidatorConfig};
use crate::data::{DataError, DataHub};
use crate::wrapper::StepFailure;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use wx_model::rows::{MinerRow, NewScore};
use wx_model::{Blame, Clock, ErrorKind, StepError, VarLevel};
use wx_store::{Claim, Db, MinerStatsRefresh, StoreError};

/// Shared by every step a process runs.
pub struct StepContext {
    /// The database.
    pub db: Db,
    /// The configuration.
    pub config: Arc<ValidatorConfig>,
    /// Parsed variables and leads.
    pub targets: Targets,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// Data access.
    pub data: Arc<DataHub>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::StepsMetrics>,
    /// The operator's override of the submission window (`wx-step run --force --allow-late`):
    /// who allowed it, recorded in the verify step's context. None in the daemon.
    pub late_override: Option<String>,
}

impl StepContext {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The run's GFS init time.
    pub async fn run_init(&self, claim: &Claim) -> Result<DateTime<Utc>, StepFailure> {
        let run = self
            .db
            .runs()
            .require(claim.key.run)
            .await
            .map_err(|e| db_failure(&e))?;
        Ok(DateTime::from_naive_utc_and_offset(
            run.gfs_init_time_utc,
            Utc,
        ))
    }

    /// The run's start (its creation time), from which its submission window counts.
    pub async fn run_start(&self, claim: &Claim) -> Result<DateTime<Utc>, StepFailure> {
        let run = self
            .db
            .runs()
            .require(claim.key.run)
            .await
            .map_err(|e| db_failure(&e))?;
        Ok(DateTime::from_naive_utc_and_offset(
            run.run_initiation_time,
            Utc,
        ))
    }

    /// The registered miner of a claim, or a permanent failure if the uid was deregistered or
    /// now belongs to another hotkey: a run scores only the hotkey it seeded, and the new
    /// hotkey joins the next run (docs/operating.md, "Fair play").
    pub async fn miner(&self, claim: &Claim) -> Result<MinerRow, StepFailure> {
        let uid = claim.key.miner;
        let row = self
            .db
            .miners()
            .get(uid.as_i32())
            .await
            .map_err(|e| db_failure(&e))?;
        match row {
            Some(m) if m.hotkey == claim.hotkey => Ok(m),
            Some(m) => {
                tracing::warn!(
                    run = %claim.key.run,
                    miner = %uid,
                    seeded = %claim.hotkey,
                    registered = %m.hotkey,
                    "the uid changed hands during the run: the seeded hotkey is no longer scored"
                );
                Err(StepFailure::permanent(
                    ErrorKind::Identity,
                    Blame::Miner,
                    &format!(
                        "miner {uid}: hotkey {} was registered at this uid after the run was \
                         seeded for hotkey {}; this run scores only the seeded hotkey, the new \
                         one joins the next run",
                        m.hotkey, claim.hotkey
                    ),
                ))
            }
            None => Err(StepFailure::permanent(
                ErrorKind::Identity,
                Blame::Miner,
                &format!(
                    "miner {uid} is no longer registered (removed with `wx-validator miners \
                     remove`); re-import it to score it in the next run"
                ),
            )),
        }
    }

    /// The refresh of the claim's miner's lifetime statistics (its identity: uid and the
    /// hotkey the run seeded), as a completion effect.
    pub fn refresh(&self, claim: &Claim) -> MinerStatsRefresh {
        MinerStatsRefresh {
            uid: claim.key.miner,
            hotkey: claim.hotkey.clone(),
            day1_pass_threshold: self.config.scoring.day1.pass_threshold,
        }
    }
}

/// A database error as a (retryable, infrastructure) step failure.
pub fn db_failure(e: &StoreError) -> StepFailure {
    StepFailure::retryable(ErrorKind::Database, Blame::Infrastructure, &e.to_string())
}

/// A data error as a step failure (retryable or not by its kind). `secrets` are removed from
/// the message (the miner's token).
pub fn data_failure(e: &DataError, secrets: &[&str]) -> StepFailure {
    StepFailure {
        error: StepError::new(e.kind, e.blame, &e.message, secrets),
        retryable: e.is_retryable(),
        effects: Box::default(),
        on_final: Box::default(),
        retry_until: None,
    }
}

/// Resolves the `{run_id}` and `{init}` placeholders of a miner's store URL.
pub fn store_url(template: &str, run: wx_model::RunId, init: DateTime<Utc>) -> String {
    template
        .replace("{run_id}", &run.to_string())
        .replace("{init}", &init.format("%Y%m%d%H").to_string())
}

/// A score row of a miner.
#[allow(clippy::too_many_arguments)]
pub fn score_row(
    claim: &Claim,
    score_type: &str,
    selection: Option<&VarLevel>,
    lead_hours: u32,
    score: Result<f64, String>,
    valid_time: Option<DateTime<Utc>>,
    metrics: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> NewScore {
    let (score, error_message) = match score {
        Ok(x) if x.is_finite() => (Some(x), None),
        Ok(x) => (None, Some(format!("not a finite number ({x})"))),
        Err(e) => (None, Some(wx_model::sanitize_message(&e, &[]))),
    };
    NewScore {
        run_id: claim.key.run.0,
        miner_uid: claim.key.miner.as_i32(),
        miner_hotkey: claim.hotkey.clone(),
        score_type: score_type.to_owned(),
        variable: selection
            .map(|v| v.variable.as_str().to_owned())
            .unwrap_or_default(),
        level: selection.and_then(|v| v.level).map(i32::from).unwrap_or(0),
        lead_hours: lead_hours as i32,
        score,
        valid_time_utc: valid_time.map(|t| t.naive_utc()),
        error_message,
        metrics: metrics.map(|m| m.to_string()),
        calculated_at: now.naive_utc(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_url_placeholders_are_resolved() {
        let init = "2025-01-02T12:00:00Z".parse().unwrap();
        assert_eq!(
            super::store_url(
                "https://m.example/forecasts/{init}-{run_id}.zarr",
                wx_model::RunId(7),
                init
            ),
            "https://m.example/forecasts/2025010212-7.zarr"
        );
    }
}
