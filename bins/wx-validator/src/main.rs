//! `wx-validator`: the daemon and the operator commands.

use wx_validator::{daemon, logging, miners, status};

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
        }
    })
}
