//! `wx-validator runs list`: the runs, newest first, with how far each got.

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use std::io::Write;
use wx_model::RunId;
use wx_steps::ValidatorConfig;
use wx_store::Db;

/// Run commands.
#[derive(Subcommand)]
pub enum RunsCommand {
    /// List the runs, newest first.
    List {
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// One run's line.
#[derive(Debug, Serialize)]
pub struct RunLine {
    /// The run id.
    pub run_id: i64,
    /// The GFS init time scored.
    pub gfs_init: String,
    /// The run's status.
    pub status: String,
    /// Whether it ran in test mode.
    pub test_mode: bool,
    /// When it was created (UTC).
    pub created: String,
    /// When it reached a terminal status (UTC).
    pub completed: Option<String>,
    /// Miners in the run.
    pub miners: usize,
    /// Miners with an overall score.
    pub scored: usize,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

fn utc(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// The newest `limit` runs.
pub async fn load(db: &Db, limit: u32) -> Result<Vec<RunLine>> {
    let mut lines = Vec::new();
    for run in db.runs().list(i64::from(limit)).await? {
        let stats = db.stats().list(RunId(run.id)).await?;
        lines.push(RunLine {
            run_id: run.id,
            gfs_init: utc(run.gfs_init_time_utc),
            status: run.status.clone(),
            test_mode: run.test_mode,
            created: utc(run.run_initiation_time),
            completed: run.completed_at.map(utc),
            miners: stats.len(),
            scored: stats
                .iter()
                .filter(|s| s.overall_forecast_score.is_some())
                .count(),
            error: run.error.clone(),
        });
    }
    Ok(lines)
}

/// Runs a `runs` command (read-only: the database must exist with the current schema).
pub async fn run(command: RunsCommand, config: &ValidatorConfig) -> Result<()> {
    let RunsCommand::List { limit, json } = command;
    let db = Db::open_existing(config.require_database_url()?).await?;
    let lines = load(&db, limit).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&lines)?)?;
        return Ok(());
    }
    if lines.is_empty() {
        writeln!(out, "no run yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>6}  {:<17}  {:<10}  {:<4}  {:<17}  {:<17}  {:>6}  {:>6}  error",
        "run", "gfs init", "status", "mode", "created", "completed", "miners", "scored"
    )?;
    for l in &lines {
        writeln!(
            out,
            "{:>6}  {:<17}  {:<10}  {:<4}  {:<17}  {:<17}  {:>6}  {:>6}  {}",
            l.run_id,
            l.gfs_init,
            l.status,
            if l.test_mode { "test" } else { "live" },
            l.created,
            l.completed.as_deref().unwrap_or("-"),
            l.miners,
            l.scored,
            l.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
