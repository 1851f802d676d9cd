//! The `catcher` binary: command line, logging, signals.

use std::path::PathBuf;

use anyhow::Context;
use catcher::config::{Config, KEYS_HELP};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "catcher", version, about = "Edge Backup control plane (gRPC)", after_help = KEYS_HELP)]
struct Cli {
    /// TOML config file; must exist when given (default: ./catcher.toml if present).
    #[arg(long, global = true, env = "CATCHER_CONFIG")]
    config: Option<PathBuf>,
    /// Override `listen`.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Override `database_url`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the control plane (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted) and exit.
    DumpConfig,
    /// Show the fleet's status from a running catcher: a one-shot report, or `--live` full screen.
    #[command(after_help = catcher::tui::STATUS_HELP)]
    Status(catcher::tui::StatusArgs),
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let (file, required) = match &cli.config {
        Some(f) => (f.clone(), true),
        None => (PathBuf::from("catcher.toml"), false),
    };
    let mut config = Config::load(&file, required)?;
    if let Some(l) = &cli.listen {
        config.listen = l.parse().with_context(|| format!("--listen: {l:?} is not an address like 127.0.0.1:50051"))?;
    }
    if let Some(url) = &cli.database_url {
        config.database_url = url.clone();
    }
    config.validate()?;
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    // A client of a running catcher: no server config, no database, no logging to stderr.
    if let Some(Cmd::Status(args)) = &cli.command {
        return Ok(catcher::tui::run(args.clone()).await.into());
    }
    let config = load(&cli)?;
    edgebackup_common::init_logging(config.log_format, &config.log_level);
    match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::DumpConfig => {
            println!("{}", toml_dump(&config)?);
        }
        Cmd::Migrate => {
            catcher::server::open_store(&config).await?.close().await?;
            tracing::info!(database = %catcher::config::redact_url(&config.database_url), "migrations applied");
        }
        Cmd::Status(_) => unreachable!("handled before loading the config"),
        Cmd::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {} (listen)", config.listen))?;
            // Tests and scripts read the bound port from this line (listen may say port 0).
            println!("catcher listening on {}", listener.local_addr()?);
            catcher::server::serve(config, listener, edgebackup_common::shutdown_signal()).await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn toml_dump(config: &Config) -> anyhow::Result<String> {
    let mut redacted = config.clone();
    redacted.database_url = catcher::config::redact_url(&redacted.database_url);
    Ok(serde_json::to_string_pretty(&redacted)?)
}
