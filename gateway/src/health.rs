//! `GET /healthz`: is the gateway up, and can it reach the catcher?

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::server::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the catcher's health service: (`serving` | `not_serving` | `unreachable`, why not).
pub async fn check(channel: &tonic::transport::Channel) -> (&'static str, Option<String>) {
    let mut client = HealthClient::new(channel.clone());
    let check = tokio::time::timeout(CHECK_TIMEOUT, client.check(HealthCheckRequest { service: String::new() })).await;
    match check {
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => ("serving", None),
        Ok(Ok(r)) => ("not_serving", Some(format!("catcher reports status {}", r.get_ref().status))),
        Ok(Err(status)) => ("unreachable", Some(status.message().to_owned())),
        Err(_) => ("unreachable", Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))),
    }
}

/// 200 when a catcher replica answers SERVING, 503 (with the reasons) otherwise. `catcher`,
/// `catcher_url` and `error` describe the first replica that serves (or the first one); every
/// replica is listed under `catchers`.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let all = state.upstreams.check().await;
    let best = all.iter().find(|h| h.error.is_none()).or(all.first());
    let code = if best.is_some_and(|h| h.error.is_none()) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "gateway": "serving",
        "catcher": best.map(|h| h.status),
        "catcher_url": best.map(|h| h.url.as_str()),
        "error": best.and_then(|h| h.error.as_deref()),
        "catchers": all,
    });
    (code, Json(body)).into_response()
}
