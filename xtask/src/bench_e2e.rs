//! `cargo xtask bench e2e`: the real workload at the operator's resolution.
//!
//! 1. Builds the release `wx-validator`, `wx-step` and the `e2e_bench` example of wx-validator.
//! 2. Runs the example: the release daemon against simulated miners over verified HTTP (the
//!    method is in `wx_validator::e2e_bench`'s documentation). The world is cached under
//!    `target/bench-e2e/<resolution>-m<miners>-s<seed>` (about 0.85 GB per miner at 0.25°;
//!    `--remove-world` deletes it afterwards).
//! 3. Scores one lead of the full-size 0.25° stores of `cargo xtask bench era5` with `wx-step
//!    score`, numpy and xarray + xskillscore, alternating (`testdata/gen/bench_score_lead.py`).
//!
//! Every figure is printed next to its target; no figure fails the command. Run it on a quiet
//! machine, and never at the same time as another 0.25° benchmark.

use anyhow::{Context, Result, ensure};
use std::process::Command;

/// Options of `cargo xtask bench e2e`.
#[derive(Clone, Debug, clap::Args)]
pub struct E2eArgs {
    /// Grid spacing in degrees (the targets are for 0.25).
    #[arg(long, default_value_t = 0.25)]
    pub resolution: f64,
    /// Miners of the larger runs (the smaller ones take a third); each costs about 0.85 GB of
    /// cached world at 0.25°. 12 by default: with 6, the marginal cost per miner-lead (a
    /// difference of differences of the corners) moved by ±0.3 s between invocations.
    #[arg(long, default_value_t = 12)]
    pub miners: u32,
    /// Seed of the world.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How many times each of the four corner runs is measured (the fit takes their medians).
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Rounds of the single-lead comparison (xarray + xskillscore: see --xskillscore-rounds).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Rounds of the xarray + xskillscore path (about a minute each on 2 cores).
    #[arg(long, default_value_t = 1)]
    pub xskillscore_rounds: u32,
    /// Leave out the single-lead comparison.
    #[arg(long)]
    pub skip_score_comparison: bool,
    /// Leave out the daemon runs (only the single-lead comparison).
    #[arg(long)]
    pub skip_pipeline: bool,
    /// Delete the cached world afterwards (it is kept for the next invocation otherwise).
    #[arg(long)]
    pub remove_world: bool,
}

/// Runs `cargo xtask bench e2e`.
pub fn run(args: &E2eArgs) -> Result<()> {
    let root = crate::workspace_root();
    crate::python::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "wx-validator",
        "--bin",
        "wx-validator",
        "--example",
        "e2e_bench",
        "-p",
        "wx-step",
        "--bin",
        "wx-step",
    ]))?;
    let release = root.join("target/release");
    if !args.skip_pipeline {
        let work = root.join("target/bench-e2e").join(format!(
            "{}deg-m{}-s{}",
            args.resolution, args.miners, args.seed
        ));
        let status = Command::new(release.join("examples/e2e_bench"))
            .arg("--validator")
            .arg(release.join("wx-validator"))
            .arg("--work")
            .arg(&work)
            .args(["--resolution", &args.resolution.to_string()])
            .args(["--miners", &args.miners.to_string()])
            .args(["--seed", &args.seed.to_string()])
            .args(["--repeats", &args.repeats.to_string()])
            .env_remove("RUST_LOG")
            .status()
            .context("running the e2e_bench example")?;
        if args.remove_world {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("removing {}", work.display()))?;
        }
        ensure!(status.success(), "the end-to-end runs failed ({status})");
    }
    if !args.skip_score_comparison {
        let (python, stores) = crate::bench::arco_stores()?;
        crate::python::run(
            Command::new(python)
                .arg(root.join("testdata/gen/bench_score_lead.py"))
                .arg("--wx-step")
                .arg(release.join("wx-step"))
                .arg("--stores")
                .arg(stores)
                .args(["--rounds", &args.rounds.to_string()])
                .args(["--xskillscore-rounds", &args.xskillscore_rounds.to_string()]),
        )?;
    }
    Ok(())
}
