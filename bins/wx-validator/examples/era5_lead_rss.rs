//! The peak memory of scoring one ERA5 lead from full-size 0.25° stores: the public ARCO-ERA5
//! layout (a 1 × 37 × 721 × 1440 float32 chunk per 3-D variable and hour), a WeatherBench2
//! climatology and a miner store, as written by `testdata/gen/make_arco_bench_stores.py`.
//! `cargo xtask bench era5` writes them and runs this (release build).
//!
//! It does what `era5/score` does for one lead, through the same code: the publication check
//! of the [`DataHub`] (root attributes and chunks), then for each of the nine ERA5 variables
//! the truth and the climatology through the hub's disk and memory caches (default budget),
//! the miner's forecast through the miner reader with the miners' strict limits, and the
//! alignment and metrics of `wx_steps::align`; then the lead score. It prints one JSON object
//! with the peak resident set of the process (`VmHWM`) and the memory cache's content.

/// The daemon's allocator, with the daemon's options (`wx_cli::allocator`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use wx_data::sources::{MinerForecastReader, Publication};
use wx_data::transport::{SizeLimits, local_dir};
use wx_scoring::{VariableOutcome, era5_lead_score};
use wx_steps::align::{onto, score_against_climatology, truth_on_grid};
use wx_steps::{DataHub, ValidatorConfig};
use wx_zarr::ReadOptions;

/// `VmHWM` (peak resident set) or `VmRSS` of this process, MiB.
fn status_mib(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    wx_cli::allocator::configure();
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: era5_lead_rss DIR (written by make_arco_bench_stores.py)")?,
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stores.json"))?)?;
    let init: DateTime<Utc> = meta["init"].as_str().context("init")?.parse()?;
    let valid: DateTime<Utc> = meta["valid_time"].as_str().context("valid_time")?.parse()?;
    let mut config = ValidatorConfig::default();
    config.data.era5 = dir.join("era5.zarr").display().to_string();
    config.data.climatology = dir.join("clim.zarr").display().to_string();
    config.data.gfs = dir.display().to_string();
    config.cache_dir = dir.join("cache");
    let _ = std::fs::remove_dir_all(&config.cache_dir); // a cold cache, as for a new lead
    let targets = config.targets()?;
    let hub =
        DataHub::new(&config.data, &config.cache_dir, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start_mib = status_mib("VmRSS:")?;
    let started = std::time::Instant::now();

    let mut variables: Vec<wx_model::Variable> = targets
        .era5_variables
        .iter()
        .map(|(v, _)| v.variable)
        .collect();
    variables.dedup();
    let check = hub
        .era5_publication(&[valid], &variables)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if check.times[0].1 != Publication::Published {
        bail!(
            "{valid} is not published in the bench store: {:?}",
            check.times[0].1
        );
    }
    let miner = local_dir(dir.join("miner.zarr"), SizeLimits::default())?.zarr_storage();
    let reader = MinerForecastReader::open(miner, ReadOptions::new("miner"), init).await?;
    let mut outcomes = BTreeMap::new();
    let mut truth_levels = BTreeMap::new();
    for (v, key) in &targets.era5_variables {
        let truth = hub
            .era5(*v, valid)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let climatology = hub
            .climatology(*v, valid)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let forecast = reader.read(*v, valid).await?;
        truth_levels.insert(key.clone(), truth.levels.len());
        let cfg = config.scoring.clone();
        let metrics = tokio::task::spawn_blocking(move || {
            let t = truth_on_grid(&truth)?;
            let f = onto(&forecast, &t, "forecast")?;
            let c = onto(&climatology, &t, "climatology")?;
            score_against_climatology(f.view(), &t, c.view(), &cfg)
        })
        .await?;
        outcomes.insert(
            key.clone(),
            match metrics {
                Ok(m) => VariableOutcome::Scored(m),
                Err(e) => VariableOutcome::Failed(e.to_string()),
            },
        );
    }
    let lead = era5_lead_score(&outcomes, &config.scoring)?;
    let failed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, VariableOutcome::Failed(_)))
        .map(|(k, _)| k)
        .collect();
    ensure!(failed.is_empty(), "variables failed: {failed:?}");
    let report = serde_json::json!({
        "valid_time": valid.to_rfc3339(),
        "lead_score": lead.score,
        "seconds": started.elapsed().as_secs_f64(),
        "truth_levels_kept": truth_levels,
        "memory_cache_mib": hub.memory_cache_bytes() as f64 / (1u64 << 20) as f64,
        "rss_before_mib": start_mib,
        "peak_rss_mib": status_mib("VmHWM:")?,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
