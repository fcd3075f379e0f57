//! era5/score with its era5/load_truth sub-step and one era5/lead event per scored lead.
//!
//! Only ready leads are scored: due by the clock (gfs_init + lead + delay + buffer) **and**
//! published in the ERA5 store (data.md §3: within the extent of its root attributes, chunks
//! present). Progress is derived from stored `era5_lead_score` rows, so a re-run scores only
//! what is missing. When leads remain, the step waits (no attempt consumed, no worker held)
//! until the earliest is due, or `era5_recheck` when a due lead is not published yet; a lead
//! never scores 0 or fails because its truth is late. A lead still unpublished
//! `era5_give_up` after it was due is recorded unavailable for the whole run
//! (`weather_unavailable_leads`, first observer wins) and every miner's E and completeness
//! leave it out; when every lead is scored or unavailable, the miner's forecast is completed.

use crate::align::{AlignError, onto, recycle, score_against_climatology, truth_on_grid};
use crate::context::{MinerDeadline, StepContext, data_failure, db_failure, score_row};
use crate::data::miner_read_error;
use crate::inputs::{fails_the_store, open_verified_miner};
use crate::wrapper::{StepFailure, StepOutcome, StepResult};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use wx_data::sources::Publication;
use wx_model::rows::NewScore;
use wx_model::rows::UnavailableLeadRow;
use wx_model::score_type;
use wx_model::{Blame, ErrorKind, ForecastStatus, StepKey, StepKind, StepStatus, VarLevel};
use wx_scoring::{
    Era5Lead, VariableOutcome, era5_combined_available, era5_lead_score, overall_score,
};
use wx_store::{Claim, ERA5_SOURCE, Effects, StatsPatch, StepLog};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The rows of one scored lead.
fn lead_rows(
    ctx: &StepContext,
    claim: &Claim,
    lead: u32,
    valid: DateTime<Utc>,
    scored: &Era5Lead,
) -> Vec<NewScore> {
    let now = ctx.now();
    let mut rows = Vec::new();
    for var in &scored.variables {
        let selection = ctx
            .targets
            .era5_variables
            .iter()
            .find(|(_, k)| *k == var.variable)
            .map(|(v, _)| *v);
        let sel = selection.as_ref();
        if let Some(m) = &var.metrics {
            let metric = |v: &Option<wx_scoring::MetricValue>| match v {
                Some(Ok(x)) => Some(Ok(*x)),
                Some(Err(e)) => Some(Err(e.to_string())),
                None => None,
            };
            let all = [
                (score_type::ERA5_RMSE, Some(m.rmse.clone())),
                (score_type::ERA5_MSE, Some(m.mse.clone())),
                (score_type::ERA5_MAE, Some(m.mae.clone())),
                (score_type::ERA5_BIAS, Some(m.bias.clone())),
                (score_type::ERA5_ACC, m.acc.clone()),
                (score_type::ERA5_SKILL_CLIM, m.skill.clone()),
                (score_type::ERA5_RMSE_CLIM, m.rmse_clim.clone()),
            ];
            for (ty, value) in all {
                // a failed metric is not stored as a number; the variable's era5_error row says why
                if let Some(Ok(x)) = metric(&value) {
                    let detail = (ty == score_type::ERA5_RMSE).then(|| {
                        serde_json::json!({ "coverage": m.coverage, "levels": m.levels, "lead_component": var.lead_component, "weight": var.weight })
                    });
                    rows.push(score_row(
                        claim,
                        ty,
                        sel,
                        lead,
                        Ok(x),
                        Some(valid),
                        detail,
                        now,
                    ));
                }
            }
        }
        if let Some(failure) = &var.failure {
            rows.push(score_row(
                claim,
                score_type::ERA5_ERROR,
                sel,
                lead,
                Err(failure.to_string()),
                Some(valid),
                None,
                now,
            ));
        }
    }
    let detail = serde_json::json!({
        "variables": scored.variables.iter().map(|v| (v.variable.clone(), v.lead_component)).collect::<BTreeMap<_, _>>(),
    });
    rows.push(score_row(
        claim,
        score_type::ERA5_LEAD_SCORE,
        None,
        lead,
        Ok(scored.score),
        Some(valid),
        Some(detail),
        now,
    ));
    rows
}

/// How scoring one variable at one lead ended.
enum VariableScore {
    /// Scored, or failed on its own (the variable scores 0): its outcome.
    Outcome(VariableOutcome),
    /// The truth (ERA5 or the climatology) could not be read: not published yet
    /// (`not_ready`), or our source failed.
    Truth(crate::data::DataError),
    /// The step stops: the miner's store failed as a whole (or no scoring permit could be had).
    Stop(StepFailure),
}

