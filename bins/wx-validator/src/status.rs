//! `wx-validator status`: a table (or JSON) of one run.

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;
use wx_model::RunId;
use wx_steps::ValidatorConfig;
use wx_store::Db;

/// Longest error text in the table (the cause is never cut; `--json` has the whole message).
const ERROR_COLUMN_CHARS: usize = 160;

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
    /// Set when the uid no longer belongs to the hotkey this run seeded (another hotkey was
    /// registered, or the uid was removed): the run stops scoring it.
    registry: Option<String>,
    /// The same error with its root cause first (for the table).
    #[serde(skip)]
    last_error_cause_first: Option<String>,
}

/// The run and its miners.
#[derive(Debug, Serialize)]
pub struct RunStatusReport {
    run_id: i64,
    gfs_init: String,
    status: String,
    /// Why the run ended as it did, when it says (a `failed` run names the step and the cause).
    error: Option<String>,
    test_mode: bool,
    steps: wx_store::StepCounts,
    /// Leads recorded unavailable for this run for lack of ERA5 (left out of every miner's
    /// aggregates).
    pub era5_unavailable_leads: Vec<u32>,
    /// The ERA5 store's publication, checked live (absent when not asked for).
    pub era5: Option<Era5Status>,
    miners: Vec<MinerLine>,
    /// Registry events since the run started (hotkey changes, removals, additions), oldest
    /// first.
    pub registry_changes: Vec<RegistryChange>,
}

/// A registry event shown by `status`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryChange {
    /// The uid.
    pub uid: i32,
    /// `added`, `hotkey_changed` or `removed`.
    pub event: String,
    /// The hotkey of the event (the new one for a change).
    pub hotkey: String,
    /// The hotkey replaced.
    pub previous_hotkey: Option<String>,
    /// When, RFC 3339.
    pub at: String,
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
    let registered: std::collections::BTreeMap<i32, String> = db
        .miners()
        .list()
        .await?
        .into_iter()
        .map(|m| (m.uid, m.hotkey))
        .collect();
    let mut registry_changes: Vec<RegistryChange> = db
        .miners()
        .events(None, 1000)
        .await?
        .into_iter()
        .filter(|e| e.at >= run.run_initiation_time)
        .map(|e| RegistryChange {
            uid: e.uid,
            event: e.event,
            hotkey: e.hotkey,
            previous_hotkey: e.previous_hotkey,
            at: e.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        })
        .collect();
    registry_changes.reverse();
    let miners = stats
        .into_iter()
        .map(|s| MinerLine {
            registry: match registered.get(&s.miner_uid) {
                Some(h) if *h == s.miner_hotkey => None,
                Some(h) => Some(format!("uid now registered to {h}")),
                None => Some("uid removed from the registry".into()),
            },
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
            last_error_cause_first: s.forecast_error_msg.as_deref().map(|e| {
                match serde_json::from_str::<wx_model::StepError>(e) {
                    Ok(step) => cause_first(
                        &step.message,
                        Some(&format!("{}, {}", step.kind, step.blame)),
                    ),
                    Err(_) => cause_first(e, None),
                }
            }),
        })
        .collect();
    Ok(RunStatusReport {
        run_id: run.id,
        gfs_init: run.gfs_init_time_utc.format("%Y-%m-%dT%H:%MZ").to_string(),
        status: run.status.clone(),
        error: run.error.clone(),
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
        registry_changes,
    })
}

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// An error message (`context: context: cause`, as errors are chained) rewritten with the
/// innermost cause first, then the tag, then the context it happened in:
/// `cause [kind, blame] (at context: context)`. Repeated segments are dropped.
pub fn cause_first(message: &str, tag: Option<&str>) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in message.split(": ").map(str::trim).filter(|s| !s.is_empty()) {
        if segments.last() != Some(&segment) {
            segments.push(segment);
        }
    }
    let Some(cause) = segments.pop() else {
        return tag.map(|t| format!("[{t}]")).unwrap_or_default();
    };
    let mut line = cause.to_owned();
    if let Some(tag) = tag {
        line.push_str(&format!(" [{tag}]"));
    }
    if !segments.is_empty() {
        line.push_str(&format!(" (at {})", segments.join(": ")));
    }
    line
}

