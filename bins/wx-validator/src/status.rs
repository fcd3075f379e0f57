//! `wx-validator status`: a table (or JSON) of one run.

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use wx_model::RunId;
use wx_steps::ValidatorConfig;
use wx_store::Db;

/// One miner's line.
#[derive(Debug, Serialize)]
pub struct MinerLine {
    uid: i32,
    hotkey: String,
    status: String,
    day1: Option<f64>,
    era5_combined: Option<f64>,
    completeness: Option<f64>,
    overall: Option<f64>,
    rank: Option<i32>,
    hosting: Option<String>,
    last_error: Option<String>,
}

/// The run and its miners.
#[derive(Debug, Serialize)]
pub struct RunStatusReport {
    run_id: i64,
    gfs_init: String,
    status: String,
    test_mode: bool,
    steps: wx_store::StepCounts,
    /// Leads recorded unavailable for this run for lack of ERA5 (left out of every miner's
    /// aggregates).
    pub era5_unavailable_leads: Vec<u32>,
    /// The ERA5 store's publication, checked live (absent when not asked for).
    pub era5: Option<Era5Status>,
    miners: Vec<MinerLine>,
}

/// How far the ERA5 store is published and how far behind the expected availability.
#[derive(Debug, Clone, Serialize)]
pub struct Era5Status {
    /// The end of the published extent, RFC 3339 (`None`: nothing, or the store was not read).
    pub published_until: Option<String>,
    /// Where the extent comes from (`valid_time_stop_era5t`, `valid_time_stop`, `time axis`).
    pub basis: Option<String>,
    /// The latest valid time the ERA5 delay and buffer say should be published now.
    pub expected_until: String,
    /// Hours the store is behind that (negative: ahead), as the `wx_pipeline_era5_lag_hours`
    /// gauge reports it.
    pub lag_hours: Option<f64>,
    /// Why the store could not be read.
    pub error: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads the configured ERA5 store's extent (30 s at most) and compares it with what the
/// delay and buffer expect at `now`.
pub async fn era5_status(config: &ValidatorConfig, now: DateTime<Utc>) -> Era5Status {
    let expected = config.pipeline.era5_expected_until(now);
    let read = tokio::time::timeout(
        Duration::from_secs(30),
        wx_steps::data::read_era5_extent(&config.data),
    )
    .await;
    let mut status = Era5Status {
        published_until: None,
        basis: None,
        expected_until: rfc3339(expected),
        lag_hours: None,
        error: None,
    };
    match read {
        Ok(Ok(extent)) => {
            status.published_until = extent.published_until.map(rfc3339);
            status.basis = Some(extent.basis.as_str().to_owned());
            status.lag_hours = extent
                .published_until
                .map(|until| wx_steps::data::era5_lag_hours(until, expected));
        }
        Ok(Err(e)) => status.error = Some(e.to_string()),
        Err(_) => status.error = Some("the ERA5 store did not answer within 30 s".to_owned()),
    }
    status
}

/// Loads the report of `run` (default: the latest).
pub async fn load(db: &Db, run: Option<i64>) -> Result<RunStatusReport> {
    let run = match run {
        Some(id) => db.runs().require(RunId(id)).await?,
        None => match db.runs().latest().await? {
            Some(r) => r,
            None => bail!("the database has no run yet"),
        },
    };
    let id = RunId(run.id);
    let stats = db.stats().list(id).await?;
    let miners = stats
        .into_iter()
        .map(|s| MinerLine {
            uid: s.miner_uid,
            hotkey: s.miner_hotkey.clone(),
            status: s.forecast_status.clone(),
            day1: s.forecast_score_initial,
            era5_combined: s.era5_combined_score,
            completeness: s.era5_completeness,
            overall: s.overall_forecast_score,
            rank: s.miner_rank,
            hosting: s.hosting_status.clone(),
            last_error: s.forecast_error_msg.as_deref().map(|e| {
                serde_json::from_str::<wx_model::StepError>(e)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|_| e.to_owned())
            }),
        })
        .collect();
    Ok(RunStatusReport {
        run_id: run.id,
        gfs_init: run.gfs_init_time_utc.format("%Y-%m-%dT%H:%MZ").to_string(),
        status: run.status.clone(),
        test_mode: run.test_mode,
        steps: db.steps().counts(Some(id)).await?,
        era5_unavailable_leads: db
            .unavailable_leads()
            .list(id, wx_store::ERA5_SOURCE)
            .await?
            .into_iter()
            .map(|r| r.lead_hours as u32)
            .collect(),
        era5: None,
        miners,
    })
}

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// Prints the status of a run, with a live look at the ERA5 store's publication.
pub async fn run(config: &ValidatorConfig, run: Option<i64>, json: bool) -> Result<()> {
    let db = Db::open(&config.database_url).await?;
    let mut report = load(&db, run).await?;
    report.era5 = Some(era5_status(config, Utc::now()).await);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "run {}  init {}  status {}{}",
        report.run_id,
        report.gfs_init,
        report.status,
        if report.test_mode {
            "  (test mode)"
        } else {
            ""
        }
    );
    if let Some(era5) = &report.era5 {
        match (&era5.published_until, era5.lag_hours, &era5.error) {
            (_, _, Some(e)) => println!("ERA5: cannot read the store: {e}"),
            (Some(until), Some(lag), None) => println!(
                "ERA5 published until {until} ({}), {lag:.1} h {} the expected {}",
                era5.basis.as_deref().unwrap_or("-"),
                if lag >= 0.0 { "behind" } else { "ahead of" },
                era5.expected_until
            ),
            _ => println!(
                "ERA5: nothing published ({})",
                era5.basis.as_deref().unwrap_or("-")
            ),
        }
    }
    if !report.era5_unavailable_leads.is_empty() {
        println!(
            "leads given up for lack of ERA5 (left out of every miner's scores): {:?}",
            report.era5_unavailable_leads
        );
    }
    println!(
        "{:>4}  {:<14} {:>7} {:>7} {:>6} {:>7} {:>4}  {:<11}  last error",
        "uid", "status", "day1", "era5", "compl", "overall", "rank", "hosting"
    );
    for m in &report.miners {
        let err: String = m
            .last_error
            .clone()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        println!(
            "{:>4}  {:<14} {:>7} {:>7} {:>6} {:>7} {:>4}  {:<11}  {}",
            m.uid,
            m.status,
            num(m.day1),
            num(m.era5_combined),
            num(m.completeness),
            num(m.overall),
            m.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            m.hosting.clone().unwrap_or_else(|| "-".into()),
            err
        );
    }
    Ok(())
}
