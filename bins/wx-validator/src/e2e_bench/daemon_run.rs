//! One measured run: the real `wx-validator run` binary in a child process, on a fresh SQLite
//! file and cold caches, scoring some of the simulation's miners at some of its leads.

use super::procfs;
use crate::simulation::Simulation;
use anyhow::{Context, Result, bail, ensure};
use chrono::NaiveDateTime;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wx_model::rows::StepRow;
use wx_model::{RunId, RunStatus, StepKind, StepStatus};
use wx_store::Db;

/// What one run scores and with how many scoring permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPlan {
    /// The first `miners` miners of the simulation are imported.
    pub miners: u32,
    /// The first `leads` ERA5 leads of the world are scored.
    pub leads: u32,
    /// `[pipeline.concurrency] scoring` (the default is 2).
    pub scoring_permits: usize,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunFigures {
    /// The plan.
    pub plan: RunPlan,
    /// From the run's creation to its completion, by the daemon's own timestamps.
    pub wall: Duration,
    /// The daemon's CPU time (all threads, user + system) over the same window, sampled when
    /// the benchmark saw the run appear and complete (polled every 50 ms).
    pub cpu: Duration,
    /// The daemon's peak resident set (`VmHWM`) at the end of the run, bytes.
    pub peak_rss: u64,
    /// Median time of a day1/score step from its claim to its completion.
    pub day1_step_median: Duration,
    /// Median time of an era5/score step from its claim to its completion, divided by the
    /// run's leads: a miner-lead's latency under the run's contention (a cross-check of the
    /// fitted throughput cost, which is taken between runs instead).
    pub era5_step_per_lead_median: Duration,
    /// Median time from a miner's step finishing to its successor's claim (verify/open_store
    /// → day1/score → era5/score): the dispatcher's reaction and slot waits.
    pub handover_median: Duration,
    /// The longest such handover.
    pub handover_max: Duration,
}

