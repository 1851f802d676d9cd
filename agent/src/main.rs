//! The `agent` binary: command line, logging, signals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agent::config::{Config, EXAMPLE};
use agent::restore::browse;
use agent::{daemon, link, report, restore};
use clap::{Parser, Subcommand};
use edgebackup_proto::v1 as pb;

#[derive(Parser)]
#[command(name = "agent", version, about = "Edge Backup agent: backs up this device's folders to storage stations")]
#[command(
    after_help = "Exit codes: 0 success, 1 the operation failed (e.g. a corrupt copy), 2 bad configuration or usage.\n\
Configuration: agent.toml (or --config) < AGENT_* environment; `agent init` writes a commented example."
)]
struct Cli {
    /// TOML config file; must exist when given (default: ./agent.toml if present).
    #[arg(long, global = true, env = "AGENT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon: watch, back up, stay connected to the catcher.
    Run,
    /// Run one backup pass, send its events to the catcher, and exit.
    Backup {
        /// One pass and exit (the only mode; `agent run` is the continuous one).
        #[arg(long, default_value_t = true)]
        once: bool,
        /// Longest wait for the catcher to acknowledge the events, in seconds.
        #[arg(long, default_value_t = 30)]
        flush_timeout: u64,
    },
    /// Show the local view: outbox depth, connection, safety state, recent packages.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Preflight, one line per check: the config file, every folder, every station (tool
    /// installed, directory/remote/repository there, restic password right), the state dir and
    /// the catcher (reachable, this agent's credential). Changes nothing unless asked.
    CheckConfig {
        /// Create missing station directories, remote paths and restic repositories.
        #[arg(long)]
        init_stations: bool,
    },
    /// Restore the folders as they were at a moment (default: the latest state of every folder
    /// of this source), from the catalog; or, given a package id, that package as stored.
    /// Each folder comes back under DIR at its absolute path; every file is checked against
    /// its sha256 and gets its mode, mtime and (as root) owner back. Running it again after an
    /// interruption continues where it stopped.
    Restore {
        /// A package id: restore that package's files as stored, nothing else.
        package_id: Option<String>,
        /// Target directory (created if missing).
        #[arg(long)]
        to: PathBuf,
        /// The moment: RFC 3339 (2026-12-01T09:00:00Z) or `latest` (the default).
        #[arg(long)]
        as_of: Option<String>,
        /// Only paths matching this glob, relative to the folder (repeatable; a directory
        /// selects what is under it).
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Only this watched folder, as recorded (repeatable; default: all of the source's).
        #[arg(long = "folder")]
        folders: Vec<String>,
        /// Replace existing files whose contents differ (default: leave them and say so).
        #[arg(long)]
        overwrite: bool,
        /// Fetch from this station only (default: the first with an intact verified copy).
        #[arg(long)]
        station: Option<String>,
        /// The source that made the data (default: this agent's source_id), e.g. when a
        /// replacement device restores its predecessor's data.
        #[arg(long)]
        source: Option<String>,
    },
    /// List what the catalog recorded: every entry of the folders as of a moment.
    Ls {
        /// Only paths starting with this prefix (relative to the folder).
        prefix: Option<String>,
        /// The moment (RFC 3339 or `latest`).
        #[arg(long)]
        as_of: Option<String>,
        /// Only this watched folder (default: all of the source's).
        #[arg(long)]
        folder: Option<String>,
        /// Another source's catalog (default: this agent's).
        #[arg(long)]
        source: Option<String>,
    },
    /// Every recorded version of one path, newest first.
    Versions {
        /// Absolute, or relative to --folder (or to the only watched folder).
        path: String,
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        source: Option<String>,
    },
    /// Verify a package's stored copies on every configured station; names any damaged file
    /// and reports what it found to the catcher, which has a damaged copy written again from a
    /// good one. Works while the daemon runs, and on a replacement device (from the catcher's
    /// record of the package).
    Verify {
        package_id: String,
        /// Do not report to the catcher.
        #[arg(long)]
        no_report: bool,
    },
    /// Enroll this device with a one-time token (`catcher enroll --source ID` prints the
    /// command): a key is generated here, the catcher signs a credential for it, and both are
    /// kept in state_dir/credential (the key with mode 0600).
    Enroll {
        /// The catcher, e.g. https://backup.example.org:50051 (default: catcher_url).
        #[arg(long)]
        catcher: Option<String>,
        /// The enrollment token.
        #[arg(long, env = "AGENT_ENROLL_TOKEN")]
        token: String,
        /// SHA-256 of the catcher's CA, as `catcher enroll` printed it (required over https).
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Write a commented example configuration.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "agent.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// The config file read, if there was one.
fn config_file(cli: &Cli) -> Option<PathBuf> {
    let file = cli.config.clone().unwrap_or_else(|| PathBuf::from("agent.toml"));
    file.exists().then(|| std::path::absolute(&file).unwrap_or(file))
}

fn load(cli: &Cli) -> Result<Config, String> {
    let (file, required) = match &cli.config {
        Some(f) => (f.clone(), true),
        None => (PathBuf::from("agent.toml"), false),
    };
    Config::load(&file, required).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Init { path, force } = &cli.command {
        return init(path, *force);
    }
    let config = match load(&cli) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("agent: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = edgebackup_common::init_logging(config.log_format, &config.log_level, "edgebackup-agent");
    let result = match cli.command {
        Cmd::Enroll { catcher, token, ca_fingerprint } => {
            let url = catcher.unwrap_or_else(|| config.catcher_url.clone());
            let fingerprint = ca_fingerprint
                .or_else(|| (!config.catcher_ca_fingerprint.is_empty()).then(|| config.catcher_ca_fingerprint.clone()));
            match agent::credential::enroll(&config, &url, &token, fingerprint.as_deref()).await {
                Ok(c) => {
                    let until = c.validity().and_then(|(_, end)| chrono::DateTime::from_timestamp(end, 0));
                    println!(
                        "enrolled as {}; credential in {} (valid until {}, renewed automatically)",
                        config.source_id,
                        agent::credential::dir(&config).display(),
                        until.map(|t| t.to_rfc3339()).unwrap_or_default()
                    );
                    if url != config.catcher_url {
                        println!("set catcher_url = \"{url}\" in the agent's config");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(anyhow::anyhow!(e)),
            }
        }
        Cmd::Run => daemon::run(config, edgebackup_common::shutdown_signal()).await.map(|()| ExitCode::SUCCESS),
        Cmd::Backup { flush_timeout, .. } => backup_once(config, flush_timeout).await,
        Cmd::Status { json } => status(&config, json),
        Cmd::CheckConfig { init_stations } => check_config(&config, config_file(&cli).as_deref(), init_stations).await,
        Cmd::Restore { package_id: Some(package_id), to, station, source, .. } => {
            let owner = source.unwrap_or_else(|| config.source_id.clone());
            restore_cmd(config.clone(), &owner, &package_id, &to, station.as_deref()).await
        }
        Cmd::Restore { package_id: None, to, as_of, paths, folders, overwrite, source, station } => {
            let source = source.unwrap_or_else(|| config.source_id.clone());
            match browse::moment(as_of.as_deref()) {
                Ok(as_of) => {
                    let sel = restore::state::Selection { source, folders, as_of, paths, overwrite, station };
                    browse::restore(&config, &sel, &to).await
                }
                Err(e) => usage(&e),
            }
        }
        Cmd::Ls { prefix, as_of, folder, source } => match browse::moment(as_of.as_deref()) {
            Ok(as_of) => {
                let source = source.unwrap_or_else(|| config.source_id.clone());
                browse::ls(&config, &source, folder, as_of, prefix.as_deref()).await
            }
            Err(e) => usage(&e),
        },
        Cmd::Versions { path, folder, source } => {
            let source = source.unwrap_or_else(|| config.source_id.clone());
            browse::versions(&config, &source, folder.as_deref(), &path).await
        }
        Cmd::Verify { package_id, no_report } => verify(config, &package_id, !no_report).await,
        Cmd::Init { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A usage mistake: said on stderr, exit 2.
fn usage(e: &str) -> anyhow::Result<ExitCode> {
    eprintln!("agent: {e}");
    Ok(ExitCode::from(2))
}

fn init(path: &std::path::Path, force: bool) -> ExitCode {
    if path.exists() && !force {
        eprintln!("agent: {} exists; pass --force to overwrite it", path.display());
        return ExitCode::from(2);
    }
    match std::fs::write(path, EXAMPLE) {
        Ok(()) => {
            println!("wrote {}; add [[folders]] and [[stations]], then run `agent check-config`", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

async fn backup_once(config: Arc<Config>, flush_timeout: u64) -> anyhow::Result<ExitCode> {
    let engine = daemon::prepare(config.clone()).await?;
    let redone = engine.recover().await?;
    let r = engine.pass().await?;
    let commands = Arc::new(agent::commands::Commands::new(engine.clone()));
    let stop = tokio_util::sync::CancellationToken::new();
    let link = tokio::spawn(link::run(config.clone(), engine.state.clone(), commands, stop.clone()));
    let left = daemon::flush(&engine.state, Duration::from_secs(flush_timeout)).await;
    stop.cancel();
    let _ = link.await;
    println!(
        "{} package(s) completed ({} file(s)), {} failed, {} resumed{}",
        r.packages_completed,
        r.files_backed_up,
        r.packages_failed,
        redone,
        r.held.as_ref().map(|h| format!("; uploads held: {h}")).unwrap_or_default()
    );
    if left > 0 {
        println!("{left} event(s) wait in the outbox for the catcher; the next run sends them");
    }
    Ok(if r.packages_failed > 0 || r.held.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let r = report::read(&config.state_dir, &config.source_id, &config.catcher_url)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", report::render(&r));
        if config.safety.enabled && config.safety.canary {
            for f in &config.folders {
                let canary = f.path.join(agent::scan::CANARY_NAME);
                println!("canary      {} (the agent's; editing or deleting it stops uploads)", canary.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check_config(config: &Config, file: Option<&std::path::Path>, init: bool) -> anyhow::Result<ExitCode> {
    let lines = agent::preflight::run(config, file, init).await;
    for l in &lines {
        println!("{}", l.render());
    }
    let code = agent::preflight::exit_code(&lines);
    if code == 0 {
        println!("configuration ok");
    }
    Ok(ExitCode::from(code))
}

/// This agent's completed record of a package, when the state dir is there and free (no daemon
/// holds it).
fn local_record(config: &Config, package_id: &str) -> Option<agent::state::LocalPackage> {
    agent::state::State::open_existing(&config.state_dir)?
        .package(package_id)
        .ok()
        .flatten()
        .filter(|p| !p.sha256.is_empty())
}

/// The sha256 the package must have: from this agent's records, else from the catcher.
async fn expected_sha(config: &Config, package_id: &str) -> Option<String> {
    if let Some(p) = local_record(config, package_id) {
        return Some(p.sha256);
    }
    let plan = restore::VerifyPlan::from_catcher(config, package_id).await.ok()?;
    (!plan.sha256.is_empty()).then_some(plan.sha256)
}

async fn restore_cmd(
    config: Arc<Config>,
    owner: &str,
    package_id: &str,
    to: &std::path::Path,
    only: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let expected = expected_sha(&config, package_id).await;
    if expected.is_none() {
        eprintln!(
            "warning: the expected sha256 is unknown (no local record, catcher unreachable); checking files against the manifest only"
        );
    }
    let scratch = std::env::temp_dir().join(format!("edgebackup-restore-{}", std::process::id()));
    let mut checks = Vec::new();
    for s in config.stations.iter().filter(|s| only.is_none_or(|o| o == s.id)) {
        let station = agent::station::Station::from_config(s);
        let check = restore::restore_from(&station, owner, package_id, expected.as_deref(), to, &scratch).await;
        println!("{}", check.summary());
        let ok = check.ok;
        checks.push(check);
        if ok {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if checks.iter().any(|c| c.ok) {
        println!("restored {package_id} into {}", to.display());
        Ok(ExitCode::SUCCESS)
    } else if checks.is_empty() {
        anyhow::bail!("no configured station matches {only:?}")
    } else {
        anyhow::bail!("no station holds an intact copy of {package_id}")
    }
}

async fn verify(config: Arc<Config>, package_id: &str, report: bool) -> anyhow::Result<ExitCode> {
    if uuid::Uuid::parse_str(package_id).is_err() {
        return usage(&format!("package_id: {package_id:?} is not a package id"));
    }
    // The catcher's record (tier moves and expiries change where copies are); this agent's
    // record of its upload only when the catcher is out of reach and no daemon holds the state dir.
    let plan = match restore::VerifyPlan::from_catcher(&config, package_id).await {
        Ok(plan) => plan,
        Err(e) => match local_record(&config, package_id) {
            Some(p) => {
                eprintln!("note: {e}; checking the copies this agent uploaded instead");
                restore::VerifyPlan::from_record(&config.source_id, &p)
            }
            None => {
                anyhow::bail!("{package_id}: the catcher's record is out of reach ({e}), and this state dir has none")
            }
        },
    };
    let stations: Vec<_> = config.stations.iter().map(agent::station::Station::from_config).collect();
    let scratch = std::env::temp_dir().join(format!("edgebackup-verify-{}", std::process::id()));
    let checks = restore::verify_plan(&stations, &plan, &scratch, restore::Integrity::PerCopy).await;
    let _ = std::fs::remove_dir_all(&scratch);
    for c in &checks {
        println!("{}", c.summary());
    }
    let reportable: Vec<_> = checks.iter().filter(|c| !c.station_id.is_empty()).map(|c| c.to_wire()).collect();
    if report && !reportable.is_empty() {
        match agent::scrub::report(&config, reportable, pb::CheckOrigin::Unspecified).await {
            Ok(r) if r.damaged > 0 => println!(
                "reported to the catcher: {} copy(ies) marked damaged, {} being written again from a good copy",
                r.damaged, r.repairs
            ),
            Ok(_) => println!("reported to the catcher"),
            Err(e) => eprintln!("warning: not reported to the catcher: {e}"),
        }
    }
    Ok(if !checks.is_empty() && checks.iter().all(|c| c.ok) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
