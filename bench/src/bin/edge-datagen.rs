//! `edge-datagen`: fills a catcher database (SQLite or PostgreSQL) with realistic packages for the
//! query and start-up benchmarks. Migrates with the catcher's own migrations first.

use clap::Parser;
use edge_bench::datagen::{self, Options};

#[derive(Parser)]
#[command(name = "edge-datagen", version, about = "Fill a catcher database with realistic packages")]
struct Cli {
    /// sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB (a database used only for benchmarks).
    #[arg(long)]
    database_url: String,
    /// Packages to add (at most 100,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    packages: u64,
    /// Distinct sources (edge devices), 1..=100,000.
    #[arg(long, default_value_t = 1000)]
    sources: u32,
    /// Rows per INSERT statement (1..=2000).
    #[arg(long, default_value_t = 800)]
    batch: usize,
    /// Days of history the packages are spread over (1..=3650).
    #[arg(long, default_value_t = 180)]
    days: u32,
    /// Seed; the same seed and counts give the same rows.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let check = || -> Result<(), String> {
        if cli.packages > 100_000_000 {
            return Err(format!("--packages must be at most 100000000, got {}", cli.packages));
        }
        if !(1..=100_000).contains(&cli.sources) {
            return Err(format!("--sources must be 1..=100000, got {}", cli.sources));
        }
        if !(1..=3650).contains(&cli.days) {
            return Err(format!("--days must be 1..=3650, got {}", cli.days));
        }
        Ok(())
    };
    if let Err(e) = check() {
        eprintln!("edge-datagen: {e}");
        return std::process::ExitCode::from(2);
    }
    let o = Options {
        database_url: cli.database_url,
        packages: cli.packages,
        sources: cli.sources,
        batch: cli.batch,
        days: cli.days,
        seed: cli.seed,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let mut last_print = 0;
    let report = datagen::fill(&o, |done| {
        if done - last_print >= 100_000 || done == o.packages {
            eprintln!("  {done:>10} packages  {:>6.1} s", started.elapsed().as_secs_f64());
            last_print = done;
        }
    })
    .await;
    match report {
        Ok(r) => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-datagen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
