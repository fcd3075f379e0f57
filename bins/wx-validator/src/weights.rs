//! `wx-validator weights`: the ranking weights of a subnet snapshot in the form the chain takes
//! them — uids and u16 weights — for the operator's chain tooling (wx has no chain client).
//!
//! **Rounding** (deterministic, largest remainder): the snapshot's weights `w` are scaled to
//! quotas `q = w / Σw × 65535`; every uid gets `⌊q⌋`; the units still missing to 65535 go one
//! each to the uids with the largest remainders `q − ⌊q⌋`, ties to the smaller uid. The result
//! sums to exactly 65535 and differs from each quota by less than 1. Uids whose u16 weight is
//! 0 are left out.
//!
//! **Which snapshot**: the newest one; with `--run-id N`, the newest snapshot whose newest
//! covered run is N (the weights as they stood while N was the latest run). A snapshot's
//! *run* is the newest run it covers.

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use wx_cli::{ExitStatus, Failure};
use wx_model::rows::SnapshotRow;
use wx_steps::ValidatorConfig;
use wx_store::Db;

/// The sum of the u16 weights (`u16::MAX`).
pub const WEIGHT_SUM: u32 = u16::MAX as u32;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsFormat {
    /// One JSON document.
    Json,
    /// CSV with a header: uid,weight,run_id,snapshot_id,snapshot_taken_at,version_key.
    Csv,
}

/// Options of `wx-validator weights`.
#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    /// The newest snapshot taken while this run was the latest (default: the newest snapshot).
    #[arg(long)]
    pub run_id: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = WeightsFormat::Json)]
    pub format: WeightsFormat,
    /// The version key to send with the weights (the subnet's `weights_version`); default:
    /// from wx's version, 1000·major + 10·minor + patch.
    #[arg(long)]
    pub version_key: Option<u64>,
}

/// The weights as the chain takes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainWeights {
    /// The snapshot's run (the newest run it covers).
    pub run_id: i64,
    /// The snapshot.
    pub snapshot_id: i64,
    /// When the snapshot was taken, RFC 3339 UTC.
    pub snapshot_taken_at: String,
    /// The version key to send with the weights.
    pub version_key: u64,
    /// Uids, ascending.
    pub uids: Vec<u16>,
    /// The u16 weight of each uid in `uids`; they sum to 65535.
    pub weights: Vec<u16>,
    /// The snapshot's note, if any (e.g. the contrast boost was applied).
    pub note: Option<String>,
}

/// wx's default version key: `1000·major + 10·minor + patch` of the package version.
pub fn default_version_key() -> u64 {
    let part = |s: &str| s.parse::<u64>().unwrap_or(0);
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split(['.', '-', '+']);
    let (major, minor, patch) = (
        part(parts.next().unwrap_or("0")),
        part(parts.next().unwrap_or("0")),
        part(parts.next().unwrap_or("0")),
    );
    1000 * major + 10 * minor + patch
}

/// Scales non-negative weights to u16 values summing to exactly 65535 (largest remainder, ties
/// to the smaller uid). `None` when no weight is positive. Weights must be finite and ≥ 0.
pub fn to_u16(weights: &BTreeMap<u16, f64>) -> Option<BTreeMap<u16, u16>> {
    let total: f64 = weights.values().sum();
    if weights.values().any(|w| !w.is_finite() || *w < 0.0) || total <= 0.0 {
        return None;
    }
    let scale = f64::from(WEIGHT_SUM) / total;
    let mut floors: BTreeMap<u16, u32> = BTreeMap::new();
    let mut remainders: Vec<(f64, u16)> = Vec::new();
    for (&uid, &w) in weights {
        let quota = w * scale;
        let floor = quota.floor();
        // a quota never exceeds 65535, so the floor fits
        floors.insert(uid, floor as u32);
        remainders.push((quota - floor, uid));
    }
    let assigned: u32 = floors.values().sum();
    let missing = WEIGHT_SUM.saturating_sub(assigned) as usize;
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, uid) in remainders.iter().take(missing) {
        if let Some(f) = floors.get_mut(&uid) {
            *f += 1;
        }
    }
    Some(
        floors
            .into_iter()
            .filter(|(_, w)| *w > 0)
            .map(|(uid, w)| (uid, u16::try_from(w).unwrap_or(u16::MAX)))
            .collect(),
    )
}

/// The newest run a snapshot covers.
fn snapshot_run(snapshot: &SnapshotRow) -> Option<i64> {
    serde_json::from_str::<Vec<i64>>(&snapshot.runs_covered)
        .ok()?
        .into_iter()
        .max()
}

/// The snapshot to export: the newest, or the newest whose run is `run`.
async fn find_snapshot(db: &Db, run: Option<i64>) -> Result<SnapshotRow> {
    let Some(run) = run else {
        return db.snapshots().latest().await?.ok_or_else(|| {
            Failure::new(
                ExitStatus::Failure,
                "no subnet snapshot yet: the daemon takes one every pipeline.snapshot_interval_minutes once a run exists",
            )
            .into()
        });
    };
    let mut before = None;
    loop {
        let page = db.snapshots().page(before, 200).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for snapshot in page {
            match snapshot_run(&snapshot) {
                Some(r) if r == run => return Ok(snapshot),
                // snapshots only get newer runs: older ones cannot match any more
                Some(r) if r < run => break,
                _ => {}
            }
        }
    }
    Err(Failure::new(
        ExitStatus::Failure,
        format!("no subnet snapshot was taken while run {run} was the latest run"),
    )
    .into())
}

