//! `wx-validator demo`: the whole job on embedded defaults — no database server, no network,
//! no configuration.
//!
//! It generates a world (truth, a GFS-like reference, climatology) on a coarse grid, starts a
//! simulated miner network on 127.0.0.1 (skilled miners of varied quality, a GFS clone, an
//! offline miner, a tampered store, …, each serving a Zarr store behind a token with a signed
//! manifest), runs the real daemon ([`crate::daemon::serve`]: the same scheduler and steps) in
//! test mode on an SQLite file until the run completes, showing progress from the database,
//! then writes the report ([`crate::report`]) while the miners still serve, and prints the
//! leaderboard and where the report is.

use crate::daemon::{DaemonParts, serve};
use crate::report::{self, ReportOptions};
use crate::simulation::{Simulation, wait_for_final_snapshot};
use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wx_model::{ForecastStatus, RunId, RunStatus, StepKind, StepStatus};
use wx_report::{ReportData, ReportFiles};
use wx_sim::{Behaviour, WorldSpec, standard_mix};
use wx_steps::DataHub;
use wx_store::Db;

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of simulated miners (the standard mix: the special behaviours from 10 on).
    pub miners: usize,
    /// Grid spacing in degrees (180 must be a multiple of it).
    pub resolution_deg: f64,
    /// Forecast length in days: ERA5 leads 24, 48, … 24·days h (1 to 10).
    pub days: u32,
    /// Keep everything (world, database, cache, report) under this directory instead of a
    /// temporary one; it must not hold an earlier demo.
    pub keep: Option<PathBuf>,
    /// Database URL (default: an SQLite file in the working directory of the demo). It must
    /// not hold runs yet.
    pub database_url: Option<String>,
    /// Where the report goes (default: `<keep>/report`, or `./wx-demo-report`).
    pub out: Option<PathBuf>,
    /// Seed of the world.
    pub seed: u64,
    /// Give up when the run has not completed after this long.
    pub timeout: Duration,
    /// Draw progress bars on stderr (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            miners: 24,
            resolution_deg: 5.0,
            days: 10,
            keep: None,
            database_url: None,
            out: None,
            seed: 42,
            timeout: Duration::from_secs(30 * 60),
            progress: true,
        }
    }
}

/// What the demo produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The run.
    pub run: RunId,
    /// Its final status.
    pub status: RunStatus,
    /// The database (gone with the temporary directory unless kept or given).
    pub database_url: String,
    /// The kept working directory, if any.
    pub work_dir: Option<PathBuf>,
    /// The report's data.
    pub data: ReportData,
    /// The report's files.
    pub report: ReportFiles,
    /// The simulated behaviour of each uid.
    pub behaviours: BTreeMap<i32, Behaviour>,
    /// The leaderboard as printed.
    pub leaderboard: String,
    /// Time of each phase, in order.
    pub timings: Vec<(String, Duration)>,
}

/// The progress display shared by the demo and its log writer.
fn progress() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// A log writer that hides the progress bars while it writes a line, so logs and bars do not
/// overwrite each other.
struct SuspendingStderr;

impl Write for SuspendingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        progress().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the demo's log subscriber: warnings only by default (the progress bars tell the
/// story; `-v` debug, `-vv` trace as for the other commands; `RUST_LOG` overrides), written
/// around the progress bars.
/// Does nothing when a subscriber is already installed.
pub fn init_logging(settings: &wx_cli::logging::LogSettings) {
    wx_cli::logging::init_with_writer(settings, || SuspendingStderr);
}

