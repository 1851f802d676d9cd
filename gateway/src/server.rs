//! The HTTP server: grpc-web for the exposed services, /healthz, and the dashboard.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::{HeaderName, HeaderValue, Method};
use tokio::net::TcpListener;
use tonic_web::GrpcWebLayer;
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::metrics::{Metrics, ServiceLabel};
use crate::proxy::{EXPOSED_SERVICES, Forward, channel};
use crate::upstream::Upstreams;
use crate::{assets, health, session};

/// How often every catcher replica's health is checked (with more than one).
const HEALTH_EVERY: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub upstreams: Upstreams,
    pub sessions: crate::session::SharedSessions,
    /// Served over HTTPS (cookies get `Secure`).
    pub tls: bool,
}

/// The whole application, without a listener (so tests can drive it).
pub fn app(config: &Config) -> anyhow::Result<Router> {
    app_with(config, &upstreams(config)?, &Arc::default())
}

/// Lazily connected channels to every catcher replica.
fn upstreams(config: &Config) -> anyhow::Result<Upstreams> {
    let tls = config.catcher_tls()?;
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    Upstreams::new(&config.endpoints(), |url| channel(url, timeout, tls.clone())).map_err(anyhow::Error::msg)
}

/// The application forwarding to `upstreams`, counting grpc-web calls into `metrics`.
fn app_with(config: &Config, upstreams: &Upstreams, metrics: &Arc<Metrics>) -> anyhow::Result<Router> {
    let sessions = crate::session::SharedSessions::default();
    let grpc_web = GrpcWebLayer::new().layer(Forward::new(upstreams.clone(), sessions.clone()));
    let mut grpc = Router::new();
    for service in EXPOSED_SERVICES {
        let calls = metrics.calls.get_or_create(&ServiceLabel { service }).clone();
        let counted = tower::ServiceBuilder::new()
            .map_request(move |r: axum::extract::Request| {
                calls.inc();
                r
            })
            .service(grpc_web.clone());
        grpc = grpc.route_service(&format!("/{service}/{{method}}"), counted);
    }
    if !config.cors_origins.is_empty() {
        grpc = grpc.layer(cors(&config.cors_origins)?);
    }
    let state = AppState { upstreams: upstreams.clone(), sessions, tls: config.tls_files().is_some() };
    let api = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/login", post(session::login))
        .route("/api/session", get(session::current))
        .route("/api/logout", post(session::logout))
        .with_state(state);
    Ok(api.merge(grpc).fallback(assets::serve))
}

/// CORS for grpc-web from other origins. Trailers must be exposed or every error reads
/// "missing trailer" in the browser.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins.iter().map(|o| HeaderValue::from_str(o)).collect::<Result<Vec<_>, _>>()?;
    let allow = ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "connect-protocol-version"];
    let expose = ["grpc-status", "grpc-message", "grpc-status-details-bin"];
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(allow.map(HeaderName::from_static))
        .expose_headers(expose.map(HeaderName::from_static))
        .max_age(Duration::from_secs(3600)))
}

/// Serves until `shutdown` resolves; open streams then get `shutdown_grace_ms` to end.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let upstreams = upstreams(&config)?;
    let metrics = Arc::new(Metrics::default());
    let app = app_with(&config, &upstreams, &metrics)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    // With several replicas, a dead one is noticed before calls are sent to it.
    if upstreams.len() > 1 {
        tokio::spawn(upstreams.clone().watch(HEALTH_EVERY, stopped.clone()));
    }
    if let Some(addr) = config.metrics_listen {
        let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("metrics_listen {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics served at /metrics");
        tokio::spawn(crate::metrics::serve(listener, metrics, upstreams.clone(), stopped.clone()));
    }
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let server = async {
        match config.tls_files() {
            Some(files) => {
                let tls = crate::tls::server_config(files, stopped.clone())?;
                let listener = crate::tls::TlsListener::new(listener, tls, stopped.clone())?;
                axum::serve(listener, app).with_graceful_shutdown(stopped.clone().cancelled_owned()).await?;
            }
            None => {
                if config.allow_plaintext && !config.listen.ip().is_loopback() {
                    tracing::warn!(listen = %config.listen, "serving plain HTTP off loopback (allow_plaintext): TLS must be terminated in front of the gateway");
                }
                axum::serve(listener, app).with_graceful_shutdown(stopped.clone().cancelled_owned()).await?;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        result = server => result?,
        // A Watch stream never ends by itself; don't let it hold the process.
        _ = async { stopped.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::info!("open streams cut after the shutdown grace period");
        }
    }
    tracing::info!("gateway stopped");
    Ok(())
}
