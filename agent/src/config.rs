//! Agent configuration: built-in defaults < TOML file < `AGENT_*` environment.

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use edgebackup_common::LogFormat;

/// Every setting of the agent. `agent init` writes them all, commented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The source this agent speaks for; the hostname when empty.
    pub source_id: String,
    /// Human label shown in the dashboard.
    pub label: String,
    /// The catcher's gRPC URL.
    pub catcher_url: String,
    /// More catcher replicas (on the same database) to fail over to, tried in order after
    /// `catcher_url`. A DNS name with several addresses also fails over, address by address.
    pub catcher_urls: Vec<String>,
    /// One-time enrollment token (`catcher enroll` prints it): used on start when the state
    /// directory holds no credential yet, then never again.
    pub token: String,
    /// Read the token from this file instead (keeps it out of the environment).
    pub token_file: Option<PathBuf>,
    /// SHA-256 of the catcher's CA (`catcher enroll` prints it): how the catcher is recognised
    /// before enrollment over https. Afterwards the CA saved with the credential is used.
    pub catcher_ca_fingerprint: String,
    /// Where the outbox, the file index and staging live.
    pub state_dir: PathBuf,
    /// Folders to back up.
    pub folders: Vec<FolderConfig>,
    /// Stations this agent can reach; backups go to each of them (or to `backup_stations`).
    pub stations: Vec<StationConfig>,
    /// Ids of the stations new packages are uploaded to; empty means all of `stations`.
    pub backup_stations: Vec<String>,
    /// Also move packages between stations when the catcher asks (the `mover` capability).
    pub mover: bool,
    /// Directories a RESTORE command from the catcher may write into (and below); empty: none,
    /// every RESTORE command is refused. `agent restore` from a shell is not limited by it.
    pub restore_roots: Vec<PathBuf>,
    /// When to run backup passes (besides file notifications).
    pub schedule: ScheduleConfig,
    /// Largest package (bytes of input); a pass splits bigger change sets into several packages.
    pub max_package_bytes: u64,
    /// Most files per package.
    pub max_package_files: usize,
    /// zstd level for native packages (1..=19).
    pub compression_level: i32,
    /// Ransomware panic brake.
    pub safety: SafetyConfig,
    /// Longest wait between reconnection attempts, in seconds.
    pub max_backoff_secs: u64,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Where the daemon serves Prometheus metrics (`GET /metrics`, plain HTTP); unset: not
    /// served. Loopback only.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A watched folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    pub path: PathBuf,
    /// user_data | app_logs | audit_logs | business_data | job_package | cache
    #[serde(default = "default_package_type")]
    pub package_type: String,
    /// Glob patterns (relative to the folder) that are never backed up, e.g. "*.tmp", "cache/**".
    #[serde(default)]
    pub excludes: Vec<String>,
}

fn default_package_type() -> String {
    "user_data".into()
}

