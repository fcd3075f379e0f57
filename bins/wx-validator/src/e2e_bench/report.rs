//! The benchmark's figures, each next to its target (issue 15; they apply at 0.25°).

use super::daemon_run::{RunFigures, median};
use super::fit::{Costs, Design};
use anyhow::{Context, Result};
use std::fmt::{self, Display, Formatter};

/// Miners of a full run.
pub const FULL_MINERS: u32 = 255;
/// ERA5 leads of a full run.
pub const FULL_LEADS: u32 = 10;
/// Target: marginal wall time per miner-lead, seconds.
pub const TARGET_MINER_LEAD_SECONDS: f64 = 0.45;
/// Target: per-miner wall time (Day1 and the miner's other fixed work), seconds.
pub const TARGET_MINER_SECONDS: f64 = 0.2;
/// Target: the extrapolated full run, seconds.
pub const TARGET_FULL_RUN_SECONDS: f64 = 20.0 * 60.0;
/// Target: the daemon's peak resident set at the default concurrency, bytes.
pub const TARGET_PEAK_RSS_BYTES: u64 = 4 << 30;

/// What the benchmark found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Grid spacing, degrees.
    pub resolution_deg: f64,
    /// The 2 × 2 design.
    pub design: Design,
    /// Every measured run, in order.
    pub runs: Vec<RunFigures>,
    /// Wall-time costs.
    pub wall: Costs,
    /// CPU-time costs.
    pub cpu: Costs,
    /// The cores of this machine (`std::thread::available_parallelism`).
    pub cores: usize,
}