/// `text` cut to `max` characters with `…`, but never before `keep` characters (the cause).
fn clip_after(text: &str, keep: usize, max: usize) -> String {
    let limit = max.max(keep);
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Prints the status of a run (read-only: the database must exist with the current schema),
/// with a live look at the ERA5 store's publication.
pub async fn run(config: &ValidatorConfig, run: Option<i64>, json: bool) -> Result<()> {
    let db = Db::open_existing(config.require_database_url()?).await?;
    let mut report = load(&db, run).await?;
    report.era5 = Some(era5_status(config, Utc::now()).await);
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    write_header(&mut out, &report)?;
    if let Some(era5) = &report.era5 {
        match (&era5.published_until, era5.lag_hours, &era5.error) {
            (_, _, Some(e)) => writeln!(out, "ERA5: cannot read the store: {e}")?,
            (Some(until), Some(lag), None) => writeln!(
                out,
                "ERA5 published until {until} ({}), {lag:.1} h {} the expected {}",
                era5.basis.as_deref().unwrap_or("-"),
                if lag >= 0.0 { "behind" } else { "ahead of" },
                era5.expected_until
            )?,
            _ => writeln!(
                out,
                "ERA5: nothing published ({})",
                era5.basis.as_deref().unwrap_or("-")
            )?,
        }
    }
    if !report.era5_unavailable_leads.is_empty() {
        writeln!(
            out,
            "leads given up for lack of ERA5 (left out of every miner's scores): {:?}",
            report.era5_unavailable_leads
        )?;
    }
    for c in &report.registry_changes {
        match &c.previous_hotkey {
            Some(previous) => writeln!(
                out,
                "registry: uid {} {} at {}: {previous} -> {} (a new miner; it joins the next run)",
                c.uid, c.event, c.at, c.hotkey
            )?,
            None => writeln!(
                out,
                "registry: uid {} {} at {}: {}",
                c.uid, c.event, c.at, c.hotkey
            )?,
        }
    }
    writeln!(
        out,
        "{:>4}  {:<14} {:>7} {:>7} {:>6} {:>7} {:>4}  {:<11}  last error (cause first)",
        "uid", "status", "day1", "era5", "compl", "overall", "rank", "hosting"
    )?;
    for m in &report.miners {
        let err = m
            .last_error_cause_first
            .as_deref()
            .map(|e| {
                let cause_len = e.find(" [").unwrap_or(e.len());
                clip_after(e, e[..cause_len].chars().count(), ERROR_COLUMN_CHARS)
            })
            .unwrap_or_default();
        let err = match &m.registry {
            Some(note) => format!("[{note}] {err}"),
            None => err,
        };
        writeln!(
            out,
            "{:>4}  {:<14} {:>7} {:>7} {:>6} {:>7} {:>4}  {:<11}  {}",
            m.uid,
            m.status,
            num(m.day1),
            num(m.era5_combined),
            num(m.completeness),
            num(m.overall),
            m.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            m.hosting.clone().unwrap_or_else(|| "-".into()),
            err.trim_end()
        )?;
    }
    Ok(())
}

/// The run's line, and the reason it gives for its status when it has one.
fn write_header(out: &mut impl Write, report: &RunStatusReport) -> std::io::Result<()> {
    writeln!(
        out,
        "run {}  init {}  status {}{}",
        report.run_id,
        report.gfs_init,
        report.status,
        if report.test_mode {
            "  (test mode)"
        } else {
            ""
        }
    )?;
    if let Some(error) = &report.error {
        writeln!(out, "run {}: {error}", report.status)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_says_why() {
        let mut report = RunStatusReport {
            run_id: 7,
            gfs_init: "2026-12-05T00:00Z".into(),
            status: "failed".into(),
            error: Some("seed/stats_rows failed for good: no miners are registered".into()),
            test_mode: false,
            steps: wx_store::StepCounts::default(),
            era5_unavailable_leads: Vec::new(),
            era5: None,
            miners: Vec::new(),
            registry_changes: Vec::new(),
        };
        let mut out = Vec::new();
        write_header(&mut out, &report).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "run 7  init 2026-12-05T00:00Z  status failed\n\
             run failed: seed/stats_rows failed for good: no miners are registered\n"
        );
        report.status = "scoring".into();
        report.error = None;
        let mut out = Vec::new();
        write_header(&mut out, &report).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "run 7  init 2026-12-05T00:00Z  status scoring\n"
        );
    }

    #[test]
    fn the_cause_comes_first_and_the_url_stays_whole() {
        let message = "store http://127.0.0.1:39725/miner-002, key manifest.json: connection failed: HTTP error: error sending request: error sending request";
        assert_eq!(
            cause_first(message, Some("network, miner")),
            "error sending request [network, miner] (at store http://127.0.0.1:39725/miner-002, key manifest.json: connection failed: HTTP error)"
        );
        assert_eq!(cause_first("plain", None), "plain");
    }

    #[test]
    fn clipping_keeps_the_cause() {
        let long_cause = "x".repeat(200);
        assert_eq!(clip_after(&long_cause, 200, 160), long_cause);
        let text = format!("cause [k, b] (at {})", "y".repeat(300));
        let clipped = clip_after(&text, 5, 160);
        assert_eq!(clipped.chars().count(), 160);
        assert!(clipped.starts_with("cause [k, b]") && clipped.ends_with('…'));
    }
}
