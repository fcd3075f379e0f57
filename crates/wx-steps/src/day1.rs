//! day1/score (with its day1/load_inputs sub-step) and the run-level seed/download_gfs and
//! day1/clim_cache.
//!
//! Truth: the GFS analysis at each valid time. Reference: the GFS forecast from the run's init
//! at the same lead. Climatology for ACC, regridded once per run onto the truth grid and cached
//! on disk (`day1-clim/run-<id>`), removed when every miner is past Day1.

use crate::align::{AlignError, onto, recycle, score_against_reference, truth_on_grid};
use crate::context::{MinerDeadline, StepContext, data_failure, score_row};
use crate::data::DataError;
use crate::inputs::{fails_the_store, open_verified_miner};
use crate::plan;
use crate::wrapper::{StepFailure, StepOutcome, StepResult};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use wx_data::Field;
use wx_model::score_type;
use wx_model::{Blame, ErrorKind, ForecastStatus, StepKey, StepKind, StepStatus, VarLevel};
use wx_scoring::{VariableOutcome, day1_score, overall_score};
use wx_store::{Claim, Effects, StatsPatch, StepLog};

/// The disk-cache group of a run's Day1 climatology slices.
pub fn clim_group(run: wx_model::RunId) -> String {
    format!("day1-clim/run-{}", run.0)
}

/// The truth-side inputs of one (variable, lead).
pub struct PairInputs {
    analysis: Arc<Field>,
    reference: Arc<Field>,
    climatology: Arc<Field>,
}

fn wait_or_fail(e: &DataError, ctx: &StepContext, what: &str) -> StepResult {
    if e.not_ready {
        Ok(StepOutcome::Wait {
            until: ctx.now() + ctx.timings.gfs_recheck,
            reason: format!("{what}: {}", e.message),
            effects: Effects::default(),
        })
    } else {
        Err(data_failure(e, &[]))
    }
}

/// The climatology slice for `valid` on the grid of `analysis`, built once per run.
async fn day1_climatology(
    ctx: &StepContext,
    run: wx_model::RunId,
    v: VarLevel,
    valid: DateTime<Utc>,
    analysis: &Arc<Field>,
) -> Result<Arc<Field>, DataError> {
    let group = clim_group(run);
    let analysis = analysis.clone();
    ctx.data
        .derived(&group, v, valid, || async {
            let clim = ctx.data.climatology(v, valid).await?;
            tokio::task::spawn_blocking(move || -> Result<Field, DataError> {
                let format = |e: AlignError| {
                    DataError::new(ErrorKind::Format, Blame::Infrastructure, e.to_string())
                };
                let target = truth_on_grid(&analysis).map_err(format)?;
                let values = onto(&clim, &target, "climatology").map_err(format)?;
                Field::new(
                    v.variable,
                    target.levels.clone(),
                    target.grid.lats().to_vec(),
                    target.grid.lons().to_vec(),
                    valid,
                    values.into_owned(),
                )
                .map_err(|e| {
                    DataError::new(ErrorKind::Internal, Blame::Infrastructure, e.to_string())
                })
            })
            .await
            .map_err(|e| {
                DataError::new(ErrorKind::Internal, Blame::Infrastructure, e.to_string())
            })?
        })
        .await
}

/// Loads every truth-side input, or says how long to wait for them.
async fn load_inputs(
    ctx: &StepContext,
    run: wx_model::RunId,
    init: DateTime<Utc>,
) -> Result<BTreeMap<(String, u32), PairInputs>, StepResult> {
    let now = ctx.now();
    let mut latest_ready = now;
    for &lead in &ctx.targets.day1_leads {
        let valid = init + Duration::hours(i64::from(lead));
        latest_ready = latest_ready.max(ctx.data.gfs_analysis_ready_at(valid));
    }
    if latest_ready > now {
        return Err(Ok(StepOutcome::Wait {
            until: latest_ready,
            reason: "GFS analysis not yet published".into(),
            effects: Effects::default(),
        }));
    }
    let mut out = BTreeMap::new();
    for (v, key) in &ctx.targets.day1_variables {
        for &lead in &ctx.targets.day1_leads {
            let valid = init + Duration::hours(i64::from(lead));
            let analysis = ctx
                .data
                .gfs_analysis(*v, valid)
                .await
                .map_err(|e| wait_or_fail(&e, ctx, "GFS analysis"))?;
            let reference = ctx
                .data
                .gfs_forecast(*v, init, lead)
                .await
                .map_err(|e| wait_or_fail(&e, ctx, "GFS forecast"))?;
            let climatology = day1_climatology(ctx, run, *v, valid, &analysis)
                .await
                .map_err(|e| wait_or_fail(&e, ctx, "climatology"))?;
            out.insert(
                (key.clone(), lead),
                PairInputs {
                    analysis,
                    reference,
                    climatology,
                },
            );
        }
    }
    Ok(out)
}

