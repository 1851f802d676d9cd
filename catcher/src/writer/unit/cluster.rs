//! Replicas sharing one database: the cluster write lock, this replica's heartbeat, the
//! singleton lease and its fencing term, the changes feed's rows and their pruning. Staged here,
//! written by `flush`.

use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};

use super::{Tracked, Unit, undo::Undo};
use crate::change::{ChangeRefs, Changes};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::store::entity::*;

/// Key of the transaction-scoped advisory lock every PostgreSQL batch takes first: replicas'
/// batches commit one at a time, each reading what the previous one committed. Group commit
/// keeps the turns few and short.
const WRITE_LOCK: i64 = 0x4542_4b57; // "EBKW"

/// The singleton lease's name.
const LEADER: &str = "leader";

/// Who this writer is among the replicas sharing its database.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This catcher replica (a fresh id per process).
    pub replica: std::sync::Arc<str>,
    /// A replica whose heartbeat is older than this is gone: its agents' sources are no longer
    /// connected, and its feed rows and lease are up for others.
    pub replica_timeout_ms: Millis,
}

impl ClusterSettings {
    /// One catcher alone (tools and tests).
    pub fn single() -> Self {
        Self { replica: uuid::Uuid::now_v7().to_string().into(), replica_timeout_ms: 30_000 }
    }
}

#[derive(Debug, Default)]
pub(super) struct ClusterStage {
    /// The clock leases are judged by (the database's on PostgreSQL), read once a batch.
    clock: Option<Millis>,
    /// The lease as loaded and as this batch leaves it.
    lease: Option<Tracked<Lease>>,
    beat: Option<Replica>,
    forget: Vec<String>,
    prune_before: Option<Millis>,
    /// The newest changes-feed row when the batch began (feed mode only).
    feed_head: Option<i64>,
    /// The replicas on record, as read once a batch.
    replicas: Option<Vec<Replica>>,
}

impl Unit<'_> {
    /// Starts a batch: on PostgreSQL takes the cluster write lock, and with `feed` reads the
    /// newest changes-feed row (this batch appends the next one). Called before any read.
    pub(in crate::writer) async fn begin_cluster_batch(&mut self, feed: bool) -> Result<Option<i64>> {
        if self.txn.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(None);
        }
        self.txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})")).await?;
        if !feed {
            return Ok(None);
        }
        let head: Option<Option<i64>> = change_row::Entity::find()
            .select_only()
            .column_as(sea_orm::sea_query::Expr::col(change_row::Column::ChangeId).max(), "head")
            .into_tuple()
            .one(self.txn)
            .await?;
        let head = head.flatten().unwrap_or(0);
        self.cluster.feed_head = Some(head);
        Ok(Some(head))
    }

    /// The clock leases and replica heartbeats are judged by: the database's on PostgreSQL
    /// (replicas' own clocks may disagree), the batch's on SQLite (one process).
    pub async fn cluster_clock(&mut self) -> Result<Millis> {
        if let Some(c) = self.cluster.clock {
            return Ok(c);
        }
        let c = if self.txn.get_database_backend() == DatabaseBackend::Postgres {
            let row = self
                .txn
                .query_one_raw(Statement::from_string(
                    DatabaseBackend::Postgres,
                    "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint AS now",
                ))
                .await?
                .ok_or_else(|| Error::Unavailable("the database did not tell the time".into()))?;
            row.try_get::<i64>("", "now")?
        } else {
            self.now
        };
        self.cluster.clock = Some(c);
        Ok(c)
    }

    /// The singleton lease as this batch sees it.
    pub async fn lease(&mut self) -> Result<Option<Lease>> {
        if let Some(t) = &self.cluster.lease {
            return Ok(t.value.clone());
        }
        let row = lease::Entity::find_by_id(LEADER.to_owned()).one(self.txn).await?;
        let loaded = row.map(|m| Lease {
            holder: m.holder,
            term: u64::try_from(m.term).unwrap_or(0),
            acquired_at: m.acquired_at,
            expires_at: m.expires_at,
        });
        self.cluster.lease = Some(Tracked::loaded(loaded.clone()));
        Ok(loaded)
    }

    /// Stages the lease (taken, renewed or released).
    pub fn put_lease(&mut self, l: Lease) {
        let before = self.cluster.lease.as_ref().map(|t| (t.value.clone(), t.dirty));
        let t = self.cluster.lease.get_or_insert_with(|| Tracked::loaded(None));
        t.value = Some(l);
        t.dirty = true;
        self.log(Undo::Lease(before));
    }

    pub(super) fn undo_lease(&mut self, before: Option<(Option<Lease>, bool)>) {
        match before {
            Some((value, dirty)) => {
                if let Some(t) = &mut self.cluster.lease {
                    t.value = value;
                    t.dirty = dirty;
                }
            }
            None => self.cluster.lease = None,
        }
    }

    /// Refuses a write made under lease term `term` unless this replica still holds the lease
    /// with that term: a paused or partitioned former holder writes nothing once replaced.
    pub async fn check_fence(&mut self, term: u64) -> Result<()> {
        let clock = self.cluster_clock().await?;
        match self.lease().await? {
            Some(l) if l.holder == *self.replica && l.term == term && l.expires_at > clock => Ok(()),
            Some(l) => Err(Error::FailedPrecondition(format!(
                "this catcher replica no longer holds the singleton lease (its term {term}, the lease's {} held by {}); the write was refused",
                l.term, l.holder
            ))),
            None => Err(Error::FailedPrecondition(format!(
                "no catcher replica holds the singleton lease (this one's term {term} ended); the write was refused"
            ))),
        }
    }

    /// Replicas whose heartbeat is fresh (this one always counts).
    pub async fn live_replicas(&mut self) -> Result<Vec<String>> {
        let clock = self.cluster_clock().await?;
        let timeout = self.cluster_settings.replica_timeout_ms;
        let mut live: Vec<String> = self
            .replicas()
            .await?
            .into_iter()
            .filter(|r| r.heartbeat_at >= clock - timeout)
            .map(|r| r.replica_id)
            .collect();
        if !live.iter().any(|r| **r == *self.replica) {
            live.push(self.replica.to_string());
        }
        Ok(live)
    }

    /// Every replica on record (as the batch began: what it stages is written at flush).
    pub async fn replicas(&mut self) -> Result<Vec<Replica>> {
        if let Some(r) = &self.cluster.replicas {
            return Ok(r.clone());
        }
        let rows = replica::Entity::find().all(self.txn).await?;
        let r: Vec<Replica> = rows.into_iter().map(crate::store::convert::replica_from).collect();
        self.cluster.replicas = Some(r.clone());
        Ok(r)
    }

    /// Up to `limit` sources marked connected to one of `replicas`.
    pub async fn sources_connected_to(&mut self, replicas: &[String], limit: u64) -> Result<Vec<Source>> {
        if replicas.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = source::Entity::find()
            .select_only()
            .column(source::Column::SourceId)
            .filter(source::Column::Connected.eq(true))
            .filter(source::Column::Replica.is_in(replicas.iter().cloned()))
            .limit(limit)
            .into_tuple()
            .all(self.txn)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.source(&id).await?);
        }
        Ok(out)
    }

    /// Stages this replica's heartbeat (staged last wins; nothing to undo: an op that fails
    /// after staging it fails the batch, as only storage errors can).
    pub fn beat(&mut self, r: Replica) {
        self.cluster.beat = Some(r);
    }

    /// Stages removing replicas that stopped beating (or this one, shutting down).
    pub fn forget_replicas(&mut self, gone: Vec<String>) {
        self.cluster.forget.extend(gone);
    }

    /// Stages removing feed rows committed before `before`.
    pub fn prune_changes(&mut self, before: Millis) {
        self.cluster.prune_before = Some(before);
    }
}