/// The chain weights of a snapshot.
pub fn chain_weights(snapshot: &SnapshotRow, version_key: u64) -> Result<ChainWeights> {
    let raw: BTreeMap<String, f64> =
        serde_json::from_str(&snapshot.weights).with_context(|| {
            format!(
                "the weights of snapshot {} are not a JSON object",
                snapshot.id
            )
        })?;
    let mut weights = BTreeMap::new();
    for (key, w) in raw {
        let uid: u16 = key
            .parse()
            .with_context(|| format!("snapshot {} has a weight for uid `{key}`", snapshot.id))?;
        weights.insert(uid, w);
    }
    let note = snapshot.note.clone();
    let scaled = to_u16(&weights).ok_or_else(|| {
        Failure::new(
            ExitStatus::Failure,
            format!(
                "snapshot {} has no positive weight{}: there is nothing to set on chain; leave the weights on chain as they are",
                snapshot.id,
                note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ),
        )
    })?;
    Ok(ChainWeights {
        run_id: snapshot_run(snapshot).unwrap_or(0),
        snapshot_id: snapshot.id,
        snapshot_taken_at: snapshot
            .taken_at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        version_key,
        uids: scaled.keys().copied().collect(),
        weights: scaled.values().copied().collect(),
        note,
    })
}

/// Prints the weights (read-only: the database must exist with the current schema).
pub async fn run(config: &ValidatorConfig, args: &WeightsArgs) -> Result<()> {
    let db = Db::open_existing(config.require_database_url()?).await?;
    let snapshot = find_snapshot(&db, args.run_id).await?;
    let weights = chain_weights(
        &snapshot,
        args.version_key.unwrap_or_else(default_version_key),
    )?;
    let mut out = std::io::stdout().lock();
    match args.format {
        WeightsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&weights)?)?,
        WeightsFormat::Csv => {
            writeln!(
                out,
                "uid,weight,run_id,snapshot_id,snapshot_taken_at,version_key"
            )?;
            for (uid, w) in weights.uids.iter().zip(&weights.weights) {
                writeln!(
                    out,
                    "{uid},{w},{},{},{},{}",
                    weights.run_id,
                    weights.snapshot_id,
                    weights.snapshot_taken_at,
                    weights.version_key
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(u16, f64)]) -> BTreeMap<u16, f64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn u16_weights_sum_exactly_and_ties_go_to_the_smaller_uid() {
        // three equal weights: 21845 each, exactly
        let even = to_u16(&map(&[(3, 1.0), (1, 1.0), (2, 1.0)])).unwrap();
        assert_eq!(even.values().map(|&w| u32::from(w)).sum::<u32>(), 65535);
        assert!(even.values().all(|&w| w == 21845));
        // two equal weights: 32767.5 each; the spare unit goes to the smaller uid
        let two = to_u16(&map(&[(9, 0.5), (4, 0.5)])).unwrap();
        assert_eq!(two[&4], 32768);
        assert_eq!(two[&9], 32767);
        // quotas 16383.75, 16383.75, 32767.5: the two missing units go to the largest
        // remainders (.75, .75), not to the largest weight
        let skew = to_u16(&map(&[(1, 1.0), (2, 1.0), (3, 2.0)])).unwrap();
        assert_eq!(
            skew.into_iter().collect::<Vec<_>>(),
            [(1, 16384), (2, 16384), (3, 32767)]
        );
    }

    #[test]
    fn zero_weights_are_left_out_and_all_zero_is_none() {
        let w = to_u16(&map(&[(1, 0.0), (2, 1.0)])).unwrap();
        assert_eq!(w.into_iter().collect::<Vec<_>>(), [(2, 65535)]);
        assert_eq!(to_u16(&map(&[(1, 0.0), (2, 0.0)])), None);
        assert_eq!(to_u16(&map(&[(1, f64::NAN)])), None);
        assert_eq!(to_u16(&BTreeMap::new()), None);
    }

    #[test]
    fn rounding_is_deterministic_for_many_uids() {
        let weights: BTreeMap<u16, f64> = (0..256u16)
            .map(|u| (u, f64::from((u * 37) % 101) + 0.25))
            .collect();
        let a = to_u16(&weights).unwrap();
        let b = to_u16(&weights).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.values().map(|&w| u32::from(w)).sum::<u32>(), 65535);
        let total: f64 = weights.values().sum();
        for (uid, w) in &a {
            let quota = weights[uid] / total * 65535.0;
            assert!((f64::from(*w) - quota).abs() < 1.0, "uid {uid}");
        }
    }

    #[test]
    fn the_version_key_follows_the_package_version() {
        let v: Vec<u64> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(default_version_key(), 1000 * v[0] + 10 * v[1] + v[2]);
    }
}
