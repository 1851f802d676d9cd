//! A package's progress, told to the catcher through the outbox at most 4 times a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgebackup_proto::v1::{self as pb, agent_event::Kind};

use crate::state::State;

/// Throttled progress events (coalesced in the outbox anyway).
#[derive(Clone)]
pub(super) struct Progress {
    state: State,
    package_id: String,
    attempt: u32,
    last: Arc<AtomicU64>,
    started: Instant,
}

impl Progress {
    pub(super) fn new(state: State, package_id: String, attempt: u32) -> Self {
        Self { state, package_id, attempt, last: Arc::new(AtomicU64::new(0)), started: Instant::now() }
    }

    /// `done` of `total` maps onto `lo..hi` percent; at most 4 events a second.
    pub(super) fn report(&self, done: u64, total: u64, lo: u64, hi: u64) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now - last < Duration::from_millis(250).as_millis() as u64 && done < total {
            return;
        }
        self.last.store(now, Ordering::Relaxed);
        let pct = (hi - lo).checked_mul(done.min(total)).and_then(|x| x.checked_div(total)).map_or(hi, |x| lo + x);
        let _ = self.state.push(Kind::Progress(pb::Progress {
            package_id: self.package_id.clone(),
            bytes_done: done,
            progress_percent: pct as u32,
            attempt: self.attempt,
        }));
    }
}
