//! Simulated agents: each opens its own `AgentService.Connect` stream, says Hello, continues above
//! `Welcome.last_applied_seq`, sends sequenced Ingest → Progress… → Complete events within a window
//! of unacknowledged events (as agent/src/link.rs does), follows the cumulative acks and sends
//! heartbeats. Anything the protocol forbids is counted as a protocol error.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgebackup_proto::v1 as pb;
use pb::{
    agent_event::Kind, agent_message::Body, agent_service_client::AgentServiceClient, catcher_message::Body as In,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::hist::Hist;
use crate::latency::Tracker;

/// Most progress events per package (stages must fit a percent each).
pub const MAX_PROGRESS: u8 = 50;
/// How long a stream may take to answer Hello with Welcome.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(60);
/// Latencies an agent keeps before adding them to the shared histogram.
const FLUSH_EVERY: usize = 256;

/// How the simulated agents behave.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub source_prefix: String,
    /// Unacknowledged events allowed per stream.
    pub window: u64,
    /// Total events per second across all agents; None = as fast as acks allow.
    pub rate: Option<f64>,
    pub agents: usize,
    /// Progress events between a package's Ingest and its Complete.
    pub progress_per_package: u8,
    /// Heartbeats only, no events.
    pub idle: bool,
    /// Overrides the catcher's heartbeat interval.
    pub heartbeat: Option<Duration>,
    /// After the run ends, how long to wait for outstanding acks.
    pub drain: Duration,
    /// A person's token allowed to create enrollment tokens (an admin's).
    pub admin_token: Option<String>,
}

/// Counters shared by every agent.
#[derive(Default)]
pub struct AgentStats {
    pub connected: AtomicU64,
    pub connect_failures: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Acked between the start signal and the deadline: the throughput figure.
    pub acked_in_window: AtomicU64,
    pub unacked: AtomicU64,
    pub rejected: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub stream_errors: AtomicU64,
    pub heartbeats: AtomicU64,
    pub commands: AtomicU64,
    pub ack_latency: Mutex<Hist>,
    pub errors: Mutex<Vec<String>>,
}

impl AgentStats {
    fn error(&self, counter: &AtomicU64, what: String) {
        crate::count_error(counter, &self.errors, what);
    }

    fn flush_latencies(&self, pending: &mut Vec<Duration>) {
        if !pending.is_empty() {
            self.ack_latency.lock().unwrap_or_else(|e| e.into_inner()).record_all(pending);
            pending.clear();
        }
    }
}

/// When the measured window runs: (start, deadline). Agents wait for it after connecting.
pub type Schedule = watch::Receiver<Option<(Instant, Instant)>>;

/// A package's life as events: Ingest (stage 0), Progress (1..=p), Complete (p + 1).
pub struct EventGen {
    agent: usize,
    progress: u8,
    stage: u8,
    n: u64,
    rng: u64,
    package_id: String,
    size: u64,
    sha256: String,
}

const TYPES: [pb::PackageType; 5] = [
    pb::PackageType::UserData,
    pb::PackageType::AppLogs,
    pb::PackageType::AuditLogs,
    pb::PackageType::BusinessData,
    pb::PackageType::JobPackage,
];

