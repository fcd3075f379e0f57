//! `wx-validator report`: loads a run's report from the database (leaderboard, per-lead scores,
//! weights) and the data layer (error maps of the best and the worst miner), and renders it
//! with wx-report.
//!
//! The error maps read the miner's store through the same verified path the pipeline uses (the
//! manifest frozen at verification, every byte checked) and the ERA5 truth through the
//! [`DataHub`]; both are put on the truth grid as ERA5 scoring does. A store that cannot be read
//! any more (server gone, timeout) replaces its map by a note: the report is still written.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wx_model::rows::{RunRow, ScoreRow, StatsRow};
use wx_model::score_type;
use wx_model::{MinerUid, RunId, VarLevel, Variable};
use wx_report::{
    ErrorMap, ErrorMapContent, ErrorMapPanel, LeadCurve, MinerEntry, ReportData, ReportFiles,
    RunInfo,
};
use wx_steps::{DataHub, ValidatorConfig};
use wx_store::Db;

/// What to put in a report besides what the database holds.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title (default `wx validator report`).
    pub title: Option<String>,
    /// Per-uid descriptions shown next to the uid (the demo's simulated behaviours).
    pub labels: BTreeMap<i32, String>,
    /// Uids of reference forecasts (a climatology, a GFS clone): drawn dashed and grey, and
    /// not chosen for the best/worst error maps while a competitor can be.
    pub references: BTreeSet<i32>,
    /// The variable of the error maps (default `2t`).
    pub error_map_variable: VarLevel,
    /// How long reading one error map may take before it is replaced by a note.
    pub error_map_timeout: Duration,
    /// Extra remarks for the page.
    pub notes: Vec<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: None,
            labels: BTreeMap::new(),
            references: BTreeSet::new(),
            error_map_variable: VarLevel::all(Variable::T2m),
            error_map_timeout: Duration::from_secs(120),
            notes: Vec::new(),
        }
    }
}

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// A stored error (the JSON of a `StepError`, or plain text) as one readable line.
fn readable_error(e: &str) -> String {
    serde_json::from_str::<wx_model::StepError>(e)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| e.to_owned())
}

/// The weights of the latest snapshot (uid → weight) and a note describing it.
async fn latest_weights(db: &Db, run: RunId) -> Result<(BTreeMap<i32, f64>, Option<String>)> {
    let Some(snap) = db.snapshots().latest().await? else {
        return Ok((BTreeMap::new(), None));
    };
    let raw: BTreeMap<String, f64> = serde_json::from_str(&snap.weights)
        .with_context(|| format!("the weights of snapshot {} are not a JSON object", snap.id))?;
    let weights = raw
        .into_iter()
        .filter_map(|(k, v)| k.parse::<i32>().ok().map(|uid| (uid, v)))
        .collect();
    let covered: Vec<i64> = serde_json::from_str(&snap.runs_covered).unwrap_or_default();
    let mut note = format!(
        "Weights from subnet snapshot {} taken {} over the last {} days (runs {:?}).",
        snap.id,
        utc(snap.taken_at).format("%Y-%m-%d %H:%M:%S UTC"),
        snap.lookback_days,
        covered
    );
    if !covered.contains(&run.0) {
        note.push_str(&format!(" It does not cover run {run}."));
    }
    if let Some(n) = &snap.note {
        note.push_str(&format!(" Note: {n}."));
    }
    Ok((weights, Some(note)))
}

/// Per-miner ERA5 lead scores of a run.
fn lead_curves(scores: &[ScoreRow]) -> Vec<LeadCurve> {
    let mut by_uid: BTreeMap<i32, Vec<(u32, f64)>> = BTreeMap::new();
    for s in scores {
        if s.score_type == score_type::ERA5_LEAD_SCORE
            && s.variable.is_empty()
            && let (Some(score), Ok(lead)) = (s.score, u32::try_from(s.lead_hours))
        {
            by_uid.entry(s.miner_uid).or_default().push((lead, score));
        }
    }
    by_uid
        .into_iter()
        .map(|(uid, mut points)| {
            points.sort_by_key(|p| p.0);
            LeadCurve { uid, points }
        })
        .collect()
}

