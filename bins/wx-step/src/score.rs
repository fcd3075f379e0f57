//! `wx-step score`: scores a forecast store against a truth store and a climatology (and
//! optionally a reference forecast) ad hoc, with exactly the code the validator's `era5/score`
//! step uses, so that the numbers are the validator's.
//!
//! Per (variable selection, lead) the inputs are read with the `wx-data` readers, put on the
//! truth grid with [`wx_steps::align::truth_on_grid`] / [`wx_steps::align::onto`] and scored
//! with [`wx_steps::align::score_against_climatology`] (the variable's numbers, multi-level
//! variables aggregated with thickness weights) — the same sequence as
//! `wx_steps::era5::score_variable`. The per-level breakdown of a multi-level variable comes
//! from [`wx_scoring::score_levels`] on the same inputs (its aggregate is the variable's
//! number); the skill against a reference and the clone distance come from
//! [`wx_steps::align::score_against_reference`], level by level. Lead scores are
//! [`wx_scoring::era5_lead_score`] over the requested variables with equal weights.
//!
//! Failure handling follows the validator: a variable the forecast store lacks (or whose
//! layout is unusable, or that lacks the valid time or a level) is a failed variable
//! (`lead_component` 0, metrics `null`), never dropped. A lead whose truth is not published
//! yet (data.md §3: after the extent of the truth store's root attributes, or its chunks
//! absent) is listed in `pending_leads` and not scored, like the validator waits for it.
//! Everything else that makes an input unusable — a store that does not open, bad metadata, a
//! missing or corrupt chunk, a transport failure, an address refused by the SSRF guard, a
//! truth that will never have the time asked, a climatology without the requested data — is
//! an error of the whole command.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Duration, Utc};
use ndarray::{Axis, s};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use wx_data::Field;
use wx_data::sources::{
    ClimatologyReader, Era5Flavour, Era5Reader, MinerForecastReader, Publication,
};
use wx_data::transport::{
    BearerToken, CloudConfig, HttpStoreConfig, LimitedStorage, SourceAccess, StoreHandle,
    connect_miner_store, open_source,
};
use wx_model::{Level, VarLevel};
use wx_scoring::{
    MetricValue, ScoringConfig, StackInputs, VariableMetrics, VariableOutcome, era5_lead_score,
    score_levels,
};
use wx_steps::align::{
    AlignError, OnGrid, TruthOnGrid, onto, recycle, score_against_climatology,
    score_against_reference, truth_on_grid,
};
use wx_steps::config::TrustedLimits;
use wx_zarr::{DynStorage, ReadOptions, ZarrError};

/// How the stores may be reached.
#[derive(Debug, Clone, Default)]
pub struct StoreAccess {
    /// Allow `127.0.0.0/8` and `::1` (and plain `http://`, which local test servers speak).
    pub allow_loopback: bool,
    /// Allow plain `http://` store URLs.
    pub allow_plain_http: bool,
    /// Bearer token sent to the forecast store (miner stores require one).
    pub token: Option<String>,
}

impl StoreAccess {
    /// The hardened HTTP settings: production policy plus the switches given.
    pub fn http_config(&self) -> HttpStoreConfig {
        let mut config = HttpStoreConfig::default();
        if self.allow_loopback {
            config.address_policy = config.address_policy.allow_loopback();
            config.allow_plain_http = true;
        }
        if self.allow_plain_http {
            config.allow_plain_http = true;
        }
        config
    }

    fn secrets(&self) -> Vec<&str> {
        self.token.iter().map(String::as_str).collect()
    }
}

/// What to score.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    /// The forecast store (path or URL; miner-controlled: the SSRF guard applies).
    pub forecast: String,
    /// The truth store (miner or ARCO-ERA5 layout).
    pub truth: String,
    /// The climatology store (WeatherBench2 layout).
    pub climatology: String,
    /// An optional reference forecast (miner layout): adds `skill_ref` and `clone_distance`.
    pub reference: Option<String>,
    /// The forecast's init time.
    pub init: DateTime<Utc>,
    /// Leads in hours.
    pub leads: Vec<u32>,
    /// Variable selections (`2t`, `t`, `z500`, …), in output order.
    pub variables: Vec<VarLevel>,
    /// Network access.
    pub access: StoreAccess,
    /// The scoring constants (the validator's configuration; its ERA5 variable and lead lists
    /// are replaced by the request's, with equal variable weights).
    pub scoring: ScoringConfig,
    /// Read limits of the truth and reference stores (the validator's `data.era5_limits`).
    pub truth_limits: TrustedLimits,
    /// Read limits of the climatology store (the validator's `data.climatology_limits`).
    pub climatology_limits: TrustedLimits,
    /// How an `s3://` or `gs://` truth or reference is reached (`data.era5_access`).
    pub truth_access: SourceAccess,
    /// How an `s3://` or `gs://` climatology is reached (`data.climatology_access`).
    pub climatology_access: SourceAccess,
    /// Final ERA5 only (`data.era5_final_only`): the truth is published up to its
    /// `valid_time_stop` instead of `valid_time_stop_era5t`.
    pub final_only: bool,
}

