//! Live fan-out: committed changes go onto one broadcast channel; every `Watch` subscriber reads
//! from it. A subscriber that lags behind the channel's capacity is re-sent a full snapshot.

use std::sync::Arc;

use tokio::sync::broadcast;

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
