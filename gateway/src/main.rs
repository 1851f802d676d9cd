//! The `gateway` binary: command line, logging, signals.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gateway::config::{Config, KEYS_HELP};

#[derive(Parser)]
#[command(name = "gateway", version, about = "Edge Backup dashboard and grpc-web gateway", after_help = KEYS_HELP)]
struct Cli {
    /// TOML config file; must exist when given (default: ./gateway.toml if present).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Override `listen`.
    #[arg(long)]
    listen: Option<String>,
    /// Override `catcher_url`.
    #[arg(long)]
    catcher: Option<String>,
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let (file, required) = match &cli.config {
        Some(f) => (f.clone(), true),
        None => (PathBuf::from("gateway.toml"), false),
    };
    let mut config = Config::load(&file, required)?;
    if let Some(l) = &cli.listen {
        config.listen = l.parse().with_context(|| format!("--listen: {l:?} is not an address like 127.0.0.1:8080"))?;
    }
    if let Some(url) = &cli.catcher {
        config.catcher_url = url.clone();
    }
    config.validate()?;
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = load(&cli)?;
    let _telemetry = edgebackup_common::init_logging(config.log_format, &config.log_level, "edgebackup-gateway");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (listen)", config.listen))?;
    // Tests and scripts read the bound port from this line (listen may say port 0).
    println!("gateway listening on {}", listener.local_addr()?);
    let scheme = if config.tls_files().is_some() { "https" } else { "http" };
    tracing::info!(addr = %listener.local_addr()?, catcher = %config.catcher_url, "dashboard at {scheme}://{}/", listener.local_addr()?);
    gateway::server::serve(config, listener, edgebackup_common::shutdown_signal()).await
}