/// day1/clim_cache: builds the run's climatology slices (single flight through the disk cache).
pub async fn clim_cache(ctx: &StepContext, claim: &Claim) -> StepResult {
    let init = ctx.run_init(claim).await?;
    match load_inputs(ctx, claim.key.run, init).await {
        Ok(inputs) => {
            tracing::info!(run = %claim.key.run, slices = inputs.len(), "Day1 climatology cache ready");
            Ok(StepOutcome::Done(Effects::default()))
        }
        Err(result) => result,
    }
}

/// seed/download_gfs: fetches the GFS analysis and reference of every Day1 pair into the cache.
pub async fn download_gfs(ctx: &StepContext, claim: &Claim) -> StepResult {
    // the same inputs as the climatology cache; both are single-flight and idempotent
    clim_cache(ctx, claim).await
}

fn final_effects(
    ctx: &StepContext,
    claim: &Claim,
    init: DateTime<Utc>,
    status: ForecastStatus,
    era5_next: bool,
) -> Effects {
    let uid = claim.key.miner;
    let mut e = Effects {
        stats: vec![(uid, StatsPatch::status(status))],
        refresh_miner_stats: vec![ctx.refresh(claim)],
        ..Default::default()
    };
    if era5_next {
        e.enqueue.push(era5_spec(ctx, claim, init));
    }
    e
}

/// The era5/score step of a miner, waiting until its first lead is ready.
pub fn era5_spec(ctx: &StepContext, claim: &Claim, init: DateTime<Utc>) -> wx_store::StepSpec {
    let first = ctx.targets.era5_leads.iter().copied().min().unwrap_or(24);
    let ready = ctx.config.pipeline.era5_ready_at(init, first);
    plan::miner_step(
        &ctx.config.pipeline,
        claim.key.run,
        claim.key.miner,
        &claim.hotkey,
        StepKind::Era5Score,
        ready,
        ctx.now(),
    )
}

