//! Gateway configuration: built-in defaults < TOML file < `GATEWAY_*` environment < command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use edgebackup_common::LogFormat;

/// Every setting of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP address for the dashboard and grpc-web.
    pub listen: SocketAddr,
    /// The catcher's gRPC URL.
    pub catcher_url: String,
    /// More catcher replicas (same database, same CA): calls are spread over every healthy one.
    pub catcher_urls: Vec<String>,
    /// HTTPS for the dashboard: certificate chain and key (PEM), reloaded when they change.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (behind a proxy that terminates TLS itself).
    pub allow_plaintext: bool,
    /// How an `https://` catcher is recognised: its CA certificate (PEM, e.g. the catcher's
    /// `data/ca/ca.crt`) or that CA's SHA-256 fingerprint (as `catcher enroll` prints it).
    pub catcher_ca_file: Option<PathBuf>,
    pub catcher_ca_fingerprint: Option<String>,
    /// Browser origins besides the gateway's own allowed to call grpc-web (CORS), e.g. a dev server.
    pub cors_origins: Vec<String>,
    /// How long to wait for a TCP connection to the catcher, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Open streams (Watch) get this long to finish after a shutdown signal, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Where to serve Prometheus metrics (`GET /metrics`, plain HTTP); unset: not served.
    /// Loopback only.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catcher_url: "http://127.0.0.1:50051".to_owned(),
            catcher_urls: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
            allow_plaintext: false,
            catcher_ca_file: None,
            catcher_ca_fingerprint: None,
            cors_origins: Vec::new(),
            connect_timeout_ms: 2000,
            shutdown_grace_ms: 2000,
            metrics_listen: None,
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
        }
    }
}