/// The result: per-level fields, per-variable aggregates and lead scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreReport {
    /// The init time, RFC 3339.
    pub init: String,
    /// One entry per (lead, variable, level).
    pub fields: Vec<FieldScore>,
    /// One entry per (lead, variable selection).
    pub variables: Vec<VariableScore>,
    /// Lead hours → lead score (serialised with string keys, `"24"`).
    pub lead_scores: BTreeMap<u32, f64>,
    /// Leads whose truth is not published yet (not scored; empty when every lead was).
    pub pending_leads: Vec<PendingLead>,
}

/// A lead not scored because the truth store has not published its valid time yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingLead {
    /// Lead in hours.
    pub lead_hours: u32,
    /// Its valid time, RFC 3339.
    pub valid_time: String,
    /// The end of the truth store's published extent, RFC 3339 (`null`: nothing published).
    pub published_until: Option<String>,
}

/// The metrics of one level of one variable at one lead (`null` where a metric failed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldScore {
    /// Variable key (`2t`, `t`, …).
    pub variable: String,
    /// Level in hPa, 0 for a surface variable.
    pub level: Level,
    /// Lead in hours.
    pub lead_hours: u32,
    /// RMSE.
    pub rmse: Option<f64>,
    /// MSE.
    pub mse: Option<f64>,
    /// MAE.
    pub mae: Option<f64>,
    /// Bias.
    pub bias: Option<f64>,
    /// ACC against the climatology.
    pub acc: Option<f64>,
    /// Skill score against the climatology.
    pub skill_clim: Option<f64>,
    /// The climatology's own RMSE.
    pub rmse_clim: Option<f64>,
    /// Skill score against the reference (present only with a reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill_ref: Option<Option<f64>>,
    /// Clone distance MSE(f, r) (present only with a reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_distance: Option<Option<f64>>,
    /// Fraction of finite truth points where the forecast is finite.
    pub coverage: Option<f64>,
}

/// One variable selection at one lead: its (aggregated) metrics and lead component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableScore {
    /// Selection key (`2t`, `t`, `z500`).
    pub variable: String,
    /// Lead in hours.
    pub lead_hours: u32,
    /// RMSE (multi-level: root of the thickness-weighted MSE).
    pub rmse: Option<f64>,
    /// ACC.
    pub acc: Option<f64>,
    /// Skill score against the climatology.
    pub skill_clim: Option<f64>,
    /// 0.6·skill + 0.3·acc + 0.1·rmse terms; 0 for a failed variable.
    pub lead_component: f64,
    /// Why the variable failed, if it did.
    pub error: Option<String>,
}

/// Everything computed for one (variable selection, lead) from its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    /// The variable's outcome exactly as the validator's `era5/score` computes it.
    pub outcome: VariableOutcome,
    /// The levels (hPa) of the truth field; empty for a surface variable.
    pub levels: Vec<Level>,
    /// Per-level metrics against the climatology (one entry for a surface variable or a single
    /// level); `None` when the variable failed before any metric.
    pub per_level: Option<Vec<VariableMetrics>>,
    /// Per-level metrics against the reference, or why they could not be computed; `None`
    /// without a reference (or when the variable failed before any metric).
    pub reference: Option<Result<Vec<VariableMetrics>, String>>,
}

