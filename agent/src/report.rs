//! `agent status`: the local view (outbox, connection, safety, recent packages). The daemon
//! holds the state database open, so it also keeps this view in `status.json` for readers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, PAUSED_KEY, SAFETY_KEY};
use crate::link::{LINK_KEY, LinkStatus};
use crate::safety::SafetyStatus;
use crate::state::{LocalPackage, State, now_ms};

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub source_id: String,
    pub catcher_url: String,
    /// Whether a daemon wrote this (and when).
    pub daemon_running: bool,
    pub written_at_ms: i64,
    pub outbox_depth: u64,
    pub acked_seq: u64,
    pub link: LinkStatus,
    pub safety: SafetyStatus,
    pub paused: bool,
    pub packages_total: usize,
    pub recent: Vec<PackageLine>,
    /// The last scrub, if one ran.
    #[serde(default)]
    pub scrub: Option<crate::scrub::ScrubStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageLine {
    pub package_id: String,
    pub status: String,
    pub folder: String,
    pub files: usize,
    pub size: u64,
    pub sha256: String,
    pub error: String,
    pub created_at_ms: i64,
}

pub fn build(state: &State, source_id: &str, catcher_url: &str, daemon: bool) -> anyhow::Result<StatusReport> {
    let packages = state.packages()?;
    let recent = packages.iter().rev().take(10).map(line).collect();
    Ok(StatusReport {
        source_id: source_id.to_owned(),
        catcher_url: catcher_url.to_owned(),
        daemon_running: daemon,
        written_at_ms: now_ms(),
        outbox_depth: state.outbox_len()?,
        acked_seq: state.acked_seq()?,
        link: state.meta(LINK_KEY)?.unwrap_or_default(),
        safety: state.meta(SAFETY_KEY)?.unwrap_or_default(),
        paused: state.meta(PAUSED_KEY)?.unwrap_or(false),
        packages_total: packages.len(),
        recent,
        scrub: state.meta(crate::scrub::SCRUB_KEY)?,
    })
}

fn line(p: &LocalPackage) -> PackageLine {
    PackageLine {
        package_id: p.package_id.clone(),
        status: format!("{:?}", p.status).to_lowercase(),
        folder: p.folder.clone(),
        files: if p.manifest.is_empty() { p.files.len() } else { p.manifest.len() },
        size: p.size,
        sha256: p.sha256.clone(),
        error: p.error.clone(),
        created_at_ms: p.created_at_ms,
    }
}

/// Writes status.json now (atomically: temp file + rename).
pub fn write_once(engine: &Engine, running: bool) {
    let c = &engine.config;
    match build(&engine.state, &c.source_id, &c.catcher_url, running) {
        Ok(r) => {
            let path = c.state_dir.join(STATUS_FILE);
            let tmp = path.with_extension("json.tmp");
            let ok = serde_json::to_vec_pretty(&r)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = ok {
                tracing::warn!(error = %e, "cannot write status.json");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot build the status report"),
    }
}

pub async fn keep_writing(engine: Arc<Engine>, stop: CancellationToken) {
    loop {
        write_once(&engine, true);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The daemon's report if one is running (fresh status.json), else one read from the database.
pub fn read(state_dir: &Path, source_id: &str, catcher_url: &str) -> anyhow::Result<StatusReport> {
    match State::open(state_dir) {
        Ok(state) => build(&state, source_id, catcher_url, false),
        Err(open_error) => {
            let path = state_dir.join(STATUS_FILE);
            let text = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!("state_dir {}: {open_error}; and {}: {e}", state_dir.display(), path.display())
            })?;
            Ok(serde_json::from_slice(&text)?)
        }
    }
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub fn render(r: &StatusReport) -> String {
    let mut s = String::new();
    let age = |ms: i64| {
        let secs = ((now_ms() - ms) / 1000).max(0);
        match secs {
            0..60 => format!("{secs}s ago"),
            60..3600 => format!("{}m ago", secs / 60),
            _ => format!("{}h ago", secs / 3600),
        }
    };
    s.push_str(&format!("source      {}\n", r.source_id));
    s.push_str(&format!("daemon      {}\n", if r.daemon_running { "running" } else { "not running" }));
    let link = if !r.daemon_running {
        // A one-shot run (`backup --once`) connects only to deliver its events.
        let last =
            if r.link.since_ms > 0 { format!("; last connected {}", age(r.link.since_ms)) } else { String::new() };
        format!("no stream: the daemon is not running (`agent run` keeps one open){last}")
    } else if r.link.connected {
        let at = if r.link.endpoint.is_empty() { &r.catcher_url } else { &r.link.endpoint };
        format!("connected to {at} (session {}, since {})", r.link.session_id, age(r.link.since_ms))
    } else if r.link.last_error.is_empty() {
        format!("not connected ({})", r.catcher_url)
    } else {
        format!("not connected: {}", r.link.last_error)
    };
    s.push_str(&format!("catcher     {link}\n"));
    s.push_str(&format!("outbox      {} event(s) waiting for an ack (acked up to #{})\n", r.outbox_depth, r.acked_seq));
    let safety = if r.safety.stopped { format!("STOPPED FOR SAFETY: {}", r.safety.reason) } else { "ok".into() };
    s.push_str(&format!("safety      {safety}{}\n", if r.paused { " (paused by the catcher)" } else { "" }));
    let scrub = match &r.scrub {
        None => "not run yet".to_owned(),
        Some(sc) if !sc.error.is_empty() => {
            format!("{}, with a problem: {}", age(sc.finished_at_ms), sc.error)
        }
        Some(sc) => format!(
            "{}: {} package(s), {} copy(ies) measured, {} damaged",
            age(sc.finished_at_ms),
            sc.packages,
            sc.copies,
            sc.damaged
        ),
    };
    s.push_str(&format!("scrub       {scrub}\n"));
    s.push_str(&format!("packages    {} in total; newest:\n", r.packages_total));
    for p in &r.recent {
        let sha = p.sha256.get(..12).unwrap_or("-");
        s.push_str(&format!(
            "  {}  {:<9} {:>5} file(s) {:>10}  sha256 {sha}  {}  {}{}\n",
            p.package_id,
            p.status,
            p.files,
            human_size(p.size),
            p.folder,
            age(p.created_at_ms),
            if p.error.is_empty() { String::new() } else { format!("  error: {}", p.error) }
        ));
    }
    s
}