/// The miners whose error maps are shown: the best and the worst by overall score among those
/// with a verified store and an ERA5 score (the worst with a positive score when there is one).
fn map_candidates(stats: &[StatsRow], verified: &[i32]) -> Vec<(&'static str, i32)> {
    let mut scored: Vec<(&StatsRow, f64)> = stats
        .iter()
        .filter(|s| verified.contains(&s.miner_uid) && s.era5_combined_score.is_some())
        .filter_map(|s| s.overall_forecast_score.map(|o| (s, o)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.miner_uid.cmp(&b.0.miner_uid)));
    let mut out = Vec::new();
    if let Some((best, _)) = scored.first() {
        out.push(("best", best.miner_uid));
    }
    // the worst of those with a positive score: a zero (e.g. a coverage failure) says nothing
    // about the forecast's errors
    let worst = scored
        .iter()
        .skip(1)
        .rev()
        .find(|(_, o)| *o > 0.0)
        .or_else(|| scored.iter().skip(1).next_back());
    if let Some((worst, _)) = worst {
        out.push(("worst", worst.miner_uid));
    }
    out
}

/// The largest lead with an ERA5 lead score of `uid`.
fn map_lead(curves: &[LeadCurve], uid: i32) -> Option<u32> {
    curves
        .iter()
        .find(|c| c.uid == uid)
        .and_then(|c| c.points.iter().map(|p| p.0).max())
}

/// Reads forecast − truth of `v` for one miner at `lead`, on the truth grid.
async fn read_error_map(
    db: &Db,
    data: &DataHub,
    run: &RunRow,
    uid: i32,
    v: VarLevel,
    lead: u32,
) -> Result<ErrorMap> {
    let run_id = RunId(run.id);
    let muid = MinerUid::try_from(uid).map_err(|e| anyhow!("{e}"))?;
    let init = utc(run.gfs_init_time_utc);
    let valid = init + TimeDelta::hours(i64::from(lead));
    let response = db
        .responses()
        .get(run_id, muid)
        .await
        .map_err(|e| anyhow!("reading the miner's response: {e}"))?;
    let frozen_json = response
        .filter(|r| r.verification_passed)
        .and_then(|r| r.frozen_manifest)
        .ok_or_else(|| anyhow!("the miner has no verified store in this run"))?;
    let frozen = wx_data::manifest::FrozenManifest::from_db_json(&frozen_json)
        .map_err(|e| anyhow!("the stored manifest cannot be read: {e}"))?;
    let miner = db
        .miners()
        .get(uid)
        .await
        .map_err(|e| anyhow!("reading the registry: {e}"))?
        .ok_or_else(|| anyhow!("the miner is no longer registered"))?;
    let token = miner.access_token.clone();
    let secret = |m: String| wx_model::sanitize_message(&m, &[token.as_str()]);
    let url = wx_steps::context::store_url(&miner.store_url, run_id, init);
    let store = data
        .open_miner_store(&url, &token, frozen, init, &format!("miner {uid}"))
        .await
        .map_err(|e| anyhow!(secret(format!("the miner's store cannot be opened: {e}"))))?;
    let forecast = store
        .reader()
        .read(v, valid)
        .await
        .map_err(|e| anyhow!(secret(format!("the forecast cannot be read: {e}"))))?;
    let truth = data
        .era5(v, valid)
        .await
        .map_err(|e| anyhow!("the ERA5 truth cannot be read: {e}"))?;
    let (lats, lons, values) = tokio::task::spawn_blocking(move || {
        let t = wx_steps::align::truth_on_grid(&truth)?;
        let f = wx_steps::align::onto(&forecast, &t, "forecast")?;
        let diff = &f.index_axis(ndarray::Axis(0), 0) - &t.values.index_axis(ndarray::Axis(0), 0);
        Ok::<_, wx_steps::align::AlignError>((t.grid.lats().to_vec(), t.grid.lons().to_vec(), diff))
    })
    .await
    .map_err(|e| anyhow!("computing the map: {e}"))??;
    Ok(ErrorMap {
        variable: v.key(),
        units: v.variable.canonical_units().to_owned(),
        lead_hours: lead,
        valid_time: valid.format("%Y-%m-%dT%H:%MZ").to_string(),
        lats,
        lons,
        values,
        // the truth grid is a latitude/longitude grid of the Earth
        geographic: true,
    })
}