/// Scores one variable at one lead.
async fn score_variable(
    ctx: &StepContext,
    reader: &wx_data::sources::MinerForecastReader,
    deadline: &mut MinerDeadline,
    token: &str,
    v: VarLevel,
    valid: DateTime<Utc>,
) -> VariableScore {
    // The miner's field is read while the truth and climatology load: when a lead starts,
    // every miner's step waits for the same truth to decode, and each reads its own forecast
    // meanwhile instead of after. A truth error still comes first.
    let references = async {
        let truth = ctx.data.era5(v, valid).await?;
        let climatology = ctx.data.climatology(v, valid).await?;
        Ok::<_, crate::data::DataError>((truth, climatology))
    };
    let (references, read) = tokio::join!(references, deadline.run(reader.read(v, valid)));
    let (truth, climatology) = match references {
        Ok(both) => both,
        Err(e) => return VariableScore::Truth(e),
    };
    let read = read.and_then(|r| r.map_err(|e| miner_read_error(&e)));
    let forecast = match read {
        Ok(f) => f,
        Err(d) => {
            if fails_the_store(&d) {
                return VariableScore::Stop(data_failure(&d, &[token]));
            }
            return VariableScore::Outcome(VariableOutcome::Failed(wx_model::sanitize_message(
                &d.message,
                &[token],
            )));
        }
    };
    let cfg = ctx.config.scoring.clone();
    // the CPU part, under one of the process's scoring permits (docs/pipeline.md §4.7)
    let scored = ctx
        .score_blocking(move || -> Result<wx_scoring::VariableMetrics, AlignError> {
            let t = truth_on_grid(&truth)?;
            let f = onto(&forecast, &t, "forecast")?;
            let c = onto(&climatology, &t, "climatology")?;
            let scored = score_against_climatology(f.view(), &t, c.view(), &cfg);
            recycle(f);
            recycle(c);
            scored
        })
        .await;
    let (metrics, took) = match scored {
        Ok(done) => done,
        Err(no_permit) => return VariableScore::Stop(no_permit),
    };
    ctx.metrics
        .pair("era5", took.as_secs_f64(), metrics.is_ok());
    VariableScore::Outcome(match metrics {
        Ok(m) => VariableOutcome::Scored(m),
        Err(e) => VariableOutcome::Failed(e.to_string()),
    })
}

/// The leads of the run recorded unavailable for lack of ERA5.
async fn unavailable_leads(ctx: &StepContext, claim: &Claim) -> Result<BTreeSet<u32>, StepFailure> {
    Ok(ctx
        .db
        .unavailable_leads()
        .list(claim.key.run, ERA5_SOURCE)
        .await
        .map_err(|e| db_failure(&e))?
        .into_iter()
        .map(|r| r.lead_hours as u32)
        .collect())
}

