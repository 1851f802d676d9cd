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
    /// The catcher's own database: back it up, check it, restore it.
    Db {
        #[command(subcommand)]
        action: DbCmd,
    },
    /// Print the effective configuration (secrets redacted) and exit.
    DumpConfig,
    /// Print a one-time enrollment token for a device (and how the device uses it).
    Enroll {
        /// The source the device will be.
        #[arg(long)]
        source: String,
        /// How long the token may be used: 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = catcher::cli::parse_duration)]
        ttl: std::time::Duration,
        /// How many devices may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// The agent may move and delete copies between stations.
        #[arg(long)]
        mover: bool,
    },
    /// Agents' credentials.
    Agent {
        #[command(subcommand)]
        action: AgentCmd,
    },
    /// The catcher's TLS certificate.
    Tls {
        #[command(subcommand)]
        action: TlsCmd,
    },
    /// People's tokens (roles: viewer, operator, admin).
    Token {
        #[command(subcommand)]
        action: TokenCmd,
    },
    /// Alerts' notification channels.
    Alert {
        #[command(subcommand)]
        action: AlertCmd,
    },
    /// Show the fleet's status from a running catcher: a one-shot report, or `--live` full screen
    /// (hands over to `ebk status`; `catcher status --help` shows its options). The token comes
    /// from CATCHER_TOKEN or --token-file.
    #[command(disable_help_flag = true)]
    Status {
        /// Passed to `ebk status` as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Revoke every credential of a source (a lost or replaced device); its stream is closed.
    Revoke {
        /// The source.
        source: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        /// Unique name, e.g. the person's.
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (rules, presets, snapshots, commands), admin (everything).
        #[arg(long)]
        role: catcher::domain::Role,
        /// How long it works: 12h, 30d; until revoked when not given.
        #[arg(long, value_parser = catcher::cli::parse_duration)]
        ttl: Option<std::time::Duration>,
        /// A viewer sees file paths, station URIs and command arguments unredacted.
        #[arg(long)]
        unredacted: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name: its calls and open streams end within a second.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AlertCmd {
    /// Send a test notification through a configured channel now (journaled); exit 1 when it
    /// was not delivered.
    Test {
        /// The channel's name (`[[channels]] name`).
        channel: String,
    },
}

#[derive(Subcommand)]
enum DbCmd {
    /// Copy the SQLite database, consistently, while the catcher runs; the copy is checked.
    /// (On PostgreSQL: pg_dump --format=custom.)
    Backup {
        /// The new file.
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a backup file (or, without --file, the configured database): integrity, the
    /// journal's whole chain, counts. Exit 1 when it does not check out. Changes nothing.
    Check {
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Put a checked SQLite backup in place of the configured database (kept beside it as
    /// *.before-restore-TIME). The catcher must be stopped. Agents that sent more since the
    /// backup back their folders up again when they reconnect.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Create the CA (if needed) and a server certificate for the given names, in data_dir/tls.
    Init {
        /// A DNS name or IP address agents reach the catcher by (repeat for several).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
    },
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
    // A client of a running catcher, which lives in its own binary (the server links no
    // terminal UI): no server config, no database, no logging to stderr.
    if let Some(Cmd::Status { args }) = &cli.command {
        return Ok(console("status", args));
    }
    let config = load(&cli)?;
    let _telemetry = edgebackup_common::init_logging(config.log_format, &config.log_level, "edgebackup-catcher");
    match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::DumpConfig => {
            println!("{}", toml_dump(&config)?);
        }
        Cmd::Migrate => {
            catcher::server::open_store(&config).await?.close().await?;
            tracing::info!(database = %catcher::config::redact_url(&config.database_url), "migrations applied");
        }
        Cmd::Status { .. } => unreachable!("handled before loading the config"),
        Cmd::Db { action: DbCmd::Backup { to } } => catcher::cli::db_backup(&config, &to).await?,
        Cmd::Db { action: DbCmd::Check { file } } => {
            if !catcher::cli::db_check(&config, file.as_deref()).await? {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Cmd::Db { action: DbCmd::Restore { from } } => catcher::cli::db_restore(&config, &from).await?,
        Cmd::Enroll { source, ttl, uses, mover } => catcher::cli::enroll(&config, &source, ttl, uses, mover).await?,
        Cmd::Agent { action: AgentCmd::Revoke { source } } => catcher::cli::revoke(&config, &source).await?,
        Cmd::Tls { action: TlsCmd::Init { hosts } } => catcher::cli::tls_init(&config, &hosts)?,
        Cmd::Token { action: TokenCmd::Create { name, role, ttl, unredacted } } => {
            let ttl_secs = ttl.map(|d| d.as_secs());
            let new = catcher::service::access::NewToken { name, role, ttl_secs, unredacted };
            catcher::cli::token_create(&config, new).await?
        }
        Cmd::Alert { action: AlertCmd::Test { channel } } => {
            if !catcher::cli::alert_test(&config, &channel).await? {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Cmd::Token { action: TokenCmd::List } => catcher::cli::token_list(&config).await?,
        Cmd::Token { action: TokenCmd::Revoke { name } } => catcher::cli::token_revoke(&config, &name).await?,
        Cmd::Serve => {
            // Migrated (opening the store for the first admin does it), with its CA and an admin
            // token before it says it listens: whatever runs next (tests, `catcher enroll`)
            // finds them in place.
            catcher::auth::ca::Authority::load_or_create(&config.data_dir.join("ca"))?;
            catcher::cli::ensure_first_admin(&config).await?;
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

/// Replaces this process with `ebk SUBCOMMAND ARGS…`, found beside this binary or on PATH.
/// Returns only when it could not be started.
fn console(subcommand: &str, args: &[std::ffi::OsString]) -> std::process::ExitCode {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join("ebk")));
    let program = beside.filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("ebk"));
    let err = std::process::Command::new(&program).arg(subcommand).args(client_args(args)).exec();
    eprintln!(
        "error: `catcher {subcommand}` is provided by `ebk` (package edgebackup-console), which could not be \
         started ({}: {err}); install it beside the catcher or on PATH",
        program.display()
    );
    // As `ebk status` exits when its catcher cannot be reached.
    std::process::ExitCode::from(3)
}

/// `args` without the catcher's own server options (`--config`, `--listen`, `--database-url`,
/// with their values): `catcher status` accepts and ignores them, the client has no use for them.
fn client_args(args: &[std::ffi::OsString]) -> Vec<std::ffi::OsString> {
    const SERVER: [&str; 3] = ["--config", "--listen", "--database-url"];
    let mut out = Vec::with_capacity(args.len());
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = a.to_string_lossy();
        if SERVER.contains(&text.as_ref()) {
            skip_value = true;
        } else if !SERVER.iter().any(|o| text.starts_with(&format!("{o}="))) {
            out.push(a.clone());
        }
    }
    out
}

fn toml_dump(config: &Config) -> anyhow::Result<String> {
    let mut redacted = config.clone();
    redacted.database_url = catcher::config::redact_url(&redacted.database_url);
    for c in &mut redacted.channels {
        c.url = c.url.as_deref().map(catcher::notify::redact_url);
    }
    Ok(serde_json::to_string_pretty(&redacted)?)
}