/// Loads the report of `run` from the database and (for the error maps) the data layer; without
/// `data`, the error maps are notes. `config` gives the fallbacks of what the run's own
/// configuration snapshot does not say.
pub async fn load(
    db: &Db,
    data: Option<&DataHub>,
    run: RunId,
    config: &ValidatorConfig,
    options: &ReportOptions,
) -> Result<ReportData> {
    let run_row = db.runs().require(run).await?;
    let run_config: ValidatorConfig =
        serde_json::from_str(&run_row.config_json).unwrap_or_else(|_| config.clone());
    let stats = db.stats().list(run).await?;
    let scores = db.scores().list_run(run).await?;
    let (weights, weights_note) = latest_weights(db, run).await?;
    let curves = lead_curves(&scores);
    let miners: Vec<MinerEntry> = stats
        .iter()
        .map(|s| MinerEntry {
            uid: s.miner_uid,
            hotkey: s.miner_hotkey.clone(),
            label: options.labels.get(&s.miner_uid).cloned(),
            status: s.forecast_status.clone(),
            day1: s.forecast_score_initial,
            era5_combined: s.era5_combined_score,
            completeness: s.era5_completeness,
            overall: s.overall_forecast_score,
            rank: s.miner_rank,
            weight: weights.get(&s.miner_uid).copied(),
            last_error: s.forecast_error_msg.as_deref().map(readable_error),
            reference: options.references.contains(&s.miner_uid),
        })
        .collect();

    let mut verified = Vec::new();
    for s in &stats {
        let uid = MinerUid::try_from(s.miner_uid).map_err(|e| anyhow::anyhow!("{e}"))?;
        if db
            .responses()
            .get(run, uid)
            .await?
            .is_some_and(|r| r.verification_passed)
        {
            verified.push(s.miner_uid);
        }
    }
    // the maps show competitors; reference forecasts only when there is nobody else
    let competitors: Vec<i32> = verified
        .iter()
        .copied()
        .filter(|uid| !options.references.contains(uid))
        .collect();
    if map_candidates(&stats, &competitors).is_empty() {
        tracing::debug!("no competitor to map: reference forecasts are mapped");
    } else {
        verified = competitors;
    }
    let mut error_maps = Vec::new();
    for (role, uid) in map_candidates(&stats, &verified) {
        let content = match (data, map_lead(&curves, uid)) {
            (None, _) => ErrorMapContent::Unavailable {
                reason: "no data access was given to the report".into(),
            },
            (Some(_), None) => ErrorMapContent::Unavailable {
                reason: "the miner has no scored ERA5 lead".into(),
            },
            (Some(hub), Some(lead)) => {
                let read = read_error_map(db, hub, &run_row, uid, options.error_map_variable, lead);
                match tokio::time::timeout(options.error_map_timeout, read).await {
                    Ok(Ok(map)) => ErrorMapContent::Map(map),
                    Ok(Err(e)) => {
                        let reason = e.to_string();
                        tracing::warn!(uid, %reason, "error map unavailable");
                        ErrorMapContent::Unavailable { reason }
                    }
                    Err(_) => ErrorMapContent::Unavailable {
                        reason: format!(
                            "reading the forecast took longer than {:?}",
                            options.error_map_timeout
                        ),
                    },
                }
            }
        };
        error_maps.push(ErrorMapPanel {
            role: role.to_owned(),
            uid,
            content,
        });
    }

    let mut notes = options.notes.clone();
    notes.extend(weights_note);
    notes.push(format!(
        "Scores from {} with ERA5 leads {:?} h and Day1 leads {:?} h.",
        db.display_url(),
        run_config.scoring.era5.leads,
        run_config.scoring.day1.leads
    ));
    Ok(ReportData {
        title: options
            .title
            .clone()
            .unwrap_or_else(|| "wx validator report".to_owned()),
        run: RunInfo {
            run_id: run_row.id,
            gfs_init: utc(run_row.gfs_init_time_utc)
                .format("%Y-%m-%dT%H:%MZ")
                .to_string(),
            status: run_row.status.clone(),
            test_mode: run_row.test_mode,
            generated_at: Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        },
        miners,
        lead_curves: curves,
        error_maps,
        day1_pass_threshold: Some(run_config.scoring.day1.pass_threshold),
        notes,
    })
}

