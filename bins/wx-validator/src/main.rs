//! `wx-validator`: the daemon and the operator commands.

/// mimalloc: multi-MB chunk buffers are reused instead of mmapped and faulted in afresh
/// (1.6× the read throughput of glibc malloc's defaults in `cargo xtask bench data`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use wx_validator::{config_show, daemon, demo, logging, miners, report, status};

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The wx validator.
#[derive(Parser)]
#[command(
    name = "wx-validator",
    version,
    about = "Validator of a decentralized weather-forecasting network"
)]
struct Cli {
    /// Configuration file (TOML); `WX_*` environment variables override it.
    #[arg(long, short, global = true, env = "WX_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (overrides the configuration): postgres://… or sqlite://path.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    /// More log output (-v debug, -vv trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the validator: create runs, claim and run steps until SIGINT/SIGTERM.
    Run,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage the miner registry.
    Miners {
        #[command(subcommand)]
        command: miners::MinersCommand,
    },
    /// Show a run: per-miner status, scores and last error.
    Status {
        /// The run (default: the latest).
        #[arg(long)]
        run_id: Option<i64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a run's report: PNG charts and an HTML page with the leaderboard.
    Report {
        /// The run (default: the latest).
        #[arg(long)]
        run_id: Option<i64>,
        /// Output directory (created if needed).
        #[arg(long, default_value = "wx-report")]
        out: PathBuf,
    },
    /// Show the configuration (`config show`: every key with its value, secrets redacted).
    Config {
        #[command(subcommand)]
        command: config_show::ConfigCommand,
    },
    /// See wx at work with nothing installed: a simulated world and miner network on
    /// 127.0.0.1, the real pipeline on an SQLite file, then a leaderboard and a report.
    Demo(DemoArgs),
}

/// Options of `wx-validator demo`.
#[derive(clap::Args)]
struct DemoArgs {
    /// Number of simulated miners (every special behaviour from 10 on).
    #[arg(long, default_value_t = 24)]
    miners: usize,
    /// Grid spacing in degrees (180 must be a multiple: 2, 2.5, 3, 5, 6, 10, …).
    #[arg(long, default_value_t = 5.0)]
    resolution: f64,
    /// Forecast length in days (ERA5 leads 24 h … 24·days h), 1 to 10.
    #[arg(long, default_value_t = 10)]
    days: u32,
    /// Keep the world, the SQLite database and the cache in DIR (a new directory) for
    /// inspection; by default they live in a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Report directory [default: DIR/report with --keep, else ./wx-demo-report].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Demo(args) = cli.command {
        // embedded defaults: no configuration file is read
        demo::init_logging(cli.verbose, cli.log_json);
        let options = demo::DemoOptions {
            miners: args.miners,
            resolution_deg: args.resolution,
            days: args.days,
            keep: args.keep,
            database_url: cli.database_url,
            out: args.out,
            seed: args.seed,
            timeout: std::time::Duration::from_secs(args.timeout_secs),
            progress: !args.no_progress,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(demo::run(options)).map(|_| ());
    }
    if let Command::Config { command } = &cli.command {
        // prints to stdout only: no logging, no database
        return config_show::run(command, cli.config.as_deref(), cli.database_url.as_deref());
    }
    logging::init(cli.verbose, cli.log_json);
    let mut config = wx_steps::ValidatorConfig::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run => daemon::run(config).await,
            Command::Migrate => {
                let db = wx_store::Db::open(&config.database_url).await?;
                println!("database {} is up to date", db.display_url());
                Ok(())
            }
            Command::Miners { command } => miners::run(command, &config).await,
            Command::Status { run_id, json } => status::run(&config, run_id, json).await,
            Command::Report { run_id, out } => report::run(&config, run_id, &out).await,
            Command::Demo(_) | Command::Config { .. } => unreachable!("handled above"),
        }
    })
}