/// A storage station and the tool that writes to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// Must match a station id known to the catcher when the catcher declares stations.
    pub id: String,
    /// local | rclone | restic | s3
    pub kind: String,
    /// local: a directory; rclone: `remote:path`; restic: a repository; s3: an rclone S3 connection string.
    pub uri: String,
    /// native | rclone | restic; defaults from the kind (local → native, rclone/s3 → rclone, restic → restic).
    #[serde(default)]
    pub tool: Option<String>,
    /// restic: file holding the repository password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Read each new copy back and hash it before reporting it verified. Default: yes, except
    /// for restic, which hashes every blob it stores; its copies are read back by the catcher's
    /// verify command and restore drills.
    #[serde(default)]
    pub readback: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Full rescan every this many seconds (catches what notifications missed).
    pub interval_secs: u64,
    /// Quiet time after the last file notification before a pass starts, in milliseconds.
    pub debounce_ms: u64,
    /// Whether to use filesystem notifications at all.
    pub watch: bool,
    /// Also run a pass at these times (cron syntax, local time), e.g. "0 */6 * * *".
    pub cron: Option<String>,
    /// Measure every verified copy of this source's packages again this often (the scrub);
    /// damage goes to the catcher, which has the copy written again. 0 turns it off.
    pub scrub_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    pub enabled: bool,
    /// Plant a canary file in every watched folder; any change to it trips the brake.
    pub canary: bool,
    /// Changed files within one minute that trip the brake.
    pub max_changes_per_minute: u32,
    /// Share (0..1) of renames and deletes among changes within a minute that trips the brake,
    /// once at least `min_changes` happened.
    pub max_rename_delete_ratio: f64,
    /// Share (0..1) of rewritten files that turned high-entropy (encrypted-looking) that trips the brake.
    pub max_high_entropy_share: f64,
    /// Changes in a minute below which the ratios are not judged.
    pub min_changes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source_id: String::new(),
            label: String::new(),
            catcher_url: "https://127.0.0.1:50051".into(),
            catcher_urls: Vec::new(),
            token: String::new(),
            token_file: None,
            catcher_ca_fingerprint: String::new(),
            state_dir: default_state_dir(),
            folders: Vec::new(),
            stations: Vec::new(),
            backup_stations: Vec::new(),
            mover: false,
            restore_roots: Vec::new(),
            metrics_listen: None,
            schedule: ScheduleConfig::default(),
            max_package_bytes: 1 << 30,
            max_package_files: 10_000,
            compression_level: 3,
            safety: SafetyConfig::default(),
            max_backoff_secs: 30,
            log_format: LogFormat::Human,
            log_level: "info".into(),
        }
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { interval_secs: 300, debounce_ms: 2000, watch: true, cron: None, scrub_interval_secs: 7 * 24 * 3600 }
    }
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            canary: true,
            max_changes_per_minute: 500,
            max_rename_delete_ratio: 0.6,
            max_high_entropy_share: 0.5,
            min_changes: 20,
        }
    }
}

/// A configuration mistake, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// A catcher URL: http(s)://HOST:PORT.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let parsed: tonic::transport::Uri = url.parse().map_err(|e| invalid(key, format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
        return Err(invalid(key, format!("{url:?} must look like http://HOST:PORT")));
    }
    Ok(())
}

pub const PACKAGE_TYPES: &[&str] = &["user_data", "app_logs", "audit_logs", "business_data", "job_package", "cache"];
const STATION_KINDS: &[&str] = &["local", "rclone", "restic", "s3"];
const TOOLS: &[&str] = &["native", "rclone", "restic"];

