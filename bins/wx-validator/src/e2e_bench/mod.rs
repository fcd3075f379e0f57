//! The end-to-end benchmark of the real workload (`cargo xtask bench e2e`): the real daemon
//! binary and its steps against simulated miners over verified HTTP on 127.0.0.1, at the
//! operator's resolution (0.25° by default), with figures split into what a full run of 255
//! miners × 10 leads is made of.
//!
//! **Method.** One world is generated (all miners skilled, 1 day of 6-hourly steps, ERA5 leads
//! 12 and 24 h, the Day1 lead 12 h) and cached under the work directory between invocations;
//! its generation is never timed. Each measured run is a fresh `wx-validator run` process on a
//! fresh SQLite file with cold caches, importing the first `n` miners and scoring the first `l`
//! leads, until the run completes. Wall time is the run's creation → completion by the
//! daemon's timestamps (the process's start-up is not counted); CPU is the daemon's user +
//! system time over the same window (`/proc/PID/stat`, all threads; the simulated miners'
//! servers run in the benchmark's process, not counted); peak memory is its `VmHWM`. The four
//! corners of a 2 × 2 design (`n` = a third of the miners and all of them; `l` = 1 and 2) are
//! each run [`E2eOptions::repeats`] times, round by round with the corners' order rotated
//! each round (so that a slow spell of the machine does not fall on one corner); the medians of
//! the corners give per-run, per-miner, per-lead and per-miner-lead costs ([`fit`]). A last run,
//! all miners and leads on one scoring permit, gives the memory a permit adds. The
//! extrapolation to 255 × 10 is `run + 255·miner + 10·lead + 2550·miner_lead` in wall time,
//! but never less than the same sum in CPU time divided by the machine's cores: in small runs
//! a miner's work partly fills time the daemon would otherwise wait (on a lead's truth), which
//! makes the wall-time marginal cost look cheaper than a busy full run can be.
//!
//! Wall-time costs are throughput on this machine: runs overlap verification, Day1 and ERA5
//! of different miners as the daemon does, so a cost is what the extra work added to the run,
//! waits included. Test-mode timings make every lead due and published at once (nothing waits
//! for ERA5); the dispatcher's handovers between a miner's steps are reported.
//! The per-lead cost assumes every lead's truth is decoded once and shared through the caches;
//! when the memory cache cannot hold the leads the miners are at, re-reads show up as
//! per-miner-lead cost (the printed caveat). The report shows each corner's spread over its
//! repeats, so a noisy machine is visible next to the figures it produced.

mod daemon_run;
pub mod fit;
mod procfs;
mod report;

pub use daemon_run::{RunFigures, RunPlan, spawn_daemon, stop as stop_daemon};
pub use procfs::peak_rss_bytes;
pub use report::Report;

use crate::simulation::Simulation;
use anyhow::{Context, Result, ensure};
use fit::{Corners, Costs, Design};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wx_sim::{Behaviour, MinerSpec, WorldSpec};

/// What the benchmark measures.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    /// Grid spacing in degrees (0.25 for the operator's workload).
    pub resolution_deg: f64,
    /// Miners of the larger runs (the smaller ones take a third, at least 1).
    pub miners: u32,
    /// The `wx-validator` binary to measure.
    pub validator: PathBuf,
    /// Where the world is cached and the runs write (`target/bench-e2e`).
    pub work: PathBuf,
    /// Seed of the world.
    pub seed: u64,
    /// Give up a run after this long.
    pub run_timeout: Duration,
    /// The daemons' log level in each run's `daemon.log`: 0 info, 1 debug, 2 trace.
    pub daemon_verbose: u8,
    /// How many times each corner of the design is measured (the fit takes medians; at least 1).
    pub repeats: u32,
}

/// The ERA5 leads of the benchmark's world (hours): two, so that per-lead costs separate.
pub const LEADS: [u32; 2] = [12, 24];

/// The benchmark's world: `miners` skilled miners (error scales 0.25 to 2, so scores differ)
/// on both miner grid layouts, 1 day of steps, ERA5 leads [`LEADS`].
pub fn world_spec(resolution_deg: f64, miners: u32, seed: u64) -> Result<WorldSpec> {
    ensure!(miners >= 2, "the benchmark needs at least 2 miners");
    let spec = WorldSpec {
        resolution_deg,
        steps: 4,
        day1_leads: vec![12],
        era5_leads: LEADS.to_vec(),
        seed,
        miners: (1..=miners)
            .map(|uid| MinerSpec {
                uid: uid as u16,
                behaviour: Behaviour::Skilled {
                    error_scale: 0.25 * 8f64.powf(f64::from(uid - 1) / f64::from(miners - 1)),
                },
            })
            .collect(),
        ..WorldSpec::default()
    };
    spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(spec)
}

