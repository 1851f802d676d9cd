//! The changes feed as replicas read it: rows after a cursor, what a row's references name as
//! it is now, and the payload-free wake-up (PostgreSQL LISTEN/NOTIFY) that spares polling.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use super::convert::*;
use super::entity::*;
use crate::change::{ChangeRefs, Changes};
use crate::domain::*;
use crate::error::{Error, Result};

/// The channel replicas are woken on after a commit (no payload: the feed table has it).
const CHANNEL: &str = "edge_changes";
/// Ids per `IN (..)` list.
const CHUNK: usize = 400;

/// One row of the feed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub id: i64,
    pub replica: String,
    pub refs: ChangeRefs,
}

/// A LISTEN on the feed's channel (PostgreSQL).
pub struct Listener(sea_orm::sqlx::postgres::PgListener);

impl Listener {
    /// Waits for a wake-up. After a lost connection (which it re-opens) it answers at once:
    /// wake-ups may have been missed.
    pub async fn wait(&mut self) {
        if let Err(e) = self.0.recv().await {
            tracing::debug!(error = %e, "changes listener interrupted; re-reading the feed");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

impl Store {
    /// The newest feed row (0 when there is none).
    pub async fn change_head(&self) -> Result<i64> {
        let head: Option<Option<i64>> = change_row::Entity::find()
            .select_only()
            .column_as(Expr::col(change_row::Column::ChangeId).max(), "head")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(head.flatten().unwrap_or(0))
    }

    /// Up to `limit` feed rows after `after`, in commit order.
    pub async fn changes_after(&self, after: i64, limit: u64) -> Result<Vec<FeedRow>> {
        let rows = change_row::Entity::find()
            .filter(change_row::Column::ChangeId.gt(after))
            .order_by_asc(change_row::Column::ChangeId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|m| {
                let refs = serde_json::from_str(&m.payload)
                    .map_err(|e| Error::Corrupt(format!("changes-feed row {}: {e}", m.change_id)))?;
                Ok(FeedRow { id: m.change_id, replica: m.replica, refs })
            })
            .collect()
    }

    /// What `refs` names, as stored now (rows deleted since are left out).
    pub async fn resolve(&self, refs: &ChangeRefs) -> Result<Changes> {
        let mut c = Changes {
            deleted_packages: refs.deleted_packages.clone(),
            status: refs.status,
            commands: refs.commands,
            ..Changes::default()
        };
        for chunk in refs.packages.chunks(CHUNK) {
            let rows =
                package::Entity::find().filter(package::Column::PackageId.is_in(chunk.to_vec())).all(&self.db).await?;
            for row in rows {
                c.packages.push(package_from(row)?);
            }
        }
        c.sources = self.source_views(&refs.sources).await?;
        if let Some((first, last)) = refs.journal {
            let (first, last) = (i64::try_from(first).unwrap_or(i64::MAX), i64::try_from(last).unwrap_or(i64::MAX));
            let rows = journal::Entity::find()
                .filter(journal::Column::Sequence.between(first, last))
                .order_by_asc(journal::Column::Sequence)
                .all(&self.db)
                .await?;
            c.journal = rows.into_iter().map(journal_from).collect();
        }
        if refs.rules {
            c.rules = Some(self.rule_sets().await?);
        }
        for chunk in refs.restores.chunks(CHUNK) {
            let rows =
                command::Entity::find().filter(command::Column::CommandId.is_in(chunk.to_vec())).all(&self.db).await?;
            for row in rows {
                c.restores.push(command_from(row)?);
            }
        }
        for chunk in refs.pending.chunks(CHUNK) {
            let ids = chunk.iter().map(|id| i64::try_from(*id).unwrap_or(i64::MAX));
            let rows = pending_change::Entity::find()
                .filter(pending_change::Column::ChangeId.is_in(ids))
                .order_by_asc(pending_change::Column::ChangeId)
                .all(&self.db)
                .await?;
            for row in rows {
                c.pending.push(pending_from(row)?);
            }
        }
        for chunk in refs.alerts.chunks(CHUNK) {
            let rows = alert::Entity::find().filter(alert::Column::AlertId.is_in(chunk.to_vec())).all(&self.db).await?;
            for row in rows {
                c.alerts.push(alert_from(row)?);
            }
        }
        Ok(c)
    }

    /// Sources with their cursor and unfinished-package count.
    async fn source_views(&self, ids: &[String]) -> Result<Vec<SourceView>> {
        let mut out = Vec::with_capacity(ids.len());
        let unfinished = [PackageStatus::Pending, PackageStatus::InProgress, PackageStatus::Failed].map(|s| s.as_str());
        for chunk in ids.chunks(CHUNK) {
            let sources =
                source::Entity::find().filter(source::Column::SourceId.is_in(chunk.to_vec())).all(&self.db).await?;
            let cursors: HashMap<String, i64> = agent_cursor::Entity::find()
                .filter(agent_cursor::Column::SourceId.is_in(chunk.to_vec()))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|r| (r.source_id, r.last_applied_seq))
                .collect();
            let flight: HashMap<String, i64> = package::Entity::find()
                .select_only()
                .column(package::Column::SourceId)
                .column_as(Expr::col(package::Column::PackageId).count(), "n")
                .filter(package::Column::SourceId.is_in(chunk.to_vec()))
                .filter(package::Column::Status.is_in(unfinished))
                .group_by(package::Column::SourceId)
                .into_tuple::<(String, i64)>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect();
            for row in sources {
                let n = |v: Option<&i64>| v.map_or(0, |v| u64::try_from(*v).unwrap_or(0));
                let (seq, in_flight) = (n(cursors.get(&row.source_id)), n(flight.get(&row.source_id)));
                out.push(SourceView { source: source_from(row)?, last_applied_seq: seq, in_flight });
            }
        }
        Ok(out)
    }

    /// The catcher replicas on record, oldest first.
    pub async fn replicas(&self) -> Result<Vec<Replica>> {
        let rows = replica::Entity::find().order_by_asc(replica::Column::StartedAt).all(&self.db).await?;
        Ok(rows.into_iter().map(crate::store::convert::replica_from).collect())
    }

    /// The replica holding the singleton lease, unless it has lapsed (by this process's clock:
    /// for display only; the writer judges leases by the database's).
    pub async fn lease_holder(&self) -> Result<Option<String>> {
        let row = lease::Entity::find().one(&self.db).await?;
        Ok(row.filter(|l| l.expires_at > now_ms()).map(|l| l.holder))
    }

    /// Feed rows that name nothing, as another replica (`replica`) would have written them
    /// (tests of the feed's reading: gaps, order).
    #[cfg(test)]
    pub(crate) async fn insert_empty_changes(&self, ids: &[i64], replica: &str) -> Result<()> {
        use sea_orm::ActiveValue::Set;
        for id in ids {
            let row = change_row::ActiveModel {
                change_id: Set(*id),
                replica: Set(replica.to_owned()),
                committed_at: Set(0),
                payload: Set("{}".to_owned()),
            };
            change_row::Entity::insert(row).exec_without_returning(&self.db).await?;
        }
        Ok(())
    }

    /// Wakes every replica's feed (PostgreSQL; elsewhere there is no other replica).
    pub async fn notify_changes(&self) -> Result<()> {
        if self.backend() == DatabaseBackend::Postgres {
            self.db.execute_unprepared(&format!("NOTIFY {CHANNEL}")).await?;
        }
        Ok(())
    }

    /// Listens for feed wake-ups on a connection of its own (PostgreSQL only).
    pub async fn listen_changes(&self) -> Result<Option<Listener>> {
        if self.backend() != DatabaseBackend::Postgres {
            return Ok(None);
        }
        let pool = self.db.get_postgres_connection_pool();
        let mut l = sea_orm::sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen for changes: {e}")))?;
        l.listen(CHANNEL).await.map_err(|e| Error::Unavailable(format!("cannot listen for changes: {e}")))?;
        Ok(Some(Listener(l)))
    }
}