impl Config {
    /// Loads defaults < `file` (if it exists, or must exist when `required`) < `AGENT_*` env, and validates.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !file.exists() {
            return Err(invalid("--config", format!("{} does not exist", file.display())));
        }
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("AGENT_").ignore(&["CONFIG"]).split("__"))
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.finish()?;
        Ok(config)
    }

    /// Fills derived values (hostname, token file) and checks every key.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if self.source_id.is_empty() {
            self.source_id = gethostname::gethostname().to_string_lossy().into_owned();
        }
        // "/data/" and "/data" are the same folder; packages name it one way.
        for f in &mut self.folders {
            f.path = f.path.components().collect();
        }
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| invalid("token_file", format!("cannot read {}: {e}", path.display())))?;
            self.token = token.trim().to_owned();
        }
        self.validate()
    }

    /// The catcher replicas to connect to, in the order tried: `catcher_url`, then
    /// `catcher_urls` (duplicates left out).
    pub fn endpoints(&self) -> Vec<String> {
        edgebackup_common::endpoints(&self.catcher_url, &self.catcher_urls)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.source_id.is_empty() || self.source_id.len() > 256 {
            return Err(invalid("source_id", "must be 1..256 characters"));
        }
        check_url("catcher_url", &self.catcher_url)?;
        for (i, url) in self.catcher_urls.iter().enumerate() {
            check_url(&format!("catcher_urls[{i}]"), url)?;
        }
        if self.catcher_urls.len() > 16 {
            return Err(invalid("catcher_urls", "at most 16 replicas"));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "must not be empty"));
        }
        // Relative to whatever directory the agent happened to start in, a restart elsewhere
        // would begin a new outbox and index.
        if !self.state_dir.is_absolute() {
            return Err(invalid("state_dir", format!("{} must be an absolute path", self.state_dir.display())));
        }
        // Served without TLS or credentials: never beyond this host.
        if self.metrics_listen.is_some_and(|a| !a.ip().is_loopback()) {
            return Err(invalid("metrics_listen", "must be a loopback address (plaintext, no credentials)"));
        }
        for (i, f) in self.folders.iter().enumerate() {
            let key = |k: &str| format!("folders[{i}].{k}");
            if !f.path.is_absolute() {
                return Err(invalid(key("path"), format!("{} must be an absolute path", f.path.display())));
            }
            if !PACKAGE_TYPES.contains(&f.package_type.as_str()) {
                return Err(invalid(
                    key("package_type"),
                    format!("{:?} is not one of {}", f.package_type, PACKAGE_TYPES.join(", ")),
                ));
            }
            for (j, pattern) in f.excludes.iter().enumerate() {
                globset::Glob::new(pattern)
                    .map_err(|e| invalid(format!("folders[{i}].excludes[{j}]"), e.to_string()))?;
            }
        }
        for (i, root) in self.restore_roots.iter().enumerate() {
            if !root.is_absolute() {
                return Err(invalid(
                    format!("restore_roots[{i}]"),
                    format!("{} must be an absolute path", root.display()),
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, s) in self.stations.iter().enumerate() {
            let key = |k: &str| format!("stations[{i}].{k}");
            if s.id.is_empty() || s.id.len() > 256 {
                return Err(invalid(key("id"), "must be 1..256 characters"));
            }
            if !ids.insert(&s.id) {
                return Err(invalid(key("id"), format!("{:?} is used twice", s.id)));
            }
            if !STATION_KINDS.contains(&s.kind.as_str()) {
                return Err(invalid(key("kind"), format!("{:?} is not one of {}", s.kind, STATION_KINDS.join(", "))));
            }
            if s.uri.is_empty() {
                return Err(invalid(key("uri"), "must not be empty"));
            }
            if s.kind == "local" && !Path::new(&s.uri).is_absolute() {
                return Err(invalid(key("uri"), format!("{} must be an absolute directory", s.uri)));
            }
            if let Some(tool) = &s.tool
                && !TOOLS.contains(&tool.as_str())
            {
                return Err(invalid(key("tool"), format!("{tool:?} is not one of {}", TOOLS.join(", "))));
            }
            let tool = s.tool();
            let fits = match s.kind.as_str() {
                "local" => tool == "native",
                "rclone" | "s3" => tool == "rclone",
                "restic" => tool == "restic",
                _ => false,
            };
            if !fits {
                return Err(invalid(key("tool"), format!("{tool} cannot write to a {} station", s.kind)));
            }
            if tool == "restic" && s.password_file.is_none() {
                return Err(invalid(key("password_file"), "restic stations need the repository password in a file"));
            }
        }
        for (i, id) in self.backup_stations.iter().enumerate() {
            if !self.stations.iter().any(|s| &s.id == id) {
                return Err(invalid(
                    format!("backup_stations[{i}]"),
                    format!("{id:?} is not one of the configured stations"),
                ));
            }
        }
        if !self.folders.is_empty() && self.stations.is_empty() {
            return Err(invalid("stations", "folders are watched but no station is configured to store them"));
        }
        if !(1..=19).contains(&self.compression_level) {
            return Err(invalid("compression_level", "must be 1..19"));
        }
        if self.max_package_bytes == 0 {
            return Err(invalid("max_package_bytes", "must be at least 1"));
        }
        if self.max_package_files == 0 {
            return Err(invalid("max_package_files", "must be at least 1"));
        }
        if let Some(cron) = &self.schedule.cron {
            self.schedule.parsed_cron().map_err(|e| invalid("schedule.cron", format!("{cron:?}: {e}")))?;
        }
        if self.schedule.interval_secs == 0 {
            return Err(invalid("schedule.interval_secs", "must be at least 1"));
        }
        for (key, v) in [
            ("safety.max_rename_delete_ratio", self.safety.max_rename_delete_ratio),
            ("safety.max_high_entropy_share", self.safety.max_high_entropy_share),
        ] {
            if !(0.0..=1.0).contains(&v) || v == 0.0 {
                return Err(invalid(key, format!("{v} must be in (0, 1]")));
            }
        }
        if self.max_backoff_secs == 0 {
            return Err(invalid("max_backoff_secs", "must be at least 1"));
        }
        Ok(())
    }
}

impl ScheduleConfig {
    /// The cron pattern, parsed (None when not set).
    pub fn parsed_cron(&self) -> Result<Option<croner::Cron>, croner::errors::CronError> {
        use std::str::FromStr;
        self.cron.as_deref().map(croner::Cron::from_str).transpose()
    }
}

impl StationConfig {
    /// The tool that writes to this station.
    pub fn tool(&self) -> &str {
        match (&self.tool, self.kind.as_str()) {
            (Some(t), _) => t,
            (None, "rclone" | "s3") => "rclone",
            (None, "restic") => "restic",
            _ => "native",
        }
    }

    /// Whether a new copy is read back and hashed at the station (see `readback`).
    pub fn readback(&self) -> bool {
        self.readback.unwrap_or(self.tool() != "restic")
    }
}

/// What `agent init` writes: every key, commented.
/// Where the agent keeps its state when the config does not say: the system's state directory
/// as root, the user's otherwise (never the working directory).
pub fn default_state_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        return PathBuf::from("/var/lib/edgebackup-agent");
    }
    let base = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).filter(|p| p.is_absolute()).or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()).map(|h| h.join(".local/state"))
    });
    base.unwrap_or_else(std::env::temp_dir).join("edgebackup-agent")
}

