//! Live fan-out: committed changes go onto one broadcast channel; every `Watch` subscriber reads
//! from it. A subscriber that lags behind the channel's capacity is re-sent a full snapshot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast};

use crate::change::{Change, Changes};

/// The broadcast hub.
#[derive(Clone, Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Change>>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self { tx: broadcast::channel(capacity).0 }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, change: Change) {
        // No subscribers is fine.
        let _ = self.tx.send(Arc::new(change));
    }

    /// Publishes what one committed batch changed, in a stable order.
    pub fn publish_changes(&self, c: Changes) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        if let Some(rules) = c.rules {
            self.publish(Change::Rules(rules));
        }
        c.sources.into_iter().for_each(|s| self.publish(Change::Source(s)));
        c.packages.into_iter().for_each(|p| self.publish(Change::Package(p)));
        c.deleted_packages.into_iter().for_each(|id| self.publish(Change::PackageDeleted(id)));
        c.journal.into_iter().for_each(|j| self.publish(Change::Journal(j)));
        c.restores.into_iter().for_each(|r| self.publish(Change::Restore(r)));
        c.pending.into_iter().for_each(|p| self.publish(Change::Pending(p)));
        c.alerts.into_iter().for_each(|a| self.publish(Change::Alert(a)));
    }
}

/// Batches this replica committed, with their changes-feed ids, handed from the writer to the
/// feed (`crate::feed`), which publishes them as committed instead of reading them back.
#[derive(Clone, Default)]
pub struct Committed {
    inner: Arc<(Mutex<Held>, Notify)>,
}

/// Committed batches by feed id, oldest first.
type Held = VecDeque<(i64, Changes)>;

/// Batches held for the feed at most: a feed that falls further behind reads the older ones
/// back from the database.
const COMMITTED_HELD: usize = 1024;

impl Committed {
    /// Hands over the batch committed as feed row `id` and wakes the feed.
    pub fn push(&self, id: i64, changes: Changes) {
        {
            let mut q = self.inner.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if q.len() == COMMITTED_HELD {
                q.pop_front();
            }
            q.push_back((id, changes));
        }
        self.inner.1.notify_one();
    }

    /// Waits until the writer committed something.
    pub async fn committed(&self) {
        self.inner.1.notified().await;
    }

    /// The changes of feed row `id` if this replica committed it and still holds them; older
    /// ones are dropped.
    pub fn take(&self, id: i64) -> Option<Changes> {
        let mut q = self.inner.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while q.front().is_some_and(|(first, _)| *first < id) {
            q.pop_front();
        }
        if q.front().is_some_and(|(first, _)| *first == id) { q.pop_front().map(|(_, c)| c) } else { None }
    }
}
