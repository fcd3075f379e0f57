//! The end-to-end benchmark at the operator's resolution; `cargo xtask bench e2e` builds it
//! (release) and runs it. The method is in [`wx_validator::e2e_bench`]'s documentation.
//!
//! ```text
//! e2e_bench --validator target/release/wx-validator --work target/bench-e2e \
//!     [--resolution 0.25] [--miners 6] [--seed 42] [--repeats 3]
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use wx_validator::e2e_bench::{E2eOptions, measure};

/// The end-to-end benchmark of the real workload.
#[derive(Debug, Parser)]
struct Args {
    /// The release `wx-validator` binary to measure.
    #[arg(long)]
    validator: PathBuf,
    /// Where the world is cached and the runs write.
    #[arg(long)]
    work: PathBuf,
    /// Grid spacing in degrees.
    #[arg(long, default_value_t = 0.25)]
    resolution: f64,
    /// Miners of the larger runs (the smaller ones take a third).
    #[arg(long, default_value_t = 6)]
    miners: u32,
    /// Seed of the world.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many times each corner of the design is measured (the fit takes medians).
    #[arg(long, default_value_t = 3)]
    repeats: u32,
    /// Give up a run after this many seconds.
    #[arg(long, default_value_t = 900)]
    run_timeout: u64,
    /// The daemons' log level in each run's daemon.log (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let report = measure(&E2eOptions {
        resolution_deg: args.resolution,
        miners: args.miners,
        validator: args.validator,
        work: args.work,
        seed: args.seed,
        run_timeout: Duration::from_secs(args.run_timeout),
        daemon_verbose: args.verbose,
        repeats: args.repeats,
    })
    .await?;
    print!("{report}");
    Ok(())
}
