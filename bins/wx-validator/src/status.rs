//! `wx-validator status`: a table (or JSON) of one run.

use anyhow::{Result, bail};
use serde::Serialize;
use wx_model::RunId;
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
    miners: Vec<MinerLine>,
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
        miners,
    })
}

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// Prints the status of a run.
pub async fn run(config: &wx_steps::ValidatorConfig, run: Option<i64>, json: bool) -> Result<()> {
    let db = Db::open(&config.database_url).await?;
    let report = load(&db, run).await?;
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
