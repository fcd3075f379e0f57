//! `cargo xtask bench …`: benchmarks that print their figures.

use crate::postgres::Postgres;
use anyhow::{Result, bail};

/// The benchmarks.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Which {
    /// Queue transitions per second (claim → complete) on PostgreSQL and SQLite.
    Queue,
    /// Metric kernels and ERA5 lead scoring (criterion).
    Scoring,
    /// Zarr chunk decoding and store reads (criterion).
    Data,
    /// A full test-mode run of 255 simulated miners, SQLite and PostgreSQL: wall time,
    /// steps per second, the daemon's peak memory.
    Pipeline,
}

/// Runs one benchmark.
pub fn run(which: Which) -> Result<()> {
    let (package, bench, features): (&str, &str, &[&str]) = match which {
        Which::Queue => ("wx-store", "queue", &["--features", "testing"]),
        Which::Scoring => ("wx-scoring", "kernel", &[]),
        Which::Data => ("wx-data", "zarr_decode", &[]),
        Which::Pipeline => ("wx-validator", "pipeline", &[]),
    };
    let pg = Postgres::provide()?;
    let status = crate::cargo()
        .args(["bench", "-p", package, "--bench", bench])
        .args(features)
        .env("WX_TEST_PG_URL", &pg.url)
        .status()?;
    if !status.success() {
        bail!("the {bench} benchmark of {package} failed");
    }
    Ok(())
}
