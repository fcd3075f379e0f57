//! Creating the day's run (a periodic job of the scheduler), the disk cache clean-up and the
//! database retention (docs/operating.md, "Retention").

use crate::context::StepContext;
use crate::plan;
use crate::seed;
use chrono::{DateTime, Utc};
use wx_model::{RunId, RunStatus};

/// What [`ensure_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCreation {
    /// Not yet the configured time of day.
    NotYet,
    /// A new run was created and its first steps enqueued.
    Created(RunId),
    /// The run already existed; missing miners (if any) were backfilled.
    Reused {
        /// The run.
        run: RunId,
        /// Miners added.
        backfilled: usize,
    },
}

/// Creates the run for the current GFS cycle if it does not exist (in test mode: the
/// hindcast-shifted cycle), enqueues its run-level steps, or backfills a reused active run.
/// Safe to call from many processes at once (the run is unique per init time and test mode;
/// enqueueing and seeding are idempotent).
pub async fn ensure_run(
    ctx: &StepContext,
    now: DateTime<Utc>,
) -> Result<RunCreation, wx_store::StoreError> {
    let p = &ctx.config.pipeline;
    if ctx
        .timings
        .run_creation_from
        .is_some_and(|from| now.time() < from)
    {
        return Ok(RunCreation::NotYet);
    }
    let init = p.gfs_init_for(now);
    // the run's configuration, without the database password
    let snapshot = serde_json::to_string(&ctx.config.redacted()).unwrap_or_else(|_| "{}".into());
    let handle = ctx
        .db
        .runs()
        .create_or_get(init, p.test_mode, &snapshot, now)
        .await?;
    let run = RunId(handle.run.id);
    if handle.created {
        ctx.db
            .steps()
            .enqueue(&plan::run_start(p, run, now), now)
            .await?;
        tracing::info!(run = %run, init = %init, test_mode = p.test_mode, "created the run");
        return Ok(RunCreation::Created(run));
    }
    if matches!(
        handle.run.status(),
        Ok(RunStatus::Completed | RunStatus::Failed)
    ) {
        return Ok(RunCreation::Reused { run, backfilled: 0 });
    }
    // a reused active run: make sure its first steps exist and backfill new miners (once the
    // seed step has created the first stats rows, and only within the backfill window: a
    // miner imported later joins the next run, docs/operating.md "Fair play")
    ctx.db
        .steps()
        .enqueue(&plan::run_start(p, run, now), now)
        .await?;
    let started = DateTime::<Utc>::from_naive_utc_and_offset(handle.run.run_initiation_time, Utc);
    let seeded = !ctx.db.stats().list(run).await?.is_empty();
    let backfilled = if seeded && now <= p.backfill_until(started) {
        seed::backfill(ctx, run).await?
    } else {
        0
    };
    if backfilled > 0 {
        tracing::info!(run = %run, backfilled, "backfilled miners registered since the run started");
    }
    Ok(RunCreation::Reused { run, backfilled })
}

/// Deletes disk-cache entries older than the configured retention.
pub async fn purge_cache(ctx: &StepContext) -> Result<(), wx_data::cache::CacheError> {
    let age =
        std::time::Duration::from_secs(u64::from(ctx.config.data.cache_retention_days) * 86_400);
    let report = ctx.data.disk().purge_older_than(age).await?;
    tracing::debug!(?report, "disk cache purged");
    Ok(())
}

/// Deletes scores, step rows and snapshots older than `retention_days` (finished runs only, in
/// batches of `prune_batch_rows`); `None` when `retention_days = 0` keeps everything.
pub async fn prune(
    ctx: &StepContext,
    dry_run: bool,
) -> Result<Option<wx_store::PruneReport>, wx_store::StoreError> {
    let p = &ctx.config.pipeline;
    let Some(cutoff) = p.retention_cutoff(ctx.now()) else {
        return Ok(None);
    };
    let report = ctx
        .db
        .retention()
        .prune(cutoff, p.prune_batch_rows, dry_run)
        .await?;
    if !report.runs.is_empty() || report.snapshots > 0 {
        tracing::info!(
            runs = report.runs.len(),
            scores = report.scores,
            steps = report.steps,
            snapshots = report.snapshots,
            dry_run,
            "retention: pruned rows older than {} days",
            p.retention_days
        );
    }
    Ok(Some(report))
}
