//! `edge-demo`: the whole system on one machine, in one process, on real code paths: the
//! catcher (SQLite, `demo` preset with seconds-scale waits), the gateway serving the dashboard,
//! and an agent backing up a seeded folder to a local station. Ctrl-C stops it all cleanly; a
//! second run reuses the same data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "edge-demo", version, about = "Run catcher, gateway (dashboard) and a local agent together")]
struct Cli {
    /// Where everything lives (database, stations, watched folder, agent state).
    #[arg(long, default_value = "data/demo")]
    dir: PathBuf,
    /// Dashboard (gateway) address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    dashboard: String,
    /// Catcher gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    catcher: String,
    /// Seconds between new sample files in the watched folder (0: none).
    #[arg(long, default_value_t = 15)]
    new_file_every: u64,
}

const TIERS: [&str; 4] = ["hot", "warm", "cold", "offsite"];

/// Sample files: the seed prototype's mock data.
const SAMPLES: &[(&str, &[u8])] = &[
    ("sample.txt", include_bytes!("../../catcher/tests/fixtures/mock-data/sample.txt")),
    ("report.json", include_bytes!("../../catcher/tests/fixtures/mock-data/report.json")),
    ("config.ini", include_bytes!("../../catcher/tests/fixtures/mock-data/config.ini")),
    ("empty.bin", include_bytes!("../../catcher/tests/fixtures/mock-data/empty.bin")),
    ("data/backup-001.log", include_bytes!("../../catcher/tests/fixtures/mock-data/data/backup-001.log")),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry =
        edgebackup_common::init_logging(edgebackup_common::LogFormat::Human, "info,sqlx=warn", "edgebackup-demo");
    std::fs::create_dir_all(&cli.dir).with_context(|| format!("create {}", cli.dir.display()))?;
    let dir = cli.dir.canonicalize()?;
    let watched = dir.join("watched");
    seed(&watched)?;
    std::fs::create_dir_all(dir.join("restores")).with_context(|| "create the restores directory")?;

    let stop = CancellationToken::new();
    let catcher_listener =
        tokio::net::TcpListener::bind(&cli.catcher).await.with_context(|| format!("listen on {}", cli.catcher))?;
    let gateway_listener =
        tokio::net::TcpListener::bind(&cli.dashboard).await.with_context(|| format!("listen on {}", cli.dashboard))?;
    let catcher_url = format!("http://{}", catcher_listener.local_addr()?);
    let gateway_addr = gateway_listener.local_addr()?;

    let catcher_config = catcher::config::Config {
        listen: catcher_listener.local_addr()?,
        database_url: format!("sqlite://{}?mode=rwc", dir.join("catcher.db").display()),
        initial_preset: "demo".into(),
        scheduler_interval_ms: 500,
        restore_drill_interval_secs: 30,
        // Compaction at demo speed: packages a minute old, kept for at most half their bytes.
        compaction_interval_secs: 30,
        compaction_min_age_secs: 60,
        compaction_max_live_percent: 50,
        // Its CA (which signs the agent's credential) and TLS certificate live with the demo's data.
        data_dir: dir.join("catcher-data"),
        stations: TIERS
            .iter()
            .map(|t| catcher::config::StationConfig {
                id: format!("demo-{t}"),
                tier: t.parse().expect("known tier"),
                kind: catcher::domain::StationKind::Local,
                uri: dir.join("stations").join(t).display().to_string(),
            })
            .collect(),
        ..catcher::config::Config::default()
    };
    catcher_config.validate()?;
    let gateway_config = gateway::config::Config {
        listen: gateway_listener.local_addr()?,
        catcher_url: catcher_url.clone(),
        ..gateway::config::Config::default()
    };
    let mut agent_config = agent::config::Config {
        source_id: "demo-edge".into(),
        label: "Demo device".into(),
        // Agents speak TLS with their own credential (enrolled below).
        catcher_url: catcher_url.replacen("http://", "https://", 1),
        state_dir: dir.join("agent-state"),
        folders: vec![agent::config::FolderConfig {
            path: watched.clone(),
            // Application logs have the demo preset's shortest lifecycle: about 95 s end to end.
            package_type: "app_logs".into(),
            excludes: vec!["*.tmp".into()],
        }],
        // It backs up to the hot station and, as the mover, carries packages down the tiers.
        stations: TIERS
            .iter()
            .map(|t| agent::config::StationConfig {
                id: format!("demo-{t}"),
                kind: "local".into(),
                uri: dir.join("stations").join(t).display().to_string(),
                tool: None,
                password_file: None,
                readback: None,
            })
            .collect(),
        backup_stations: vec!["demo-hot".into()],
        mover: true,
        // The dashboard's Restore page restores into here.
        restore_roots: vec![dir.join("restores")],
        max_backoff_secs: 2,
        ..agent::config::Config::default()
    };
    agent_config.schedule.interval_secs = 5;
    agent_config.schedule.debounce_ms = 500;

    // As `catcher` itself does on its first start: an admin token in data_dir/admin.token.
    catcher::cli::ensure_first_admin(&catcher_config).await?;
    let admin_file = catcher_config.data_dir.join(catcher::cli::ADMIN_TOKEN_FILE);
    let admin_token = std::fs::read_to_string(&admin_file)
        .with_context(|| format!("read {}", admin_file.display()))?
        .trim()
        .to_owned();
    let catcher =
        tokio::spawn(catcher::server::serve(catcher_config, catcher_listener, stop.clone().cancelled_owned()));
    // The demo enrolls its own agent, once: a one-time token, as `catcher enroll` would print it.
    let fingerprint = enroll(&catcher_url, &admin_token, &mut agent_config).await?;
    agent_config.finish()?;
    let gateway =
        tokio::spawn(gateway::server::serve(gateway_config, gateway_listener, stop.clone().cancelled_owned()));
    let agent_stop = CancellationToken::new();
    let agent_url = agent_config.catcher_url.clone();
    let agent = tokio::spawn(agent::daemon::run(Arc::new(agent_config), agent_stop.clone().cancelled_owned()));
    let writer = tokio::spawn(keep_writing(watched.clone(), cli.new_file_every, stop.clone()));

    println!("Edge Backup demo is running (data in {}).", dir.display());
    println!("  dashboard   http://{gateway_addr}/login#token={admin_token}");
    println!("              (signs you in as admin; the token is in {})", admin_file.display());
    println!(
        "  catcher     {catcher_url}   (grpcurl -plaintext -H \"authorization: Bearer $(cat {})\" {} list)",
        admin_file.display(),
        &catcher_url[7..]
    );
    println!("  agents      {agent_url}   (TLS, enrolled credentials; catcher CA SHA-256 {fingerprint})");
    println!("  terminal    cargo run -p catcher -- status --live --catcher {catcher_url}");
    println!("  watched     {}  (drop files here)", watched.display());
    println!("Ctrl-C stops everything.");

    edgebackup_common::shutdown_signal().await;
    println!("stopping…");
    // The agent first, so it can flush its outbox to a catcher that is still there.
    agent_stop.cancel();
    report("agent", agent).await;
    stop.cancel();
    for (name, task) in [("gateway", gateway), ("catcher", catcher)] {
        report(name, task).await;
    }
    let _ = writer.await;
    Ok(())
}

