//! `wx-validator`: the daemon and the operator commands.

#![deny(unsafe_code)]

/// mimalloc: multi-MB chunk buffers are reused instead of mmapped and faulted in afresh
/// (1.6× the read throughput of glibc malloc's defaults in `cargo xtask bench data`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use wx_validator::{
    config_show, daemon, demo, miners, prune, report, runs, simulate, status, weights,
};

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wx_cli::ExitStatus;
use wx_store::Db;

/// Configuration rules, for `--help`.
const CONFIG_HELP: &str = "\
Configuration: defaults, then the TOML file (--config / WX_CONFIG), then WX_* variables
(WX_DATABASE_URL, WX_PIPELINE__LEASE_SECONDS, ...; `__` separates sections), then
--database-url. Unknown keys and unknown WX_* variables are errors. There is no default
database: `run` and every command that reads one need database_url (postgres://... with
?sslmode=verify-full&sslrootcert=/path/ca.pem for TLS, or sqlite:///path/wx.sqlite3).
Only `migrate` and `run` create or upgrade the schema; the other commands refuse a missing
database or an old schema. Logs: -v, WX_LOG / RUST_LOG filters, --log-json / WX_LOG_JSON;
colour only on a terminal, never with NO_COLOR.";

/// The wx validator.
#[derive(Parser)]
#[command(
    name = "wx-validator",
    version,
    about = "Validator of a decentralized weather-forecasting network",
    after_help = format!("{CONFIG_HELP}\n\n{}", wx_cli::exit::EXIT_CODES_HELP)
)]
struct Cli {
    /// Configuration file (TOML); `WX_*` environment variables override it.
    #[arg(long, short, global = true, env = "WX_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (overrides the configuration): postgres://… or sqlite://path.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log as JSON lines instead of human-readable text (also `WX_LOG_JSON=1`).
    #[arg(long, global = true, env = "WX_LOG_JSON", value_parser = clap::builder::FalseyValueParser::new())]
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
    /// List the runs, newest first.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Print the ranking weights of the latest subnet snapshot as the chain takes them: uids
    /// and u16 weights summing to 65535.
    Weights(weights::WeightsArgs),
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
    /// Delete scores, step rows and snapshots older than `pipeline.retention_days` (finished
    /// runs only, in small batches); the daemon does it every `prune_interval_minutes`.
    Prune {
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the configuration (`config show`: every key with its value, secrets redacted).
    Config {
        #[command(subcommand)]
        command: config_show::ConfigCommand,
    },
    /// See wx at work with nothing installed: a simulated world and miner network on
    /// 127.0.0.1, the real pipeline on an SQLite file, then a leaderboard and a report.
    Demo(DemoArgs),
    /// Serve a simulated network for other processes: a generated world, every miner on
    /// 127.0.0.1 with its behaviour, DIR/miners.json and DIR/wx.toml; runs until SIGINT/SIGTERM.
    Simulate(SimulateArgs),
}

/// Options of `wx-validator simulate`.
#[derive(clap::Args)]
struct SimulateArgs {
    /// Number of simulated miners (every special behaviour from 10 on).
    #[arg(long, default_value_t = 24)]
    miners: usize,
    /// Grid spacing in degrees (180 must be a multiple: 2, 2.5, 3, 5, 6, 10, …).
    #[arg(long, default_value_t = 5.0)]
    resolution: f64,
    /// Forecast length in days (ERA5 leads 24 h … 24·days h), 1 to 10.
    #[arg(long, default_value_t = 10)]
    days: u32,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory of the world, miners.json and wx.toml; a directory holding the same world
    /// (same options) is reused, one holding another world is refused.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
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
    wx_cli::allocator::configure();
    let cli = match wx_cli::exit::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    wx_cli::exit::run_main(&[], move || run(cli))
}

fn run(cli: Cli) -> Result<ExitStatus> {
    let log = |levels: Vec<&'static str>| wx_cli::logging::LogSettings {
        levels,
        verbose: cli.verbose,
        json: cli.log_json,
    };
    if let Command::Demo(args) = cli.command {
        // embedded defaults: no configuration file is read
        demo::init_logging(&log(vec!["warn", "debug", "trace"]));
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
        runtime.block_on(demo::run(options))?;
        return Ok(ExitStatus::Success);
    }
    if let Command::Simulate(args) = cli.command {
        // no configuration file is read: it writes one
        wx_cli::logging::init(&log(vec!["info", "debug", "trace"]));
        let options = simulate::SimulateOptions {
            miners: args.miners,
            resolution_deg: args.resolution,
            days: args.days,
            seed: args.seed,
            out: args.out,
            database_url: cli.database_url,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(simulate::run(options))?;
        return Ok(ExitStatus::Success);
    }
    if let Command::Config { command } = &cli.command {
        // prints to stdout only: no logging, no database
        config_show::run(command, cli.config.as_deref(), cli.database_url.as_deref())?;
        return Ok(ExitStatus::Success);
    }
    wx_cli::logging::init(&log(vec!["info", "debug", "trace"]));
    let config = wx_cli::config::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run => daemon::run(config).await?,
            Command::Migrate => {
                let db = Db::open(config.require_database_url()?).await?;
                let mut out = std::io::stdout().lock();
                std::io::Write::write_fmt(
                    &mut out,
                    format_args!("database {} is up to date\n", db.display_url()),
                )?;
            }
            Command::Miners { command } => miners::run(command, &config).await?,
            Command::Runs { command } => runs::run(command, &config).await?,
            Command::Status { run_id, json } => status::run(&config, run_id, json).await?,
            Command::Report { run_id, out } => report::run(&config, run_id, &out).await?,
            Command::Weights(args) => weights::run(&config, &args).await?,
            Command::Prune { dry_run } => prune::run(&config, dry_run).await?,
            Command::Demo(_) | Command::Simulate(_) | Command::Config { .. } => {
                unreachable!("handled above")
            }
        }
        Ok(ExitStatus::Success)
    })
}
