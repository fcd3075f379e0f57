//! aggregate/snapshot (periodic): ranking weights over the look-back window, miner ranks of the
//! run, and a sweep that completes runs with no open work (a safety net: a run normally
//! completes in the transaction of its last step, see `Effects::complete_run_if_done`).

use crate::context::{StepContext, db_failure};
use crate::plan::snapshot_interval;
use crate::wrapper::{StepOutcome, StepResult};
use std::collections::{BTreeMap, BTreeSet};
use wx_model::rows::NewSnapshot;
use wx_model::{MinerUid, RunId, RunStatus, StepKind, StepStatus};
use wx_scoring::{RankingWeights, mean_over_runs, ranking_weights};
use wx_store::{Claim, Effects, StatsPatch};

/// aggregate/snapshot.
pub async fn snapshot(ctx: &StepContext, claim: &Claim) -> StepResult {
    let now = ctx.now();
    let lookback = ctx.config.scoring.weights.lookback_days;
    let since = now - chrono::Duration::days(i64::from(lookback));
    let runs = ctx
        .db
        .runs()
        .initiated_since(since)
        .await
        .map_err(|e| db_failure(&e))?;
    let run_ids: Vec<RunId> = runs.iter().map(|r| RunId(r.id)).collect();

    // sweep: runs whose work is all done are completed
    let mut complete_runs = Vec::new();
    for r in &runs {
        if matches!(r.status(), Ok(RunStatus::Completed | RunStatus::Failed)) {
            continue;
        }
        let seeded = ctx
            .db
            .steps()
            .counts(Some(RunId(r.id)))
            .await
            .map_err(|e| db_failure(&e))?
            .get(StepKind::SeedStepsRows, StepStatus::Succeeded)
            > 0;
        if seeded
            && !ctx
                .db
                .steps()
                .run_has_open_work(RunId(r.id))
                .await
                .map_err(|e| db_failure(&e))?
        {
            complete_runs.push(RunId(r.id));
        }
    }

    // each uid's mean overall score over the runs of the window (a run without a score is 0),
    // counting only the runs of the hotkey registered at the uid now: a uid that changed hands
    // starts from nothing, and a removed uid's history earns no weight (the chain would pay
    // whoever holds the uid next; docs/operating.md, "Fair play")
    let stats = ctx
        .db
        .stats()
        .list_for_runs(&run_ids)
        .await
        .map_err(|e| db_failure(&e))?;
    let registered = ctx.db.miners().list().await.map_err(|e| db_failure(&e))?;
    let mut uids: BTreeSet<i32> = registered.iter().map(|m| m.uid).collect();
    uids.extend(stats.iter().map(|s| s.miner_uid));
    let current: BTreeMap<i32, &str> = registered
        .iter()
        .map(|m| (m.uid, m.hotkey.as_str()))
        .collect();
    let mut by_uid: BTreeMap<i32, BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for s in stats
        .iter()
        .filter(|s| current.get(&s.miner_uid) == Some(&s.miner_hotkey.as_str()))
    {
        by_uid
            .entry(s.miner_uid)
            .or_default()
            .insert(s.run_id, s.overall_forecast_score);
    }
    let uid_list: Vec<i32> = uids.into_iter().collect();
    let means: Vec<f64> = uid_list
        .iter()
        .map(|u| {
            let per_run: Vec<Option<f64>> = run_ids
                .iter()
                .map(|r| by_uid.get(u).and_then(|m| m.get(&r.0)).copied().flatten())
                .collect();
            mean_over_runs(&per_run)
        })
        .collect();
    let weights = ranking_weights(&means, &ctx.config.scoring);
    let note = match &weights {
        RankingWeights::NoPositiveScore { .. } => {
            Some("no miner has a positive score in the window: every weight is 0".to_owned())
        }
        RankingWeights::Distributed {
            contrast_applied: true,
            ..
        } => Some("low spread: contrast boost applied".to_owned()),
        RankingWeights::Distributed { .. } => None,
    };
    let to_map = |values: &[f64]| -> serde_json::Value {
        serde_json::Value::Object(
            uid_list
                .iter()
                .zip(values)
                .map(|(u, v)| (u.to_string(), serde_json::json!(v)))
                .collect(),
        )
    };
    let snapshot = NewSnapshot {
        // the claim's start, before anything was read: a snapshot taken at or after a run's
        // `completed_at` was claimed after the completing transaction committed (that
        // transaction locks this step first and stamps the run once its locks are held), so it
        // read the run's final scores
        taken_at: claim.started_at.naive_utc(),
        lookback_days: lookback as i32,
        runs_covered: serde_json::to_string(&run_ids.iter().map(|r| r.0).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into()),
        scores: to_map(&means).to_string(),
        weights: to_map(weights.weights()).to_string(),
        note,
    };

    // ranks of this run by overall score (competition ranking, unscored last)
    let mut run_stats: Vec<_> = stats
        .iter()
        .filter(|s| s.run_id == claim.key.run.0)
        .collect();
    run_stats.sort_by(|a, b| {
        b.overall_forecast_score
            .unwrap_or(-1.0)
            .total_cmp(&a.overall_forecast_score.unwrap_or(-1.0))
            .then(a.miner_uid.cmp(&b.miner_uid))
    });
    let mut ranks = Vec::new();
    let mut previous: Option<(f64, i32)> = None;
    for (i, s) in run_stats.iter().enumerate() {
        let score = s.overall_forecast_score.unwrap_or(-1.0);
        let rank = match previous {
            Some((p, r)) if p == score => r,
            _ => i as i32 + 1,
        };
        previous = Some((score, rank));
        if let Ok(uid) = MinerUid::try_from(s.miner_uid) {
            ranks.push((
                uid,
                StatsPatch {
                    miner_rank: Some(rank),
                    ..Default::default()
                },
            ));
        }
    }
    tracing::info!(
        runs = run_ids.len(),
        miners = uid_list.len(),
        completed = complete_runs.len(),
        "subnet snapshot taken"
    );
    let effects = Effects {
        snapshot: Some(snapshot),
        stats: ranks,
        complete_runs,
        ..Default::default()
    };

    // the newest run's snapshot re-arms itself; older runs' snapshots end
    let latest = ctx.db.runs().latest().await.map_err(|e| db_failure(&e))?;
    if latest.is_some_and(|r| r.id == claim.key.run.0) {
        Ok(StepOutcome::Wait {
            until: now + snapshot_interval(&ctx.config.pipeline),
            reason: "next snapshot".into(),
            effects,
        })
    } else {
        Ok(StepOutcome::Done(effects))
    }
}
