//! The singleton lease. Every replica beats (`writer::Beat`) every third of the lease's TTL: the
//! beat keeps its heartbeat fresh and takes the lease when nobody holds it. The holder runs the
//! singleton work — tier scheduler, drill planner, compaction, pending changes, alert
//! evaluation and delivery — with a writer fenced by its term, so a holder that was paused or
//! cut off and then wakes up writes nothing once another has taken over.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::domain::Millis;
use crate::writer::{Beat, BeatOutcome, Writer};

/// This replica's view of the lease: its term while it holds it.
#[derive(Clone, Debug)]
pub struct Leadership(watch::Receiver<Option<u64>>);

impl Leadership {
    /// The term while this replica holds the lease.
    pub fn term(&self) -> Option<u64> {
        *self.0.borrow()
    }

    /// A writer fenced by the current term, while this replica holds the lease.
    pub fn writer(&self, w: &Writer) -> Option<Writer> {
        self.term().map(|t| w.fenced(t))
    }
}

/// Beats for this replica.
pub struct Beats {
    pub writer: Writer,
    pub address: String,
    pub started_at: Millis,
    pub ttl: Duration,
    pub keep_changes: Duration,
    tx: watch::Sender<Option<u64>>,
    last_held: Option<Instant>,
    /// Called when this replica finds it was presumed dead: its agents were marked
    /// disconnected, so their streams must start over.
    pub on_forgotten: Box<dyn Fn() + Send + Sync>,
    beaten: bool,
}

impl Beats {
    /// Beats once (so a lone catcher starts as the holder) and returns the beats to run and
    /// this replica's view of the lease.
    pub async fn start(
        writer: Writer,
        address: String,
        started_at: Millis,
        ttl: Duration,
        keep_changes: Duration,
    ) -> crate::error::Result<(Self, Leadership)> {
        let (tx, rx) = watch::channel(None);
        let mut beats = Self {
            writer,
            address,
            started_at,
            ttl,
            keep_changes,
            tx,
            last_held: None,
            on_forgotten: Box::new(|| {}),
            beaten: false,
        };
        let out = beats.writer.submit(beats.beat(false)).await?;
        beats.heard(&out);
        Ok((beats, Leadership(rx)))
    }

    fn beat(&self, release: bool) -> Beat {
        let ms = |d: Duration| Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 2);
        Beat {
            address: self.address.clone(),
            started_at: self.started_at,
            ttl_ms: ms(self.ttl),
            keep_changes_ms: ms(self.keep_changes),
            release,
            beaten: self.beaten,
        }
    }

    fn heard(&mut self, out: &BeatOutcome) {
        self.beaten = true;
        if out.forgotten {
            tracing::warn!("this replica was presumed dead (silent past replica_timeout_secs); its agents reconnect");
            (self.on_forgotten)();
        }
        let before = *self.tx.borrow();
        match (before, out.term) {
            (None, Some(term)) => {
                tracing::info!(term, "this replica holds the singleton lease (scheduler, drills, alerts)")
            }
            (Some(term), None) => {
                tracing::warn!(term, holder = %out.holder, "this replica lost the singleton lease")
            }
            _ => {}
        }
        if out.term.is_some() {
            self.last_held = Some(Instant::now());
        }
        self.tx.send_replace(out.term);
    }

    /// Beats every third of the TTL until `stop`, then gives the lease up.
    pub async fn run(mut self, stop: CancellationToken) {
        let every = self.ttl / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => break,
            }
            match self.writer.submit(self.beat(false)).await {
                Ok(out) => self.heard(&out),
                Err(e) => {
                    tracing::warn!(error = %e, "replica heartbeat failed; retrying");
                    // Unrenewed, the lease lapses: step down before it does, not after.
                    if self.last_held.is_some_and(|at| at.elapsed() >= self.ttl * 2 / 3) && self.tx.borrow().is_some() {
                        tracing::warn!("stepping down: the singleton lease could not be renewed in time");
                        self.tx.send_replace(None);
                    }
                }
            }
        }
        if self.tx.borrow().is_some() {
            self.tx.send_replace(None);
        }
        // Another replica takes over at once instead of waiting out the TTL.
        if let Err(e) = self.writer.submit(self.beat(true)).await {
            tracing::debug!(error = %e, "could not give the singleton lease up; it lapses on its own");
        }
    }
}
