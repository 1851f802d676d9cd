//! What every Edge Backup binary shares: log setup, the shutdown signal, connecting to the catcher.

pub mod backoff;
pub mod client;
pub mod files;
pub mod server_tls;
pub mod telemetry;

use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

pub use telemetry::Telemetry;

/// Whether `host` (a name, an IP address, or a bracketed IPv6 address) is this machine:
/// `localhost` or a loopback address. Plaintext is allowed only there.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Logs to stderr and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans and logs to that
/// collector as `service` (see [`telemetry`]). Keep the answer until `main` returns.
pub fn init_logging(format: LogFormat, level: &str, service: &str) -> Telemetry {
    telemetry::init(format, level, service)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Catcher replicas in the order a client tries them: `primary`, then `more`, each once.
pub fn endpoints(primary: &str, more: &[String]) -> Vec<String> {
    let mut out = vec![primary.to_owned()];
    for u in more {
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    out
}