impl ClusterStage {
    /// The lease changed hands (holder or term) or a replica was forgotten. A replica's first
    /// beat is not counted: the status lists it at its next refresh (`StatusCache`).
    pub(super) fn membership_changed(&self) -> bool {
        fn key(l: &Option<Lease>) -> Option<(&str, u64)> {
            l.as_ref().map(|l| (l.holder.as_str(), l.term))
        }
        let lease_moved = self.lease.as_ref().is_some_and(|t| t.dirty && key(&t.original) != key(&t.value));
        lease_moved || !self.forget.is_empty()
    }
}

/// Writes the staged cluster rows, and the batch's changes-feed row when it is in feed mode and
/// changed anything.
pub(super) async fn flush(
    txn: &DatabaseTransaction,
    stage: ClusterStage,
    replica: &str,
    now: Millis,
    changes: &Changes,
) -> Result<()> {
    if let Some(r) = stage.beat {
        replica::Entity::insert(replica::ActiveModel {
            replica_id: Set(r.replica_id),
            address: Set(r.address),
            started_at: Set(r.started_at),
            heartbeat_at: Set(r.heartbeat_at),
        })
        .on_conflict(
            OnConflict::column(replica::Column::ReplicaId)
                .update_columns([replica::Column::Address, replica::Column::HeartbeatAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    if let Some(Tracked { value: Some(l), dirty: true, .. }) = stage.lease {
        lease::Entity::insert(lease::ActiveModel {
            name: Set(LEADER.to_owned()),
            holder: Set(l.holder),
            term: Set(i64::try_from(l.term).unwrap_or(i64::MAX)),
            acquired_at: Set(l.acquired_at),
            expires_at: Set(l.expires_at),
        })
        .on_conflict(
            OnConflict::column(lease::Column::Name)
                .update_columns([
                    lease::Column::Holder,
                    lease::Column::Term,
                    lease::Column::AcquiredAt,
                    lease::Column::ExpiresAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    if !stage.forget.is_empty() {
        replica::Entity::delete_many().filter(replica::Column::ReplicaId.is_in(stage.forget)).exec(txn).await?;
    }
    // The newest row always stays: ids continue from it, and a replica's cursor must never
    // find them starting over.
    if let (Some(before), Some(head)) = (stage.prune_before, stage.feed_head) {
        change_row::Entity::delete_many()
            .filter(change_row::Column::CommittedAt.lt(before))
            .filter(change_row::Column::ChangeId.lt(head))
            .exec(txn)
            .await?;
    }
    if let Some(head) = stage.feed_head
        && !changes.is_empty()
    {
        let payload = serde_json::to_string(&ChangeRefs::of(changes))
            .map_err(|e| Error::Corrupt(format!("a changes-feed row could not be encoded: {e}")))?;
        change_row::Entity::insert(change_row::ActiveModel {
            change_id: Set(head + 1),
            replica: Set(replica.to_owned()),
            committed_at: Set(now),
            payload: Set(payload),
        })
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}