/// era5/score.
pub async fn score(ctx: &StepContext, claim: &Claim) -> StepResult {
    let run = claim.key.run;
    let uid = claim.key.miner;
    let run_row = ctx
        .db
        .runs()
        .require(run)
        .await
        .map_err(|e| db_failure(&e))?;
    let init = DateTime::<Utc>::from_naive_utc_and_offset(run_row.gfs_init_time_utc, Utc);
    let created = DateTime::<Utc>::from_naive_utc_and_offset(run_row.run_initiation_time, Utc);
    let pipeline = &ctx.config.pipeline;
    let now = ctx.now();
    let existing = ctx
        .db
        .scores()
        .list_miner(run, uid)
        .await
        .map_err(|e| db_failure(&e))?;
    let mut unavailable = unavailable_leads(ctx, claim).await?;
    let done: Vec<u32> = existing
        .iter()
        .filter(|s| {
            s.score_type == score_type::ERA5_LEAD_SCORE
                && s.variable.is_empty()
                && s.score.is_some()
        })
        .map(|s| s.lead_hours as u32)
        .collect();
    let remaining: Vec<u32> = ctx
        .targets
        .era5_leads
        .iter()
        .copied()
        .filter(|l| !done.contains(l) && !unavailable.contains(l))
        .collect();
    let ready_at = |lead: u32| pipeline.era5_ready_at(init, lead);
    let valid_at = |lead: u32| init + Duration::hours(i64::from(lead));
    if remaining.is_empty() {
        return Ok(StepOutcome::Done(finish_effects(
            ctx,
            claim,
            &existing,
            &[],
            &unavailable,
            true,
        )?));
    }
    let due: Vec<u32> = remaining
        .iter()
        .copied()
        .filter(|l| ready_at(*l) <= now)
        .collect();
    if due.is_empty() {
        let until = remaining.iter().map(|l| ready_at(*l)).min().unwrap_or(now);
        return Ok(StepOutcome::Wait {
            until,
            reason: format!("ERA5 for lead {} h", remaining[0]),
            effects: Effects::default(),
        });
    }

    // era5/load_truth: which due leads the ERA5 store has published
    let started = ctx.now();
    let variables: Vec<wx_model::Variable> = ctx
        .targets
        .era5_variables
        .iter()
        .map(|(v, _)| v.variable)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let valid_times: Vec<DateTime<Utc>> = due.iter().map(|l| valid_at(*l)).collect();
    let check = match ctx.data.era5_publication(&valid_times, &variables).await {
        Ok(c) => c,
        Err(e) => {
            let f = data_failure(&e, &[]);
            return Err(f.on_final(final_failure(ctx, claim, &done)));
        }
    };
    ctx.metrics.era5_extent(
        check.extent.published_until,
        pipeline.era5_expected_until(now),
    );
    let published_until = check.extent.published_until;
    let mut ready = Vec::new();
    let mut pending: Vec<(u32, String)> = Vec::new();
    for (lead, (_, answer)) in due.iter().zip(&check.times) {
        match answer {
            Publication::Published => ready.push(*lead),
            Publication::Pending(why) => pending.push((*lead, why.to_string())),
        }
    }
    // give up on leads unpublished era5_give_up after they were due: a run-level fact
    let mut given_up = Vec::new();
    for (lead, why) in &pending {
        if pipeline.era5_give_up_at(ready_at(*lead), created) > now {
            continue;
        }
        let row = UnavailableLeadRow {
            run_id: run.0,
            source: ERA5_SOURCE.to_owned(),
            lead_hours: *lead as i32,
            valid_time_utc: valid_at(*lead).naive_utc(),
            published_until: published_until.map(|t| t.naive_utc()),
            reason: format!(
                "ERA5 at {} still unpublished ({why}; published until {} by {}) {} after it was due",
                rfc3339(valid_at(*lead)),
                published_until.map_or("nothing".to_owned(), rfc3339),
                check.extent.basis.as_str(),
                ctx.timings.era5_give_up_key,
            ),
            recorded_at: now.naive_utc(),
        };
        let inserted = ctx
            .db
            .unavailable_leads()
            .record(&row)
            .await
            .map_err(|e| db_failure(&e))?;
        if inserted {
            ctx.metrics.era5_leads_given_up.inc();
            tracing::warn!(run = %run, lead, "ERA5 never published: lead recorded unavailable for the run");
        }
        given_up.push(*lead);
    }
    if !given_up.is_empty() {
        // another worker may have recorded more in the meantime: the run's list is the answer
        unavailable = unavailable_leads(ctx, claim).await?;
    }
    pending.retain(|(l, _)| !unavailable.contains(l));
    ready.retain(|l| !unavailable.contains(l));
    let load_log = StepLog {
        key: StepKey::miner(run, uid, StepKind::Era5LoadTruth),
        hotkey: claim.hotkey.clone(),
        status: StepStatus::Succeeded,
        attempt: claim.attempt,
        max_retries: claim.max_retries,
        started_at: started,
        completed_at: Some(ctx.now()),
        error: None,
        context: Some(serde_json::json!({
            "ready": ready,
            "not_yet_published": pending.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            "published_until": published_until.map(rfc3339),
            "extent_basis": check.extent.basis.as_str(),
            "unavailable": unavailable,
        })),
    };
    // when to look again for what remains: a due lead at the next re-check, a lead not yet
    // due at its ready time
    let next_look = |still: &[u32]| -> DateTime<Utc> {
        still
            .iter()
            .map(|l| {
                let r = ready_at(*l);
                if r <= now {
                    now + pipeline.era5_recheck()
                } else {
                    r
                }
            })
            .min()
            .unwrap_or(now + pipeline.era5_recheck())
    };
    if ready.is_empty() {
        let still: Vec<u32> = remaining
            .iter()
            .copied()
            .filter(|l| !unavailable.contains(l))
            .collect();
        if still.is_empty() {
            let mut effects = finish_effects(ctx, claim, &existing, &[], &unavailable, true)?;
            effects.logs.push(load_log);
            return Ok(StepOutcome::Done(effects));
        }
        return Ok(StepOutcome::Wait {
            until: next_look(&still),
            reason: format!(
                "ERA5 not yet published for leads {:?} (published until {})",
                pending.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
                published_until.map_or("nothing".to_owned(), rfc3339)
            ),
            effects: Effects {
                logs: vec![load_log],
                ..Default::default()
            },
        });
    }

    let mut deadline = MinerDeadline::new(ctx.config.pipeline.miner_step_deadline());
    let (mut store, token) = match open_verified_miner(ctx, claim, init, &mut deadline).await {
        Ok(r) => r,
        Err(f) => return Err(f.on_final(final_failure(ctx, claim, &done))),
    };
    let mut effects = Effects {
        logs: vec![load_log],
        ..Default::default()
    };
    let mut new_rows: Vec<NewScore> = Vec::new();
    let mut newly_scored = Vec::new();
    for lead in &ready {
        let valid = valid_at(*lead);
        let lead_started = ctx.now();
        let mut outcomes = BTreeMap::new();
        let mut truth_late = false;
        for (v, key) in &ctx.targets.era5_variables {
            match score_variable(ctx, store.reader(), &mut deadline, &token, *v, valid).await {
                VariableScore::Outcome(outcome) => {
                    outcomes.insert(key.clone(), outcome);
                }
                VariableScore::Truth(truth_error) if truth_error.not_ready => {
                    truth_late = true;
                    break;
                }
                VariableScore::Truth(truth_error) => {
                    // our data source failed: keep what was scored, retry the rest later
                    effects.merge(progress_effects(
                        ctx,
                        claim,
                        &existing,
                        &new_rows,
                        &newly_scored,
                        &unavailable,
                    )?);
                    return Err(data_failure(&truth_error, &[])
                        .with_effects(effects)
                        .on_final(final_failure(ctx, claim, &done)));
                }
                VariableScore::Stop(store_failure) => {
                    effects.merge(progress_effects(
                        ctx,
                        claim,
                        &existing,
                        &new_rows,
                        &newly_scored,
                        &unavailable,
                    )?);
                    let integrity = store_failure.error.kind == ErrorKind::Integrity;
                    let mut fin = final_failure(ctx, claim, &done);
                    if integrity {
                        fin.stats = vec![(uid, StatsPatch::status(ForecastStatus::Failed))];
                    }
                    return Err(store_failure.with_effects(effects).on_final(fin));
                }
            }
        }
        if truth_late {
            continue;
        }
        let scored = era5_lead_score(&outcomes, &ctx.config.scoring).map_err(|e| {
            StepFailure::permanent(ErrorKind::Internal, Blame::Infrastructure, &e.to_string())
        })?;
        tracing::info!(run = %run, miner = %uid, lead, score = scored.score, "ERA5 lead scored");
        new_rows.extend(lead_rows(ctx, claim, *lead, valid, &scored));
        newly_scored.push((*lead, scored.score));
        effects.logs.push(StepLog {
            key: StepKey::lead(run, uid, StepKind::Era5Lead, *lead),
            hotkey: claim.hotkey.clone(),
            status: StepStatus::Succeeded,
            attempt: claim.attempt,
            max_retries: claim.max_retries,
            started_at: lead_started,
            completed_at: Some(ctx.now()),
            error: None,
            context: Some(serde_json::json!({ "score": scored.score })),
        });
    }
    ctx.metrics.miner_bytes_verified.inc_by(store.take_bytes());
    let still: Vec<u32> = remaining
        .iter()
        .copied()
        .filter(|l| !unavailable.contains(l) && !newly_scored.iter().any(|(s, _)| s == l))
        .collect();
    let all_done = still.is_empty();
    if all_done || !newly_scored.is_empty() {
        effects.merge(finish_effects(
            ctx,
            claim,
            &existing,
            &new_rows,
            &unavailable,
            all_done,
        )?);
    }
    for (lead, s) in &newly_scored {
        if let Some((_, patch)) = effects.stats.first_mut() {
            patch.set_era5_lead(*lead, *s);
        }
    }
    effects.scores.extend(new_rows);
    if all_done {
        return Ok(StepOutcome::Done(effects));
    }
    Ok(StepOutcome::Wait {
        until: next_look(&still),
        reason: format!("ERA5 for leads {still:?}"),
        effects,
    })
}