/// Scores one (variable, lead) from decoded fields: the validator's alignment and metrics.
/// CPU work; run it on the blocking pool.
pub fn score_pair(
    forecast: &Field,
    truth: &Field,
    climatology: &Field,
    reference: Option<&Field>,
    cfg: &ScoringConfig,
) -> PairScore {
    let levels = truth.levels.clone();
    // the numbers of wx_steps::era5::score_variable (for a stack, `score_against_climatology`
    // is the aggregate of `score_levels`)
    let aligned = (|| -> Result<_, AlignError> {
        let t = truth_on_grid(truth)?;
        let f = onto(forecast, &t, "forecast")?;
        let c = onto(climatology, &t, "climatology")?;
        if t.levels.len() > 1 {
            // the per-level metrics and their aggregate (what `score_against_climatology`
            // returns) from one pass of the kernel over the stack
            let inputs = StackInputs {
                forecast: f.view(),
                truth: t.values.view(),
                climatology: Some(c.view()),
                skill_vs_climatology: true,
            };
            let hpa: Vec<f64> = t.levels.iter().map(|l| f64::from(*l)).collect();
            let (per, aggregate) = score_levels(&inputs, &hpa, &t.weights, cfg)?;
            let per_level = per.iter().map(VariableMetrics::from).collect();
            return Ok((t, f, c, aggregate, Some(per_level)));
        }
        let m = score_against_climatology(f.view(), &t, c.view(), cfg)?;
        Ok((t, f, c, m.clone(), Some(vec![m])))
    })();
    let (t, f, c, metrics, per_level) = match aligned {
        Ok(x) => x,
        Err(e) => {
            return PairScore {
                outcome: VariableOutcome::Failed(e.to_string()),
                levels,
                per_level: None,
                reference: None,
            };
        }
    };
    let reference = reference.map(|r| {
        let r = onto(r, &t, "reference").map_err(|e| e.to_string())?;
        let scored = (0..t.values.len_of(Axis(0)))
            .map(|l| {
                let level_truth = TruthOnGrid {
                    grid: t.grid.clone(),
                    weights: t.weights.clone(),
                    values: level_of(&t.values, l).into(),
                    levels: t.levels.get(l).map(|x| vec![*x]).unwrap_or_default(),
                };
                score_against_reference(
                    level_of(&f, l),
                    &level_truth,
                    level_of(&c, l),
                    level_of(&r, l),
                    cfg,
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>();
        recycle(r);
        scored
    });
    recycle(f);
    recycle(c);
    PairScore {
        outcome: VariableOutcome::Scored(metrics),
        levels,
        per_level,
        reference,
    }
}

/// Level `l` of a stack as a one-level stack (a view).
fn level_of<'a>(stack: &'a OnGrid<'_>, l: usize) -> ndarray::ArrayView3<'a, f32> {
    stack.slice(s![l..l + 1, .., ..])
}

/// Opens a store from a path or URL. The forecast is miner-controlled: an `http(s)` forecast
/// goes through [`connect_miner_store`] with the token and the SSRF guard.
fn open_handle(
    role: &str,
    location: &str,
    access: &StoreAccess,
    cloud: Option<&SourceAccess>,
) -> Result<StoreHandle> {
    let miner_controlled = cloud.is_none();
    let http = access.http_config();
    let is_http = location.starts_with("http://") || location.starts_with("https://");
    let handle = if miner_controlled && is_http {
        let token = access
            .token
            .as_deref()
            .map(BearerToken::new)
            .transpose()
            .map_err(|e| anyhow!("{role} store: {e}"))?;
        connect_miner_store(location, token, &http)
    } else {
        let cloud = CloudConfig {
            access: cloud.cloned().unwrap_or_default(),
            ..CloudConfig::default()
        };
        open_source(location, &cloud, &http)
    };
    handle.map_err(|e| anyhow!("cannot open the {role} store: {e}"))
}

fn storage(handle: &StoreHandle) -> DynStorage {
    handle.zarr_storage()
}

/// The opened inputs.
struct Inputs {
    forecast: MinerForecastReader,
    truth: Era5Reader,
    climatology: ClimatologyReader,
    reference: Option<Era5Reader>,
}

async fn open_inputs(req: &ScoreRequest) -> Result<Inputs> {
    let h = open_handle("forecast", &req.forecast, &req.access, None)?;
    let name = format!("forecast {}", h.label());
    // no manifest to verify against here: every read is still bounded
    let forecast_storage: DynStorage = std::sync::Arc::new(LimitedStorage::new(h));
    let forecast = MinerForecastReader::open(forecast_storage, ReadOptions::new(name), req.init)
        .await
        .context("cannot open the forecast store")?;
    let h = open_handle("truth", &req.truth, &req.access, Some(&req.truth_access))?;
    let name = format!("truth {}", h.label());
    let truth = Era5Reader::open(storage(&h), req.truth_limits.read_options(&name))
        .await
        .context("cannot open the truth store")?;
    let h = open_handle(
        "climatology",
        &req.climatology,
        &req.access,
        Some(&req.climatology_access),
    )?;
    let name = format!("climatology {}", h.label());
    let climatology =
        ClimatologyReader::open(storage(&h), req.climatology_limits.read_options(&name))
            .await
            .context("cannot open the climatology store")?;
    let reference = match &req.reference {
        Some(location) => {
            let h = open_handle("reference", location, &req.access, Some(&req.truth_access))?;
            let name = format!("reference {}", h.label());
            Some(
                Era5Reader::open(storage(&h), req.truth_limits.read_options(&name))
                    .await
                    .context("cannot open the reference store")?,
            )
        }
        None => None,
    };
    Ok(Inputs {
        forecast,
        truth,
        climatology,
        reference,
    })
}

/// How reading the forecast of one selection ended.
enum ForecastRead {
    /// The decoded field.
    Field(Field),
    /// The variable failed on its own (scored 0, as the validator does): why, secrets removed.
    Failed(String),
    /// The store itself is unusable: the command fails.
    Unusable(anyhow::Error),
}

/// Reads the forecast of one selection.
async fn read_forecast(
    reader: &MinerForecastReader,
    v: VarLevel,
    valid: DateTime<Utc>,
    secrets: &[&str],
) -> ForecastRead {
    match reader.read(v, valid).await {
        Ok(f) => ForecastRead::Field(f),
        Err(e) => {
            let as_data = wx_steps::data::miner_read_error(&e);
            let usable = reader.usable_variables().contains(&v.variable);
            if wx_steps::inputs::fails_the_store(&as_data) || (usable && !is_selection_missing(&e))
            {
                return ForecastRead::Unusable(anyhow!(
                    "reading {v} at {} failed: {e}",
                    rfc3339(valid)
                ));
            }
            ForecastRead::Failed(wx_model::sanitize_message(&e.to_string(), secrets))
        }
    }
}

/// The reads of one selection, all at once: their large chunks decode in parallel (wx-data
/// decodes them on the blocking pool). The caller looks at the results in a fixed order, so
/// that errors are reported as if the reads had been made one after the other.
async fn read_all(
    inputs: &Inputs,
    v: VarLevel,
    valid: DateTime<Utc>,
    secrets: &[&str],
) -> (
    Result<Field, ZarrError>,
    Result<Field, ZarrError>,
    Option<Result<Field, ZarrError>>,
    ForecastRead,
) {
    let reference = async {
        match &inputs.reference {
            Some(r) => Some(r.read(v, valid).await),
            None => None,
        }
    };
    tokio::join!(
        inputs.truth.read(v, valid),
        inputs.climatology.read(v, valid),
        reference,
        read_forecast(&inputs.forecast, v, valid, secrets),
    )
}

/// The store lacks the variable, level or valid time asked for (as opposed to being unusable).
fn is_selection_missing(e: &ZarrError) -> bool {
    matches!(
        e,
        ZarrError::MissingVariable { .. }
            | ZarrError::MissingLevel { .. }
            | ZarrError::MissingTime { .. }
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn value(v: &MetricValue) -> Option<f64> {
    v.as_ref().ok().copied()
}

fn opt_value(v: &Option<MetricValue>) -> Option<f64> {
    v.as_ref().and_then(value)
}

/// Checks a request before anything is fetched.
fn check(req: &ScoreRequest) -> Result<()> {
    if req.leads.is_empty() || req.leads.contains(&0) {
        bail!("--leads needs positive lead hours (e.g. 24,48)");
    }
    if req.variables.is_empty() {
        bail!("--variables is empty");
    }
    let mut keys: Vec<String> = req.variables.iter().map(VarLevel::key).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        bail!("--variables names a selection twice");
    }
    Ok(())
}

/// The scoring configuration of a request: its variables and leads, equal weights.
pub fn request_config(req: &ScoreRequest) -> ScoringConfig {
    let mut cfg = req.scoring.clone();
    cfg.era5.variables = req.variables.iter().map(VarLevel::key).collect();
    cfg.era5.leads = req.leads.clone();
    cfg.era5.variable_weights.clear();
    cfg
}

/// Scores the request. Errors are single-cause messages naming the store and key.
pub async fn score(req: &ScoreRequest) -> Result<ScoreReport> {
    check(req)?;
    let cfg = request_config(req);
    cfg.validate()
        .map_err(|e| anyhow!("invalid scoring configuration: {e}"))?;
    let secrets = req.access.secrets();
    let inputs = open_inputs(req).await?;
    let mut report = ScoreReport {
        init: rfc3339(req.init),
        fields: Vec::new(),
        variables: Vec::new(),
        lead_scores: BTreeMap::new(),
        pending_leads: Vec::new(),
    };
    let flavour = if req.final_only {
        Era5Flavour::FinalOnly
    } else {
        Era5Flavour::Preliminary
    };
    // one read of the truth's root attributes for every lead
    let extent = inputs
        .truth
        .extent(flavour)
        .await
        .context("reading the truth store's published extent")?;
    let mut truth_variables: Vec<wx_model::Variable> =
        req.variables.iter().map(|v| v.variable).collect();
    truth_variables.sort();
    truth_variables.dedup();
    for &lead in &req.leads {
        let valid = req.init + Duration::hours(i64::from(lead));
        let published = inputs
            .truth
            .publication_within(&extent, valid, &truth_variables)
            .await
            .with_context(|| format!("checking whether the truth has {}", rfc3339(valid)))?;
        if let Publication::Pending(why) = published {
            tracing::info!(lead, %why, "truth not published yet: lead pending");
            report.pending_leads.push(PendingLead {
                lead_hours: lead,
                valid_time: rfc3339(valid),
                published_until: extent.published_until.map(rfc3339),
            });
            continue;
        }
        let mut pairs: Vec<(VarLevel, PairScore)> = Vec::new();
        for &v in &req.variables {
            let at = || format!("{v} at {}", rfc3339(valid));
            let started = std::time::Instant::now();
            let (truth, climatology, reference, forecast) =
                Box::pin(read_all(&inputs, v, valid, &secrets)).await;
            let read_time = started.elapsed();
            let truth = truth.with_context(|| format!("reading the truth of {}", at()))?;
            let climatology =
                climatology.with_context(|| format!("reading the climatology of {}", at()))?;
            let reference = match reference {
                Some(read) => Some(match read {
                    Ok(field) => Ok(field),
                    // the reference lacks this selection: its metrics are null, nothing else
                    Err(e) if is_selection_missing(&e) => Err(e.to_string()),
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("reading the reference of {}", at()));
                    }
                }),
                None => None,
            };
            let pair = match forecast {
                ForecastRead::Unusable(e) => return Err(e),
                ForecastRead::Field(forecast) => {
                    let cfg = cfg.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut pair = score_pair(
                            &forecast,
                            &truth,
                            &climatology,
                            reference.as_ref().and_then(|r| r.as_ref().ok()),
                            &cfg,
                        );
                        if let (Some(Err(missing)), Some(_)) = (&reference, &pair.per_level) {
                            pair.reference = Some(Err(missing.clone()));
                        }
                        pair
                    })
                    .await
                    .context("the scoring task failed")?
                }
                ForecastRead::Failed(message) => PairScore {
                    outcome: VariableOutcome::Failed(message),
                    levels: truth.levels.clone(),
                    per_level: None,
                    reference: None,
                },
            };
            tracing::debug!(
                variable = %v,
                lead,
                ?read_time,
                score_time = ?started.elapsed().saturating_sub(read_time),
                "scored"
            );
            pairs.push((v, pair));
        }
        let outcomes: BTreeMap<String, VariableOutcome> = pairs
            .iter()
            .map(|(v, p)| (v.key(), p.outcome.clone()))
            .collect();
        let lead_score =
            era5_lead_score(&outcomes, &cfg).map_err(|e| anyhow!("lead {lead}: {e}"))?;
        report.lead_scores.insert(lead, lead_score.score);
        for ((v, pair), scored) in pairs.iter().zip(&lead_score.variables) {
            report
                .fields
                .extend(field_rows(*v, lead, pair, req.reference.is_some()));
            let m = scored.metrics.as_ref();
            report.variables.push(VariableScore {
                variable: v.key(),
                lead_hours: lead,
                rmse: m.and_then(|m| value(&m.rmse)),
                acc: m.and_then(|m| opt_value(&m.acc)),
                skill_clim: m.and_then(|m| opt_value(&m.skill)),
                lead_component: scored.lead_component,
                error: scored.failure.as_ref().map(ToString::to_string),
            });
        }
    }
    Ok(report)
}

