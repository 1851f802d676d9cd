//! `edge-datagen`: fills a catcher database (SQLite or PostgreSQL) with realistic packages for the
//! query and start-up benchmarks. Migrates with the catcher's own migrations first.

use clap::Parser;
use edge_bench::catalog;
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
    /// Also fill the catalog: this many sources (edge-0000…) with one folder `/data` each.
    #[arg(long, default_value_t = 0)]
    catalog_sources: u32,
    /// Directories per catalog folder.
    #[arg(long, default_value_t = 10)]
    catalog_dirs: u32,
    /// Files per directory.
    #[arg(long, default_value_t = 1000)]
    catalog_files: u32,
    /// Versions per file (a day apart, the last one current).
    #[arg(long, default_value_t = 10)]
    catalog_versions: u32,
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
        let shape = [cli.catalog_sources, cli.catalog_dirs, cli.catalog_files, cli.catalog_versions];
        if shape.iter().map(|&n| u64::from(n)).product::<u64>() > 100_000_000 {
            return Err("the catalog must have at most 100000000 rows".into());
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
    let shape = catalog::Shape {
        sources: cli.catalog_sources,
        dirs: cli.catalog_dirs,
        files: cli.catalog_files,
        versions: cli.catalog_versions,
    };
    let report = match report {
        Ok(r) if shape.sources > 0 => {
            let started = std::time::Instant::now();
            let total = shape.rows();
            catalog::fill(&o.database_url, &shape, o.seed, |done| {
                eprintln!("  {done:>10} of {total} catalog rows  {:>6.1} s", started.elapsed().as_secs_f64());
            })
            .await
            .map(|rows| (r, Some((rows, started.elapsed().as_secs_f64()))))
        }
        other => other.map(|r| (r, None)),
    };
    match report {
        Ok((r, catalog)) => {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            if let Some((rows, secs)) = catalog {
                v["catalog_rows"] = rows.into();
                v["catalog_seconds"] = secs.into();
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-datagen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
