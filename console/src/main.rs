//! `ebk`: Edge Backup from a shell.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ebk", version, about = "Edge Backup from a shell: talks to a running catcher")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the fleet's status from a running catcher: a one-shot report, or `--live` full screen.
    #[command(after_help = edgebackup_console::status::STATUS_HELP)]
    Status(edgebackup_console::status::StatusArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Status(args) => edgebackup_console::status::run(args).await.into(),
    }
}
