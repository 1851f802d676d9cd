//! Tier scheduler: finds packages whose time in their tier is up and hands them to an executor.
//!
//! The executor is the seam between deciding and doing. `MetadataOnly` advances the records
//! (no stations configured: the seed's behaviour); a station-backed executor leases move
//! commands to mover agents and advances the record only after a verified copy is reported.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::lease::Leadership;
use crate::domain::now_ms;
use crate::error::Result;
use crate::store::{Due, Store};
use crate::writer::{ScheduleDrill, Transitions, Writer};

/// Carries out due transitions.
#[async_trait::async_trait]
pub trait TransitionExecutor: Send + Sync {
    /// Handles `due`; returns how many packages moved on.
    async fn execute(&self, due: Vec<Due>) -> Result<u64>;
}

/// Advances tiers in the catcher's records only.
pub struct MetadataOnly(pub Writer);

#[async_trait::async_trait]
impl TransitionExecutor for MetadataOnly {
    async fn execute(&self, due: Vec<Due>) -> Result<u64> {
        self.0.submit(Transitions(due)).await
    }
}

/// Runs passes every `interval` while this replica holds the singleton lease, until `stop`; a
/// full batch is followed at once by another pass.
pub async fn run(
    store: Store,
    writer: Writer,
    lead: Leadership,
    interval: Duration,
    batch: u64,
    stop: CancellationToken,
) {
    loop {
        let outcome = match lead.writer(&writer) {
            Some(fenced) => pass(&store, &MetadataOnly(fenced), batch).await,
            None => Ok(0),
        };
        let full = match outcome {
            Ok(n) => n >= batch,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler pass failed; retrying next tick");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Queues a restore drill every `interval` (never when zero), the first one an interval after start.
/// Returns at `stop`.
pub async fn drills(writer: Writer, lead: Leadership, interval: Duration, sample: u32, stop: CancellationToken) {
    if interval.is_zero() {
        // Drills are off; a worker that ends early means trouble, so wait for shutdown.
        return stop.cancelled().await;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
        let Some(writer) = lead.writer(&writer) else { continue };
        match writer.submit(ScheduleDrill { sample }).await {
            Ok(false) => tracing::debug!("no drill: no connected mover or nothing stored on stations"),
            Ok(true) => tracing::info!("restore drill queued"),
            Err(e) => tracing::warn!(error = %e, "could not queue a restore drill"),
        }
    }
}

/// One pass; returns how many due packages were found.
pub async fn pass(store: &Store, executor: &dyn TransitionExecutor, batch: u64) -> Result<u64> {
    let due = store.due_packages(now_ms(), batch).await?;
    let found = due.len() as u64;
    if found > 0 {
        let moved = executor.execute(due).await?;
        tracing::debug!(found, moved, "scheduler pass");
    }
    Ok(found)
}