impl Report {
    /// Fits the costs of `runs`.
    pub fn new(resolution_deg: f64, design: Design, runs: Vec<RunFigures>) -> Result<Report> {
        let (wall, cpu) = super::costs(design, &runs)?;
        Ok(Report {
            resolution_deg,
            design,
            runs,
            wall,
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// The extrapolated wall time of a full run (255 miners × 10 leads, 255 Day1), seconds:
    /// the wall-time fit, but never less than the CPU-time fit spread over every core of this
    /// machine ([`Report::cpu_floor_seconds`]). The wall fit alone can be too hopeful: in the
    /// small runs a miner's work partly fills time the daemon would otherwise spend waiting
    /// (on a lead's truth, say), which a full run, busy throughout, does not have.
    pub fn full_run_seconds(&self) -> f64 {
        self.wall
            .predict(FULL_MINERS, FULL_LEADS)
            .max(self.cpu_floor_seconds())
    }

    /// The CPU time of a full run divided by the cores of this machine, seconds: no schedule
    /// can finish the run sooner.
    pub fn cpu_floor_seconds(&self) -> f64 {
        self.cpu.predict(FULL_MINERS, FULL_LEADS) / self.cores as f64
    }

    /// The largest peak resident set of the runs at the default 2 scoring permits, bytes.
    pub fn peak_rss_default(&self) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.plan.scoring_permits == 2)
            .map(|r| r.peak_rss)
            .max()
            .unwrap_or(0)
    }

    /// Peak resident sets of the largest run on 1 and on 2 scoring permits, bytes.
    pub fn peak_rss_by_permits(&self) -> Result<(u64, u64)> {
        let (miners, leads) = (self.design.miners.1, self.design.leads.1);
        let at = |permits| {
            self.runs
                .iter()
                .find(|r| {
                    r.plan.miners == miners
                        && r.plan.leads == leads
                        && r.plan.scoring_permits == permits
                })
                .map(|r| r.peak_rss)
                .with_context(|| format!("no run on {permits} scoring permit(s)"))
        };
        Ok((at(1)?, at(2)?))
    }

    fn verdict(&self, value: f64, target: f64) -> String {
        if self.resolution_deg != 0.25 {
            "(targets are for 0.25°)".to_owned()
        } else if value <= target {
            "pass".to_owned()
        } else {
            format!("over ({:.2}× the target)", value / target)
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (n1, n2) = self.design.miners;
        let (l1, l2) = self.design.leads;
        writeln!(
            f,
            "end-to-end benchmark at {}°: real wx-validator run, SQLite, simulated miners over verified HTTP on 127.0.0.1",
            self.resolution_deg
        )?;
        writeln!(
            f,
            "runs, in order ({n1} and {n2} miners × {l1} and {l2} leads on 2 scoring permits, then {n2} × {l2} on 1):"
        )?;
        for r in &self.runs {
            writeln!(
                f,
                "  {:>3} miners × {} leads, {} permit(s): wall {:>7.2} s  CPU {:>7.2} s ({:.2} cores)  peak RSS {:>6.0} MiB  Day1 step median {:.2} s  ERA5 step per lead median {:.2} s  handover median {:.3} s, max {:.3} s",
                r.plan.miners,
                r.plan.leads,
                r.plan.scoring_permits,
                r.wall.as_secs_f64(),
                r.cpu.as_secs_f64(),
                r.cpu.as_secs_f64() / r.wall.as_secs_f64().max(1e-9),
                mib(r.peak_rss),
                r.day1_step_median.as_secs_f64(),
                r.era5_step_per_lead_median.as_secs_f64(),
                r.handover_median.as_secs_f64(),
                r.handover_max.as_secs_f64(),
            )?;
        }
        let row = |f: &mut Formatter<'_>, what: &str, wall: f64, cpu: f64, verdict: String| {
            writeln!(
                f,
                "  {what:<44} wall {wall:>8.3} s   CPU {cpu:>8.3} s   {verdict}"
            )
        };
        writeln!(
            f,
            "corners (the fit's input: median of each corner's runs, min–max):"
        )?;
        for (miners, leads) in [(n1, l1), (n1, l2), (n2, l1), (n2, l2)] {
            let spread = |figure: fn(&RunFigures) -> f64| {
                let samples = super::corner_samples(&self.runs, miners, leads, figure);
                let (lo, hi) = samples
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(*v), hi.max(*v))
                    });
                let mid = super::fit::median(&samples).unwrap_or(f64::NAN);
                (samples.len(), mid, lo, hi)
            };
            let (count, wall, wall_lo, wall_hi) = spread(|r| r.wall.as_secs_f64());
            let (_, cpu, cpu_lo, cpu_hi) = spread(|r| r.cpu.as_secs_f64());
            writeln!(
                f,
                "  {miners:>3} miners × {leads} leads, {count} run(s): wall {wall:>7.2} s ({wall_lo:.2}–{wall_hi:.2})  CPU {cpu:>7.2} s ({cpu_lo:.2}–{cpu_hi:.2})"
            )?;
        }
        writeln!(f, "costs (fitted on the corners' medians):")?;
        row(
            f,
            "per miner-lead (marginal; target ≤ 0.45 s)",
            self.wall.miner_lead,
            self.cpu.miner_lead,
            self.verdict(self.wall.miner_lead, TARGET_MINER_LEAD_SECONDS),
        )?;
        row(
            f,
            "per lead (truth + climatology, shared)",
            self.wall.lead,
            self.cpu.lead,
            String::new(),
        )?;
        row(
            f,
            "per miner (verify + Day1; target ≤ 0.2 s)",
            self.wall.miner,
            self.cpu.miner,
            self.verdict(self.wall.miner, TARGET_MINER_SECONDS),
        )?;
        row(
            f,
            "per run (seed, GFS, Day1 climatology)",
            self.wall.run,
            self.cpu.run,
            String::new(),
        )?;
        let full = self.full_run_seconds();
        writeln!(
            f,
            "  full run {FULL_MINERS} miners × {FULL_LEADS} leads + {FULL_MINERS} Day1, extrapolated: {:.1} min   {} (target ≤ 20 min)",
            full / 60.0,
            self.verdict(full, TARGET_FULL_RUN_SECONDS),
        )?;
        writeln!(
            f,
            "    = the larger of the wall-time fit, {:.1} min, and the CPU-time fit spread over this machine's {} cores, {:.1} min / {} = {:.1} min",
            self.wall.predict(FULL_MINERS, FULL_LEADS) / 60.0,
            self.cores,
            self.cpu.predict(FULL_MINERS, FULL_LEADS) / 60.0,
            self.cores,
            self.cpu_floor_seconds() / 60.0,
        )?;
        let peak = self.peak_rss_default();
        writeln!(
            f,
            "  daemon peak RSS at the default concurrency: {:.0} MiB   {} (target ≤ 4096 MiB)",
            mib(peak),
            self.verdict(peak as f64, TARGET_PEAK_RSS_BYTES as f64),
        )?;
        if let Ok((one, two)) = self.peak_rss_by_permits() {
            writeln!(
                f,
                "  working set, {n2} miners × {l2} leads: peak RSS {:.0} MiB on 1 scoring permit, {:.0} MiB on 2: {:+.0} MiB for the second permit",
                mib(one),
                mib(two),
                mib(two) - mib(one)
            )?;
        }
        let waits: Vec<_> = self.runs.iter().map(|r| r.handover_median).collect();
        writeln!(
            f,
            "  dispatcher: a miner's next step (verify → Day1 → ERA5) claimed {:.3} s after the previous one finished (median of the runs' medians)",
            median(waits).as_secs_f64()
        )?;
        let concurrency = wx_model::config::ConcurrencyConfig::default();
        writeln!(
            f,
            "caveats: the fit assumes a lead's truth and climatology are decoded once and shared by the miners; \
             when the memory cache cannot hold the leads the miners are at (interleaved steps, {l2} leads here, 10 in a full run), \
             re-reads move cost from 'per lead' into 'per miner-lead'. A wide min–max at a corner means the machine was busy: measure again. \
             The peak RSS is measured with at most {n2} day1/score or era5/score steps at once; a full run claims up to {} \
             (each holds what it read while it waits for a permit, estimated at {} MiB).",
            concurrency.miner_data_steps(wx_model::config::SCORING_PERMIT_BYTES),
            wx_model::config::MINER_DATA_STEP_BYTES >> 20,
        )
    }
}
