//! The command line: argument parsing, logging, configuration, and the two subcommands.

use crate::run::{RerunRequest, StepChoice};
use crate::score::{ScoreRequest, StoreAccess};
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wx_cli::{ExitStatus, Failure};
use wx_model::{Clock, MinerUid, RunId, SystemClock, VarLevel};
use wx_steps::{DataHub, Pipeline, ValidatorConfig};

/// One-shot wx commands.
#[derive(Debug, Parser)]
#[command(
    name = "wx-step",
    version,
    about = "One-shot wx commands: re-run a miner's steps, score a forecast store ad hoc",
    after_help = format!(
        "Configuration as for wx-validator (see `wx-validator --help`): unknown keys and WX_* \
         variables are errors; `run` needs database_url and a database with the current schema.\n\n{}",
        wx_cli::exit::EXIT_CODES_HELP
    )
)]
pub struct Cli {
    /// Configuration file (TOML), as for wx-validator; `WX_*` environment variables override it.
    #[arg(long, short, global = true, env = "WX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL (overrides the configuration): postgres://… or sqlite://path.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Log to stderr (-v info, -vv debug, -vvv trace); silent otherwise (`WX_LOG` / `RUST_LOG`
    /// set a filter).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log as JSON lines instead of human-readable text (also `WX_LOG_JSON=1`).
    #[arg(long, global = true, env = "WX_LOG_JSON", value_parser = clap::builder::FalseyValueParser::new())]
    pub log_json: bool,
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
    /// One CSV row per field, in WeatherBench2's long layout (docs/outputs.md).
    Csv,
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
    /// With --force: verify the store even after the run's submission window closed. Logged
    /// and recorded in the verify step's context (docs/operating.md, "Fair play").
    #[arg(long, requires = "force")]
    pub allow_late: bool,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| anyhow!("{e} (expected e.g. 2024-12-28T00:00:00Z)"))
}

fn parse_selection(s: &str) -> Result<VarLevel, wx_model::ParseEnumError> {
    VarLevel::parse(s.trim())
}

/// Installs the stderr logger: silent without `-v` unless `WX_LOG` / `RUST_LOG` say otherwise;
/// colour only on a terminal, never with `NO_COLOR`.
pub fn init_logging(verbose: u8, json: bool) {
    wx_cli::logging::init(&wx_cli::logging::LogSettings {
        levels: vec!["off", "info", "debug", "trace"],
        verbose,
        json,
    });
}

/// Loads the configuration like wx-validator: defaults, the file, `WX_*` overrides, then
/// `--database-url`.
pub fn load_config(cli: &Cli) -> Result<ValidatorConfig> {
    Ok(wx_cli::config::load(
        cli.config.as_deref(),
        cli.database_url.as_deref(),
    )?)
}

/// Exit code when a step failed, was busy, missing or lost its lease, or when `score` could
/// score nothing ([`ExitStatus::WorkFailed`]).
pub const EXIT_STEP_PROBLEM: u8 = 2;

/// Parses the command line, runs it and prints the result; errors become one `error: …` line
/// on stderr, with the exit code of their kind (`wx_cli::exit`).
pub fn main() -> ExitCode {
    let cli = match wx_cli::exit::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging(cli.verbose, cli.log_json);
    let secret = match &cli.command {
        Command::Score(a) => a.token.clone(),
        Command::Run(_) => None,
    };
    let secrets: Vec<&str> = secret.iter().map(String::as_str).collect();
    wx_cli::exit::run_main(&secrets, move || execute(cli))
}

/// Runs a parsed command line; the exit status of a command that ran.
pub fn execute(cli: Cli) -> Result<ExitStatus> {
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

/// Whether `score` scored nothing: every variable of every lead it reported failed. (A lead
/// whose truth is not published yet is not a failure and has no variable entries.)
pub fn nothing_scored(report: &crate::score::ScoreReport) -> bool {
    !report.variables.is_empty() && report.variables.iter().all(|v| v.error.is_some())
}

async fn score(args: ScoreArgs, config: &ValidatorConfig) -> Result<ExitStatus> {
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
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Format::Table => write!(out, "{}", crate::score::format_table(&report))?,
        Format::Csv => crate::csv_out::write_csv(&report, &mut out)?,
    }
    if nothing_scored(&report) {
        return Err(Failure::new(
            ExitStatus::WorkFailed,
            "every variable of every lead failed (the reasons are in the output)",
        )
        .into());
    }
    Ok(ExitStatus::Success)
}

async fn run(args: RunArgs, config: ValidatorConfig) -> Result<ExitStatus> {
    let db = wx_store::Db::open_existing(config.require_database_url()?)
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
    let mut pipeline = Pipeline::new(db.clone(), config, clock.clone(), data)?;
    if args.allow_late {
        let by = crate::run::default_worker();
        tracing::warn!(run = %request.run, miner = %request.miner, by = %by,
            "--allow-late: the submission window is overridden for this re-run");
        pipeline = pipeline.allow_late(by);
    }
    db.runs()
        .require(request.run)
        .await
        .with_context(|| format!("run {}", request.run))?;
    let lines = crate::run::rerun(&db, &pipeline, clock, &request, |line| {
        // a reader that went away does not stop the re-run
        let _ = writeln!(std::io::stdout(), "{line}");
    })
    .await
    .context("database")?;
    Ok(if lines.iter().any(|l| l.result.is_problem()) {
        ExitStatus::WorkFailed
    } else {
        ExitStatus::Success
    })
}
