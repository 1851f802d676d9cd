//! `GET /metrics` on `metrics_listen` (loopback only, plain HTTP): the Prometheus text
//! exposition of [`crate::metrics::Metrics`], its fleet gauges taken from the status view
//! (cached between commits, so a scrape costs no scan).

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::service::State;

/// Serves until `stop`.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, stop: CancellationToken) {
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics)).with_state(state);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the metrics server stopped");
    }
}

async fn metrics(Extract(state): Extract<Arc<State>>) -> Response {
    let generation = state.writer.generation();
    match state.status_cache.get(&state.store, state.started_at, generation).await {
        Ok(status) => {
            let body = state.writer.metrics().render(&status);
            ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the status view could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, "the status view could not be read\n").into_response()
        }
    }
}