pub const EXAMPLE: &str = r#"# Edge Backup agent configuration. Environment variables override it: AGENT_<KEY>,
# nested keys with a double underscore, e.g. AGENT_SCHEDULE__INTERVAL_SECS=60.

# The source this agent speaks for (default: the hostname) and its label in the dashboard.
# source_id = "edge-01"
# label = "Shop floor PC"

catcher_url = "https://127.0.0.1:50051"
# Catcher replicas (one PostgreSQL database) to fail over to, in order, with jittered backoff;
# the outbox is replayed from where the catcher got to, so nothing is lost on the way.
# catcher_urls = ["https://catcher-2.example.org:50051", "https://catcher-3.example.org:50051"]
# Enrollment (once): the token and CA fingerprint `catcher enroll --source ID` printed. Or run
# `agent enroll --catcher URL --token TOKEN --ca-fingerprint FP` instead. The credential is kept
# in state_dir/credential (key mode 0600) and renews itself.
# token_file = "/etc/edgebackup/enroll.token"
# catcher_ca_fingerprint = "3f0c…"

# Outbox, file index and staging: an absolute path on durable storage. Default:
# /var/lib/edgebackup-agent as root, else $XDG_STATE_HOME (~/.local/state)/edgebackup-agent.
# state_dir = "/var/lib/edgebackup-agent"

# Prometheus metrics of the daemon (GET /metrics on a loopback address); unset: not served.
# metrics_listen = "127.0.0.1:9465"

# Largest package (input bytes) and most files per package; bigger change sets become several packages.
max_package_bytes = 1073741824
max_package_files = 10000
compression_level = 3

# Upload new packages only to these stations (default: all of [[stations]]).
# backup_stations = ["hot-local"]
# Also copy packages between stations when the catcher's scheduler asks (tier moves, expiry).
mover = false
# Directories a RESTORE command from the catcher may restore into (default: none, refused).
# restore_roots = ["/var/lib/edgebackup/restores"]

# Longest wait between reconnection attempts to the catcher, in seconds.
max_backoff_secs = 30

# human | json
log_format = "human"
log_level = "info"

[schedule]
# Full rescan period (notifications trigger passes in between).
interval_secs = 300
# Quiet time after the last change before a pass starts.
debounce_ms = 2000
watch = true
# Also run at fixed times (cron syntax, local time):
# cron = "0 */6 * * *"
# Measure every verified copy again (the scrub) this often; damage is repaired from a good copy. 0 = off.
scrub_interval_secs = 604800