/// Text that documents every key, for `--help`.
pub const KEYS_HELP: &str = "\
Configuration keys (TOML file, or env GATEWAY_<KEY>; defaults in brackets):
  listen              HTTP address for the dashboard and grpc-web [127.0.0.1:8080]
  catcher_url         the catcher's gRPC URL [http://127.0.0.1:50051]
  catcher_urls        more catcher replicas; calls are spread over the healthy ones [none]
  tls_cert_file       HTTPS certificate chain (PEM), reloaded on change [none: plain HTTP, loopback only]
  tls_key_file        its private key (PEM, mode 0600) [none]
  allow_plaintext     serve plain HTTP on a non-loopback listen (a proxy terminates TLS) [false]
  catcher_ca_file     the catcher's CA certificate, for an https catcher_url [none]
  catcher_ca_fingerprint  or that CA's SHA-256 fingerprint (catcher enroll prints it) [none]
  cors_origins        other browser origins allowed to call grpc-web, e.g. [\"http://localhost:5173\"] [none]
  connect_timeout_ms  TCP connect timeout to the catcher [2000]
  shutdown_grace_ms   time open streams get after SIGTERM [2000]
  log_format          human | json [human]
  log_level           tracing filter [info]";

/// A configuration mistake, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Loads defaults < `file` (if it exists, or must exist when `required`) < `GATEWAY_*` env.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !file.exists() {
            return Err(ConfigError::Invalid { key: "--config", reason: format!("{} does not exist", file.display()) });
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("GATEWAY_"))
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        Ok(config)
    }

    /// Every catcher replica: `catcher_url`, then `catcher_urls` (duplicates left out).
    pub fn endpoints(&self) -> Vec<String> {
        edgebackup_common::endpoints(&self.catcher_url, &self.catcher_urls)
    }

    /// Checks what serde cannot; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let keyed = std::iter::once(("catcher_url", &self.catcher_url))
            .chain(self.catcher_urls.iter().map(|u| ("catcher_urls", u)));
        let mut any_https = false;
        for (key, url) in keyed {
            let invalid = |reason: String| ConfigError::Invalid { key, reason };
            let parsed: http::Uri = url.parse().map_err(|e| invalid(format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
                return Err(invalid(format!("{url:?} must look like http://HOST:PORT")));
            }
            let https = parsed.scheme_str() == Some("https");
            any_https |= https;
            if !https && !self.allow_plaintext && !parsed.host().is_some_and(edgebackup_common::is_loopback_host) {
                return Err(invalid(format!(
                    "{url:?} is plaintext to another host; use https:// with catcher_ca_file (or allow_plaintext = true)"
                )));
            }
        }
        // Served without TLS or credentials: never beyond this host.
        if self.metrics_listen.is_some_and(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::Invalid {
                key: "metrics_listen",
                reason: "must be a loopback address (plaintext, no credentials)".into(),
            });
        }
        if any_https && self.catcher_ca_file.is_none() && self.catcher_ca_fingerprint.is_none() {
            return Err(ConfigError::Invalid {
                key: "catcher_ca_file",
                reason: "an https catcher_url needs catcher_ca_file or catcher_ca_fingerprint to recognise the catcher"
                    .into(),
            });
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            let key = if self.tls_cert_file.is_none() { "tls_cert_file" } else { "tls_key_file" };
            return Err(ConfigError::Invalid { key, reason: "tls_cert_file and tls_key_file go together".into() });
        }
        if self.tls_cert_file.is_none() && !self.allow_plaintext && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key: "listen",
                reason: format!(
                    "{} is not loopback and there is no TLS: set tls_cert_file and tls_key_file \
                     (GATEWAY_TLS_CERT_FILE, GATEWAY_TLS_KEY_FILE), or allow_plaintext = true behind a TLS proxy",
                    self.listen
                ),
            });
        }
        for origin in &self.cors_origins {
            let ok = origin.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && u.path() == "/"
            }) && !origin.ends_with('/');
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "cors_origins",
                    reason: format!("{origin:?} is not an origin like http://localhost:5173"),
                });
            }
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::Invalid { key: "connect_timeout_ms", reason: "must be at least 1".into() });
        }
        Ok(())
    }

    /// The certificate files to serve HTTPS from, when configured.
    pub fn tls_files(&self) -> Option<edgebackup_common::server_tls::CertFiles> {
        Some(edgebackup_common::server_tls::CertFiles {
            cert: self.tls_cert_file.clone()?,
            key: self.tls_key_file.clone()?,
        })
    }

    /// How to verify an `https://` catcher (none for `http://`).
    pub fn catcher_tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
        use edgebackup_common::client::{Trust, tls_config};
        let invalid = |key, reason: String| ConfigError::Invalid { key, reason };
        if let Some(file) = &self.catcher_ca_file {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| invalid("catcher_ca_file", format!("{}: {e}", file.display())))?;
            return tls_config(Trust::Ca(&pem), None).map(Some).map_err(|e| invalid("catcher_ca_file", e));
        }
        match &self.catcher_ca_fingerprint {
            Some(fp) => {
                tls_config(Trust::Fingerprint(fp), None).map(Some).map_err(|e| invalid("catcher_ca_fingerprint", e))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn mistakes_name_the_key() {
        let bad = Config { catcher_url: "127.0.0.1:50051".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("catcher_url:"));
        let bad = Config { cors_origins: vec!["localhost:5173/".into()], ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("cors_origins:"));
        let bad = Config { connect_timeout_ms: 0, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("connect_timeout_ms:"));
        let bad = Config { listen: "0.0.0.0:8080".parse().unwrap(), ..Config::default() };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.starts_with("listen:") && err.contains("tls_cert_file"), "{err}");
        let mesh = Config { listen: "0.0.0.0:8080".parse().unwrap(), allow_plaintext: true, ..Config::default() };
        mesh.validate().unwrap();
        let bad = Config { catcher_url: "http://10.0.0.1:50051".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("catcher_url:"));
        let bad = Config { catcher_url: "https://catcher:50051".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("catcher_ca_file:"));
        let bad = Config { tls_cert_file: Some("c.pem".into()), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("tls_key_file:"));
        let bad = Config {
            catcher_url: "https://catcher:50051".into(),
            catcher_ca_fingerprint: Some("abc".into()),
            ..Config::default()
        };
        bad.validate().unwrap();
        assert!(bad.catcher_tls().unwrap_err().to_string().starts_with("catcher_ca_fingerprint:"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn env_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("gateway.toml", "catcher_url = \"http://10.0.0.1:50051\"\nlisten = \"127.0.0.1:9000\"")?;
            jail.set_env("GATEWAY_LISTEN", "127.0.0.1:9001");
            let c = Config::load(Path::new("gateway.toml"), true).unwrap();
            assert_eq!(c.catcher_url, "http://10.0.0.1:50051");
            assert_eq!(c.listen.port(), 9001);
            Ok(())
        });
    }
}
