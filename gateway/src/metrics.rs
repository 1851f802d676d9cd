//! `GET /metrics` on `metrics_listen` (loopback only, plain HTTP): grpc-web calls per exposed
//! service, and whether the catcher answers its health check (asked at each scrape).

use std::sync::Arc;

use crate::upstream::Upstreams;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// One of `proxy::EXPOSED_SERVICES`.
    pub service: &'static str,
}

/// The gateway's metrics. Cheap to share (atomics inside).
pub struct Metrics {
    registry: Registry,
    /// grpc-web calls forwarded, per service.
    pub calls: Family<ServiceLabel, Counter>,
    catcher_up: Gauge,
    replicas_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let calls = Family::<ServiceLabel, Counter>::default();
        let catcher_up = Gauge::default();
        let mut registry = Registry::with_prefix("edgebackup_gateway");
        registry.register("grpc_web_calls", "grpc-web calls forwarded to the catcher, per service", calls.clone());
        registry.register(
            "catcher_up",
            "1 when a catcher replica answered its health check SERVING",
            catcher_up.clone(),
        );
        let replicas_up = Gauge::default();
        registry.register(
            "catcher_replicas_up",
            "catcher replicas answering their health check SERVING",
            replicas_up.clone(),
        );
        Self { registry, calls, catcher_up, replicas_up }
    }
}

/// Serves until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    upstreams: Upstreams,
    stop: CancellationToken,
) {
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state((metrics, upstreams));
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the metrics server stopped");
    }
}

async fn scrape(
    axum::extract::State((metrics, upstreams)): axum::extract::State<(Arc<Metrics>, Upstreams)>,
) -> Response {
    let up = upstreams.check().await.iter().filter(|h| h.error.is_none()).count();
    metrics.catcher_up.set(i64::from(up > 0));
    metrics.replicas_up.set(i64::try_from(up).unwrap_or(i64::MAX));
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &metrics.registry) {
        Ok(()) => {
            ([(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