fn field_rows(v: VarLevel, lead: u32, pair: &PairScore, with_reference: bool) -> Vec<FieldScore> {
    let levels: Vec<Level> = if pair.levels.is_empty() {
        vec![0]
    } else {
        pair.levels.clone()
    };
    levels
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let m = pair.per_level.as_ref().and_then(|p| p.get(i));
            let r = match &pair.reference {
                Some(Ok(per)) => per.get(i),
                _ => None,
            };
            FieldScore {
                variable: v.variable.as_str().to_owned(),
                level: *level,
                lead_hours: lead,
                rmse: m.and_then(|m| value(&m.rmse)),
                mse: m.and_then(|m| value(&m.mse)),
                mae: m.and_then(|m| value(&m.mae)),
                bias: m.and_then(|m| value(&m.bias)),
                acc: m.and_then(|m| opt_value(&m.acc)),
                skill_clim: m.and_then(|m| opt_value(&m.skill)),
                rmse_clim: m.and_then(|m| opt_value(&m.rmse_clim)),
                skill_ref: with_reference.then(|| r.and_then(|r| opt_value(&r.skill))),
                clone_distance: with_reference
                    .then(|| r.and_then(|r| opt_value(&r.clone_distance))),
                coverage: m.map(|m| m.coverage),
            }
        })
        .collect()
}