/// day1/score.
pub async fn score(ctx: &StepContext, claim: &Claim) -> StepResult {
    let run = claim.key.run;
    let uid = claim.key.miner;
    let init = ctx.run_init(claim).await?;
    let with_final = |f: StepFailure, status: ForecastStatus, era5_next: bool| {
        f.on_final(final_effects(ctx, claim, init, status, era5_next))
    };

    // day1/load_inputs, logged as its own sub-step
    let started = ctx.now();
    let mut log = StepLog {
        key: StepKey::miner(run, uid, StepKind::Day1LoadInputs),
        hotkey: claim.hotkey.clone(),
        status: StepStatus::Succeeded,
        attempt: claim.attempt,
        max_retries: claim.max_retries,
        started_at: started,
        completed_at: None,
        error: None,
        context: None,
    };
    let inputs = match load_inputs(ctx, run, init).await {
        Ok(i) => i,
        Err(Ok(wait)) => return Ok(wait),
        Err(Err(f)) => {
            log.status = StepStatus::Failed;
            log.completed_at = Some(ctx.now());
            log.error = Some(f.error.clone());
            let f = f.with_effects(Effects {
                logs: vec![log],
                ..Default::default()
            });
            return Err(with_final(f, ForecastStatus::Day1Failed, true));
        }
    };
    let mut deadline = MinerDeadline::new(ctx.config.pipeline.miner_step_deadline());
    let (mut store, token) = match open_verified_miner(ctx, claim, init, &mut deadline).await {
        Ok(r) => r,
        Err(f) => {
            let integrity = f.error.kind == ErrorKind::Integrity;
            let status = if integrity {
                ForecastStatus::VerifyFailed
            } else {
                ForecastStatus::Day1Failed
            };
            return Err(with_final(f, status, !integrity));
        }
    };
    log.completed_at = Some(ctx.now());
    log.context = Some(serde_json::json!({ "pairs": inputs.len() }));

    let cfg = ctx.config.scoring.clone();
    let mut outcomes: BTreeMap<(String, u32), VariableOutcome> = BTreeMap::new();
    for ((key, lead), pair) in &inputs {
        let v = ctx
            .targets
            .day1_variables
            .iter()
            .find(|(_, k)| k == key)
            .map(|(v, _)| *v)
            .expect("pair of a configured variable");
        let read = deadline
            .run(store.reader().read_lead(v, *lead))
            .await
            .and_then(|r| r.map_err(|e| crate::data::miner_read_error(&e)));
        let forecast = match read {
            Ok(f) => f,
            Err(d) => {
                if fails_the_store(&d) {
                    let f = data_failure(&d, &[token.as_str()]);
                    let integrity = d.kind == ErrorKind::Integrity;
                    let status = if integrity {
                        ForecastStatus::VerifyFailed
                    } else {
                        ForecastStatus::Day1Failed
                    };
                    return Err(with_final(f, status, !integrity));
                }
                outcomes.insert(
                    (key.clone(), *lead),
                    VariableOutcome::Failed(wx_model::sanitize_message(
                        &d.message,
                        &[token.as_str()],
                    )),
                );
                continue;
            }
        };
        let (analysis, reference, climatology, cfg) = (
            pair.analysis.clone(),
            pair.reference.clone(),
            pair.climatology.clone(),
            cfg.clone(),
        );
        // the CPU part, under one of the process's scoring permits (docs/pipeline.md §4.7)
        let (outcome, took) = ctx
            .score_blocking(move || -> Result<wx_scoring::VariableMetrics, AlignError> {
                let truth = truth_on_grid(&analysis)?;
                let f = onto(&forecast, &truth, "forecast")?;
                let r = onto(&reference, &truth, "GFS reference")?;
                let c = onto(&climatology, &truth, "climatology")?;
                let scored = score_against_reference(f.view(), &truth, c.view(), r.view(), &cfg);
                for values in [f, r, c] {
                    recycle(values);
                }
                scored
            })
            .await?;
        ctx.metrics
            .pair("day1", took.as_secs_f64(), outcome.is_ok());
        outcomes.insert(
            (key.clone(), *lead),
            match outcome {
                Ok(m) => VariableOutcome::Scored(m),
                Err(e) => VariableOutcome::Failed(e.to_string()),
            },
        );
    }
    ctx.metrics.miner_bytes_verified.inc_by(store.take_bytes());
    let day1 = day1_score(&outcomes, &cfg);
    let now = ctx.now();
    let mut scores = Vec::new();
    for pair in &day1.pairs {
        let v = ctx
            .targets
            .day1_variables
            .iter()
            .find(|(_, k)| *k == pair.variable)
            .map(|(v, _)| *v);
        let valid = init + Duration::hours(i64::from(pair.lead_hours));
        let failure = pair.failure.as_ref().map(|f| f.to_string());
        let value = |x: Option<f64>| {
            x.ok_or_else(|| failure.clone().unwrap_or_else(|| "not computed".into()))
        };
        let detail = serde_json::json!({
            "clone_penalty": pair.clone_penalty,
            "pattern_correlation": pair.pattern_correlation,
            "skill_term": pair.skill_term,
            "acc_term": pair.acc_term,
            "strict_clamp_trigger": pair.strict_clamp_trigger,
            "failure": failure,
        });
        scores.push(score_row(
            claim,
            score_type::DAY1_SKILL,
            v.as_ref(),
            pair.lead_hours,
            value(pair.skill),
            Some(valid),
            Some(detail),
            now,
        ));
        scores.push(score_row(
            claim,
            score_type::DAY1_ACC,
            v.as_ref(),
            pair.lead_hours,
            value(pair.acc),
            Some(valid),
            None,
            now,
        ));
        if pair.clone_distance.is_some() || failure.is_some() {
            scores.push(score_row(
                claim,
                score_type::DAY1_CLONE_DISTANCE,
                v.as_ref(),
                pair.lead_hours,
                value(pair.clone_distance),
                Some(valid),
                None,
                now,
            ));
        }
    }
    let summary = serde_json::json!({
        "passed": day1.passed,
        "unclamped": day1.unclamped_score,
        "mean_skill": day1.mean_skill,
        "mean_acc": day1.mean_acc,
        "strict_clamp_fired": day1.strict_clamp_fired,
    });
    scores.push(score_row(
        claim,
        score_type::DAY1_QC_SCORE,
        None,
        0,
        Ok(day1.score),
        None,
        Some(summary),
        now,
    ));
    let overall = overall_score(None, Some(day1.passed), &cfg);
    let mut stats = StatsPatch::status(ForecastStatus::Day1Scored);
    stats.forecast_score_initial = Some(day1.score);
    stats.overall_forecast_score = Some(overall.score);
    tracing::info!(run = %run, miner = %uid, day1 = day1.score, passed = day1.passed, clamp = day1.strict_clamp_fired, "Day1 scored");

    let effects = Effects {
        scores,
        stats: vec![(uid, stats)],
        enqueue: vec![era5_spec(ctx, claim, init)],
        logs: vec![log],
        refresh_miner_stats: vec![ctx.refresh(claim)],
        ..Default::default()
    };
    clean_up_clim_cache(ctx, run, 1).await;
    Ok(StepOutcome::Done(effects))
}

/// Removes the run's Day1 climatology slices once every miner is past Day1: the verify steps
/// exist (seed/steps_rows succeeded) and no verify or Day1 step of the run is open except this
/// one. A miner that still needs the slices later rebuilds them (single flight).
pub async fn clean_up_clim_cache(ctx: &StepContext, run: wx_model::RunId, running_here: i64) {
    let Ok(counts) = ctx.db.steps().counts(Some(run)).await else {
        return;
    };
    let open_statuses = [
        StepStatus::Pending,
        StepStatus::InProgress,
        StepStatus::RetryScheduled,
        StepStatus::Waiting,
    ];
    let open = |k: StepKind| open_statuses.iter().map(|s| counts.get(k, *s)).sum::<i64>();
    let seeded = counts.get(StepKind::SeedStepsRows, StepStatus::Succeeded) > 0;
    if seeded && open(StepKind::VerifyOpenStore) + open(StepKind::Day1Score) <= running_here {
        match ctx.data.remove_group(&clim_group(run)).await {
            Ok(true) => {
                tracing::info!(run = %run, "every miner is past Day1: removed the Day1 climatology cache")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(run = %run, error = %e, "could not remove the Day1 climatology cache")
            }
        }
    }
}
