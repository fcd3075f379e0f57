//! `cargo xtask bench pipeline`: one full test-mode run of 255 simulated miners on a small
//! grid (5°, 10 days, every ERA5 lead), on SQLite and on PostgreSQL.
//!
//! The simulated world and its miners live in this process; the validator is the real
//! `wx-validator run` binary in a child process, so its peak memory (`VmHWM`) is the daemon's
//! own. Wall time runs from the daemon's start to the snapshot that follows the run's
//! completion. Steps per second count units of work (claimable steps that ended) and every
//! step row (sub-step events included).

use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use wx_model::{StepKind, StepStatus};
use wx_sim::WorldSpec;
use wx_sim::spec::standard_mix;
use wx_store::testing::TestDb;
use wx_validator::e2e_bench::{peak_rss_bytes, spawn_daemon, stop_daemon};
use wx_validator::simulation::{Simulation, wait_for_completion, wait_for_final_snapshot};

const MINERS: usize = 255;

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; a filter argument picks one backend
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let spec = WorldSpec {
            miners: standard_mix(MINERS, 42),
            ..WorldSpec::default()
        };
        let started = Instant::now();
        let sim = Simulation::start(spec, dir.path(), "sqlite://unused").await?;
        println!(
            "pipeline bench: {MINERS} miners, {}° grid, {} ERA5 leads; world generated in {:.1} s",
            sim.world.spec.resolution_deg,
            sim.world.spec.era5_leads.len(),
            started.elapsed().as_secs_f64()
        );
        for backend in ["sqlite", "postgres"] {
            if filter.as_deref().is_some_and(|f| !backend.contains(f)) {
                continue;
            }
            let t = match backend {
                "sqlite" => TestDb::sqlite().await,
                _ => TestDb::postgres().await,
            };
            let figures = one_run(&sim, &t, &dir.path().join(backend)).await?;
            println!("{backend:>8}: {figures}");
        }
        sim.shutdown().await;
        Ok(())
    })
}

struct Figures {
    wall: Duration,
    units: i64,
    rows: i64,
    peak_rss_kib: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.wall.as_secs_f64();
        write!(
            f,
            "wall {secs:.1} s, {} units of work ({:.1}/s), {} step rows ({:.1}/s), daemon peak RSS {:.0} MiB",
            self.units,
            self.units as f64 / secs,
            self.rows,
            self.rows as f64 / secs,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

async fn one_run(sim: &Simulation, t: &TestDb, work: &Path) -> Result<Figures> {
    std::fs::create_dir_all(work)?;
    sim.import_miners(&t.db).await?;
    let mut config = sim.config.clone();
    config.database_url = t.url().to_owned();
    config.cache_dir = work.join("cache");
    let config_path = work.join("wx.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let log = std::fs::File::create(work.join("daemon.log"))?;

    let started = Instant::now();
    let mut child = spawn_daemon(
        Path::new(env!("CARGO_BIN_EXE_wx-validator")),
        0,
        &config_path,
        log,
    )?;
    let outcome = async {
        let run = wait_for_completion(&t.db, None, Duration::from_secs(1800)).await?;
        wait_for_final_snapshot(&t.db, run, Duration::from_secs(300)).await?;
        Ok::<_, anyhow::Error>(run)
    }
    .await;
    let wall = started.elapsed();
    let peak_rss = peak_rss_bytes(child.id());
    stop_daemon(&mut child)?;
    let run = outcome.with_context(|| format!("see {}", work.join("daemon.log").display()))?;

    let counts = t.db.steps().counts(Some(run)).await?;
    let rows = counts.0.values().flat_map(|m| m.values()).sum();
    let units = StepKind::ALL
        .iter()
        .filter(|k| k.is_claimable())
        .map(|k| counts.get(*k, StepStatus::Succeeded) + counts.get(*k, StepStatus::Failed))
        .sum();
    Ok(Figures {
        wall,
        units,
        rows,
        peak_rss_kib: peak_rss? / 1024,
    })
}