impl EventGen {
    pub fn new(agent: usize, progress: u8) -> Self {
        let progress = progress.min(MAX_PROGRESS);
        Self {
            agent,
            progress,
            stage: 0,
            n: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ agent as u64,
            package_id: String::new(),
            size: 0,
            sha256: String::new(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        crate::datagen::splitmix(&mut self.rng)
    }

    /// The final stage (Complete).
    pub fn last_stage(&self) -> u8 {
        self.progress + 1
    }

    /// Percent reported by progress stage `i` (1..=p).
    fn percent(&self, i: u8) -> u32 {
        u32::from(i) * 100 / (u32::from(self.progress) + 1)
    }

    /// The stage a package in `status` at `percent` has reached (None if not one of ours).
    pub fn stage_of(&self, status: i32, percent: u32) -> Option<u8> {
        match pb::PackageStatus::try_from(status).ok()? {
            pb::PackageStatus::Pending => Some(0),
            pb::PackageStatus::InProgress => (1..=self.progress).find(|&i| self.percent(i) == percent),
            pb::PackageStatus::Completed => Some(self.last_stage()),
            _ => None,
        }
    }

    /// The next event: its kind, the package it concerns and its stage.
    pub fn next_event(&mut self) -> (Kind, &str, u8) {
        let stage = self.stage;
        let kind = if stage == 0 {
            self.n += 1;
            self.package_id = uuid::Uuid::now_v7().to_string();
            self.size = 1024 + self.next_u64() % (64 << 20);
            self.sha256 =
                format!("{:016x}{:016x}{:016x}{:016x}", self.next_u64(), self.next_u64(), self.next_u64(), self.n);
            Kind::Ingest(pb::Ingest {
                package_id: self.package_id.clone(),
                path: format!("/bench/agent-{}/pkg-{}.tar.zst", self.agent, self.n),
                package_type: TYPES[(self.n as usize) % TYPES.len()] as i32,
                size_bytes: self.size,
                sha256: self.sha256.clone(),
                tool: pb::Tool::Native as i32,
            })
        } else if stage <= self.progress {
            Kind::Progress(pb::Progress {
                package_id: self.package_id.clone(),
                bytes_done: self.size * u64::from(stage) / (u64::from(self.progress) + 1),
                progress_percent: self.percent(stage),
                attempt: 0,
            })
        } else {
            Kind::Complete(pb::Complete {
                package_id: self.package_id.clone(),
                sha256: self.sha256.clone(),
                size_bytes: self.size,
                tool_ref: String::new(),
                placements: vec![pb::PlacementReport {
                    station_id: "bench-hot".into(),
                    status: pb::PlacementStatus::Verified as i32,
                    verified_sha256: self.sha256.clone(),
                    error: String::new(),
                }],
                manifest: Vec::new(),
            })
        };
        self.stage = if stage >= self.last_stage() { 0 } else { stage + 1 };
        (kind, &self.package_id, stage)
    }
}

/// What a simulated agent says first.
pub fn hello(source_id: &str, hostname: &str) -> pb::Hello {
    pb::Hello {
        source_id: source_id.to_owned(),
        agent_version: concat!("edge-loadgen/", env!("CARGO_PKG_VERSION")).into(),
        hostname: hostname.to_owned(),
        os: "linux".into(),
        capabilities: vec![pb::Capability::Backup as i32],
        ..Default::default()
    }
}

fn frame(body: Body) -> pb::AgentMessage {
    pb::AgentMessage { body: Some(body) }
}

/// A TLS channel with a fresh credential for `source_id`, as a real agent holds one: an
/// enrollment token from AccessService (`url` is the catcher's plaintext loopback address), a
/// key and certificate request made here, the catcher verified by its CA's fingerprint.
pub async fn enrolled_channel(url: &str, admin_token: Option<&str>, source_id: &str) -> Result<Channel, String> {
    use edgebackup_common::client;
    let cred = crate::storm::enroll(url, admin_token, source_id).await?;
    let tls = client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(&cred))?;
    client::channel(&url.replacen("http://", "https://", 1), Some(tls), false).await
}

/// Runs agent `i` until the schedule's deadline plus the drain time. Never panics on what the catcher sends.
pub async fn run_agent(
    i: usize,
    url: &str,
    opts: &AgentOptions,
    stats: &AgentStats,
    tracker: Option<&Tracker>,
    mut schedule: Schedule,
    connect_gate: &tokio::sync::Semaphore,
) {
    let source_id = format!("{}-{i:05}", opts.source_prefix);
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(opts.window as usize + 16);
    if tx.send(frame(Body::Hello(hello(&source_id, &format!("loadgen-{i}"))))).await.is_err() {
        return;
    }
    let opened = async {
        let _permit = connect_gate.acquire().await.map_err(|e| e.to_string())?;
        let ch = enrolled_channel(url, opts.admin_token.as_deref(), &source_id).await?;
        let mut inbound =
            AgentServiceClient::new(ch).connect(ReceiverStream::new(rx)).await.map_err(|s| s.to_string())?.into_inner();
        match inbound.message().await {
            Ok(Some(pb::CatcherMessage { body: Some(In::Welcome(w)) })) => Ok((inbound, w)),
            Ok(other) => Err(format!("expected Welcome, got {other:?}")),
            Err(s) => Err(s.to_string()),
        }
    };
    let (mut inbound, welcome) = match tokio::time::timeout(WELCOME_TIMEOUT, opened).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return stats.error(&stats.connect_failures, format!("{source_id}: connect: {e}")),
        Err(_) => return stats.error(&stats.connect_failures, format!("{source_id}: no Welcome within 60 s")),
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let beat = opts
        .heartbeat
        .or_else(|| welcome.heartbeat_interval.map(|d| Duration::from_secs(d.seconds.max(1) as u64)))
        .unwrap_or(Duration::from_secs(10));
    // Spread the heartbeats of many agents over the interval.
    let offset = beat.mul_f64((i % 1000) as f64 / 1000.0);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, beat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut events = EventGen::new(i, opts.progress_per_package);
    let last_stage = events.last_stage();
    let pace = opts.rate.map(|r| Duration::from_secs_f64(opts.agents.max(1) as f64 / r.max(0.001)));
    let mut seq = welcome.last_applied_seq;
    let mut acked = seq;
    let mut inflight: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut latencies = Vec::with_capacity(FLUSH_EVERY);
    let mut times = *schedule.borrow();
    let mut schedule_open = true;
    let mut next_at = Instant::now();
    if let (Some((start, _)), Some(p)) = (times, pace) {
        next_at = start + p.mul_f64((i % 1000) as f64 / 1000.0);
    }
    loop {
        let now = Instant::now();
        let sending = matches!(times, Some((_, deadline)) if now < deadline) && !opts.idle;
        if sending {
            while seq - acked < opts.window {
                if let Some(p) = pace {
                    if Instant::now() < next_at {
                        break;
                    }
                    next_at += p;
                    // Do not build up a burst while the window was full.
                    if next_at + Duration::from_secs(1) < Instant::now() {
                        next_at = Instant::now();
                    }
                }
                let (kind, package, stage) = events.next_event();
                let sent_at = Instant::now();
                if let Some(t) = tracker {
                    t.sent(package, stage, last_stage, sent_at);
                }
                seq += 1;
                let e = pb::AgentEvent { seq, at: None, kind: Some(kind) };
                if tx.send(frame(Body::Event(e))).await.is_err() {
                    stats.error(&stats.stream_errors, format!("{source_id}: outbound stream closed"));
                    break;
                }
                inflight.push_back((seq, sent_at));
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let now = Instant::now();
        if let Some((_, deadline)) = times
            && now >= deadline
        {
            if acked >= seq {
                break;
            }
            if now >= deadline + opts.drain {
                stats.unacked.fetch_add(seq - acked, Ordering::Relaxed);
                stats.error(&stats.protocol_errors, format!("{source_id}: {} events not acknowledged", seq - acked));
                break;
            }
        }
        let wake = match times {
            Some((_, deadline)) if sending && pace.is_some() && seq - acked < opts.window => next_at.min(deadline),
            Some((_, deadline)) if now < deadline => deadline,
            Some((_, deadline)) => deadline + opts.drain,
            None => now + Duration::from_secs(3600),
        };
        tokio::select! {
            biased;
            m = inbound.message() => match m {
                Ok(Some(pb::CatcherMessage { body: Some(body) })) => match body {
                    In::Ack(a) => {
                        if a.applied_seq > seq {
                            stats.error(&stats.protocol_errors, format!("{source_id}: ack {} beyond sent {seq}", a.applied_seq));
                        } else if a.applied_seq > acked {
                            let at = Instant::now();
                            let n = a.applied_seq - acked;
                            acked = a.applied_seq;
                            stats.acked.fetch_add(n, Ordering::Relaxed);
                            if matches!(times, Some((_, d)) if at <= d) {
                                stats.acked_in_window.fetch_add(n, Ordering::Relaxed);
                            }
                            while inflight.front().is_some_and(|(s, _)| *s <= acked) {
                                if let Some((_, t)) = inflight.pop_front() {
                                    latencies.push(at.saturating_duration_since(t));
                                }
                            }
                            if latencies.len() >= FLUSH_EVERY {
                                stats.flush_latencies(&mut latencies);
                            }
                        }
                    }
                    In::EventRejected(r) => {
                        stats.error(&stats.rejected, format!("{source_id}: seq {} rejected: {} {}", r.seq, r.code, r.message));
                    }
                    In::Error(e) => {
                        stats.error(&stats.protocol_errors, format!("{source_id}: stream error {}: {}", e.code, e.message));
                        break;
                    }
                    In::Welcome(_) => stats.error(&stats.protocol_errors, format!("{source_id}: a second Welcome")),
                    In::Command(_) => {
                        stats.commands.fetch_add(1, Ordering::Relaxed);
                    }
                    In::RulesChanged(_) => {}
                },
                Ok(Some(_)) => stats.error(&stats.protocol_errors, format!("{source_id}: empty frame")),
                Ok(None) => {
                    stats.error(&stats.stream_errors, format!("{source_id}: the catcher ended the stream"));
                    break;
                }
                Err(s) => {
                    stats.error(&stats.stream_errors, format!("{source_id}: {}: {}", s.code(), s.message()));
                    break;
                }
            },
            changed = schedule.changed(), if schedule_open && times.is_none() => {
                match changed {
                    Ok(()) => times = *schedule.borrow_and_update(),
                    Err(_) => schedule_open = false,
                }
                if let (Some((start, _)), Some(p)) = (times, pace) {
                    next_at = start + p.mul_f64((i % 1000) as f64 / 1000.0);
                }
                if !schedule_open && times.is_none() {
                    break; // the run was abandoned before it started
                }
            },
            _ = ticker.tick() => {
                let hb = pb::Heartbeat { sent_at: Some(std::time::SystemTime::now().into()) };
                if tx.send(frame(Body::Heartbeat(hb))).await.is_ok() {
                    stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {},
        }
    }
    stats.flush_latencies(&mut latencies);
    if seq > acked && !matches!(times, Some((_, d)) if Instant::now() >= d + opts.drain) {
        // Left early (stream error): what it had sent was not acknowledged.
        stats.unacked.fetch_add(seq - acked, Ordering::Relaxed);
    }
    drop(tx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_runs_ingest_progress_complete_and_stages_map_back() {
        let mut g = EventGen::new(3, 2);
        let mut kinds = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..8 {
            let (k, id, stage) = g.next_event();
            ids.push(id.to_owned());
            kinds.push((stage, k));
        }
        let stages: Vec<u8> = kinds.iter().map(|(s, _)| *s).collect();
        assert_eq!(stages, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert!(matches!(kinds[0].1, Kind::Ingest(_)) && matches!(kinds[3].1, Kind::Complete(_)));
        assert_eq!(ids[0], ids[3]);
        assert_ne!(ids[3], ids[4]);
        let Kind::Progress(p) = &kinds[2].1 else { panic!("stage 2 is progress") };
        assert_eq!(g.stage_of(pb::PackageStatus::InProgress as i32, p.progress_percent), Some(2));
        assert_eq!(g.stage_of(pb::PackageStatus::Pending as i32, 0), Some(0));
        assert_eq!(g.stage_of(pb::PackageStatus::Completed as i32, 100), Some(3));
        assert_eq!(g.stage_of(pb::PackageStatus::InProgress as i32, 99), None);
        assert_eq!(g.stage_of(99, 0), None);
        let Kind::Complete(c) = &kinds[3].1 else { panic!("stage 3 is complete") };
        assert_eq!(c.sha256.len(), 64);
        assert_eq!(c.placements[0].verified_sha256, c.sha256);
    }
}