fn num(x: Option<f64>) -> String {
    match x {
        None => "-".to_owned(),
        Some(v) if v == 0.0 || (1e-3..1e6).contains(&v.abs()) => format!("{v:.4}"),
        Some(v) => format!("{v:.3e}"),
    }
}

/// The report as aligned text tables: fields, variables, lead scores.
pub fn format_table(report: &ScoreReport) -> String {
    let with_ref = report.fields.iter().any(|f| f.skill_ref.is_some());
    let mut out = String::new();
    let _ = writeln!(out, "init {}", report.init);
    let _ = write!(
        out,
        "{:<5} {:>5} {:>5} {:>11} {:>11} {:>11} {:>11} {:>8} {:>10} {:>11}",
        "var", "level", "lead", "rmse", "mse", "mae", "bias", "acc", "skill_clim", "rmse_clim"
    );
    if with_ref {
        let _ = write!(out, " {:>10} {:>11}", "skill_ref", "clone_dist");
    }
    let _ = writeln!(out, " {:>9}", "coverage");
    for f in &report.fields {
        let _ = write!(
            out,
            "{:<5} {:>5} {:>5} {:>11} {:>11} {:>11} {:>11} {:>8} {:>10} {:>11}",
            f.variable,
            f.level,
            f.lead_hours,
            num(f.rmse),
            num(f.mse),
            num(f.mae),
            num(f.bias),
            num(f.acc),
            num(f.skill_clim),
            num(f.rmse_clim)
        );
        if with_ref {
            let _ = write!(
                out,
                " {:>10} {:>11}",
                num(f.skill_ref.flatten()),
                num(f.clone_distance.flatten())
            );
        }
        let _ = writeln!(out, " {:>9}", num(f.coverage));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:>5} {:>11} {:>8} {:>10} {:>14}  error",
        "variable", "lead", "rmse", "acc", "skill_clim", "lead_component"
    );
    for v in &report.variables {
        let _ = writeln!(
            out,
            "{:<8} {:>5} {:>11} {:>8} {:>10} {:>14.6}  {}",
            v.variable,
            v.lead_hours,
            num(v.rmse),
            num(v.acc),
            num(v.skill_clim),
            v.lead_component,
            v.error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:>5} {:>10}", "lead", "score");
    for (lead, s) in &report.lead_scores {
        let _ = writeln!(out, "{lead:>5} {s:>10.6}");
    }
    if !report.pending_leads.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:>5} {:<21} truth published until",
            "lead", "pending (valid time)"
        );
        for p in &report.pending_leads {
            let _ = writeln!(
                out,
                "{:>5} {:<21} {}",
                p.lead_hours,
                p.valid_time,
                p.published_until.as_deref().unwrap_or("nothing")
            );
        }
    }
    out
}
