//! Operator endpoints: `/metrics` in the Prometheus text format and `/healthz`.

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
use tokio_util::sync::CancellationToken;
use wx_store::Db;

/// Labels of the step-count gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    kind: String,
    status: String,
}

/// What the endpoints read.
pub struct OperatorState {
    db: Db,
    registry: Registry,
    steps: Family<StepLabels, Gauge>,
}

impl OperatorState {
    /// A registry with the given metric sources registered, plus the database-derived gauges.
    pub fn new(db: Db, register: impl FnOnce(&mut Registry)) -> Arc<OperatorState> {
        let mut registry = Registry::default();
        register(&mut registry);
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
        })
    }
}

async fn metrics(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    if let Ok(Some(run)) = state.db.runs().latest().await
        && let Ok(counts) = state.db.steps().counts(Some(wx_model::RunId(run.id))).await
    {
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

async fn healthz(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    match state.db.runs().latest().await {
        Ok(_) => (StatusCode::OK, "ok\n".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}\n"),
        ),
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
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    tracing::info!(%bound, "serving /metrics and /healthz");
    Ok(bound)
}
