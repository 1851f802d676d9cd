//! Gateway configuration: built-in defaults < TOML file < `GATEWAY_*` environment < command line.

use std::{net::SocketAddr, path::Path};

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
    /// Browser origins besides the gateway's own allowed to call grpc-web (CORS), e.g. a dev server.
    pub cors_origins: Vec<String>,
    /// How long to wait for a TCP connection to the catcher, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Open streams (Watch) get this long to finish after a shutdown signal, in milliseconds.
    pub shutdown_grace_ms: u64,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catcher_url: "http://127.0.0.1:50051".to_owned(),
            cors_origins: Vec::new(),
            connect_timeout_ms: 2000,
            shutdown_grace_ms: 2000,
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

    /// Checks what serde cannot; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url: http::Uri = self
            .catcher_url
            .parse()
            .map_err(|e| ConfigError::Invalid { key: "catcher_url", reason: format!("{:?}: {e}", self.catcher_url) })?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(ConfigError::Invalid {
                key: "catcher_url",
                reason: format!("{:?} must look like http://HOST:PORT", self.catcher_url),
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
