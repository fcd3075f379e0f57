//! `wx-validator prune [--dry-run]`: the retention job at once (docs/operating.md,
//! "Retention"): scores and step rows of finished runs older than `retention_days`, and older
//! snapshots, deleted in batches of `prune_batch_rows`; runs in progress are never touched.

use anyhow::Result;
use std::io::Write;
use wx_steps::ValidatorConfig;
use wx_store::Db;

/// Prunes (or, with `dry_run`, counts) and prints what went.
pub async fn run(config: &ValidatorConfig, dry_run: bool) -> Result<()> {
    let db = Db::open_existing(config.require_database_url()?).await?;
    let p = &config.pipeline;
    let mut out = std::io::stdout().lock();
    let Some(cutoff) = p.retention_cutoff(chrono::Utc::now()) else {
        writeln!(
            out,
            "pipeline.retention_days = 0: every row is kept; nothing to prune"
        )?;
        return Ok(());
    };
    let report = db
        .retention()
        .prune(cutoff, p.prune_batch_rows, dry_run)
        .await?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    writeln!(
        out,
        "{verb} {} score rows and {} step rows of {} finished runs started before {}, and {} snapshots{}",
        report.scores,
        report.steps,
        report.runs.len(),
        cutoff.format("%Y-%m-%dT%H:%M:%SZ"),
        report.snapshots,
        if dry_run {
            String::new()
        } else {
            format!(" ({} transactions)", report.transactions)
        }
    )?;
    if !report.runs_in_progress.is_empty() {
        writeln!(
            out,
            "left alone (still in progress): runs {:?}",
            report.runs_in_progress
        )?;
    }
    Ok(())
}