/// Waits for a component to stop and says if it did not stop cleanly.
async fn report(name: &str, task: tokio::task::JoinHandle<anyhow::Result<()>>) {
    match tokio::time::timeout(Duration::from_secs(20), task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("{name}: {e:#}"),
        Ok(Err(e)) => eprintln!("{name}: {e}"),
        Err(_) => eprintln!("{name} did not stop within 20 s"),
    }
}

/// Puts the sample files into the watched folder (once; a second run keeps what is there).
fn seed(watched: &Path) -> anyhow::Result<()> {
    for (rel, bytes) in SAMPLES {
        let path = watched.join(rel);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            std::fs::write(&path, bytes)?;
        }
    }
    Ok(())
}

/// Updated data keeps arriving: a new log file every `every` seconds.
async fn keep_writing(watched: PathBuf, every: u64, stop: CancellationToken) {
    if every == 0 {
        return;
    }
    let mut n = 0u64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(every)) => {}
            () = stop.cancelled() => return,
        }
        n += 1;
        let path = watched.join(format!("data/app-{n:04}.log"));
        let line = format!("demo log line {n}\n").repeat(100 + (n as usize % 7) * 50);
        if let Err(e) = std::fs::write(&path, line) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write a sample file");
        }
    }
}

/// Gives the demo agent an enrollment token unless it enrolled on an earlier run; answers the
/// catcher's CA fingerprint.
async fn enroll(catcher_url: &str, admin_token: &str, agent: &mut agent::config::Config) -> anyhow::Result<String> {
    use edgebackup_common::client;
    use edgebackup_proto::v1 as pb;
    if let Some(c) = client::Credential::load(&agent::credential::dir(agent)).map_err(anyhow::Error::msg)? {
        return client::fingerprint_of_pem(&c.ca_pem).map_err(anyhow::Error::msg);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let channel = loop {
        match tonic::transport::Channel::from_shared(catcher_url.to_owned())?.connect().await {
            Ok(ch) => break ch,
            Err(e) if std::time::Instant::now() > deadline => anyhow::bail!("the catcher did not start: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    };
    let channel = client::as_person(channel, Some(admin_token)).map_err(anyhow::Error::msg)?;
    let request =
        pb::CreateEnrollmentTokenRequest { source_id: agent.source_id.clone(), mover: true, ..Default::default() };
    let answer = pb::access_service_client::AccessServiceClient::new(channel)
        .create_enrollment_token(request)
        .await?
        .into_inner();
    agent.token = answer.token;
    agent.catcher_ca_fingerprint = answer.ca_fingerprint.clone();
    Ok(answer.ca_fingerprint)
}
