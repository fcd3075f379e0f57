//! `wx-validator simulate`: a simulated network that other processes score.
//!
//! It generates a world under `DIR/world` (or reloads it when `DIR` already holds the same
//! world: same miners, resolution, days and seed), serves every miner on 127.0.0.1 with its
//! behaviour (skilled, GFS clone, offline, flaky, tampered, NaN, missing variables,
//! climatology — the faults live in the servers), writes `DIR/miners.json` (for `wx-validator
//! miners import`) and `DIR/wx.toml` (test mode, the world's init and truth sources as local
//! files, loopback miners allowed; the database only with `--database-url`), prints what it
//! serves and runs until SIGINT or SIGTERM. The miners' ports are new at every start, so both
//! files are rewritten each time and the registry must be imported again (docs/operating.md).
//!
//! The multi-process tests (`tests/processes.rs`) serve their network with the same code
//! ([`Simulation`]), so what they prove holds for daemons pointed at this command.

use crate::demo::{DemoOptions, behaviour_label, world_spec};
use crate::simulation::Simulation;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// What `simulate` serves.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Number of simulated miners (the standard mix: every special behaviour from 10 on).
    pub miners: usize,
    /// Grid spacing in degrees (180 must be a multiple of it).
    pub resolution_deg: f64,
    /// Forecast length in days: ERA5 leads 24, 48, … 24·days h (1 to 10).
    pub days: u32,
    /// Seed of the world.
    pub seed: u64,
    /// Directory of the world, `miners.json` and `wx.toml` (created if needed).
    pub out: PathBuf,
    /// Database URL written into `wx.toml` (left out when `None`).
    pub database_url: Option<String>,
}

/// Starts the simulated network described by `options` and writes its files; the caller
/// keeps it running and shuts it down.
pub async fn start(options: &SimulateOptions) -> Result<(Simulation, PathBuf, PathBuf)> {
    let spec = world_spec(&DemoOptions {
        miners: options.miners,
        resolution_deg: options.resolution_deg,
        days: options.days,
        seed: options.seed,
        ..DemoOptions::default()
    })?;
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    // absolute paths in wx.toml, so daemons may start from any directory
    let out = std::fs::canonicalize(&options.out)
        .with_context(|| format!("resolving {}", options.out.display()))?;
    let sim = Simulation::start(
        spec,
        &out,
        options.database_url.as_deref().unwrap_or_default(),
    )
    .await?;
    let (miners, config) = match sim.write_files(&out) {
        Ok(files) => files,
        Err(e) => {
            sim.shutdown().await;
            return Err(e);
        }
    };
    Ok((sim, miners, config))
}

/// What `simulate` prints once the network serves.
pub fn describe(sim: &Simulation, miners_json: &Path, config: &Path) -> String {
    let mut s = String::new();
    let spec = &sim.world.spec;
    s.push_str(&format!(
        "wx simulated network: {} miners on 127.0.0.1, {}° grid, GFS init {}, ERA5 leads {:?} h, seed {}\n",
        spec.miners.len(),
        spec.resolution_deg,
        spec.gfs_init.format("%Y-%m-%dT%H:%MZ"),
        spec.era5_leads,
        spec.seed
    ));
    for m in sim.network.endpoints() {
        s.push_str(&format!(
            "  uid {:>3}  {:<22} {}\n",
            m.uid,
            behaviour_label(&m.behaviour),
            m.store_url
        ));
    }
    s.push_str(&format!(
        "truth: ERA5 {}, climatology {}, GFS {}\n",
        sim.world.paths.era5.display(),
        sim.world.paths.climatology.display(),
        sim.world.paths.gfs.display()
    ));
    let db = if sim.config.database_url.is_empty() {
        " --database-url URL"
    } else {
        ""
    };
    let c = config.display();
    s.push_str(&format!(
        "registry: {m}\nconfiguration: {c}\n\
         point daemons at it (each in its own shell, on one database):\n  \
         wx-validator --config {c}{db} migrate\n  \
         wx-validator --config {c}{db} miners import {m}\n  \
         wx-validator --config {c}{db} run\n\
         serving until SIGINT/SIGTERM (a restart changes the ports: import {m} again)\n",
        m = miners_json.display(),
    ));
    s
}

/// Runs `simulate` until SIGINT or SIGTERM.
pub async fn run(options: SimulateOptions) -> Result<()> {
    let stop = CancellationToken::new();
    let listening = tokio::spawn(crate::daemon::stop_on_signals(
        stop.clone(),
        CancellationToken::new(),
    ));
    let (sim, miners, config) = start(&options).await?;
    {
        let mut out = std::io::stdout().lock();
        out.write_all(describe(&sim, &miners, &config).as_bytes())?;
        out.flush()?;
    }
    stop.cancelled().await;
    listening.abort();
    tracing::info!("stopping the simulated miners");
    sim.shutdown().await;
    Ok(())
}