/// Loads and writes the report of `run` into `out`.
pub async fn write(
    db: &Db,
    data: Option<&DataHub>,
    run: RunId,
    config: &ValidatorConfig,
    options: &ReportOptions,
    out: &Path,
) -> Result<(ReportData, ReportFiles)> {
    let report = load(db, data, run, config, options).await?;
    let out = out.to_owned();
    let (report, files) = tokio::task::spawn_blocking(move || {
        let files = wx_report::write_report(&report, &out);
        (report, files)
    })
    .await
    .context("the report task failed")?;
    let files = files.context("writing the report")?;
    for e in &files.chart_errors {
        tracing::warn!(error = %e, "a chart of the report could not be drawn");
    }
    Ok((report, files))
}

/// `wx-validator report --run-id N --out DIR` (read-only: the database must exist with the
/// current schema).
pub async fn run(config: &ValidatorConfig, run_id: Option<i64>, out: &Path) -> Result<()> {
    let db = Db::open_existing(config.require_database_url()?).await?;
    let run = match run_id {
        Some(id) => RunId(id),
        None => match db.runs().latest().await? {
            Some(r) => RunId(r.id),
            None => bail!("the database has no run yet"),
        },
    };
    let data = match DataHub::new(&config.data, &config.cache_dir, config.pipeline.test_mode) {
        Ok(d) => Some(Arc::new(d)),
        Err(e) => {
            tracing::warn!(error = %e, "no data access: the report has no error maps");
            None
        }
    };
    let (report, files) = write(
        &db,
        data.as_deref(),
        run,
        config,
        &ReportOptions::default(),
        out,
    )
    .await?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", wx_report::leaderboard_text(&report))?;
    for n in &files.notes {
        writeln!(stdout, "note: {n}")?;
    }
    writeln!(stdout, "report: {}", files.index.display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(uid: i32, overall: Option<f64>, era5: Option<f64>) -> StatsRow {
        StatsRow {
            id: 0,
            run_id: 1,
            miner_uid: uid,
            miner_hotkey: String::new(),
            forecast_status: "completed".into(),
            forecast_score_initial: None,
            era5_score_24h: None,
            era5_score_48h: None,
            era5_score_72h: None,
            era5_score_96h: None,
            era5_score_120h: None,
            era5_score_144h: None,
            era5_score_168h: None,
            era5_score_192h: None,
            era5_score_216h: None,
            era5_score_240h: None,
            era5_combined_score: era5,
            era5_completeness: None,
            overall_forecast_score: overall,
            avg_rmse: None,
            avg_acc: None,
            avg_skill_score: None,
            hosting_status: None,
            hosting_latency_ms: None,
            forecast_error_msg: None,
            miner_rank: None,
            updated_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn the_best_and_the_worst_verified_scored_miners_get_maps() {
        let rows = vec![
            stats(1, Some(0.5), Some(0.5)),
            stats(2, Some(0.9), Some(0.9)),
            stats(3, Some(0.95), None),       // no ERA5 score
            stats(4, Some(0.99), Some(0.99)), // not verified
            stats(5, Some(0.1), Some(0.1)),
            stats(6, Some(0.0), Some(0.0)), // zero: not the worst shown
        ];
        assert_eq!(
            map_candidates(&rows, &[1, 2, 3, 5, 6]),
            vec![("best", 2), ("worst", 5)]
        );
        assert_eq!(
            map_candidates(&rows, &[2, 6]),
            vec![("best", 2), ("worst", 6)]
        );
        assert_eq!(map_candidates(&rows, &[1]), vec![("best", 1)]);
        assert!(map_candidates(&rows, &[]).is_empty());
    }

    #[test]
    fn stored_errors_are_made_readable() {
        assert_eq!(readable_error("plain text"), "plain text");
    }
}
