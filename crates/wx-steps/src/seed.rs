//! seed/stats_rows and seed/steps_rows: one stats row and one pending verify step per
//! registered miner. Both are idempotent; re-running them on a reused run backfills miners that
//! registered since. When either fails for good, so does the run (docs/pipeline.md §3.6).

use crate::context::StepContext;
use crate::plan;
use crate::wrapper::{StepFailure, StepOutcome, StepResult};
use wx_model::{Blame, ErrorKind, MinerUid, RunStatus, StepKey, StepKind};
use wx_store::{Claim, Effects};

/// The registered miners as (uid, hotkey).
async fn registered(ctx: &StepContext) -> Result<Vec<(MinerUid, String)>, StepFailure> {
    let miners = ctx
        .db
        .miners()
        .list()
        .await
        .map_err(|e| crate::context::db_failure(&e))?;
    Ok(miners
        .into_iter()
        .filter_map(|m| MinerUid::try_from(m.uid).ok().map(|u| (u, m.hotkey)))
        .collect())
}

/// A seed step's failure that also fails the run if it is final: without its stats rows or
/// verify steps the run has no miner to score, and nothing else would ever end it.
fn fails_the_run(kind: StepKind, mut failure: StepFailure) -> StepFailure {
    let mut on_final = Effects {
        run_status: Some((
            RunStatus::Failed,
            Some(format!("{kind} failed for good: {}", failure.error.message)),
        )),
        ..Default::default()
    };
    on_final.merge(std::mem::take(&mut *failure.on_final));
    failure.on_final = Box::new(on_final);
    failure
}

/// seed/stats_rows.
pub async fn stats_rows(ctx: &StepContext, claim: &Claim) -> StepResult {
    seed_stats_rows(ctx, claim)
        .await
        .map_err(|f| fails_the_run(StepKind::SeedStatsRows, f))
}

/// seed/steps_rows: a pending verify/open_store step per miner that has a stats row.
pub async fn steps_rows(ctx: &StepContext, claim: &Claim) -> StepResult {
    seed_steps_rows(ctx, claim)
        .await
        .map_err(|f| fails_the_run(StepKind::SeedStepsRows, f))
}

async fn seed_stats_rows(ctx: &StepContext, claim: &Claim) -> StepResult {
    let miners = registered(ctx).await?;
    if miners.is_empty() {
        return Err(StepFailure::retryable(
            ErrorKind::SourceUnavailable,
            Blame::Infrastructure,
            "no miners are registered; import them with `wx-validator miners import FILE`",
        ));
    }
    tracing::info!(run = %claim.key.run, miners = miners.len(), "seeding stats rows");
    Ok(StepOutcome::Done(Effects {
        seed_stats: miners,
        // seed/steps_rows waits for these rows: it need not wait out its poll
        wake: vec![StepKey::run_level(claim.key.run, StepKind::SeedStepsRows)],
        ..Default::default()
    }))
}

/// How long seed/steps_rows waits for seed/stats_rows before it looks again (it is woken as
/// soon as the stats rows are committed).
const STATS_ROWS_POLL: chrono::Duration = chrono::Duration::seconds(30);

async fn seed_steps_rows(ctx: &StepContext, claim: &Claim) -> StepResult {
    let run = claim.key.run;
    // The seeding step's status is read BEFORE the stats rows: seed/stats_rows commits its rows
    // and its completion in one transaction, so a terminal status seen first guarantees that
    // its rows are visible to the read that follows. Read the other way round, the rows could
    // be committed between the two reads and a run would fail with rows in place.
    let seeding = ctx
        .db
        .steps()
        .get(&StepKey::run_level(run, StepKind::SeedStatsRows))
        .await
        .map_err(|e| crate::context::db_failure(&e))?;
    let seeding_ended = seeding.is_some_and(|s| s.status().is_ok_and(|s| s.is_terminal()));
    let stats = ctx
        .db
        .stats()
        .list(run)
        .await
        .map_err(|e| crate::context::db_failure(&e))?;
    let now = ctx.now();
    if stats.is_empty() {
        if seeding_ended {
            return Err(StepFailure::permanent(
                ErrorKind::Internal,
                Blame::Infrastructure,
                "seed/stats_rows ended without stats rows; import miners, then re-run the seed steps",
            ));
        }
        // not a failure: seed/stats_rows has not run yet (it wakes this step when it has)
        return Ok(StepOutcome::Wait {
            until: now + STATS_ROWS_POLL,
            reason: "the run's stats rows (seed/stats_rows)".into(),
            effects: Effects::default(),
        });
    }
    let enqueue = stats
        .iter()
        .filter_map(|s| {
            let uid = MinerUid::try_from(s.miner_uid).ok()?;
            Some(plan::miner_step(
                &ctx.config.pipeline,
                run,
                uid,
                &s.miner_hotkey,
                StepKind::VerifyOpenStore,
                now,
                now,
            ))
        })
        .collect();
    Ok(StepOutcome::Done(Effects {
        enqueue,
        ..Default::default()
    }))
}

/// Seeds a reused run directly (backfill of miners registered since it started): the same
/// idempotent writes as the two seed steps, for the miners that are missing.
pub async fn backfill(
    ctx: &StepContext,
    run: wx_model::RunId,
) -> Result<usize, wx_store::StoreError> {
    let now = ctx.now();
    let miners: Vec<(MinerUid, String)> = ctx
        .db
        .miners()
        .list()
        .await?
        .into_iter()
        .filter_map(|m| MinerUid::try_from(m.uid).ok().map(|u| (u, m.hotkey)))
        .collect();
    let added = ctx.db.stats().seed(run, &miners, now).await?;
    if added > 0 {
        let specs: Vec<_> = miners
            .iter()
            .map(|(uid, hk)| {
                plan::miner_step(
                    &ctx.config.pipeline,
                    run,
                    *uid,
                    hk,
                    StepKind::VerifyOpenStore,
                    now,
                    now,
                )
            })
            .collect();
        ctx.db.steps().enqueue(&specs, now).await?;
    }
    Ok(added)
}