[safety]
# The panic brake: stops uploading changed data when the edge looks attacked.
enabled = true
canary = true
max_changes_per_minute = 500
max_rename_delete_ratio = 0.6
max_high_entropy_share = 0.5
min_changes = 20

# Folders to back up; package_type selects the retention rules.
# [[folders]]
# path = "/srv/data"
# package_type = "user_data"   # user_data | app_logs | audit_logs | business_data | job_package | cache
# excludes = ["*.tmp", "cache/**"]

# Stations; every package goes to each one and is verified there.
# [[stations]]
# id = "hot-local"
# kind = "local"               # local | rclone | restic | s3
# uri = "/mnt/backup/hot"
# tool = "native"              # native | rclone | restic (default from kind: local → native,
#                              # rclone/s3 → rclone, restic → restic)
#
# [[stations]]
# id = "hot-restic"
# kind = "restic"
# uri = "/mnt/backup/restic-repo"
# password_file = "/etc/edgebackup/restic-password"
# readback = false             # read new copies back before reporting them verified (default: true, restic: false)
#
# [[stations]]
# id = "offsite"
# kind = "rclone"
# uri = "offsite-remote:edge-backups"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            source_id: "edge".into(),
            folders: vec![FolderConfig { path: "/data".into(), package_type: "user_data".into(), excludes: vec![] }],
            stations: vec![StationConfig {
                id: "hot".into(),
                kind: "local".into(),
                uri: "/backup".into(),
                tool: None,
                password_file: None,
                readback: None,
            }],
            ..Config::default()
        }
    }

    #[test]
    fn copies_are_read_back_by_default_except_restic_unless_configured() {
        let mut s = base().stations.remove(0);
        assert!(s.readback());
        s.kind = "restic".into();
        assert!(!s.readback(), "restic hashes what it stores; its copies are read back on demand");
        s.readback = Some(true);
        assert!(s.readback());
        s.kind = "local".into();
        s.readback = Some(false);
        assert!(!s.readback());
    }

    #[test]
    fn the_example_parses_and_validates() {
        let mut c: Config =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(EXAMPLE)).extract().unwrap();
        c.finish().unwrap();
        assert_eq!(c.catcher_url, Config::default().catcher_url);
        base().validate().unwrap();
    }

    #[test]
    fn each_mistake_names_its_key() {
        type Mutation = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.catcher_url = "nope".into()), "catcher_url"),
            (Box::new(|c| c.state_dir = "agent-state".into()), "state_dir"),
            (Box::new(|c| c.folders[0].path = "relative".into()), "folders[0].path"),
            (Box::new(|c| c.folders[0].package_type = "music".into()), "folders[0].package_type"),
            (Box::new(|c| c.folders[0].excludes = vec!["[".into()]), "folders[0].excludes[0]"),
            (Box::new(|c| c.stations[0].kind = "ftp".into()), "stations[0].kind"),
            (Box::new(|c| c.stations[0].uri = "rel".into()), "stations[0].uri"),
            (Box::new(|c| c.stations[0].tool = Some("restic".into())), "stations[0].tool"),
            (Box::new(|c| c.stations.push(c.stations[0].clone())), "stations[1].id"),
            (Box::new(|c| c.stations.clear()), "stations"),
            (Box::new(|c| c.compression_level = 40), "compression_level"),
            (Box::new(|c| c.backup_stations = vec!["nope".into()]), "backup_stations[0]"),
            (Box::new(|c| c.schedule.cron = Some("every tuesday".into())), "schedule.cron"),
            (Box::new(|c| c.safety.max_rename_delete_ratio = 2.0), "safety.max_rename_delete_ratio"),
            (
                Box::new(|c| {
                    c.stations[0].kind = "restic".into();
                }),
                "stations[0].password_file",
            ),
        ];
        for (mutate, key) in cases {
            let mut c = base();
            mutate(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key}:")), "expected {key}, got {err}");
        }
    }
}
