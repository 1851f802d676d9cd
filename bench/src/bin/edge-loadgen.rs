//! `edge-loadgen`: drives a catcher on loopback with simulated agents and Watch subscribers
//! (`stream`), with read queries (`query`), or only watches what a process costs (`observe`).
//! Prints one JSON report on stdout; progress and a summary go to stderr. Everything it does is
//! bounded by `--duration` and the limits on counts, and it refuses non-loopback targets.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use edge_bench::agents::{self, AgentOptions, AgentStats};
use edge_bench::hist::Summary;
use edge_bench::latency::Tracker;
use edge_bench::procstat::{self, Monitor, Usage};
use edge_bench::queries;
use edge_bench::target::{self, SpawnedCatcher, Startup};
use edge_bench::watchers::{self, WatchStats};
use serde::Serialize;
use serde_json::json;

const MAX_AGENTS: usize = 20_000;
const MAX_WATCHERS: usize = 1_000;
const MAX_DURATION_SECS: f64 = 3_600.0;

#[derive(Parser)]
#[command(name = "edge-loadgen", version, about = "Load generator for the Edge Backup catcher (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// N agents streaming events (or idle with heartbeats) and M Watch subscribers.
    Stream(StreamArgs),
    /// Read queries: ListPackages with each filter, GetStatus, GetTierSummary, GetProjections.
    Query(QueryArgs),
    /// Only sample a process's RSS and CPU (e.g. an idle agent or catcher).
    Observe(ObserveArgs),
    /// A reconnect storm: N enrolled agents hold streams, the spawned catcher is killed and
    /// started again on the same port and database, and all reconnect at once.
    Storm(StormArgs),
}

#[derive(Args)]
struct StormArgs {
    #[command(flatten)]
    target: Target,
    /// Enrolled agents, one stream each (at most 20000).
    #[arg(long, short = 'n', default_value_t = 1000)]
    agents: usize,
    /// Enrollments and first connections at once while ramping up.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Source id prefix; agents are PREFIX-00000, PREFIX-00001, …
    #[arg(long, default_value = "storm")]
    source_prefix: String,
    /// Longest wait for every agent to be welcomed again after the restart, in seconds.
    #[arg(long, default_value_t = 120.0)]
    within: f64,
}

#[derive(Args, Clone)]
struct Target {
    /// The catcher, e.g. http://127.0.0.1:50051 (loopback only).
    #[arg(long, conflicts_with = "spawn_catcher")]
    catcher: Option<String>,
    /// Start this catcher binary on 127.0.0.1:0 instead (reports its start-up time).
    #[arg(long)]
    spawn_catcher: Option<PathBuf>,
    /// Database for the spawned catcher (default: a fresh temp SQLite file).
    #[arg(long, requires = "spawn_catcher")]
    database_url: Option<String>,
    /// Extra environment for the spawned catcher, KEY=VALUE (repeatable), e.g. CATCHER_BATCH_MAX_OPS=8192.
    #[arg(long = "catcher-env", requires = "spawn_catcher")]
    catcher_env: Vec<String>,
    /// Where the spawned catcher's log goes (default: its temp dir).
    #[arg(long, requires = "spawn_catcher")]
    catcher_log: Option<PathBuf>,
    /// Process to measure (RSS, CPU); default: the spawned catcher, or whatever listens on the target port.
    #[arg(long)]
    pid: Option<u32>,
    /// How long the measured window lasts, in seconds (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

#[derive(Args)]
struct StreamArgs {
    #[command(flatten)]
    target: Target,
    /// Simulated agents, one stream each (at most 20000).
    #[arg(long, short = 'n', default_value_t = 100)]
    agents: usize,
    /// Watch subscribers (at most 1000).
    #[arg(long, short = 'm', default_value_t = 1)]
    watchers: usize,
    /// Total events per second across all agents; 0 = as fast as acks allow.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Event mix: progress events per package between Ingest and Complete (0..=50).
    #[arg(long, default_value_t = 2)]
    progress_per_package: u8,
    /// Agents send heartbeats only, no events (for the idle-fleet figure).
    #[arg(long)]
    idle: bool,
    /// Heartbeat interval in seconds (default: what Welcome says).
    #[arg(long)]
    heartbeat_secs: Option<f64>,
    /// Unacknowledged events allowed per agent (1..=4096; the real agent uses 512).
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Streams opening at once while ramping up.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Source id prefix; agents are PREFIX-00000, PREFIX-00001, …
    #[arg(long, default_value = "loadgen")]
    source_prefix: String,
    /// Packages in each watcher's snapshots (the dashboard asks for 500).
    #[arg(long, default_value_t = 100)]
    watch_package_limit: u32,
    /// Seconds to wait for outstanding acks after the window (at most 120).
    #[arg(long, default_value_t = 15.0)]
    drain_secs: f64,
    /// Catcher replicas the agents are spread over, round robin (repeatable; loopback only;
    /// default: the target).
    #[arg(long = "agents-at")]
    agents_at: Vec<String>,
    /// The catcher replica the Watch subscribers use (default: the target): another replica
    /// than the agents' measures the changes feed between replicas.
    #[arg(long)]
    watch_at: Option<String>,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent query clients (1..=64).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// ListPackages page size (1..=1000).
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// Seconds of warm-up before measuring (not reported).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

#[derive(Args)]
struct ObserveArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Serialize)]
struct Run {
    url: String,
    startup: Option<Startup>,
    usage: Option<Usage>,
}