/// Prints a line above the bars (or plainly when they are hidden).
fn say(line: impl AsRef<str>) {
    let multi = progress();
    if multi.is_hidden() {
        // a reader that went away (`demo | head`) does not stop the demo
        let _ = writeln!(std::io::stdout(), "{}", line.as_ref());
    } else {
        let _ = multi.println(line.as_ref());
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} [{bar:40.cyan/blue}] {pos:>4}/{len:<4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} {spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A short description of a behaviour, for the leaderboard.
pub fn behaviour_label(b: &Behaviour) -> String {
    match b {
        Behaviour::Skilled { error_scale } => format!("skilled ×{error_scale}"),
        Behaviour::NanInjection { fraction } => format!("NaN {:.0} %", fraction * 100.0),
        Behaviour::MissingVariables { variables } => format!(
            "missing {}",
            variables
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.name().replace('_', " "),
    }
}

/// The world of the demo.
pub fn world_spec(options: &DemoOptions) -> Result<WorldSpec> {
    if !(1..=10).contains(&options.days) {
        bail!("--days must be 1 to 10 (got {})", options.days);
    }
    if options.miners == 0 || options.miners > 255 {
        bail!("--miners must be 1 to 255 (got {})", options.miners);
    }
    let spec = WorldSpec {
        resolution_deg: options.resolution_deg,
        steps: 4 * options.days,
        era5_leads: (1..=options.days).map(|d| d * 24).collect(),
        seed: options.seed,
        miners: standard_mix(options.miners, options.seed),
        ..WorldSpec::default()
    };
    spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(spec)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The bars of the run phase.
struct RunBars {
    verify: ProgressBar,
    day1: ProgressBar,
    era5: ProgressBar,
    miners: ProgressBar,
}

impl RunBars {
    fn new(miners: u64, leads: u64) -> RunBars {
        let add = |prefix: &'static str, len: u64, msg: &'static str| {
            let b = progress().add(ProgressBar::new(len));
            b.set_style(bar_style());
            b.set_prefix(prefix);
            b.set_message(msg);
            b
        };
        RunBars {
            verify: add(
                "verify",
                miners,
                "stores verified (token, signed manifest, Zarr)",
            ),
            day1: add("day1", miners, "quality checks against the GFS analysis"),
            era5: add("era5", miners * leads, "leads scored against ERA5"),
            miners: add("miners", miners, "miners done"),
        }
    }

    /// Updates the bars from the database.
    async fn update(&self, db: &Db, run: RunId, leads: u64) -> Result<()> {
        let counts = db.steps().counts(Some(run)).await?;
        let stats = db.stats().list(run).await?;
        let terminal = |k: StepKind| {
            [
                StepStatus::Succeeded,
                StepStatus::Failed,
                StepStatus::Cancelled,
            ]
            .iter()
            .map(|s| counts.get(k, *s))
            .sum::<i64>()
        };
        let verify_failed = counts.get(StepKind::VerifyOpenStore, StepStatus::Failed);
        let pos = |x: i64| u64::try_from(x).unwrap_or(0);
        self.verify
            .set_position(pos(terminal(StepKind::VerifyOpenStore)));
        self.day1
            .set_position(pos(terminal(StepKind::Day1Score) + verify_failed));
        let mut era5 = 0u64;
        let mut done = 0u64;
        for s in &stats {
            let status = s.status().ok();
            if status.is_some_and(ForecastStatus::is_terminal) {
                done += 1;
                era5 += leads;
            } else {
                era5 += s
                    .era5_lead_scores()
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .count() as u64;
            }
        }
        self.era5
            .set_position(era5.min(self.era5.length().unwrap_or(era5)));
        self.miners.set_position(done);
        if !stats.is_empty() && done == stats.len() as u64 {
            self.miners
                .set_message("miners done; the run closes with the next snapshot");
        }
        Ok(())
    }

    /// Removes the bars (a summary line replaces them).
    fn clear(&self) {
        for b in [&self.verify, &self.day1, &self.era5, &self.miners] {
            b.finish_and_clear();
            progress().remove(b);
        }
    }
}

/// One line about a finished run, from its step rows.
async fn run_summary(db: &Db, run: RunId, miners: usize, leads: u64) -> Result<String> {
    let counts = db.steps().counts(Some(run)).await?;
    Ok(format!(
        "{}/{miners} stores verified, {} Day1 checks, {}/{} ERA5 leads scored",
        counts.get(StepKind::VerifyOpenStore, StepStatus::Succeeded),
        counts.get(StepKind::Day1Score, StepStatus::Succeeded),
        counts.get(StepKind::Era5Lead, StepStatus::Succeeded),
        miners as u64 * leads
    ))
}

/// A spinner for a phase without a measurable length.
fn spinner(prefix: &'static str, msg: &str) -> ProgressBar {
    let s = progress().add(ProgressBar::new_spinner());
    s.set_style(spinner_style());
    s.set_prefix(prefix);
    s.set_message(msg.to_owned());
    s.enable_steady_tick(Duration::from_millis(120));
    s
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Runs the demo; see the module documentation.
pub async fn run(options: DemoOptions) -> Result<DemoOutcome> {
    if !options.progress {
        progress().set_draw_target(ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let mut timings = Vec::new();
    // Ctrl-C stops the demo cleanly: daemon and miners stopped, temporary directory removed
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            trigger.cancel();
        }
    });
    let _stop_listening = AbortOnDrop(signal);
    let spec = world_spec(&options)?;
    let temp;
    let work: PathBuf = match &options.keep {
        Some(dir) => {
            if dir.join("world").exists() {
                bail!(
                    "{} already holds a demo (world/); choose a new directory",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("wx-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            temp.path().to_owned()
        }
    };
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", work.join("wx-demo.sqlite3").display()));
    let out = match (&options.out, &options.keep) {
        (Some(o), _) => o.clone(),
        (None, Some(k)) => k.join("report"),
        (None, None) => PathBuf::from("wx-demo-report"),
    };
    let grid = (180.0 / spec.resolution_deg).round() as usize;
    say(format!(
        "wx demo: {} miners, {}° grid ({} × {}), {}-day forecasts, database {}",
        spec.miners.len(),
        spec.resolution_deg,
        grid + 1,
        2 * grid,
        options.days,
        database_url
    ));

    // the database first: refuse one that already has runs
    let db = Db::open(&database_url)
        .await
        .with_context(|| format!("opening {database_url}"))?;
    if let Some(r) = db.runs().latest().await? {
        bail!(
            "{} already holds run {}: the demo needs an empty database",
            db.display_url(),
            r.id
        );
    }

    // the world and the miners
    let phase = Instant::now();
    let s = spinner(
        "world",
        "generating truth, GFS, climatology and miner stores",
    );
    // generation runs on blocking threads and cannot be cancelled: on Ctrl-C it is finished,
    // then everything is stopped and removed
    let sim = {
        let generation = Simulation::start(spec, &work, &database_url);
        tokio::pin!(generation);
        tokio::select! {
            sim = &mut generation => sim,
            _ = interrupt.cancelled() => {
                s.set_message("interrupted: finishing the generation to clean up");
                generation.await
            }
        }
    };
    s.finish_and_clear();
    progress().remove(&s);
    let sim = sim?;
    if interrupt.is_cancelled() {
        sim.shutdown().await;
        bail!("interrupted");
    }
    timings.push(("world".to_owned(), phase.elapsed()));
    let summary = &sim.world.summary;
    say(format!(
        "world generated in {:.1} s: ERA5 {}, climatology {}, GFS {}, {} miner stores {}",
        phase.elapsed().as_secs_f64(),
        mib(summary.era5_bytes),
        mib(summary.climatology_bytes),
        mib(summary.gfs_bytes),
        summary.miner_stores,
        mib(summary.miner_bytes)
    ));
    let behaviours: BTreeMap<i32, Behaviour> = sim
        .network
        .endpoints()
        .iter()
        .map(|m| (i32::from(m.uid), m.behaviour.clone()))
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for b in behaviours.values() {
        *counts.entry(b.name().replace('_', " ")).or_default() += 1;
    }
    say(format!(
        "{} miners serving on 127.0.0.1: {}",
        behaviours.len(),
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let result = run_pipeline(
        &sim,
        &db,
        &options,
        &out,
        &behaviours,
        &mut timings,
        &interrupt,
    )
    .await;
    // the report was written while the miners still served
    sim.shutdown().await;
    let (run, status, data, report) = result?;
    let leaderboard = wx_report::leaderboard_text(&data);
    timings.push(("total".to_owned(), started.elapsed()));
    say("");
    say(leaderboard.trim_end());
    say("");
    for n in &report.notes {
        say(format!("note: {n}"));
    }
    say(format!(
        "run {run} {status} in {:.1} s; report: {}",
        started.elapsed().as_secs_f64(),
        std::fs::canonicalize(&report.index)
            .unwrap_or_else(|_| report.index.clone())
            .display()
    ));
    if options.keep.is_some() || options.database_url.is_some() {
        say(format!(
            "database kept: {database_url} (try `wx-validator --database-url {database_url} status`)"
        ));
    }
    Ok(DemoOutcome {
        run,
        status,
        database_url,
        work_dir: options.keep.clone(),
        data,
        report,
        behaviours,
        leaderboard,
        timings,
    })
}

/// Runs the daemon until the run completes and writes the report (miners still serving).
async fn run_pipeline(
    sim: &Simulation,
    db: &Db,
    options: &DemoOptions,
    out: &Path,
    behaviours: &BTreeMap<i32, Behaviour>,
    timings: &mut Vec<(String, Duration)>,
    interrupt: &CancellationToken,
) -> Result<(RunId, RunStatus, ReportData, ReportFiles)> {
    sim.import_miners(db).await?;
    let config = sim.config.clone();
    let data = Arc::new(
        DataHub::new(&config.data, &config.cache_dir, true)
            .map_err(|e| anyhow::anyhow!("setting up the data sources: {e}"))?,
    );
    let stop = CancellationToken::new();
    let mut daemon = tokio::spawn(serve(
        config.clone(),
        DaemonParts {
            db: Some(db.clone()),
            data: Some(data.clone()),
            ..DaemonParts::default()
        },
        stop.clone(),
    ));
    let phase = Instant::now();
    let outcome = watch(db, options, &mut daemon, behaviours.len(), interrupt).await;
    let (run, status) = match outcome {
        Ok(r) => r,
        Err(e) => {
            stop.cancel();
            if !daemon.is_finished() {
                let _ = tokio::time::timeout(Duration::from_secs(40), daemon).await;
            }
            return Err(e);
        }
    };
    timings.push(("run".to_owned(), phase.elapsed()));
    // the weights of a snapshot taken after the last score belong in the report
    let s = spinner(
        "snapshot",
        "waiting for the subnet snapshot (ranking weights)",
    );
    let snapshot = tokio::select! {
        r = wait_for_final_snapshot(db, run, Duration::from_secs(150)) => r.map(|snap| snap.id),
        _ = interrupt.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };
    s.finish_and_clear();
    progress().remove(&s);
    stop.cancel();
    match tokio::time::timeout(Duration::from_secs(60), &mut daemon).await {
        Ok(Ok(Ok(summary))) => tracing::info!(?summary, "daemon stopped"),
        Ok(Ok(Err(e))) => return Err(e.context("the daemon failed")),
        Ok(Err(e)) => bail!("the daemon task failed: {e}"),
        Err(_) => {
            daemon.abort();
            bail!("the daemon did not stop within 60 s")
        }
    }
    if let Err(e) = snapshot {
        tracing::warn!(error = %e, "no snapshot after the run: the report has no weights");
    }

    let phase = Instant::now();
    let s = spinner("report", "reading error maps and drawing charts");
    let report_options = ReportOptions {
        title: Some("wx demo".to_owned()),
        labels: behaviours
            .iter()
            .map(|(uid, b)| (*uid, behaviour_label(b)))
            .collect(),
        references: behaviours
            .iter()
            .filter(|(_, b)| matches!(b, Behaviour::GfsClone | Behaviour::Climatology))
            .map(|(uid, _)| *uid)
            .collect(),
        notes: vec![format!(
            "Simulated world: {}° grid, {} miners on 127.0.0.1, seed {}. Labels are the simulated behaviours; the validator does not know them.",
            sim.world.spec.resolution_deg,
            behaviours.len(),
            sim.world.spec.seed
        )],
        ..ReportOptions::default()
    };
    let written = tokio::select! {
        w = report::write(db, Some(&data), run, &config, &report_options, out) => w,
        _ = interrupt.cancelled() => Err(anyhow::anyhow!("interrupted while writing the report")),
    };
    s.finish_and_clear();
    progress().remove(&s);
    let (data, files) = written?;
    timings.push(("report".to_owned(), phase.elapsed()));
    Ok((run, status, data, files))
}

/// Shows progress until the run is terminal; returns it.
async fn watch(
    db: &Db,
    options: &DemoOptions,
    daemon: &mut tokio::task::JoinHandle<Result<wx_scheduler::RunSummary>>,
    miners: usize,
    interrupt: &CancellationToken,
) -> Result<(RunId, RunStatus)> {
    let deadline = Instant::now() + options.timeout;
    let leads = u64::from(options.days);
    let waiting = spinner("run", "waiting for the daemon to create the run");
    let mut bars: Option<(RunId, RunBars)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // Ctrl-C stops the daemon and the miners and removes the temporary directory
    let result = loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = interrupt.cancelled() => {
                break Err(anyhow::anyhow!("interrupted: the daemon and the miners are stopped"));
            }
            ended = &mut *daemon => {
                break Err(match ended {
                    Ok(Ok(_)) => anyhow::anyhow!("the daemon stopped before the run completed"),
                    Ok(Err(e)) => e.context("the daemon failed"),
                    Err(e) => anyhow::anyhow!("the daemon task failed: {e}"),
                });
            }
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "the run did not complete within {:?}",
                options.timeout
            ));
        }
        let Some(row) = db.runs().latest().await? else {
            continue;
        };
        let run = RunId(row.id);
        if bars.is_none() {
            waiting.finish_and_clear();
            say(format!(
                "run {run} created: GFS init {}",
                row.gfs_init_time_utc.format("%Y-%m-%dT%H:%MZ")
            ));
            bars = Some((run, RunBars::new(miners as u64, leads)));
        }
        if let Some((_, b)) = &bars {
            b.update(db, run, leads).await?;
        }
        match row.status() {
            Ok(s @ (RunStatus::Completed | RunStatus::Failed)) => break Ok((run, s)),
            _ => continue,
        }
    };
    waiting.finish_and_clear();
    progress().remove(&waiting);
    if let Some((_, b)) = &bars {
        b.clear();
    }
    if let Ok((run, status)) = &result {
        say(format!(
            "run {run} {status}: {}",
            run_summary(db, *run, miners, leads).await?
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let ok = world_spec(&DemoOptions {
            miners: 8,
            resolution_deg: 10.0,
            days: 2,
            ..DemoOptions::default()
        })
        .unwrap();
        assert_eq!(ok.steps, 8);
        assert_eq!(ok.era5_leads, vec![24, 48]);
        assert_eq!(ok.miners.len(), 8);
        let bad = |o: DemoOptions| world_spec(&o).unwrap_err().to_string();
        assert!(
            bad(DemoOptions {
                resolution_deg: 7.0,
                ..DemoOptions::default()
            })
            .contains("180")
        );
        assert!(
            bad(DemoOptions {
                days: 11,
                ..DemoOptions::default()
            })
            .contains("--days")
        );
        assert!(
            bad(DemoOptions {
                miners: 0,
                ..DemoOptions::default()
            })
            .contains("--miners")
        );
    }

    #[test]
    fn behaviours_have_short_labels() {
        assert_eq!(
            behaviour_label(&Behaviour::Skilled { error_scale: 0.25 }),
            "skilled ×0.25"
        );
        assert_eq!(behaviour_label(&Behaviour::GfsClone), "gfs clone");
        assert_eq!(
            behaviour_label(&Behaviour::NanInjection { fraction: 0.02 }),
            "NaN 2 %"
        );
    }
}
