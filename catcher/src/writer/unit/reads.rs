//! Reads a unit makes beyond its cached rows: counts and candidate lists that ops look at but
//! never stage.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::store::convert::*;
use crate::store::entity::*;

impl Unit<'_> {
    /// How many stored packages of `t` are completed (what a re-plan of `t` touches).
    pub async fn count_completed(&self, t: PackageType) -> Result<u64> {
        let n = package::Entity::find()
            .filter(package::Column::PackageType.eq(t.as_str()))
            .filter(package::Column::Status.eq(PackageStatus::Completed.as_str()))
            .count(self.txn)
            .await?;
        Ok(n)
    }

    /// Up to `limit` stored completed packages of `tier` (any tier when None), newest first.
    pub async fn recent_completed(&mut self, tier: Option<Tier>, limit: u64) -> Result<Vec<Package>> {
        let mut q = package::Entity::find().filter(package::Column::Status.eq(PackageStatus::Completed.as_str()));
        if let Some(t) = tier {
            q = q.filter(package::Column::Tier.eq(t.as_str()));
        }
        let rows = q.order_by_desc(package::Column::PackageId).limit(limit).all(self.txn).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.package_id.clone()).collect();
        self.prefetch_placements(ids.iter().cloned()).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.package(&id).await?
                && p.status == PackageStatus::Completed
                && (tier.is_none() || p.tier == tier)
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// How many restore drills were ever queued (the schedule rotates through the tiers by it).
    pub async fn drill_count(&self) -> Result<u64> {
        let stored = command::Entity::find()
            .filter(command::Column::Kind.eq(CommandKind::RestoreDrill.as_str()))
            .count(self.txn)
            .await?;
        let staged = self
            .commands
            .values()
            .filter(|t| t.original.is_none() && t.value.as_ref().is_some_and(|c| c.kind() == CommandKind::RestoreDrill))
            .count();
        Ok(stored + staged as u64)
    }

    /// A stored config snapshot.
    pub async fn stored_snapshot(&self, id: u64) -> Result<Option<ConfigSnapshot>> {
        let key = i64::try_from(id).map_err(|_| Error::invalid("snapshot_id", "out of range"))?;
        if let Some(s) = self.snapshots.iter().find(|s| s.snapshot_id == id) {
            return Ok(Some(s.clone()));
        }
        Ok(config_snapshot::Entity::find_by_id(key).one(self.txn).await?.map(snapshot_from))
    }

    /// Whether the package counters were ever written (an importer may have done it).
    pub async fn has_counters(&self) -> Result<bool> {
        Ok(package_counter::Entity::find().one(self.txn).await?.is_some())
    }
}