struct Started {
    url: String,
    /// A person's token for the catcher (its first admin's when spawned here).
    token: Option<String>,
    port: u16,
    spawned: Option<SpawnedCatcher>,
    pid: Option<u32>,
}

async fn storm(a: StormArgs) -> anyhow::Result<serde_json::Value> {
    use edge_bench::storm::{self, Phase, StormStats};
    if a.agents == 0 || a.agents > MAX_AGENTS {
        bail!("--agents must be 1..={MAX_AGENTS}, got {}", a.agents);
    }
    if !(1.0..=600.0).contains(&a.within) {
        bail!("--within must be 1..=600 seconds");
    }
    if a.target.spawn_catcher.is_none() {
        bail!("storm restarts the catcher: give --spawn-catcher PATH");
    }
    let mut started = start(&a.target, true).await?;
    let url = started.url.clone();
    let tls_url = url.replacen("http://", "https://", 1);
    let stats = Arc::new(StormStats::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(a.connect_concurrency.clamp(1, 1024)));

    // Enrolled once, as devices are.
    let ramp = Instant::now();
    let mut enrolling = tokio::task::JoinSet::new();
    for i in 0..a.agents {
        let (url, token, gate) = (url.clone(), started.token.clone(), gate.clone());
        let id = format!("{}-{i:05}", a.source_prefix);
        enrolling.spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            storm::enroll(&url, token.as_deref(), &id).await.map(|c| (id, c))
        });
    }
    let mut creds = Vec::with_capacity(a.agents);
    while let Some(done) = enrolling.join_next().await {
        creds.push(done.context("enrollment task")?.map_err(anyhow::Error::msg)?);
    }
    let enroll_s = ramp.elapsed().as_secs_f64();
    let (phase_tx, phase) = tokio::sync::watch::channel(Phase::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut holders = tokio::task::JoinSet::new();
    for (id, cred) in creds {
        let (tls_url, stats, phase, stop) = (tls_url.clone(), stats.clone(), phase.clone(), stop.clone());
        holders.spawn(async move { storm::hold(id, tls_url, cred, &stats, phase, stop).await });
    }
    let wait_for = |what: &'static str, n: &'static dyn Fn(&StormStats) -> u64, stats: Arc<StormStats>| async move {
        let limit = Instant::now() + Duration::from_secs(120);
        while n(&stats) < a.agents as u64 && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("{what}: {} of {}", n(&stats), a.agents);
    };
    wait_for("connected", &|s: &StormStats| s.welcomed.load(Ordering::Relaxed), stats.clone()).await;
    let connect_s = ramp.elapsed().as_secs_f64() - enroll_s;

    // The storm: the catcher dies and comes back on the same port and database.
    let Some(catcher) = started.spawned.as_mut() else { bail!("no spawned catcher") };
    let killed = Instant::now();
    phase_tx.send_replace(Phase { killed_at: Some(killed), serving: false });
    catcher.restart().await?;
    phase_tx.send_replace(Phase { killed_at: Some(killed), serving: true });
    let restart_startup = catcher.startup.clone();
    eprintln!("catcher restarted: serving after {:.0} ms", restart_startup.serving_ms);
    let limit = killed + Duration::from_secs_f64(a.within);
    while stats.rewelcomed.load(Ordering::Relaxed) < a.agents as u64 && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_s = killed.elapsed().as_secs_f64();
    let rejoined = stats.rewelcomed.load(Ordering::Relaxed);
    stop_tx.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while holders.join_next().await.is_some() {} }).await;
    let rejoin = stats.rejoin.lock().unwrap_or_else(|e| e.into_inner()).summary();
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "{rejoined} of {} agents welcomed again {:.1} s after the kill (p99 {:.0} ms); {} deferred, {} errors",
        a.agents,
        rejoin.max_ms / 1000.0,
        rejoin.p99_ms,
        n(&stats.deferred),
        n(&stats.errors)
    );
    Ok(json!({
        "agents": a.agents,
        "enroll_secs": enroll_s,
        "connect_secs": connect_s,
        "agents_connected": n(&stats.welcomed),
        "agents_rejoined": rejoined,
        "all_rejoined_secs": if rejoined == a.agents as u64 { Some(rejoin.max_ms / 1000.0) } else { None },
        "waited_secs": all_s,
        "rejoin": rejoin,
        "deferred": n(&stats.deferred),
        "refused_while_down": n(&stats.refused_while_down),
        "errors": n(&stats.errors),
        "error_messages": *stats.messages.lock().unwrap_or_else(|e| e.into_inner()),
        // serving_ms includes waiting behind the storm: the first GetStatus queues with it.
        "restart": restart_startup,
    }))
}

