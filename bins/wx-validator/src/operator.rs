//! Operator endpoints: `/metrics` in the Prometheus text format, `/healthz` (liveness: the
//! process serves requests) and `/readyz` (readiness: the daemon can claim work — the database
//! answers, no migration is pending, the dispatcher's last claim round succeeded).

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_store::Db;

/// Labels of the step-count gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    kind: String,
    status: String,
}

/// Labels of `wx_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    git_commit: String,
    rustc: String,
}

/// What this binary was built from (the `wx_build_info` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate version.
    pub version: &'static str,
    /// The git commit (12 hex digits), or `unknown` when built outside a git checkout.
    pub git_commit: &'static str,
    /// The rustc version, or `unknown`.
    pub rustc: &'static str,
}

/// This binary's build information (set by `build.rs`).
pub const BUILD_INFO: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    git_commit: match option_env!("WX_BUILD_GIT_COMMIT") {
        Some(c) => c,
        None => "unknown",
    },
    rustc: match option_env!("WX_BUILD_RUSTC") {
        Some(r) => r,
        None => "unknown",
    },
};

/// How long a readiness probe (or the database part of a scrape) waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoints read.
pub struct OperatorState {
    db: Db,
    registry: Registry,
    steps: Family<StepLabels, Gauge>,
    claims_ok: Option<Gauge>,
}

impl OperatorState {
    /// A registry with the given metric sources registered, plus `wx_build_info` and the
    /// database-derived gauges. `claims_ok` is the dispatcher's "last claim round succeeded"
    /// gauge (`SchedulerMetrics::claims_ok`); without it `/readyz` checks the database only.
    pub fn new(
        db: Db,
        claims_ok: Option<Gauge>,
        register: impl FnOnce(&mut Registry),
    ) -> Arc<OperatorState> {
        let mut registry = Registry::default();
        register(&mut registry);
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: BUILD_INFO.version.to_owned(),
                git_commit: BUILD_INFO.git_commit.to_owned(),
                rustc: BUILD_INFO.rustc.to_owned(),
            })
            .set(1);
        registry.register(
            "wx_build_info",
            "Build of this process: version, git commit and rustc (value 1)",
            build,
        );
        let steps = Family::<StepLabels, Gauge>::default();
        registry.register(
            "wx_steps",
            "Steps of the latest run by kind and status (from the database)",
            steps.clone(),
        );
        Arc::new(OperatorState {
            db,
            registry,
            steps,
            claims_ok,
        })
    }
}

/// The step counts of the latest run, or `None` when the database does not answer in time
/// (the scrape then shows the last counts: a database outage must not fail the scrape).
async fn latest_step_counts(db: &Db) -> Option<wx_store::StepCounts> {
    let read = async {
        let run = db.runs().latest().await.ok()??;
        db.steps().counts(Some(wx_model::RunId(run.id))).await.ok()
    };
    tokio::time::timeout(PROBE_TIMEOUT, read).await.ok()?
}

async fn metrics(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    if let Some(counts) = latest_step_counts(&state.db).await {
        state.steps.clear();
        for (kind, by_status) in &counts.0 {
            for (status, n) in by_status {
                state
                    .steps
                    .get_or_create(&StepLabels {
                        kind: kind.clone(),
                        status: status.clone(),
                    })
                    .set(*n);
            }
        }
    }
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Liveness: the process runs and serves requests. It does not look at the database: an
/// outage of the database must not get the validator restarted (`/readyz` reports it).
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Why the daemon cannot claim work now; empty when it can.
async fn not_ready_reasons(state: &OperatorState) -> Vec<String> {
    let mut reasons = Vec::new();
    match tokio::time::timeout(PROBE_TIMEOUT, state.db.pending_migrations()).await {
        Ok(Ok(pending)) if pending.is_empty() => {}
        Ok(Ok(pending)) => reasons.push(format!(
            "migrations pending: {}; run `wx-validator migrate`",
            pending.join(", ")
        )),
        Ok(Err(e)) => reasons.push(format!("database unavailable: {e}")),
        Err(_) => reasons.push(format!(
            "database unavailable: no answer within {PROBE_TIMEOUT:?}"
        )),
    }
    if let Some(gauge) = &state.claims_ok
        && gauge.get() != 1
    {
        reasons.push(
            "the dispatcher's last claim round failed or has not run yet (see the logs)".into(),
        );
    }
    reasons
}

async fn readyz(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    let reasons = not_ready_reasons(&state).await;
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", reasons.join("\n")),
        )
    }
}

/// Serves the endpoints on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: &str,
    state: Arc<OperatorState>,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}
