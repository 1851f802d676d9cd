//! `ebk status` (also `catcher status`): the fleet's status from the command line — a one-shot report (human, json,
//! ai) or a full-screen live view fed by `StatusService.Watch`.
//!
//! A client of the catcher's public API only: it never reads the server config or the database.
//! `model` folds watch events, `sections` turns the model into lines, `report` and `render` print
//! or draw them, `app` holds the live view's state, `client` and `live` do the IO.

pub mod app;
pub mod client;
pub mod format;
pub mod live;
pub mod model;
pub mod render;
pub mod report;
pub mod sections;

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

pub use client::Error;

/// Exit codes, as documented in `catcher status --help`.
pub mod exit {
    /// The report was printed (and, with `--check`, nothing is wrong).
    pub const OK: u8 = 0;
    /// `--check`: a package failed, a client is stopped for safety, or a present file has no
    /// verified copy.
    pub const CHECK_FAILED: u8 = 1;
    /// Bad command line (clap's own code), or a malformed `--catcher` URL.
    pub const USAGE: u8 = 2;
    /// The catcher could not be reached or did not answer.
    pub const UNREACHABLE: u8 = 3;
    /// The terminal failed (live view).
    pub const TERMINAL: u8 = 4;
    /// The catcher refused the credential (none, unknown, expired, revoked, or too weak a role).
    pub const REFUSED: u8 = 5;
}

/// Shown under `catcher status --help`.
pub const STATUS_HELP: &str = "\
Formats (one-shot):
  human   the dashboard's sections as text: status, the train Clients → Hot → Warm → Cold → Offsite,
          tiers, packages, clients, rule sets, projections (next 24h), recent journal
  json    one JSON document for scripts (catcher, tiers, packages, clients, rule_sets, projections,
          journal, check); when unreachable: {\"catcher\":{\"reachable\":false,\"error\":…}}
  ai      tab-separated lines `EBK<TAB>kind=K<TAB>key=value…`, one per component, tier, package,
          client, rule set, projection, journal event, and a final kind=check line;
          e.g. `catcher status --format ai | grep -P '\\tkind=tier\\t'`

Live view (--live): keys 1-7/Tab/←→ switch section, ↑↓ PgUp/PgDn Home/End scroll, / filter
packages, p pause, ? help, q quit. Follows the Watch stream (no polling) and reconnects with
backoff when the catcher goes away. Honors NO_COLOR.

Exit codes:
  0  report printed; with --check: no failed package, no client stopped for safety, and every
     file present on a device has a verified copy of its newest version
  1  --check: a package failed, a client is stopped for safety, or a present file has no
     verified copy (the json and ai checks name some)
  2  bad command line or --catcher URL
  3  the catcher is unreachable or did not answer (nothing else is printed to stdout for
     human; json and ai print an unreachable record)
  4  the terminal failed (--live)
  5  the catcher refused the credential: set CATCHER_TOKEN or --token-file (a viewer's token is
     enough; on the catcher's host the first admin token in ./data/admin.token is used)";

/// Output format of the one-shot report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Ai,
}

/// `ebk status` (also `catcher status`) options.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The catcher's gRPC URL (host:port gets http://).
    #[arg(long = "catcher", env = "CATCHER_URL", default_value = "http://127.0.0.1:50051", value_name = "URL")]
    pub url: String,
    /// Full-screen live view following the Watch stream.
    #[arg(long, conflicts_with_all = ["format", "check"])]
    pub live: bool,
    /// One-shot output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 1 when any package failed or any client is stopped for safety.
    #[arg(long)]
    pub check: bool,
    /// A file holding a person's token (else CATCHER_TOKEN, else ./data/admin.token if readable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Newest packages to show (1..10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub packages: u32,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether to use colors: only on a terminal, and never with `NO_COLOR` set (https://no-color.org).
fn color(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|v| v.is_empty())
}

/// Runs `ebk status` (also `catcher status`); returns the process exit code. Errors are printed here (stderr), so the
/// exit code alone tells scripts what happened.
pub async fn run(args: StatusArgs) -> u8 {
    let url = match client::normalize_url(&args.url) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let token = match edgebackup_common::client::person_token(
        args.token_file.as_deref(),
        std::path::Path::new("data/admin.token"),
    ) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if args.live {
        let theme = sections::Theme { color: color(std::env::var_os("NO_COLOR")) };
        return match live::run(url, token, args.packages, theme).await {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                exit::TERMINAL
            }
        };
    }
    let fleet = match client::fetch(&url, token.as_deref(), args.packages).await {
        Ok(fleet) => fleet,
        Err(e) => {
            let reason = match &e {
                Error::Unreachable { reason, .. } | Error::Refused { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            match args.format {
                Format::Json => println!("{}", report::json_unreachable(&url, &reason)),
                Format::Ai => print!("{}", report::ai_unreachable(&url, &reason)),
                Format::Human => {}
            }
            eprintln!("error: {e}");
            return if matches!(e, Error::Refused { .. }) { exit::REFUSED } else { exit::UNREACHABLE };
        }
    };
    let now = now_ms();
    match args.format {
        Format::Human => {
            let stdout = std::io::stdout();
            let width = if stdout.is_terminal() {
                ratatui::crossterm::terminal::size().map_or(100, |(w, _)| w.max(60))
            } else {
                100
            };
            print!("{}", report::human(&fleet, &url, now, width));
        }
        Format::Json => match serde_json::to_string_pretty(&report::json(&fleet, &url, now)) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the report as JSON: {e}");
                return exit::TERMINAL;
            }
        },
        Format::Ai => print!("{}", report::ai(&fleet, &url, now)),
    }
    if args.check && !report::Check::of(&fleet).ok() {
        return exit::CHECK_FAILED;
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_is_honored_when_set_and_not_empty() {
        assert!(color(None));
        assert!(color(Some("".into())));
        assert!(!color(Some("1".into())));
    }
}
