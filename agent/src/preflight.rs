//! `agent check-config`: a preflight a new user can trust. One line per check, nothing created
//! or changed unless asked (`--init-stations` creates missing station directories, remote paths
//! and restic repositories); the exit code says what kind of problem there was.

use std::path::Path;

use edgebackup_common::client::{self, Credential, Trust};
use edgebackup_proto::v1::{self as pb, access_service_client::AccessServiceClient};

use crate::config::Config;
use crate::scan::CANARY_NAME;
use crate::station::Station;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    /// Worth knowing, not wrong (e.g. a state dir the first run creates).
    Note(String),
    /// Wrong in the configuration or the machine: exit 2.
    Mistake(String),
    /// Configured right but failing now (the catcher unreachable): exit 1.
    Failing(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    pub subject: String,
    pub verdict: Verdict,
}

impl Line {
    fn new(subject: impl Into<String>, verdict: Verdict) -> Self {
        Self { subject: subject.into(), verdict }
    }

    pub fn render(&self) -> String {
        let (tag, text) = match &self.verdict {
            Verdict::Ok(t) => ("ok  ", t),
            Verdict::Note(t) => ("note", t),
            Verdict::Mistake(t) | Verdict::Failing(t) => ("FAIL", t),
        };
        format!("{tag}  {}: {text}", self.subject)
    }
}

/// The exit code for a report: 2 for configuration mistakes, 1 for failures, 0 otherwise.
pub fn exit_code(lines: &[Line]) -> u8 {
    if lines.iter().any(|l| matches!(l.verdict, Verdict::Mistake(_))) {
        2
    } else if lines.iter().any(|l| matches!(l.verdict, Verdict::Failing(_))) {
        1
    } else {
        0
    }
}

/// Runs every check. `file` is the config file read (None: none was found).
pub async fn run(config: &Config, file: Option<&Path>, init_stations: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    lines.push(match file {
        Some(f) => Line::new("config", Verdict::Ok(format!("{} read", f.display()))),
        None => Line::new(
            "config",
            Verdict::Mistake(
                "no config file (looked for ./agent.toml; pass --config, or `agent init` writes one)".into(),
            ),
        ),
    });
    lines.push(Line::new("source_id", Verdict::Ok(config.source_id.clone())));
    if config.folders.is_empty() {
        lines.push(Line::new("folders", Verdict::Mistake("none configured: add [[folders]] path = \"...\"".into())));
    }
    for (i, f) in config.folders.iter().enumerate() {
        lines.push(Line::new(format!("folders[{i}] {}", f.path.display()), folder(&f.path, config)));
    }
    if config.stations.is_empty() {
        lines.push(Line::new("stations", Verdict::Mistake("none configured: add [[stations]]".into())));
    }
    for (i, s) in config.stations.iter().enumerate() {
        let station = Station::from_config(s);
        let subject = format!(
            "stations[{i}] {} ({}, {})",
            s.id,
            s.kind,
            station.tool().as_str_name().trim_start_matches("TOOL_").to_lowercase()
        );
        let verdict = match station.preflight(init_stations).await {
            Ok(found) => Verdict::Ok(found),
            Err(e) => Verdict::Mistake(e.to_string()),
        };
        lines.push(Line::new(subject, verdict));
    }
    lines.push(Line::new(format!("state_dir {}", config.state_dir.display()), state_dir(&config.state_dir)));
    lines.push(Line::new(format!("catcher {}", config.catcher_url), catcher(config).await));
    lines
}

fn folder(path: &Path, config: &Config) -> Verdict {
    if !path.is_absolute() {
        return Verdict::Mistake("not an absolute path".into());
    }
    match std::fs::read_dir(path) {
        Ok(_) if config.safety.enabled && config.safety.canary => Verdict::Ok(format!(
            "a readable directory; the panic brake keeps its canary file {CANARY_NAME} in it (editing or deleting it stops uploads)"
        )),
        Ok(_) => Verdict::Ok("a readable directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Verdict::Mistake("does not exist".into()),
        Err(e) => Verdict::Mistake(format!("cannot be read: {e}")),
    }
}

fn state_dir(dir: &Path) -> Verdict {
    if !dir.is_absolute() {
        return Verdict::Mistake("not an absolute path".into());
    }
    if !dir.exists() {
        let parent = dir.ancestors().skip(1).find(|p| p.exists());
        return match parent {
            Some(p) if writable(p) => Verdict::Note("does not exist yet; the first run creates it".into()),
            Some(p) => Verdict::Mistake(format!("does not exist, and {} is not writable to create it", p.display())),
            None => Verdict::Mistake("does not exist".into()),
        };
    }
    if writable(dir) { Verdict::Ok("writable".into()) } else { Verdict::Mistake("not writable".into()) }
}

/// Whether this process may create files in `dir` (a probe file, removed at once).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".edgebackup-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Reaches the catcher with this agent's credential and asks who it is; without a credential
/// (not enrolled yet) says what to do, without enrolling.
async fn catcher(config: &Config) -> Verdict {
    let credential = match Credential::load(&crate::credential::dir(config)) {
        Ok(c) => c,
        Err(e) => return Verdict::Mistake(format!("the credential in the state dir cannot be read: {e}")),
    };
    if credential.is_none() && config.catcher_url.starts_with("https://") {
        let fingerprint = config.catcher_ca_fingerprint.as_str();
        if config.token.is_empty() || fingerprint.is_empty() {
            return Verdict::Mistake(format!(
                "not enrolled: run `agent enroll --catcher {} --token TOKEN --ca-fingerprint FP` \
                 (or set token and catcher_ca_fingerprint)",
                config.catcher_url
            ));
        }
        // Reach it and check its CA against the fingerprint, without enrolling.
        let tls = match client::tls_config(Trust::Fingerprint(fingerprint), None) {
            Ok(t) => t,
            Err(e) => return Verdict::Mistake(format!("catcher_ca_fingerprint: {e}")),
        };
        return match client::channel(&config.catcher_url, Some(tls), false).await {
            Ok(_) => Verdict::Note(
                "reachable, its CA matches; not enrolled yet: the first run enrolls with the token".into(),
            ),
            Err(e) => Verdict::Failing(format!("unreachable: {e}")),
        };
    }
    let channel = match crate::credential::channel(config, false).await {
        Ok(c) => c,
        Err(e) => return Verdict::Failing(format!("unreachable: {e}")),
    };
    match AccessServiceClient::new(channel).who_am_i(pb::WhoAmIRequest {}).await {
        Ok(r) => match r.into_inner().who {
            Some(pb::who_am_i_response::Who::Agent(a)) if a.source_id == config.source_id => {
                Verdict::Ok(format!("reachable; this agent is {}", a.source_id))
            }
            other => Verdict::Mistake(format!(
                "reachable, but the credential speaks for {other:?}, not {}",
                config.source_id
            )),
        },
        Err(s) => Verdict::Failing(format!("reachable, but refused: {}", s.message())),
    }
}
