//! Background work: the tier scheduler, pending changes coming due, the restore-drill schedule, compaction, the command
//! dispatcher, the status publisher, heartbeats, checkpoints and returning freed memory, each a
//! supervised task.
//!
//! Workers get the parts they use (store, writer, a delivery port), never the API layer's
//! state. A worker that ends before shutdown, or panics, is reported at once and brings the
//! catcher down deliberately (the service supervisor restarts it) rather than running on
//! without it; shutdown waits for them, up to a deadline.

pub mod alerts;
pub mod compaction;
pub mod dispatch;
pub mod lease;
pub mod memory;
pub mod notify;
pub mod protection;
pub mod rpo;
pub mod scheduler;

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The running workers.
pub struct Workers {
    set: JoinSet<&'static str>,
    stop: CancellationToken,
    /// Fired when a worker died: the catcher shuts down.
    died: CancellationToken,
}

impl Workers {
    /// Workers stop when `stop` fires; `died` fires when one of them ends on its own.
    pub fn new(stop: CancellationToken, died: CancellationToken) -> Self {
        Self { set: JoinSet::new(), stop, died }
    }

    /// The token workers watch for shutdown.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts a worker named `name`.
    pub fn spawn(&mut self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        self.set.spawn(async move {
            work.await;
            name
        });
    }

    /// Watches the workers until shutdown: one that ends early (or panics) is logged and fires
    /// `died`. Then waits for all of them, at most `deadline`, aborting what is left.
    pub async fn supervise(mut self, deadline: Duration) {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                ended = self.set.join_next() => match ended {
                    None => break,
                    Some(outcome) => {
                        if !self.stop.is_cancelled() {
                            match outcome {
                                Ok(name) => tracing::error!(worker = name, "a background worker stopped on its own; shutting down"),
                                Err(e) => tracing::error!(error = %e, "a background worker panicked; shutting down"),
                            }
                            self.died.cancel();
                            self.stop.cancel();
                            break;
                        }
                    }
                },
            }
        }
        let drain = async {
            while let Some(outcome) = self.set.join_next().await {
                if let Err(e) = outcome
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a background worker panicked while stopping");
                }
            }
        };
        if tokio::time::timeout(deadline, drain).await.is_err() {
            tracing::warn!(?deadline, "background workers did not stop in time; aborting them");
            self.set.abort_all();
            while self.set.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_that_dies_brings_the_rest_down() {
        let stop = CancellationToken::new();
        let died = CancellationToken::new();
        let mut w = Workers::new(stop.clone(), died.clone());
        let token = w.stop_token();
        w.spawn("steady", async move { token.cancelled().await });
        w.spawn("fragile", async { panic!("boom") });
        tokio::time::timeout(Duration::from_secs(5), w.supervise(Duration::from_secs(5))).await.expect("supervised");
        assert!(died.is_cancelled() && stop.is_cancelled());
    }

    #[tokio::test]
    async fn shutdown_has_a_deadline() {
        let stop = CancellationToken::new();
        let mut w = Workers::new(stop.clone(), CancellationToken::new());
        w.spawn("stubborn", std::future::pending());
        stop.cancel();
        let started = std::time::Instant::now();
        w.supervise(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "aborted after the deadline");
    }
}
