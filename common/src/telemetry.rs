//! Logs to stderr, and OpenTelemetry traces and logs over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (a collector beside the process: SigNoz, the OTel
//! collector, Jaeger). The exporters read the standard `OTEL_*` variables themselves
//! (`OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`, …). The endpoint must be on loopback: spans
//! and logs name sources and paths and travel in clear, so a remote collector is reached through
//! a local one (the OpenTelemetry collector's usual deployment).

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::LogFormat;

/// The variable that turns exporting on.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the exporters running; dropping it flushes what is buffered (bounded by the SDK's
/// export timeout), so keep it until `main` returns.
#[must_use = "dropping it stops exporting"]
pub struct Telemetry {
    providers: Option<(SdkTracerProvider, SdkLoggerProvider)>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some((traces, logs)) = self.providers.take() {
            // Errors here have nowhere left to go: the subscriber is shutting down too.
            let _ = traces.shutdown();
            let _ = logs.shutdown();
        }
    }
}

/// Whether `endpoint` is an http URL to a loopback host (no user information that could hide
/// the real host).
fn loopback_endpoint(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.parse::<tonic::codegen::http::Uri>() else { return false };
    if uri.scheme_str() != Some("http") || uri.authority().is_none_or(|a| a.as_str().contains('@')) {
        return false;
    }
    crate::is_loopback_host(uri.host().unwrap_or(""))
}

/// The exporters, when `OTEL_EXPORTER_OTLP_ENDPOINT` asks for them. Needs a Tokio runtime.
fn providers(service: &str) -> Result<Option<(SdkTracerProvider, SdkLoggerProvider)>, String> {
    let Ok(endpoint) = std::env::var(ENDPOINT_VAR) else { return Ok(None) };
    if endpoint.trim().is_empty() {
        return Ok(None);
    }
    if !loopback_endpoint(&endpoint) {
        return Err(format!(
            "{ENDPOINT_VAR}={endpoint:?}: must be http:// to a loopback collector (spans name sources and paths); \
             run a collector beside the process and let it forward"
        ));
    }
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let resource = resource.build();
    use opentelemetry_otlp::WithExportConfig;
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| format!("{ENDPOINT_VAR}: {e}"))?;
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("{ENDPOINT_VAR}: {e}"))?;
    let traces = SdkTracerProvider::builder().with_batch_exporter(spans).with_resource(resource.clone()).build();
    let logger = SdkLoggerProvider::builder().with_batch_exporter(logs).with_resource(resource).build();
    Ok(Some((traces, logger)))
}

/// Sends logs to stderr (stdout is for what scripts read), colour only on a terminal without
/// `NO_COLOR`; an invalid `level` filter falls back to `info` rather than silencing everything.
/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans and log records also go to that collector as
/// `service` (unless `OTEL_SERVICE_NAME` says otherwise). Call inside a Tokio runtime.
pub fn init(format: LogFormat, level: &str, service: &str) -> Telemetry {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Human => fmt.boxed(),
    };
    let (providers, problem) = match providers(service) {
        Ok(p) => (p, None),
        Err(e) => (None, Some(e)),
    };
    // The exporters' own transport must not feed their logs back into them.
    let quiet_transport = || {
        Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target("opentelemetry", LevelFilter::OFF)
            .with_target("opentelemetry_sdk", LevelFilter::OFF)
            .with_target("opentelemetry_otlp", LevelFilter::OFF)
            .with_target("tonic", LevelFilter::OFF)
            .with_target("h2", LevelFilter::OFF)
            .with_target("hyper", LevelFilter::OFF)
            .with_target("hyper_util", LevelFilter::OFF)
            .with_target("tower", LevelFilter::OFF)
    };
    let otel_traces = providers.as_ref().map(|(traces, _)| {
        tracing_opentelemetry::layer().with_tracer(traces.tracer(service.to_owned())).with_filter(quiet_transport())
    });
    let otel_logs = providers.as_ref().map(|(_, logs)| {
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(logs).with_filter(quiet_transport())
    });
    tracing_subscriber::registry().with(filter).with(fmt).with(otel_traces).with(otel_logs).init();
    if let Some(problem) = problem {
        tracing::error!("OpenTelemetry export is off: {problem}");
    } else if providers.is_some() {
        tracing::info!(service, "exporting spans and logs over OTLP");
    }
    Telemetry { providers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_to_loopback_collectors() {
        assert!(loopback_endpoint("http://127.0.0.1:4317"));
        assert!(loopback_endpoint("http://localhost:4317"));
        assert!(loopback_endpoint("http://[::1]:4317/"));
        assert!(!loopback_endpoint("http://collector.example.com:4317"));
        assert!(!loopback_endpoint("https://127.0.0.1:4317"), "no TLS client here: refuse rather than fail later");
        assert!(!loopback_endpoint("127.0.0.1:4317"));
        assert!(!loopback_endpoint("http://127.0.0.1:4317@collector.example.com"), "user info hides the host");
    }
}