fn check_duration(t: &Target) -> anyhow::Result<Duration> {
    if !(t.duration > 0.0 && t.duration <= MAX_DURATION_SECS) {
        bail!("--duration must be in (0, 3600] seconds, got {}", t.duration);
    }
    Ok(Duration::from_secs_f64(t.duration))
}

async fn start(t: &Target, need_catcher: bool) -> anyhow::Result<Started> {
    let mut env = Vec::new();
    for kv in &t.catcher_env {
        let Some((k, v)) = kv.split_once('=') else { bail!("--catcher-env: {kv:?} is not KEY=VALUE") };
        env.push((k.to_owned(), v.to_owned()));
    }
    if let Some(bin) = &t.spawn_catcher {
        let c = SpawnedCatcher::start(bin, t.database_url.as_deref(), &env, t.catcher_log.as_deref()).await?;
        eprintln!("started catcher pid {} at {} (serving after {:.0} ms)", c.pid, c.url, c.startup.serving_ms);
        let token = Some(c.admin_token.clone());
        return Ok(Started {
            url: c.url.clone(),
            token,
            port: c.port,
            pid: Some(t.pid.unwrap_or(c.pid)),
            spawned: Some(c),
        });
    }
    let Some(url) = &t.catcher else {
        if need_catcher {
            bail!("give --catcher http://127.0.0.1:PORT or --spawn-catcher PATH");
        }
        return Ok(Started { url: String::new(), token: None, port: 0, spawned: None, pid: t.pid });
    };
    let (url, port) = target::loopback_url(url)?;
    let pid = t.pid.or_else(|| procstat::pid_listening_on(port));
    if pid.is_none() {
        eprintln!("note: no --pid and no readable process listening on port {port}: catcher RSS/CPU not reported");
    }
    Ok(Started { url, token: target::token_for_external()?, port, spawned: None, pid })
}

