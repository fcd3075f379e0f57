//! The command line: argument parsing, logging, configuration, and the two subcommands.

use crate::run::{RerunRequest, StepChoice};
use crate::score::{ScoreRequest, StoreAccess};
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wx_model::{Clock, MinerUid, RunId, SystemClock, VarLevel};
use wx_steps::{DataHub, Pipeline, ValidatorConfig};

/// One-shot wx commands.
#[derive(Debug, Parser)]
#[command(
    name = "wx-step",
    version,
    about = "One-shot wx commands: re-run a miner's steps, score a forecast store ad hoc"
)]
pub struct Cli {
    /// Configuration file (TOML), as for wx-validator; `WX_*` environment variables override it.
    #[arg(long, short, global = true, env = "WX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL (overrides the configuration): postgres://… or sqlite://path.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Log to stderr (-v info, -vv debug, -vvv trace); silent otherwise.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a forecast store against a truth store and a climatology (JSON or a table).
    Score(ScoreArgs),
    /// Re-run one miner's steps now, in the foreground (same sub-step code, same fencing).
    Run(RunArgs),
}

/// Output format of `score`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON document.
    Json,
    /// Aligned text tables.
    Table,
}

/// `wx-step score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The forecast store (path or URL). Treated as miner-controlled: the SSRF guard applies.
    #[arg(long)]
    pub forecast: String,
    /// The truth store (ARCO-ERA5 layout; the miner layout is read too). Leads it has not
    /// published yet are listed in `pending_leads`, not scored (exit 0).
    #[arg(long)]
    pub truth: String,
    /// The climatology store (WeatherBench2 layout).
    #[arg(long)]
    pub climatology: String,
    /// A reference forecast (miner layout): adds skill_ref and clone_distance per field.
    #[arg(long)]
    pub reference: Option<String>,
    /// The forecast's init time, e.g. 2024-12-28T00:00:00Z.
    #[arg(long, value_parser = parse_time)]
    pub init: DateTime<Utc>,
    /// Leads in hours, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub leads: Vec<u32>,
    /// Variables, comma separated: 2t,10u,10v,msl,t,u,v,q,z or one level such as z500
    /// (default: the configuration's ERA5 variables, i.e. those nine).
    #[arg(long, value_delimiter = ',', value_parser = parse_selection)]
    pub variables: Option<Vec<VarLevel>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Allow stores on 127.0.0.0/8 and ::1, over plain http (local testing only).
    #[arg(long)]
    pub allow_loopback: bool,
    /// Allow plain http:// store URLs.
    #[arg(long)]
    pub allow_plain_http: bool,
    /// Bearer token for the forecast store.
    #[arg(long, env = "WX_STEP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `wx-step run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The run.
    #[arg(long)]
    pub run_id: i64,
    /// The miner's uid.
    #[arg(long)]
    pub miner: u8,
    /// Only this step (default: verify, day1, era5 in order).
    #[arg(long, value_enum)]
    pub step: Option<StepChoice>,
    /// Run even if the step is not due (succeeded, failed, waiting); attempts are reset.
    #[arg(long)]
    pub force: bool,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (expected e.g. 2024-12-28T00:00:00Z)"))
}

fn parse_selection(s: &str) -> Result<VarLevel, String> {
    VarLevel::parse(s.trim()).map_err(|e| e.to_string())
}

/// Installs a stderr logger when `-v` was given (`RUST_LOG` then refines it).
pub fn init_logging(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = match verbose {
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,h2=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the configuration like wx-validator: defaults, the file, `WX_*` overrides, then
/// `--database-url`.
pub fn load_config(cli: &Cli) -> Result<ValidatorConfig> {
    let mut config = ValidatorConfig::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        config.database_url = url.clone();
    }
    Ok(config)
}

/// Exit code when a step failed, was busy, missing or lost its lease.
pub const EXIT_STEP_PROBLEM: u8 = 2;

/// Parses the command line, runs it and prints the result; errors become one `error: …` line
/// on stderr (exit code 1).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let secret = match &cli.command {
        Command::Score(a) => a.token.clone(),
        Command::Run(_) => None,
    };
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}"), secret.as_deref()));
            ExitCode::FAILURE
        }
    }
}

/// The message on one line, with the secret (if any) removed.
fn one_line(message: &str, secret: Option<&str>) -> String {
    let mut s = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        s = s.replace(secret, "[redacted]");
    }
    s
}

/// Runs a parsed command line; the exit code for a command that ran.
pub fn execute(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Score(args) => score(args, &config).await,
            Command::Run(args) => run(args, config).await,
        }
    })
}

async fn score(args: ScoreArgs, config: &ValidatorConfig) -> Result<ExitCode> {
    let variables = match args.variables {
        Some(v) => v,
        None => config
            .targets()?
            .era5_variables
            .into_iter()
            .map(|(v, _)| v)
            .collect(),
    };
    let request = ScoreRequest {
        forecast: args.forecast,
        truth: args.truth,
        climatology: args.climatology,
        reference: args.reference,
        init: args.init,
        leads: args.leads,
        variables,
        access: StoreAccess {
            allow_loopback: args.allow_loopback,
            allow_plain_http: args.allow_plain_http,
            token: args.token,
        },
        scoring: config.scoring.clone(),
        truth_limits: config.data.era5_limits,
        climatology_limits: config.data.climatology_limits,
        truth_access: config.data.era5_access.clone(),
        climatology_access: config.data.climatology_access.clone(),
        final_only: config.data.era5_final_only,
    };
    let report = crate::score::score(&request).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => print!("{}", crate::score::format_table(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs, config: ValidatorConfig) -> Result<ExitCode> {
    let db = wx_store::Db::open(&config.database_url)
        .await
        .context("opening the database")?;
    let data = Arc::new(
        DataHub::new(&config.data, &config.cache_dir, config.pipeline.test_mode)
            .map_err(|e| anyhow!("setting up the data sources: {e}"))?,
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let request = RerunRequest {
        run: RunId(args.run_id),
        miner: MinerUid::new(args.miner),
        step: args.step,
        force: args.force,
        worker: crate::run::default_worker(),
        lease: config.pipeline.lease(),
        heartbeat: config.pipeline.heartbeat(),
    };
    let pipeline = Pipeline::new(db.clone(), config, clock.clone(), data)?;
    db.runs()
        .require(request.run)
        .await
        .with_context(|| format!("run {}", request.run))?;
    let lines = crate::run::rerun(&db, &pipeline, clock, &request, |line| println!("{line}"))
        .await
        .context("database")?;
    Ok(if lines.iter().any(|l| l.result.is_problem()) {
        ExitCode::from(EXIT_STEP_PROBLEM)
    } else {
        ExitCode::SUCCESS
    })
}
