//! Catcher configuration: built-in defaults < TOML file < `CATCHER_*` environment < command line.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use edgebackup_common::LogFormat;

use crate::domain::{AlertKind, StationKind, Tier};
pub use crate::notify::ChannelConfig;
use std::collections::BTreeMap;

/// A station declared in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationConfig {
    pub id: String,
    pub tier: Tier,
    pub kind: StationKind,
    pub uri: String,
}

/// Every setting of the catcher. `--help` and deploy/catcher.example.toml document each key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listen address; loopback unless deliberately exposed.
    pub listen: SocketAddr,
    /// sqlite://PATH?mode=rwc or postgres://USER@HOST/DB.
    pub database_url: String,
    /// Log format: human or json.
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "catcher=debug,info".
    pub log_level: String,
    /// Preset written as the rule sets on first start: cloud, onprem, cost or demo.
    pub initial_preset: String,
    /// How often agents send heartbeats, in seconds.
    pub heartbeat_interval_secs: u64,
    /// A stream silent for this many seconds is considered dead and closed.
    pub agent_timeout_secs: u64,
    /// How long an agent has to answer a command before it is re-sent, in seconds.
    pub command_lease_secs: u64,
    /// Replicas on one PostgreSQL database: how long the singleton lease (scheduler, drills,
    /// alerts) lasts unrenewed, in seconds; the holder renews it every third of that.
    pub lease_ttl_secs: u64,
    /// A replica silent this many seconds is gone: its agents' sources are marked disconnected.
    pub replica_timeout_secs: u64,
    /// Agents admitted (Hello) per second; more are told when to come back (a reconnect storm
    /// is taken at this pace).
    pub hello_rate_per_sec: u32,
    /// Devices enrolled per second; more are told to retry.
    pub enroll_rate_per_sec: u32,
    /// How long the changes feed keeps its rows, in seconds (a replica further behind re-syncs
    /// its live views from a snapshot).
    pub changes_keep_secs: u64,
    /// How often the tier scheduler looks for due packages, in milliseconds.
    pub scheduler_interval_ms: u64,
    /// Most packages the scheduler moves in one pass.
    pub scheduler_batch: u64,
    /// Most queued writes applied in one transaction (group commit).
    pub batch_max_ops: usize,
    /// Largest accepted gRPC message, in bytes.
    pub max_message_bytes: usize,
    /// Database connection pool size.
    pub database_max_connections: u32,
    /// Live changes buffered per Watch subscriber before it is re-synced with a snapshot.
    pub watch_buffer: usize,
    /// Memory one Watch subscriber's waiting events may cost (its snapshot included), in bytes.
    pub watch_subscriber_bytes: usize,
    /// Memory all Watch subscribers' waiting events may cost together, in bytes.
    pub watch_total_bytes: usize,
    /// Watch streams one credential may hold open at once.
    pub watch_streams_per_credential: usize,
    /// Seconds between scheduled restore drills (0: only on demand).
    pub restore_drill_interval_secs: u64,
    /// Packages restored and verified per drill.
    pub restore_drill_sample: u32,
    /// Seconds between compaction rounds (0: off).
    pub compaction_interval_secs: u64,
    /// Packages younger than this are never compacted, in seconds.
    pub compaction_min_age_secs: u64,
    /// A package is compacted when the files still needed from it are at most this share of
    /// its bytes, in percent (1..=99).
    pub compaction_max_live_percent: u32,
    /// Most connections open at once; further ones wait in the listen backlog (logged).
    pub max_connections: usize,
    /// A connection that has not begun HTTP/2 (or HTTP/1) within this many seconds is closed.
    pub handshake_timeout_secs: u64,
    /// Where the catcher keeps its CA (`ca/`) and, unless configured, its TLS certificate (`tls/`).
    pub data_dir: PathBuf,
    /// The server certificate chain (PEM) and its key; reloaded when the files change. Unset:
    /// a certificate for the loopback names, made by the catcher's CA in `data_dir/tls`.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Accept plaintext from any peer, not only loopback ones (a mesh that terminates TLS).
    pub allow_plaintext: bool,
    /// How long an agent's certificate holds (it renews itself before then), in seconds.
    pub agent_credential_ttl_secs: u64,
    /// Protected retention: a change that would delete data sooner (a shorter rule, a package
    /// deletion) waits this many seconds as a pending change any operator may cancel, and
    /// expiry keeps what any rule set in force this long ago would keep. No API lowers it;
    /// 0 turns the protection off (tests; logged as a warning).
    pub protection_delay_secs: u64,
    /// Where to serve Prometheus metrics (`GET /metrics`, plain HTTP); unset: not served.
    /// Loopback only: scrape it from the same host, or put a proxy with TLS and auth in front.
    pub metrics_listen: Option<SocketAddr>,
    /// Also expose per-source series (connected, RPO age, last backup): one per source, so for
    /// fleets of up to a few hundred sources.
    pub metrics_per_source: bool,
    /// How often alert conditions are evaluated, in seconds.
    pub alert_interval_secs: u64,
    /// An agent not connected for this long raises agent_silent, in seconds.
    pub alert_agent_silent_secs: u64,
    /// A package whose tier move failed this many times in a row raises move_failing.
    pub alert_move_failures: u32,
    /// A channel whose oldest waiting notification failed this many times raises channel_failing.
    pub alert_channel_failures: u32,
    /// Alert kinds not evaluated (e.g. ["pending_change"]).
    pub alerts_disabled: Vec<AlertKind>,
    /// How often the whole journal is verified, in seconds (every round checks new events).
    pub journal_verify_interval_secs: u64,
    /// A notification not delivered within this many seconds is given up (kept for the record).
    pub notification_max_age_secs: u64,
    /// First retry of a failed delivery after this many seconds, doubling up to an hour.
    pub notification_retry_secs: u64,
    /// RPO per source in seconds, over its package types' (a TOML table source = secs).
    pub rpo_by_source: BTreeMap<String, u64>,
    /// Notification channels; TOML [[channels]] tables.
    pub channels: Vec<ChannelConfig>,
    /// Stations known to the catcher.
    pub stations: Vec<StationConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database_url: "sqlite://data/catcher.db?mode=rwc".to_owned(),
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            initial_preset: "cloud".to_owned(),
            heartbeat_interval_secs: 10,
            agent_timeout_secs: 35,
            command_lease_secs: 60,
            lease_ttl_secs: 10,
            replica_timeout_secs: 30,
            changes_keep_secs: 600,
            hello_rate_per_sec: 2000,
            enroll_rate_per_sec: 200,
            scheduler_interval_ms: 1000,
            scheduler_batch: 1000,
            batch_max_ops: 4096,
            max_message_bytes: 4 * 1024 * 1024,
            database_max_connections: 8,
            watch_buffer: 16_384,
            watch_subscriber_bytes: 32 << 20,
            watch_total_bytes: 128 << 20,
            watch_streams_per_credential: 8,
            restore_drill_interval_secs: 86_400,
            restore_drill_sample: 3,
            compaction_interval_secs: 3600,
            compaction_min_age_secs: 7 * 86_400,
            compaction_max_live_percent: 25,
            max_connections: 50_000,
            handshake_timeout_secs: 5,
            data_dir: PathBuf::from("data"),
            tls_cert_file: None,
            tls_key_file: None,
            allow_plaintext: false,
            metrics_listen: None,
            metrics_per_source: false,
            agent_credential_ttl_secs: 30 * 86_400,
            protection_delay_secs: 86_400,
            alert_interval_secs: 30,
            alert_agent_silent_secs: 3600,
            alert_move_failures: 3,
            alert_channel_failures: 5,
            alerts_disabled: Vec::new(),
            journal_verify_interval_secs: 3600,
            notification_max_age_secs: 7 * 86_400,
            notification_retry_secs: 10,
            rpo_by_source: BTreeMap::new(),
            channels: Vec::new(),
            stations: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("log_format", &self.log_format)
            .field("initial_preset", &self.initial_preset)
            .field("stations", &self.stations.len())
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// A configuration mistake, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Text that documents every key, for `--help`.
pub const KEYS_HELP: &str = "\
Configuration keys (TOML file, or env CATCHER_<KEY>; defaults in brackets):
  listen                   gRPC address [127.0.0.1:50051]
  database_url             sqlite://PATH?mode=rwc or postgres://USER@HOST/DB [sqlite://data/catcher.db?mode=rwc]
  database_url_file        read database_url from this file (keeps passwords out of env)
  database_max_connections connection pool size [8]
  log_format               human | json [human]
  log_level                tracing filter, e.g. info or catcher=debug [info]
  initial_preset           rule sets written on first start: cloud | onprem | cost | demo [cloud]
  heartbeat_interval_secs  agent heartbeat period [10]
  agent_timeout_secs       close a silent agent stream after this long [35]
  command_lease_secs       re-send an unanswered command after this long [60]
  lease_ttl_secs           replicas: the singleton lease (scheduler, drills, alerts) lasts this long unrenewed [10]
  replica_timeout_secs     replicas: one silent this long is gone, its agents marked disconnected [30]
  changes_keep_secs        replicas: how long the changes feed keeps its rows [600]
  hello_rate_per_sec       agents admitted per second; more are told when to come back [2000]
  enroll_rate_per_sec      devices enrolled per second; more are told to retry [200]
  scheduler_interval_ms    tier scheduler period [1000]
  scheduler_batch          most packages moved per scheduler pass [1000]
  batch_max_ops            most writes per group-commit transaction [4096]
  max_message_bytes        largest accepted gRPC message [4194304]
  watch_buffer             live changes buffered per Watch subscriber before a re-sync [16384]
  watch_subscriber_bytes   memory one Watch subscriber's waiting events may cost, snapshot included [33554432]
  watch_total_bytes        memory all Watch subscribers' waiting events may cost together [134217728]
  watch_streams_per_credential  Watch streams one credential may hold open [8]
  restore_drill_interval_secs  scheduled restore drills by a mover agent; 0: only on demand [86400]
  restore_drill_sample     packages restored and verified per drill [3]
  compaction_interval_secs re-package the few live files of old packages, every; 0: off [3600]
  compaction_min_age_secs  packages younger than this are never compacted [604800]
  compaction_max_live_percent  compact when the files still needed are at most this share of a package's bytes [25]
  max_connections          most connections open at once; more wait, and it is logged [50000]
  handshake_timeout_secs   close connections that have not begun HTTP/2 within this long [5]
  data_dir                 the CA (ca/) and the catcher's own TLS certificate (tls/) [data]
  tls_cert_file            server certificate chain, PEM; reloaded on change [a loopback certificate in data_dir/tls]
  tls_key_file             its private key, PEM, mode 0600
  allow_plaintext          accept plaintext from any peer, not only loopback (TLS ends in front of it) [false]
  agent_credential_ttl_secs  lifetime of an agent's certificate; agents renew at two thirds [2592000]
  metrics_listen           serve Prometheus metrics here (loopback only) [unset: off]
  metrics_per_source       also per-source series (connected, RPO age, last backup); small fleets [false]
  protection_delay_secs    changes that delete data sooner wait this long, cancellable; 0: off [86400]
  alert_interval_secs      how often alert conditions are evaluated [30]
  alert_agent_silent_secs  an agent not connected this long raises agent_silent [3600]
  alert_move_failures      a tier move failing this many times in a row raises move_failing [3]
  alert_channel_failures   a channel failing this many attempts raises channel_failing [5]
  alerts_disabled          alert kinds not evaluated, e.g. [\"pending_change\"] [[]]
  journal_verify_interval_secs  the whole journal is verified this often; new events every round [3600]
  notification_max_age_secs  give up a notification not delivered within this long [604800]
  notification_retry_secs  first retry of a failed delivery after this long, doubling up to an hour [10]
  rpo_by_source            RPO per source in seconds over its package types'; TOML table [{}]
  channels                 notification channels; TOML [[channels]] tables: name, kind = webhook | slack | email,
                           kinds (alert kinds carried; empty: all), url or url_file (webhook, slack), ca_file,
                           smtp_host, smtp_port, smtp_tls = starttls | tls | none, smtp_username,
                           smtp_password_file, from, to (email)
  stations                 list of {id, tier, kind, uri}; TOML [[stations]] tables";

impl Config {
    /// Loads defaults < `file` (if it exists, or must exist when `required`) < `CATCHER_*` env.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !file.exists() {
            return Err(ConfigError::Invalid { key: "--config", reason: format!("{} does not exist", file.display()) });
        }
        Self::figment(file).extract::<Config>().map_err(|e| ConfigError::Load(Box::new(e)))?.finish()
    }

    /// The layered figment, exposed so tests and tools can add layers.
    pub fn figment(file: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("CATCHER_").ignore(&["URL", "DATABASE_URL_FILE", "CONFIG"]))
    }

    fn finish(mut self) -> Result<Self, ConfigError> {
        if let Ok(path) = std::env::var("CATCHER_DATABASE_URL_FILE") {
            self.database_url = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Invalid {
                    key: "database_url_file",
                    reason: format!("cannot read {path}: {e}"),
                })?
                .trim()
                .to_owned();
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.to_owned() });
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return bad("database_url", "must start with sqlite:, postgres:// or postgresql://");
        }
        if crate::rules::preset(&self.initial_preset).is_none() {
            return bad("initial_preset", "must be one of cloud, onprem, cost, demo");
        }
        if self.heartbeat_interval_secs == 0 {
            return bad("heartbeat_interval_secs", "must be at least 1");
        }
        // Metrics are served without TLS or credentials: never beyond this host.
        if self.metrics_listen.is_some_and(|a| !a.ip().is_loopback()) {
            return bad("metrics_listen", "must be a loopback address (plaintext, no credentials)");
        }
        if self.agent_timeout_secs <= self.heartbeat_interval_secs {
            return bad("agent_timeout_secs", "must be longer than heartbeat_interval_secs");
        }
        if !(3..=300).contains(&self.lease_ttl_secs) {
            return bad("lease_ttl_secs", "must be between 3 and 300");
        }
        if self.replica_timeout_secs < self.lease_ttl_secs {
            return bad("replica_timeout_secs", "must be at least lease_ttl_secs");
        }
        if self.hello_rate_per_sec == 0 {
            return bad("hello_rate_per_sec", "must be at least 1");
        }
        if self.enroll_rate_per_sec == 0 {
            return bad("enroll_rate_per_sec", "must be at least 1");
        }
        if self.changes_keep_secs < 60 {
            return bad("changes_keep_secs", "must be at least 60");
        }
        if self.command_lease_secs == 0 {
            return bad("command_lease_secs", "must be at least 1");
        }
        if !(1..=99).contains(&self.compaction_max_live_percent) {
            return bad("compaction_max_live_percent", "must be 1 to 99");
        }
        if self.scheduler_interval_ms < 10 {
            return bad("scheduler_interval_ms", "must be at least 10");
        }
        if self.scheduler_batch == 0 || self.batch_max_ops == 0 {
            return bad("batch_max_ops", "scheduler_batch and batch_max_ops must be at least 1");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return bad("tls_cert_file", "tls_cert_file and tls_key_file go together");
        }
        if !self.listen.ip().is_loopback() && self.tls_cert_file.is_none() && !self.allow_plaintext {
            return bad(
                "listen",
                "is not a loopback address: serving it needs a certificate for the names agents use; set \
                 tls_cert_file and tls_key_file (`catcher tls init --host NAME` writes them), or \
                 allow_plaintext = true when TLS ends in front of the catcher",
            );
        }
        if self.agent_credential_ttl_secs < 60 {
            return bad("agent_credential_ttl_secs", "must be at least 60");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.handshake_timeout_secs == 0 {
            return bad("handshake_timeout_secs", "must be at least 1");
        }
        if self.protection_delay_secs > 365 * 86_400 {
            return bad("protection_delay_secs", "must be at most a year (31536000)");
        }
        if self.max_message_bytes < 1024 {
            return bad("max_message_bytes", "must be at least 1024");
        }
        if !(1..=100).contains(&self.restore_drill_sample) {
            return bad("restore_drill_sample", "must be 1..100");
        }
        if self.watch_subscriber_bytes < 1 << 20 || self.watch_total_bytes < self.watch_subscriber_bytes {
            return bad(
                "watch_total_bytes",
                "watch_subscriber_bytes must be at least 1 MiB and at most watch_total_bytes",
            );
        }
        if self.watch_streams_per_credential == 0 {
            return bad("watch_streams_per_credential", "must be at least 1");
        }
        if self.watch_buffer < 16 {
            return bad("watch_buffer", "must be at least 16");
        }
        if self.database_max_connections == 0 {
            return bad("database_max_connections", "must be at least 1");
        }
        if self.alert_interval_secs == 0 {
            return bad("alert_interval_secs", "must be at least 1");
        }
        if self.alert_move_failures == 0 || self.alert_channel_failures == 0 {
            return bad("alert_move_failures", "alert_move_failures and alert_channel_failures must be at least 1");
        }
        if self.journal_verify_interval_secs == 0 {
            return bad("journal_verify_interval_secs", "must be at least 1");
        }
        if self.notification_retry_secs == 0 {
            return bad("notification_retry_secs", "must be at least 1");
        }
        if self.notification_max_age_secs < 60 {
            return bad("notification_max_age_secs", "must be at least 60");
        }
        if let Some((source, _)) =
            self.rpo_by_source.iter().find(|(s, secs)| s.is_empty() || **secs > 10 * 365 * 86_400)
        {
            return Err(ConfigError::Invalid {
                key: "rpo_by_source",
                reason: format!("{source:?}: a source id and at most ten years of seconds (0: no objective)"),
            });
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.channels {
            c.validate().map_err(|reason| ConfigError::Invalid { key: "channels", reason })?;
            if !names.insert(&c.name) {
                return Err(ConfigError::Invalid {
                    key: "channels",
                    reason: format!("{:?}: name: declared twice", c.name),
                });
            }
        }
        let mut ids = std::collections::HashSet::new();
        for station in &self.stations {
            if station.id.is_empty() || station.id.len() > 256 {
                return bad("stations.id", "must be 1..256 characters");
            }
            if !ids.insert(&station.id) {
                return Err(ConfigError::Invalid {
                    key: "stations.id",
                    reason: format!("{} is declared twice", station.id),
                });
            }
            if station.uri.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "stations.uri",
                    reason: format!("station {} has no uri", station.id),
                });
            }
        }
        Ok(())
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs)
    }

    pub fn agent_timeout(&self) -> Duration {
        Duration::from_secs(self.agent_timeout_secs)
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

/// Hides the password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn the_example_config_matches_the_defaults_and_validates() {
        let example = include_str!("../../deploy/catcher.example.toml");
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(example))
            .extract()
            .expect("deploy/catcher.example.toml parses");
        parsed.validate().expect("example validates");
        let mut without_stations = parsed.clone();
        without_stations.stations.clear();
        assert_eq!(without_stations, Config::default(), "example values drifted from the defaults");
    }

    fn toml_channels(body: &str) -> Vec<ChannelConfig> {
        #[derive(serde::Deserialize)]
        struct Doc {
            channels: Vec<ChannelConfig>,
        }
        let doc: Doc = Figment::from(Toml::string(&format!("[[channels]]\n{body}"))).extract().expect("a channel");
        doc.channels
    }

    #[test]
    fn mistakes_name_the_key() {
        type Mistake = (fn(&mut Config), &'static str);
        let cases: Vec<Mistake> = vec![
            (|c| c.database_url = "mysql://x".into(), "database_url"),
            (|c| c.initial_preset = "fast".into(), "initial_preset"),
            (|c| c.agent_timeout_secs = 5, "agent_timeout_secs"),
            (|c| c.heartbeat_interval_secs = 0, "heartbeat_interval_secs"),
            (|c| c.alert_interval_secs = 0, "alert_interval_secs"),
            (|c| c.notification_retry_secs = 0, "notification_retry_secs"),
            (|c| _ = c.rpo_by_source.insert(String::new(), 60), "rpo_by_source"),
            (
                |c| c.channels = toml_channels("name = \"ops\"\nkind = \"webhook\"\nurl = \"http://example.com/hook\""),
                "channels",
            ),
            (|c| c.channels = toml_channels("name = \"mail\"\nkind = \"email\"\nsmtp_host = \"mx\""), "channels"),
        ];
        for (mutate, key) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected error on {key}, got {other:?}"),
            }
        }
        let unknown: Result<Config, _> =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string("lisen = \"x\"")).extract();
        assert!(unknown.unwrap_err().to_string().contains("lisen"));
    }
}