fn monitor(pid: Option<u32>) -> Option<Monitor> {
    let pid = pid?;
    match Monitor::start(pid, Duration::from_millis(500)) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("note: cannot read /proc/{pid}: {e}; RSS/CPU not reported");
            None
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Stream(a) => stream(a).await,
        Cmd::Query(a) => query(a).await,
        Cmd::Observe(a) => observe(a).await,
        Cmd::Storm(a) => storm(a).await,
    };
    match result {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-loadgen: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn stream(a: StreamArgs) -> anyhow::Result<serde_json::Value> {
    let duration = check_duration(&a.target)?;
    if a.agents > MAX_AGENTS {
        bail!("--agents must be at most {MAX_AGENTS}, got {}", a.agents);
    }
    if a.watchers > MAX_WATCHERS {
        bail!("--watchers must be at most {MAX_WATCHERS}, got {}", a.watchers);
    }
    if !(1..=4096).contains(&a.window) {
        bail!("--window must be 1..=4096, got {}", a.window);
    }
    if a.progress_per_package > agents::MAX_PROGRESS {
        bail!("--progress-per-package must be at most {}, got {}", agents::MAX_PROGRESS, a.progress_per_package);
    }
    if !(a.rate >= 0.0 && a.rate.is_finite()) {
        bail!("--rate must be >= 0 events/s");
    }
    if !(0.0..=120.0).contains(&a.drain_secs) {
        bail!("--drain-secs must be 0..=120");
    }
    let heartbeat = match a.heartbeat_secs {
        Some(s) if !(0.1..=3600.0).contains(&s) => bail!("--heartbeat-secs must be 0.1..=3600"),
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let started = start(&a.target, true).await?;
    let url = started.url.clone();
    let agent_urls: Vec<String> = if a.agents_at.is_empty() {
        vec![url.clone()]
    } else {
        a.agents_at.iter().map(|u| target::loopback_url(u).map(|(u, _)| u)).collect::<anyhow::Result<_>>()?
    };
    let watch_url = match &a.watch_at {
        Some(u) => target::loopback_url(u)?.0,
        None => url.clone(),
    };
    let opts = Arc::new(AgentOptions {
        source_prefix: a.source_prefix.clone(),
        window: a.window,
        rate: (a.rate > 0.0).then_some(a.rate),
        agents: a.agents,
        progress_per_package: a.progress_per_package,
        idle: a.idle,
        heartbeat,
        drain: Duration::from_secs_f64(a.drain_secs),
        admin_token: started.token.clone(),
    });
    let stats = Arc::new(AgentStats::default());
    let wstats = Arc::new(WatchStats::default());
    let tracker = (a.watchers > 0 && !a.idle).then(|| Arc::new(Tracker::new(a.watchers, 200_000)));
    let (schedule_tx, schedule) = tokio::sync::watch::channel(None);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(a.connect_concurrency.clamp(1, 1024)));

    // Watchers first, so they see the agents' first events.
    let mut watcher_tasks = Vec::new();
    for w in 0..a.watchers {
        let (ch, ws, tr, stop) =
            (target::channel(&watch_url, started.token.as_deref())?, wstats.clone(), tracker.clone(), stop.clone());
        let (limit, p) = (a.watch_package_limit, a.progress_per_package);
        watcher_tasks.push(tokio::spawn(async move {
            watchers::run_watcher(w, ch, limit, p, &ws, tr.as_deref(), stop).await;
        }));
    }
    let ramp = Instant::now();
    let mut agent_tasks = Vec::with_capacity(a.agents);
    // Each agent enrolls and holds its own TLS connection with its own credential, as real ones do.
    for i in 0..a.agents {
        let (url, opts, stats, tr, sched, gate) = (
            agent_urls[i % agent_urls.len()].clone(),
            opts.clone(),
            stats.clone(),
            tracker.clone(),
            schedule.clone(),
            gate.clone(),
        );
        agent_tasks.push(tokio::spawn(async move {
            agents::run_agent(i, &url, &opts, &stats, tr.as_deref(), sched, &gate).await;
        }));
    }
    // Wait until every agent has its Welcome (or failed), bounded.
    let ramp_limit = Duration::from_secs(120);
    loop {
        let done = stats.connected.load(Ordering::Relaxed) + stats.connect_failures.load(Ordering::Relaxed);
        let watching = wstats.subscribed.load(Ordering::Relaxed) + wstats.errors.load(Ordering::Relaxed);
        if (done as usize >= a.agents && watching as usize >= a.watchers) || ramp.elapsed() > ramp_limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_s = ramp.elapsed().as_secs_f64();
    eprintln!(
        "{} agents connected ({} failed), {} watchers subscribed in {ramp_s:.1} s; running {:.0} s",
        stats.connected.load(Ordering::Relaxed),
        stats.connect_failures.load(Ordering::Relaxed),
        wstats.subscribed.load(Ordering::Relaxed),
        duration.as_secs_f64()
    );
    let mon = monitor(started.pid);
    let begin = Instant::now();
    let deadline = begin + duration;
    let _ = schedule_tx.send(Some((begin, deadline)));
    // Sweep the latency tracker and print progress while the window runs.
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()))).await;
        let acked = stats.acked_in_window.load(Ordering::Relaxed);
        eprintln!("  {:>5.1} s: {:>8} events/s acked", begin.elapsed().as_secs_f64(), acked - last);
        last = acked;
        if let Some(t) = &tracker {
            t.sweep(Duration::from_secs(30));
        }
    }
    let window_s = begin.elapsed().as_secs_f64();
    for t in agent_tasks {
        let _ = t.await;
    }
    let usage = match mon {
        Some(m) => Some(m.finish().await),
        None => None,
    };
    // Give the last changes a moment to reach the watchers, then stop them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for t in watcher_tasks {
        let _ = t.await;
    }
    if let Some(t) = &tracker {
        t.sweep(Duration::ZERO);
    }
    drop(schedule_tx);
    let startup = started.spawned.as_ref().map(|c| c.startup.clone());
    if let Some(c) = started.spawned {
        c.stop().await;
    }
    let acked_in_window = stats.acked_in_window.load(Ordering::Relaxed);
    let ack_latency: Summary = stats.ack_latency.lock().unwrap_or_else(|e| e.into_inner()).summary();
    let watch_latency = tracker.as_ref().map(|t| t.summary());
    let report = json!({
        "scenario": "stream",
        "url": started.url,
        "agents": a.agents,
        "watchers": a.watchers,
        "idle": a.idle,
        "rate_target": a.rate,
        "progress_per_package": a.progress_per_package,
        "window": a.window,
        "ramp_s": ramp_s,
        "duration_s": window_s,
        "agents_connected": stats.connected.load(Ordering::Relaxed),
        "connect_failures": stats.connect_failures.load(Ordering::Relaxed),
        "events_sent": stats.sent.load(Ordering::Relaxed),
        "events_acked": stats.acked.load(Ordering::Relaxed),
        "events_acked_in_window": acked_in_window,
        "events_unacked": stats.unacked.load(Ordering::Relaxed),
        "events_rejected": stats.rejected.load(Ordering::Relaxed),
        "events_per_sec": acked_in_window as f64 / window_s.max(1e-9),
        "protocol_errors": stats.protocol_errors.load(Ordering::Relaxed),
        "stream_errors": stats.stream_errors.load(Ordering::Relaxed),
        "heartbeats_sent": stats.heartbeats.load(Ordering::Relaxed),
        "commands_received": stats.commands.load(Ordering::Relaxed),
        "ack_latency": ack_latency,
        "watchers_subscribed": wstats.subscribed.load(Ordering::Relaxed),
        "watch_events": wstats.events.load(Ordering::Relaxed),
        "watch_package_changes": wstats.package_changes.load(Ordering::Relaxed),
        "watch_snapshots": wstats.snapshots.load(Ordering::Relaxed),
        "watch_errors": wstats.errors.load(Ordering::Relaxed),
        "watch_latency": watch_latency,
        "watch_unseen_events": tracker.as_ref().map(|t| t.unseen.load(Ordering::Relaxed)),
        "watch_untracked_events": tracker.as_ref().map(|t| t.untracked.load(Ordering::Relaxed)),
        "catcher": Run { url: url.clone(), startup, usage },
        "errors": stats.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        "watch_error_messages": wstats.messages.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    });
    eprintln!(
        "events/s {:.0}  ack p99 {:.1} ms  watch p99 {}  unacked {}  rejected {}  protocol errors {}",
        report["events_per_sec"].as_f64().unwrap_or(0.0),
        ack_latency.p99_ms,
        watch_latency.map_or("-".to_owned(), |w| format!("{:.1} ms", w.p99_ms)),
        report["events_unacked"],
        report["events_rejected"],
        report["protocol_errors"],
    );
    Ok(report)
}

