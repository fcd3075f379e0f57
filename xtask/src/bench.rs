//! `cargo xtask bench …`: benchmarks that print their figures.

use crate::postgres::Postgres;
use anyhow::{Result, bail};

/// The benchmarks.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Which {
    /// Queue transitions per second (claim → complete) on PostgreSQL and SQLite.
    Queue,
}

/// Runs one benchmark.
pub fn run(which: Which) -> Result<()> {
    match which {
        Which::Queue => {
            let pg = Postgres::provide()?;
            let status = crate::cargo()
                .args([
                    "bench",
                    "-p",
                    "wx-store",
                    "--features",
                    "testing",
                    "--bench",
                    "queue",
                ])
                .env("WX_TEST_PG_URL", &pg.url)
                .status()?;
            if !status.success() {
                bail!("queue benchmark failed");
            }
        }
    }
    Ok(())
}
