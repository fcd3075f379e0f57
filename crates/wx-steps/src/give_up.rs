//! Giving a step up without running it (it lost too many leases, or it was re-run by hand in a
//! run that is over): the failure gets the effects of the step's own final failure — the
//! forecast's terminal status, the error mirrored into the stats row, the miner_stats refresh
//! and, for a miner's last step, the run-completion check.

use crate::context::{StepContext, db_failure};
use crate::day1::era5_spec;
use crate::wrapper::{StepFailure, StepResult};
use wx_model::score_type;
use wx_model::{ForecastStatus, StepError, StepKind};
use wx_store::{Claim, Effects, StatsPatch};

/// The step's result when it gives up with `error`: a final failure with the effects its own
/// final failure has. Reading what they depend on may fail (a database error): that is a
/// retryable failure, so the step runs again rather than ending with the wrong status.
pub async fn result(ctx: &StepContext, claim: &Claim, error: StepError) -> StepResult {
    let on_final = final_effects(ctx, claim).await?;
    Err(StepFailure {
        error,
        retryable: false,
        effects: Box::default(),
        on_final: Box::new(on_final),
        retry_until: None,
    })
}

/// What a final failure of the claim's kind writes besides the error.
async fn final_effects(ctx: &StepContext, claim: &Claim) -> Result<Effects, StepFailure> {
    let uid = claim.key.miner;
    let status = match claim.key.kind {
        StepKind::VerifyOpenStore => ForecastStatus::VerifyFailed,
        StepKind::Day1Score => ForecastStatus::Day1Failed,
        // the forecast ends `failed` unless leads were scored
        StepKind::Era5Score => {
            let scored = ctx
                .db
                .scores()
                .list_miner(claim.key.run, uid)
                .await
                .map_err(|e| db_failure(&e))?
                .iter()
                .any(|s| s.score_type == score_type::ERA5_LEAD_SCORE && s.score.is_some());
            if scored {
                ForecastStatus::Era5Partial
            } else {
                ForecastStatus::Failed
            }
        }
        _ => return Ok(Effects::default()),
    };
    let mut effects = Effects {
        stats: vec![(uid, StatsPatch::status(status))],
        refresh_miner_stats: vec![ctx.refresh(claim)],
        ..Effects::default()
    };
    if claim.key.kind == StepKind::Day1Score {
        // a miner that failed Day1 is still scored against ERA5
        effects
            .enqueue
            .push(era5_spec(ctx, claim, ctx.run_init(claim).await?));
    }
    Ok(effects)
}
