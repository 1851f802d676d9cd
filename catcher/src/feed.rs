//! The changes feed: how replicas sharing a PostgreSQL database hear each other's commits.
//!
//! Every batch that changes something appends one row to the `changes` table in its own
//! transaction, with the next id under the cluster write lock (so ids are gap-free and in commit
//! order). Each replica runs one `Feed`: it reads the rows after its cursor, in order, and
//! publishes them to its hub — its own batches as the writer handed them over, the others' read
//! back by reference. Wake-ups are a payload-free NOTIFY sent after commit (never inside the
//! write transaction), with a short poll behind it. A gap in the ids (rows pruned before this
//! replica read them) re-syncs every live view from a snapshot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::change::{Change, Changes};
use crate::domain::SourceView;
use crate::error::Result;
use crate::rules::RuleSet;
use crate::store::Store;
use crate::watch::{Committed, Hub};

/// Rows read per query.
const PAGE: u64 = 256;
/// Looks at the feed this often even without a wake-up (a lost NOTIFY costs at most this).
const POLL: Duration = Duration::from_millis(500);

/// A hook that hears rule sets.
pub type RulesHook = Box<dyn Fn(&[RuleSet]) + Send + Sync>;

/// What the rest of the replica does when it hears of another replica's commit.
pub struct Hooks {
    /// The status view is stale.
    pub status_dirty: Arc<Notify>,
    /// Commands were created or changed: the dispatcher looks again.
    pub commands_due: Arc<Notify>,
    /// A pending change was held or resolved.
    pub pending_due: Arc<Notify>,
    /// Another replica committed (the status cache's generation moves).
    pub foreign_commit: Box<dyn Fn() + Send + Sync>,
    /// Rule sets changed on another replica: this replica's agents hear them.
    pub rules_changed: RulesHook,
    /// A source's stream is held by another replica now: a session here is stale.
    pub source_moved: Box<dyn Fn(&SourceView) + Send + Sync>,
}

pub struct Feed {
    pub store: Store,
    pub hub: Hub,
    pub committed: Committed,
    pub replica: Arc<str>,
    pub hooks: Hooks,
}

impl Feed {
    /// Follows the feed from its current head until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut cursor = loop {
            match self.store.change_head().await {
                Ok(head) => break head,
                Err(e) => tracing::warn!(error = %e, "cannot read the changes feed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        };
        let mut listener = match self.store.listen_changes().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "no wake-ups from other replicas; polling the changes feed");
                None
            }
        };
        loop {
            let local = tokio::select! {
                () = self.committed.committed() => true,
                () = async { match &mut listener { Some(l) => l.wait().await, None => std::future::pending().await } } => false,
                () = tokio::time::sleep(POLL) => false,
                () = stop.cancelled() => return,
            };
            if local && let Err(e) = self.store.notify_changes().await {
                tracing::debug!(error = %e, "could not wake the other replicas; they poll");
            }
            if let Err(e) = self.catch_up(&mut cursor).await {
                tracing::warn!(error = %e, "reading the changes feed failed; retrying");
            }
        }
    }

    /// Publishes every row after `cursor`, in order.
    async fn catch_up(&self, cursor: &mut i64) -> Result<()> {
        loop {
            let rows = self.store.changes_after(*cursor, PAGE).await?;
            let full = rows.len() as u64 == PAGE;
            for row in rows {
                if row.id != *cursor + 1 {
                    tracing::warn!(
                        from = *cursor + 1,
                        to = row.id - 1,
                        "changes were pruned before this replica read them; live views start over"
                    );
                    self.hub.publish(Change::Resync);
                }
                let mine = *row.replica == *self.replica;
                let handed_over = if mine { self.committed.take(row.id) } else { None };
                let changes = match handed_over {
                    Some(c) => c,
                    None => self.store.resolve(&row.refs).await?,
                };
                if !mine {
                    self.heard(&changes);
                }
                self.hub.publish_changes(changes);
                *cursor = row.id;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Another replica's commit: what this replica's own parts must learn of it.
    fn heard(&self, c: &Changes) {
        (self.hooks.foreign_commit)();
        if c.status {
            self.hooks.status_dirty.notify_one();
        }
        if c.commands || c.sources.iter().any(|s| s.source.connected) {
            self.hooks.commands_due.notify_one();
        }
        if !c.pending.is_empty() {
            self.hooks.pending_due.notify_one();
        }
        if let Some(rules) = &c.rules {
            (self.hooks.rules_changed)(rules);
        }
        for s in &c.sources {
            if s.source.replica.as_deref().is_some_and(|r| *r != *self.replica) {
                (self.hooks.source_moved)(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use edgebackup_testkit::db::{Db, TestDb};

    use super::*;

    fn hooks() -> Hooks {
        Hooks {
            status_dirty: Arc::new(Notify::new()),
            commands_due: Arc::new(Notify::new()),
            pending_due: Arc::new(Notify::new()),
            foreign_commit: Box::new(|| {}),
            rules_changed: Box::new(|_| {}),
            source_moved: Box::new(|_| {}),
        }
    }

    /// Rows pruned before this replica read them: its live views start over from a snapshot,
    /// and it reads on from the first row still there.
    #[tokio::test]
    async fn a_gap_in_the_feed_resyncs_the_live_views() {
        let db = TestDb::new(Db::Sqlite).await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        store.migrate().await.unwrap();
        store.insert_empty_changes(&[1, 2, 5], "other").await.unwrap();
        let hub = Hub::new(16);
        let mut heard = hub.subscribe();
        let feed = Feed { store, hub, committed: Committed::default(), replica: "me".into(), hooks: hooks() };
        let mut cursor = 0;
        feed.catch_up(&mut cursor).await.unwrap();
        assert_eq!(cursor, 5, "read on past the gap");
        assert!(matches!(*heard.try_recv().unwrap(), Change::Resync), "the gap before row 5 re-syncs");
        assert!(heard.try_recv().is_err(), "rows 1 and 2 (contiguous, empty) publish nothing more");
    }
}