async fn query(a: QueryArgs) -> anyhow::Result<serde_json::Value> {
    let duration = check_duration(&a.target)?;
    if !(1..=64).contains(&a.clients) {
        bail!("--clients must be 1..=64, got {}", a.clients);
    }
    if !(1..=1000).contains(&a.page_size) {
        bail!("--page-size must be 1..=1000, got {}", a.page_size);
    }
    if !(0.0..=600.0).contains(&a.warmup) {
        bail!("--warmup must be 0..=600 seconds");
    }
    let started = start(&a.target, true).await?;
    let mix = queries::plan(target::channel(&started.url, started.token.as_deref())?, a.page_size).await?;
    // Warm-up: caches, connection set-up, SQLite page cache.
    let warm_until = Instant::now() + Duration::from_secs_f64(a.warmup);
    queries::run_client(target::channel(&started.url, started.token.as_deref())?, &mix, warm_until).await?;
    let mon = monitor(started.pid);
    let begin = Instant::now();
    let until = begin + duration;
    let mut tasks = Vec::new();
    for _ in 0..a.clients {
        let (ch, mix) = (target::channel(&started.url, started.token.as_deref())?, mix.clone());
        tasks.push(tokio::spawn(async move { queries::run_client(ch, &mix, until).await }));
    }
    let mut all = queries::Results::new();
    let mut errors = 0;
    for t in tasks {
        let (results, e) = t.await.context("query client")??;
        errors += e;
        for (name, h) in results {
            all.entry(name).or_default().merge(&h);
        }
    }
    let window_s = begin.elapsed().as_secs_f64();
    let usage = match mon {
        Some(m) => Some(m.finish().await),
        None => None,
    };
    let startup = started.spawned.as_ref().map(|c| c.startup.clone());
    if let Some(c) = started.spawned {
        c.stop().await;
    }
    let latency: serde_json::Map<String, serde_json::Value> =
        all.iter().map(|(k, h)| (k.clone(), json!(h.summary()))).collect();
    for (k, h) in &all {
        let s = h.summary();
        eprintln!(
            "{k:<32} n={:<7} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            s.count, s.p50_ms, s.p99_ms, s.max_ms
        );
    }
    Ok(json!({
        "scenario": "query",
        "url": started.url,
        "clients": a.clients,
        "page_size": a.page_size,
        "duration_s": window_s,
        "errors": errors,
        "latency": latency,
        "catcher": Run { url: started.url.clone(), startup, usage },
    }))
}

async fn observe(a: ObserveArgs) -> anyhow::Result<serde_json::Value> {
    let duration = check_duration(&a.target)?;
    let started = start(&a.target, false).await?;
    let Some(pid) = started.pid else { bail!("observe needs --pid, --catcher (to find its pid) or --spawn-catcher") };
    let mon = Monitor::start(pid, Duration::from_millis(500)).with_context(|| format!("read /proc/{pid}"))?;
    tokio::time::sleep(duration).await;
    let usage = mon.finish().await;
    eprintln!(
        "pid {pid}: RSS {:.1} MiB (peak {:.1}), CPU {:.3} % avg over {:.0} s",
        usage.rss_mib_end, usage.rss_mib_peak, usage.cpu_percent_avg, usage.window_s
    );
    let startup = started.spawned.as_ref().map(|c| c.startup.clone());
    if let Some(c) = started.spawned {
        c.stop().await;
    }
    Ok(json!({
        "scenario": "observe",
        "port": started.port,
        "catcher": Run { url: started.url, startup, usage: Some(usage) },
    }))
}