/// The design of the benchmark with `miners` miners in its larger runs.
pub fn design(miners: u32) -> Design {
    Design {
        miners: ((miners / 3).max(1), miners),
        leads: (1, LEADS.len() as u32),
    }
}

/// Generates or reloads the world, runs the five measured runs and returns the report.
pub async fn measure(options: &E2eOptions) -> Result<Report> {
    let spec = world_spec(options.resolution_deg, options.miners, options.seed)?;
    let design = design(options.miners);
    std::fs::create_dir_all(&options.work)
        .with_context(|| format!("creating {}", options.work.display()))?;
    let work = std::fs::canonicalize(&options.work)?;
    let generation = Instant::now();
    let sim = Simulation::start(spec, &work, "").await?;
    let world_seconds = generation.elapsed().as_secs_f64();
    eprintln!(
        "e2e bench: world ready in {world_seconds:.1} s ({:.2} GB under {}; not timed)",
        sim.world.summary.total_bytes() as f64 / 1e9,
        work.join("world").display()
    );
    let result = measure_runs(&sim, options, &work, design).await;
    sim.shutdown().await;
    let runs = result?;
    Report::new(options.resolution_deg, design, runs)
}

async fn measure_runs(
    sim: &Simulation,
    options: &E2eOptions,
    work: &std::path::Path,
    design: Design,
) -> Result<Vec<RunFigures>> {
    let plans = plans(design, options.repeats);
    let mut runs = Vec::with_capacity(plans.len());
    for plan in plans {
        let dir = daemon_run::run_dir(work, plan);
        let measure = || {
            daemon_run::measure_run(
                sim,
                &options.validator,
                options.daemon_verbose,
                &dir,
                plan,
                options.run_timeout,
            )
        };
        // a run that fails for a reason of the daemon's (not a figure) is measured once more
        let figures = match measure().await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("e2e bench: the run of {plan:?} failed, measuring it again: {e:#}");
                measure()
                    .await
                    .with_context(|| format!("the run of {plan:?}, twice"))?
            }
        };
        eprintln!(
            "e2e bench: {} miners × {} leads, {} scoring permit(s): wall {:.2} s, CPU {:.2} s, peak RSS {:.0} MiB",
            plan.miners,
            plan.leads,
            plan.scoring_permits,
            figures.wall.as_secs_f64(),
            figures.cpu.as_secs_f64(),
            figures.peak_rss as f64 / f64::from(1 << 20)
        );
        runs.push(figures);
    }
    Ok(runs)
}

/// The runs: `repeats` rounds of the four corners at the default 2 scoring permits (round `r`
/// starts at corner `r mod 4`), then the largest corner once on one permit.
pub fn plans(design: Design, repeats: u32) -> Vec<RunPlan> {
    let (n1, n2) = design.miners;
    let (l1, l2) = design.leads;
    let at = |miners, leads, scoring_permits| RunPlan {
        miners,
        leads,
        scoring_permits,
    };
    let corners = [at(n1, l1, 2), at(n1, l2, 2), at(n2, l1, 2), at(n2, l2, 2)];
    let mut plans = Vec::with_capacity(corners.len() * repeats.max(1) as usize + 1);
    for round in 0..repeats.max(1) as usize {
        plans.extend((0..corners.len()).map(|i| corners[(round + i) % corners.len()]));
    }
    plans.push(at(n2, l2, 1));
    plans
}

/// Every measurement of one corner of the design at the default 2 scoring permits.
pub fn corner_samples(
    runs: &[RunFigures],
    miners: u32,
    leads: u32,
    f: impl Fn(&RunFigures) -> f64,
) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.plan.miners == miners && r.plan.leads == leads && r.plan.scoring_permits == 2)
        .map(f)
        .collect()
}

/// The median of each corner of one figure of the runs.
fn corners(design: Design, runs: &[RunFigures], f: impl Fn(&RunFigures) -> f64) -> Result<Corners> {
    let at = |miners, leads| {
        fit::median(&corner_samples(runs, miners, leads, &f))
            .with_context(|| format!("no run of {miners} miners × {leads} leads"))
    };
    Ok(Corners {
        few_short: at(design.miners.0, design.leads.0)?,
        few_long: at(design.miners.0, design.leads.1)?,
        many_short: at(design.miners.1, design.leads.0)?,
        many_long: at(design.miners.1, design.leads.1)?,
    })
}

/// The wall and CPU costs of the runs.
fn costs(design: Design, runs: &[RunFigures]) -> Result<(Costs, Costs)> {
    let fit = |f: &dyn Fn(&RunFigures) -> f64| -> Result<Costs> {
        Costs::from_corners(design, corners(design, runs, f)?).context("a degenerate design")
    };
    Ok((
        fit(&|r| r.wall.as_secs_f64())?,
        fit(&|r| r.cpu.as_secs_f64())?,
    ))
}
