//! `agent run`: the long-running daemon. Wires the engine, the catcher link, the folder
//! watcher and the schedule together, and shuts down cleanly.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::commands::Commands;
use crate::config::Config;
use crate::engine::Engine;
use crate::link;
use crate::report;
use crate::state::State;
use crate::station::Station;

/// How long a stopping agent waits for the catcher to acknowledge its outbox.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the state and checks every station (a missing tool is a startup error naming it).
pub async fn prepare(config: Arc<Config>) -> anyhow::Result<Arc<Engine>> {
    let state = State::open(&config.state_dir).map_err(|e| {
        anyhow::anyhow!("state_dir {}: {e} (is another agent running on it?)", config.state_dir.display())
    })?;
    let stations: Vec<Station> = config.stations.iter().map(Station::from_config).collect();
    let backups = &config.backup_stations;
    for (i, s) in stations.iter().enumerate() {
        match s.check(false).await {
            // A missing tool is a mistake to fix now, whatever the station is for.
            Err(e @ crate::station::StationError::ToolMissing { .. }) => anyhow::bail!("stations[{i}]: {e}"),
            Err(e) if backups.is_empty() || backups.contains(&s.id().to_owned()) => anyhow::bail!("stations[{i}]: {e}"),
            // Only moves use it: they fail (and are retried) while it is unusable; backups go on.
            Err(e) => tracing::warn!("stations[{i}]: {e}"),
            Ok(()) => {}
        }
    }
    Ok(Arc::new(Engine::new(config, state, Arc::new(stations))))
}

/// How long shutdown waits for running commands (a move of a large package may take longer;
/// the catcher re-sends it after the restart).
const COMMANDS_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(
    config: Arc<Config>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let engine = prepare(config.clone()).await?;
    let commands = Arc::new(Commands::new(engine.clone()));
    let link_stop = CancellationToken::new();
    let link = tokio::spawn(link::run(config.clone(), engine.state.clone(), commands.clone(), link_stop.clone()));
    let stop = CancellationToken::new();
    let reporter = tokio::spawn(report::keep_writing(engine.clone(), stop.clone()));
    let scrubber = tokio::spawn(crate::scrub::keep_scrubbing(engine.clone(), stop.clone()));
    if let Some(addr) = config.metrics_listen {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("metrics_listen {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics served at /metrics");
        tokio::spawn(crate::metrics::serve(listener, engine.clone(), stop.clone()));
    }

    let (changes_tx, mut changes) = mpsc::channel::<()>(1);
    let _watcher = if config.schedule.watch { watch_folders(&config, changes_tx) } else { None };

    let stopper = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("stopping: finishing the current package, then flushing the outbox");
        stopper.cancel();
    });

    if let Err(e) = engine.recover().await {
        tracing::error!(error = %e, "recovering interrupted packages failed");
    }
    let mut schedule = tokio::time::interval(Duration::from_secs(config.schedule.interval_secs));
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let debounce = Duration::from_millis(config.schedule.debounce_ms);
    let cron = config.schedule.parsed_cron().ok().flatten();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = schedule.tick() => {}
            () = until_next(cron.as_ref()) => tracing::info!("scheduled pass (cron)"),
            Some(()) = changes.recv() => {
                // Wait for a quiet moment: a burst of writes becomes one pass.
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(debounce) => break,
                        Some(()) = changes.recv() => {}
                        () = stop.cancelled() => break,
                    }
                }
                if stop.is_cancelled() {
                    break;
                }
            }
        }
        match engine.pass().await {
            Ok(r) if r.packages_completed + r.packages_failed > 0 || r.held.is_some() => {
                tracing::info!(completed = r.packages_completed, failed = r.packages_failed, files = r.files_backed_up, held = ?r.held, "pass done");
            }
            Ok(_) => tracing::debug!("pass found nothing to back up"),
            Err(e) => tracing::error!(error = %e, "pass failed"),
        }
    }
    // Commands still running put their results in the outbox before it is flushed.
    commands.finish(COMMANDS_TIMEOUT).await;
    flush(&engine.state, FLUSH_TIMEOUT).await;
    link_stop.cancel();
    let _ = link.await;
    let _ = reporter.await;
    let _ = scrubber.await;
    report::write_once(&engine, false);
    tracing::info!(outbox = engine.state.outbox_len().unwrap_or(0), "agent stopped");
    Ok(())
}

/// Sleeps until the cron pattern's next time; forever without one.
async fn until_next(cron: Option<&croner::Cron>) {
    let next = cron.and_then(|c| c.find_next_occurrence(&chrono::Local::now(), false).ok());
    match next.and_then(|t| (t - chrono::Local::now()).to_std().ok()) {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// Waits until the outbox is empty (everything acknowledged) or `timeout` passes.
pub async fn flush(state: &State, timeout: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = state.outbox_len().unwrap_or(0);
        if left == 0 || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Filesystem notifications for every watched folder; None (with a warning) if unavailable,
/// in which case the periodic rescan still catches everything.
fn watch_folders(config: &Config, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let state_dir = config.state_dir.canonicalize().unwrap_or_else(|_| config.state_dir.clone());
    let handler = move |event: notify::Result<notify::Event>| {
        // Reads are not changes: a pass opens every directory it walks, and counting those
        // opens as changes made an idle agent rescan itself every debounce period.
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
            && !e.paths.iter().all(|p| p.starts_with(&state_dir))
        {
            // A full channel already means "a pass is due".
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable; relying on the periodic rescan");
            return None;
        }
    };
    for f in &config.folders {
        if let Err(e) = watcher.watch(&f.path, RecursiveMode::Recursive) {
            tracing::warn!(folder = %f.path.display(), error = %e, "cannot watch folder; relying on the periodic rescan");
        }
    }
    Some(watcher)
}