/// Runs `plan` against `sim` under `dir` (emptied first) with the validator binary
/// `validator` (`-v` repeated `verbose` times: its `daemon.log` in `dir`); the per-run cache is
/// removed afterwards.
pub async fn measure_run(
    sim: &Simulation,
    validator: &Path,
    verbose: u8,
    dir: &Path,
    plan: RunPlan,
    timeout: Duration,
) -> Result<RunFigures> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = format!("sqlite://{}", dir.join("wx.sqlite3").display());
    let db = Db::open(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let records: Vec<_> = sim
        .miner_records()
        .into_iter()
        .take(plan.miners as usize)
        .collect();
    ensure!(
        records.len() == plan.miners as usize,
        "the world has {} miners, the plan wants {}",
        records.len(),
        plan.miners
    );
    db.miners().import(&records, chrono::Utc::now()).await?;

    let mut config = sim.config.clone();
    config.database_url = url;
    let cache = dir.join("cache");
    config.cache_dir = cache.clone();
    config.scoring.era5.leads = sim
        .world
        .spec
        .era5_leads
        .iter()
        .copied()
        .take(plan.leads as usize)
        .collect();
    config.pipeline.concurrency.scoring = plan.scoring_permits;
    let config_path = dir.join("wx.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let log_path = dir.join("daemon.log");
    let log = std::fs::File::create(&log_path)?;

    let mut child = spawn_daemon(validator, verbose, &config_path, log)?;
    let watched = watch(&db, &mut child, timeout).await;
    let stopped = stop(&mut child);
    let (run, cpu, peak_rss) = watched.with_context(|| {
        format!(
            "the daemon's last log lines ({}):\n{}",
            log_path.display(),
            log_tail(&log_path, 20)
        )
    })?;
    stopped?;
    let _ = std::fs::remove_dir_all(&cache);

    let row = db.runs().get(run).await?.context("the run row is gone")?;
    let completed = row.completed_at.context("the run has no completion time")?;
    let steps = db.steps().list_run(run).await?;
    check_complete(&steps, plan)?;
    Ok(RunFigures {
        plan,
        wall: between(row.run_initiation_time, completed),
        cpu,
        peak_rss,
        day1_step_median: median(durations(&steps, &[StepKind::Day1Score], |s| {
            Some(between(s.started_at?, s.completed_at?))
        })),
        era5_step_per_lead_median: median(durations(&steps, &[StepKind::Era5Score], |s| {
            Some(between(s.started_at?, s.completed_at?) / plan.leads.max(1))
        })),
        handover_median: median(handovers(&steps)),
        handover_max: handovers(&steps).into_iter().max().unwrap_or_default(),
    })
}

/// Polls until the run completes; returns it, the daemon's CPU time over the run's life and
/// its peak resident set.
async fn watch(db: &Db, child: &mut Child, timeout: Duration) -> Result<(RunId, Duration, u64)> {
    let ticks = procfs::clock_ticks_per_second();
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let mut started: Option<Duration> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("wx-validator run exited with {status} before the run completed");
        }
        ensure!(
            Instant::now() < deadline,
            "the run did not complete within {timeout:?}"
        );
        if let Some(row) = db.runs().latest().await? {
            let cpu = procfs::cpu_time(pid, ticks)?;
            let start = *started.get_or_insert(cpu);
            // every miner of the benchmark scores: a failed step would leave the run open
            let run = RunId(row.id);
            if let Some(failed) = db
                .steps()
                .list_run(run)
                .await?
                .into_iter()
                .find(|s| s.status().ok() == Some(StepStatus::Failed))
            {
                bail!(
                    "step {}/{} of miner {} failed: {}",
                    failed.step_name,
                    failed.substep,
                    failed.miner_uid,
                    failed.error_json.unwrap_or_default()
                );
            }
            match row.status() {
                Ok(RunStatus::Completed) => {
                    return Ok((RunId(row.id), cpu - start, procfs::peak_rss_bytes(pid)?));
                }
                Ok(RunStatus::Failed) => bail!("run {} failed: {:?}", row.id, row.error),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every miner verified, Day1-checked and scored at every lead: a speed figure of a run that
/// failed somewhere would mean nothing.
fn check_complete(steps: &[StepRow], plan: RunPlan) -> Result<()> {
    let succeeded = |kind: StepKind| {
        steps
            .iter()
            .filter(|s| {
                s.kind().ok() == Some(kind) && s.status().ok() == Some(StepStatus::Succeeded)
            })
            .count()
    };
    let miners = plan.miners as usize;
    for (kind, wanted) in [
        (StepKind::VerifyOpenStore, miners),
        (StepKind::Day1Score, miners),
        (StepKind::Era5Score, miners),
        (StepKind::Era5Lead, miners * plan.leads as usize),
    ] {
        let got = succeeded(kind);
        ensure!(
            got == wanted,
            "{got} {kind:?} steps succeeded, {wanted} expected: the benchmark's miners all score"
        );
    }
    Ok(())
}

/// Each miner's handovers: verify/open_store finished → day1/score claimed, day1/score
/// finished → era5/score claimed (the last claim of each step).
fn handovers(steps: &[StepRow]) -> Vec<Duration> {
    let find = |uid: i32, kind: StepKind| {
        steps
            .iter()
            .find(|s| s.miner_uid == uid && s.kind().ok() == Some(kind))
    };
    let mut out = Vec::new();
    for verify in steps
        .iter()
        .filter(|s| s.kind().ok() == Some(StepKind::VerifyOpenStore))
    {
        let uid = verify.miner_uid;
        for (before, after) in [
            (StepKind::VerifyOpenStore, StepKind::Day1Score),
            (StepKind::Day1Score, StepKind::Era5Score),
        ] {
            if let (Some(done), Some(next)) = (
                find(uid, before).and_then(|s| s.completed_at),
                find(uid, after).and_then(|s| s.started_at),
            ) {
                out.push(between(done, next));
            }
        }
    }
    out
}

/// The last `lines` lines of a log file (empty when it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The names of the `WX_*` variables of this process's environment.
/// Starts `validator --config CONFIG run` (`-v` repeated `verbose` times) with its log going to
/// `log`. The configuration is the file alone: no `WX_*` variable nor `RUST_LOG` of the
/// caller's shell applies.
pub fn spawn_daemon(
    validator: &Path,
    verbose: u8,
    config_path: &Path,
    log: std::fs::File,
) -> Result<Child> {
    let mut command = Command::new(validator);
    for name in wx_variables() {
        command.env_remove(name);
    }
    command
        .args(std::iter::repeat_n("-v", usize::from(verbose)))
        .arg("--config")
        .arg(config_path)
        .arg("run")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {} run", validator.display()))
}

fn wx_variables() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("WX_"))
        .collect()
}

fn durations(
    steps: &[StepRow],
    kinds: &[StepKind],
    f: impl Fn(&StepRow) -> Option<Duration>,
) -> Vec<Duration> {
    steps
        .iter()
        .filter(|s| s.kind().is_ok_and(|k| kinds.contains(&k)))
        .filter_map(f)
        .collect()
}

fn between(from: NaiveDateTime, to: NaiveDateTime) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

/// The median (the lower middle of an even count); zero when empty.
pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// SIGTERM (graceful shutdown), then wait; SIGKILL when it does not stop within 60 s.
pub fn stop(child: &mut Child) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent && Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "wx-validator run exited with {status}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    bail!("wx-validator run did not stop within 60 s of SIGTERM")
}

/// Where a plan's run lives under the benchmark's work directory.
pub fn run_dir(work: &Path, plan: RunPlan) -> PathBuf {
    work.join("runs").join(format!(
        "m{}-l{}-s{}",
        plan.miners, plan.leads, plan.scoring_permits
    ))
}
