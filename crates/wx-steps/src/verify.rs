//! verify/open_store: token → manifest → signature → frozen manifest → Zarr open, with the
//! store's layout checked and hosting latency recorded.
//!
//! The submission window (docs/operating.md, "Fair play"): a manifest must be frozen within
//! `submission_window_minutes` of the run's start. A store whose verification starts or whose
//! manifest is frozen later is refused as `late`, and retries end at the window; the time the
//! manifest was frozen is recorded in the response row. Only an operator's explicit override
//! (`wx-step run --force --allow-late`) verifies past it, and that is logged and recorded in
//! the step's context.

use crate::context::{StepContext, data_failure, store_url};
use crate::data::hosting_status_of;
use crate::plan;
use crate::wrapper::{StepOutcome, StepResult};
use std::time::Instant;
use wx_model::rows::NewResponse;
use wx_model::{Blame, ErrorKind, ForecastStatus, HostingStatus, RunStatus, StepKind};
use wx_store::{Claim, Effects, StatsPatch};

/// Runs verify/open_store for the claimed miner.
pub async fn open_store(ctx: &StepContext, claim: &Claim) -> StepResult {
    let run = claim.key.run;
    let uid = claim.key.miner;
    let init = ctx.run_init(claim).await?;
    let deadline = ctx
        .config
        .pipeline
        .submission_deadline(ctx.run_start(claim).await?);
    let miner = ctx.miner(claim).await?;
    let late = |at: chrono::DateTime<chrono::Utc>| -> Option<crate::wrapper::StepFailure> {
        if at <= deadline {
            return None;
        }
        if let Some(by) = &ctx.late_override {
            tracing::warn!(run = %run, miner = %uid, deadline = %deadline, by = %by,
                "verifying past the submission window: operator override");
            return None;
        }
        Some(crate::wrapper::StepFailure::permanent(
            ErrorKind::Late,
            Blame::Miner,
            &format!(
                "late: miner {uid}'s manifest was not frozen within the submission window, which \
                 closed at {} ({} min after the run started); the store is not scored in this run",
                deadline.format("%Y-%m-%dT%H:%M:%SZ"),
                ctx.config.pipeline.submission_window_minutes
            ),
        ))
    };
    if let Some(failure) = late(ctx.now()) {
        tracing::info!(run = %run, miner = %uid, "store refused: late");
        return Err(failure.on_final(Effects {
            stats: vec![(uid, StatsPatch::status(ForecastStatus::VerifyFailed))],
            refresh_miner_stats: vec![ctx.refresh(claim)],
            ..Default::default()
        }));
    }
    let url = store_url(&miner.store_url, run, init);
    let secrets = [miner.access_token.as_str()];
    let started = Instant::now();
    let opened = ctx
        .data
        .verify_miner_store(
            &url,
            &miner.access_token,
            &miner.hotkey,
            init,
            &format!("miner {uid}"),
        )
        .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    // the manifest is frozen when verify_miner_store returns it
    let now = ctx.now();
    let response =
        |passed: bool,
         hosting: HostingStatus,
         manifest: Option<&wx_data::manifest::FrozenManifest>| NewResponse {
            run_id: run.0,
            miner_uid: uid.as_i32(),
            miner_hotkey: miner.hotkey.clone(),
            store_url: wx_model::sanitize_message(&url, &secrets),
            manifest_hash: manifest.map(|m| m.manifest_sha256().to_owned()),
            frozen_manifest: manifest.map(|m| m.to_db_json()),
            verification_passed: passed,
            verified_at: passed.then(|| now.naive_utc()),
            hosting_status: Some(hosting.as_str().to_owned()),
            hosting_latency_ms: Some(latency_ms),
            updated_at: now.naive_utc(),
            manifest_frozen_at: manifest.map(|_| now.naive_utc()),
        };
    let hosting_patch = |h: HostingStatus| StatsPatch {
        hosting_status: Some(h.as_str().to_owned()),
        hosting_latency_ms: Some(latency_ms),
        ..Default::default()
    };
    match opened {
        Ok((frozen, mut store)) => {
            ctx.metrics.miner_bytes_verified.inc_by(store.take_bytes());
            if let Some(failure) = late(now) {
                tracing::info!(run = %run, miner = %uid, "store refused: manifest frozen late");
                // the late manifest is kept for the record, not as a verified store
                return Err(verify_failed(
                    ctx,
                    claim,
                    failure,
                    response(false, HostingStatus::Invalid, Some(&frozen)),
                    hosting_patch(HostingStatus::Invalid),
                ));
            }
            let usable = store.reader().usable_variables();
            let wanted: Vec<_> = ctx
                .targets
                .era5_variables
                .iter()
                .chain(&ctx.targets.day1_variables)
                .map(|(v, _)| v.variable)
                .collect();
            if !wanted.iter().any(|v| usable.contains(v)) {
                let problems: Vec<String> = store
                    .reader()
                    .problems()
                    .iter()
                    .map(|(v, e)| format!("{v}: {e}"))
                    .collect();
                let failure = data_failure(
                    &crate::data::DataError::new(
                        ErrorKind::Format,
                        Blame::Miner,
                        format!(
                            "miner {uid}: the store has none of the scored variables ({})",
                            problems.join("; ")
                        ),
                    ),
                    &secrets,
                );
                return Err(verify_failed(
                    ctx,
                    claim,
                    failure,
                    response(false, HostingStatus::Invalid, None),
                    hosting_patch(HostingStatus::Invalid),
                ));
            }
            let missing: Vec<String> = wanted
                .iter()
                .filter(|v| !usable.contains(v))
                .map(|v| v.to_string())
                .collect();
            tracing::info!(run = %run, miner = %uid, latency_ms, missing = ?missing, "store verified");
            let mut stats = hosting_patch(HostingStatus::Available);
            stats.forecast_status = Some(ForecastStatus::Verified);
            let effects = Effects {
                response: Some(response(true, HostingStatus::Available, Some(&frozen))),
                stats: vec![(uid, stats)],
                enqueue: vec![plan::miner_step(
                    &ctx.config.pipeline,
                    run,
                    uid,
                    &claim.hotkey,
                    StepKind::Day1Score,
                    now,
                    now,
                )],
                run_status: Some((RunStatus::Scoring, None)),
                refresh_miner_stats: vec![ctx.refresh(claim)],
                ..Default::default()
            };
            Ok(StepOutcome::Done(effects))
        }
        Err(e) => {
            let hosting = hosting_status_of(&e);
            tracing::info!(run = %run, miner = %uid, error = %e, "store verification failed");
            // retries end at the submission window
            let failure = data_failure(&e, &secrets).retry_until(deadline);
            Err(verify_failed(
                ctx,
                claim,
                failure,
                response(false, hosting, None),
                hosting_patch(hosting),
            ))
        }
    }
}

fn verify_failed(
    ctx: &StepContext,
    claim: &Claim,
    failure: crate::wrapper::StepFailure,
    response: NewResponse,
    hosting: StatsPatch,
) -> crate::wrapper::StepFailure {
    let uid = claim.key.miner;
    failure
        .with_effects(Effects {
            response: Some(response),
            stats: vec![(uid, hosting)],
            ..Default::default()
        })
        .on_final(Effects {
            stats: vec![(uid, StatsPatch::status(ForecastStatus::VerifyFailed))],
            refresh_miner_stats: vec![ctx.refresh(claim)],
            ..Default::default()
        })
}