/// Effects when the step fails for good: the forecast ends `failed` unless leads were scored.
fn final_failure(ctx: &StepContext, claim: &Claim, done: &[u32]) -> Effects {
    let status = if done.is_empty() {
        ForecastStatus::Failed
    } else {
        ForecastStatus::Era5Partial
    };
    Effects {
        stats: vec![(claim.key.miner, StatsPatch::status(status))],
        refresh_miner_stats: vec![ctx.refresh(claim)],
        ..Default::default()
    }
}

/// The scores so far (when a later lead fails), with the stats they imply.
fn progress_effects(
    ctx: &StepContext,
    claim: &Claim,
    existing: &[wx_model::rows::ScoreRow],
    new_rows: &[NewScore],
    newly_scored: &[(u32, f64)],
    unavailable: &BTreeSet<u32>,
) -> Result<Effects, StepFailure> {
    if newly_scored.is_empty() {
        return Ok(Effects::default());
    }
    let mut e = finish_effects(ctx, claim, existing, new_rows, unavailable, false)?;
    for (lead, s) in newly_scored {
        if let Some((_, patch)) = e.stats.first_mut() {
            patch.set_era5_lead(*lead, *s);
        }
    }
    e.scores.extend(new_rows.iter().cloned());
    Ok(e)
}

