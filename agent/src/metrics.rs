//! `GET /metrics` of the daemon (`metrics_listen`, loopback only): read from the state dir at
//! each scrape (the same facts `agent status` shows): the outbox and its oldest event's age,
//! packages and bytes by status, the newest completed backup per folder, the link, the brake,
//! the last scrub; and what this process uploaded and restored (counters). Labels are bounded: statuses and the configured folders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, PAUSED_KEY, SAFETY_KEY};
use crate::link::{LINK_KEY, LinkStatus};
use crate::safety::SafetyStatus;
use crate::scrub::{SCRUB_KEY, ScrubStatus};
use crate::state::{LocalStatus, State, now_ms};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FolderLabel {
    folder: String,
}

/// Bytes this process wrote to stations in verified copies, and restored onto disk: counters
/// (they start at zero with the process, as Prometheus counters do).
static UPLOADED: AtomicU64 = AtomicU64::new(0);
static RESTORED: AtomicU64 = AtomicU64::new(0);

/// A package's verified copies were written: its size once per copy.
pub fn count_uploaded(bytes: u64) {
    UPLOADED.fetch_add(bytes, Ordering::Relaxed);
}

/// A restore wrote this many bytes of files.
pub fn count_restored(bytes: u64) {
    RESTORED.fetch_add(bytes, Ordering::Relaxed);
}

/// Serves until `stop`.
pub async fn serve(listener: tokio::net::TcpListener, engine: Arc<Engine>, stop: CancellationToken) {
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(engine);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the metrics server stopped");
    }
}

async fn scrape(axum::extract::State(engine): axum::extract::State<Arc<Engine>>) -> Response {
    let folders: Vec<String> = engine.config.folders.iter().map(|f| f.path.display().to_string()).collect();
    let state = engine.state.clone();
    match tokio::task::spawn_blocking(move || render(&state, &folders)).await {
        Ok(Ok(body)) => {
            ([(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], body).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the state could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, "the state could not be read\n").into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The exposition, read from `state`; `folders` are the watched folders as configured.
pub fn render(state: &State, folders: &[String]) -> anyhow::Result<String> {
    let mut r = Registry::with_prefix("edgebackup_agent");
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    let float = |v: f64| {
        let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        g.set(v);
        g
    };
    let now = now_ms();
    let outbox = state.outbox_len()?;
    let oldest =
        state.pending(0, 1)?.first().and_then(|e| e.at).map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
    r.register("outbox_events", "Events waiting for the catcher's acknowledgement", gauge(clamp(outbox)));
    let age = oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
    r.register_with_unit(
        "outbox_oldest_event_age",
        "Age of the oldest unacknowledged event (0: none)",
        Unit::Seconds,
        float(age),
    );

    let packages: Family<StatusLabel, Gauge> = Family::default();
    let bytes: Family<StatusLabel, Gauge> = Family::default();
    let last: Family<FolderLabel, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    for s in ["uploading", "completed", "failed"] {
        packages.get_or_create(&StatusLabel { status: s }).set(0);
        bytes.get_or_create(&StatusLabel { status: s }).set(0);
    }
    for f in folders {
        last.get_or_create(&FolderLabel { folder: f.clone() }).set(0.0);
    }
    for p in state.packages()? {
        let status = match p.status {
            LocalStatus::Uploading => "uploading",
            LocalStatus::Completed => "completed",
            LocalStatus::Failed => "failed",
        };
        packages.get_or_create(&StatusLabel { status }).inc();
        bytes.get_or_create(&StatusLabel { status }).inc_by(clamp(p.size));
        if p.status == LocalStatus::Completed
            && folders.contains(&p.folder)
            && let Some(done) = p.finished_at_ms
        {
            let g = last.get_or_create(&FolderLabel { folder: p.folder.clone() });
            if done as f64 / 1000.0 > g.get() {
                g.set(done as f64 / 1000.0);
            }
        }
    }
    r.register("packages", "Packages this agent made, by status", packages);
    r.register_with_unit("package", "Bytes of this agent's packages, by status", Unit::Bytes, bytes);
    r.register(
        "last_backup_timestamp_seconds",
        "When the newest completed backup of each folder finished (Unix seconds; 0: none yet)",
        last,
    );

    let link: LinkStatus = state.meta(LINK_KEY)?.unwrap_or_default();
    let safety: SafetyStatus = state.meta(SAFETY_KEY)?.unwrap_or_default();
    let paused: bool = state.meta(PAUSED_KEY)?.unwrap_or(false);
    r.register("connected", "1 while the stream to the catcher is open", gauge(i64::from(link.connected)));
    r.register("stopped_for_safety", "1 while the panic brake holds uploads", gauge(i64::from(safety.stopped)));
    r.register("paused", "1 while the catcher has paused uploads", gauge(i64::from(paused)));
    let scrub: Option<ScrubStatus> = state.meta(SCRUB_KEY)?;
    let scrub = scrub.unwrap_or_default();
    r.register("scrub_damaged_copies", "Copies the last scrub found damaged", gauge(clamp(scrub.damaged)));
    r.register(
        "last_scrub_timestamp_seconds",
        "When the last scrub ended (Unix seconds; 0: none yet)",
        float(scrub.finished_at_ms as f64 / 1000.0),
    );
    let counter = |v: u64| {
        let c: prometheus_client::metrics::counter::Counter = Default::default();
        c.inc_by(v);
        c
    };
    r.register_with_unit(
        "uploaded",
        "Bytes written to stations in verified copies by this process (each copy counts)",
        Unit::Bytes,
        counter(UPLOADED.load(Ordering::Relaxed)),
    );
    r.register_with_unit(
        "restored",
        "Bytes of files restored by this process",
        Unit::Bytes,
        counter(RESTORED.load(Ordering::Relaxed)),
    );
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &r)?;
    Ok(out)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