/// Stats of the miner from every stored and new score: combined score, completeness,
/// overall, and the per-variable normalised averages, all over the leads whose truth is
/// available (a lead of `unavailable` counts nowhere, for every miner alike).
fn finish_effects(
    ctx: &StepContext,
    claim: &Claim,
    existing: &[wx_model::rows::ScoreRow],
    new_rows: &[NewScore],
    unavailable: &BTreeSet<u32>,
    all_done: bool,
) -> Result<Effects, StepFailure> {
    let uid = claim.key.miner;
    // (type, variable, level, lead) → score, new rows overriding stored ones
    let mut all: BTreeMap<(String, String, i32, i32), f64> = BTreeMap::new();
    for r in existing {
        if let Some(s) = r.score {
            all.insert(
                (
                    r.score_type.clone(),
                    r.variable.clone(),
                    r.level,
                    r.lead_hours,
                ),
                s,
            );
        }
    }
    for r in new_rows {
        if let Some(s) = r.score {
            all.insert(
                (
                    r.score_type.clone(),
                    r.variable.clone(),
                    r.level,
                    r.lead_hours,
                ),
                s,
            );
        }
    }
    all.retain(|(t, _, _, l), _| {
        !(t.starts_with("era5_") && *l > 0 && unavailable.contains(&(*l as u32)))
    });
    let lead_scores: BTreeMap<u32, f64> = all
        .iter()
        .filter(|((t, v, _, _), _)| t == score_type::ERA5_LEAD_SCORE && v.is_empty())
        .map(|((_, _, _, l), s)| (*l as u32, *s))
        .collect();
    let combined = era5_combined_available(&lead_scores, unavailable, &ctx.config.scoring);
    let mean = |ty: &str| {
        let v: Vec<f64> = all
            .iter()
            .filter(|((t, _, _, _), _)| t == ty)
            .map(|(_, s)| *s)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    // RMSE normalised by the climatology's RMSE of the same (variable, lead): unit-free
    let ratios: Vec<f64> = all
        .iter()
        .filter(|((t, _, _, _), _)| t == score_type::ERA5_RMSE)
        .filter_map(|((_, v, lvl, l), rmse)| {
            let clim = all.get(&(score_type::ERA5_RMSE_CLIM.to_owned(), v.clone(), *lvl, *l))?;
            (*clim > 0.0).then(|| rmse / clim)
        })
        .collect();
    let day1_pass = all
        .get(&(score_type::DAY1_QC_SCORE.to_owned(), String::new(), 0, 0))
        .map(|s| *s >= ctx.config.scoring.day1.pass_threshold);
    let overall = overall_score(Some(&combined), day1_pass, &ctx.config.scoring);
    let status = if all_done {
        ForecastStatus::Completed
    } else {
        ForecastStatus::Era5Partial
    };
    let patch = StatsPatch {
        forecast_status: Some(status),
        era5_combined_score: Some(combined.score),
        era5_completeness: Some(combined.completeness),
        overall_forecast_score: Some(overall.score),
        avg_acc: mean(score_type::ERA5_ACC),
        avg_skill_score: mean(score_type::ERA5_SKILL_CLIM),
        avg_rmse: (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64),
        ..Default::default()
    };
    Ok(Effects {
        stats: vec![(uid, patch)],
        refresh_miner_stats: vec![ctx.refresh(claim)],
        ..Default::default()
    })
}
