//! Staged pending changes (protected retention) and the rules of the recent past that the
//! expiry floor keeps.

use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::undo::{Undo, put};
use super::{Tracked, Unit};
use crate::domain::*;
use crate::error::Result;
use crate::rules::RuleSet;
use crate::rules::{PendingChange, PendingState};
use crate::store::convert::{pending_active, pending_from};
use crate::store::entity::{pending_change, rule_history};

#[derive(Default)]
pub(super) struct ProtectionStage {
    /// By change id.
    pub changes: HashMap<String, Tracked<PendingChange>>,
    /// Every open change is in `changes` (loaded once per batch).
    pub open_loaded: bool,
    pub next_id: Option<u64>,
    /// Per package type, the rule sets in force during the floor's window (read once).
    pub floor: HashMap<PackageType, Vec<RuleSet>>,
    /// Rule sets put in force by this batch, with when they were asked for.
    pub history: Vec<(PackageType, RuleSet, Millis)>,
}

impl Unit<'_> {
    /// The pending change with this id, as this batch sees it.
    pub async fn pending_change(&mut self, id: u64) -> Result<Option<PendingChange>> {
        let key = id.to_string();
        if let Some(t) = self.protection.changes.get(&key) {
            return Ok(t.value.clone());
        }
        let row = pending_change::Entity::find_by_id(i64::try_from(id).unwrap_or(i64::MAX))
            .one(self.txn)
            .await?
            .map(pending_from)
            .transpose()?;
        self.protection.changes.insert(key, Tracked::loaded(row.clone()));
        Ok(row)
    }

    /// Every open pending change, by effective_at.
    pub async fn open_pending(&mut self) -> Result<Vec<PendingChange>> {
        if !self.protection.open_loaded {
            let rows = pending_change::Entity::find()
                .filter(pending_change::Column::State.eq(PendingState::Pending.as_str()))
                .all(self.txn)
                .await?;
            for row in rows {
                let c = pending_from(row)?;
                self.protection.changes.entry(c.change_id.to_string()).or_insert_with(|| Tracked::loaded(Some(c)));
            }
            self.protection.open_loaded = true;
        }
        let mut open: Vec<PendingChange> =
            self.protection.changes.values().filter_map(|t| t.value.clone()).filter(PendingChange::is_open).collect();
        open.sort_by_key(|c| (c.effective_at, c.change_id));
        Ok(open)
    }

    pub fn put_pending_change(&mut self, c: PendingChange) {
        let key = c.change_id.to_string();
        let before = put(&mut self.protection.changes, key.clone(), c);
        self.log(Undo::Pending(key, before));
    }

    /// The next pending change id (ids are never reused).
    pub async fn next_pending_id(&mut self) -> Result<u64> {
        let id = match self.protection.next_id {
            Some(id) => id,
            None => {
                let max: Option<i64> = pending_change::Entity::find()
                    .select_only()
                    .column(pending_change::Column::ChangeId)
                    .order_by_desc(pending_change::Column::ChangeId)
                    .limit(1)
                    .into_tuple()
                    .one(self.txn)
                    .await?;
                max.map_or(1, |m| u64::try_from(m).unwrap_or(0) + 1)
            }
        };
        self.protection.next_id = Some(id + 1);
        Ok(id)
    }

    /// The rule sets of `t` in force at some time in the last `protection_ms` (counted from
    /// when they were asked for), the current one included: expiry keeps a copy that any of
    /// them would still keep.
    pub async fn floor_rules(&mut self, t: PackageType) -> Result<Vec<RuleSet>> {
        if let Some(sets) = self.protection.floor.get(&t) {
            return Ok(sets.clone());
        }
        let since = self.now.saturating_sub(self.protection_ms);
        let of_type = rule_history::Column::PackageType.eq(t.as_str());
        // Rule sets asked for within the window, and the one in force when it began.
        let mut rows = rule_history::Entity::find()
            .filter(of_type.clone())
            .filter(rule_history::Column::Since.gt(since))
            .limit(1000)
            .all(self.txn)
            .await?;
        let before = rule_history::Entity::find()
            .filter(of_type)
            .filter(rule_history::Column::Since.lte(since))
            .order_by_desc(rule_history::Column::Since)
            .order_by_desc(rule_history::Column::Id)
            .one(self.txn)
            .await?;
        rows.extend(before);
        let mut sets: Vec<RuleSet> = Vec::new();
        for row in rows {
            let rs: RuleSet = serde_json::from_str(&row.body)
                .map_err(|e| crate::error::Error::Corrupt(format!("rule history {}: {e}", row.id)))?;
            if !sets.contains(&rs) {
                sets.push(rs);
            }
        }
        for (ty, rs, _) in &self.protection.history {
            if *ty == t && !sets.contains(rs) {
                sets.push(rs.clone());
            }
        }
        if let Some(current) = self.rules().await?.get(&t).cloned()
            && !sets.contains(&current)
        {
            sets.push(current);
        }
        self.protection.floor.insert(t, sets.clone());
        Ok(sets)
    }

    /// Records that `rs` is in force, asked for at `since`.
    pub fn record_rules(&mut self, rs: &RuleSet, since: Millis) {
        self.protection.history.push((rs.package_type, rs.clone(), since));
        self.protection.floor.remove(&rs.package_type);
    }
}

/// Writes what the batch staged; answers the changes written (for the live views).
pub(super) async fn flush(txn: &sea_orm::DatabaseTransaction, stage: ProtectionStage) -> Result<Vec<PendingChange>> {
    let dirty: Vec<PendingChange> = stage.changes.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    if !dirty.is_empty() {
        use pending_change::Column as C;
        pending_change::Entity::insert_many(dirty.iter().map(pending_active).collect::<Result<Vec<_>>>()?)
            .on_conflict(
                OnConflict::column(C::ChangeId)
                    .update_columns([C::State, C::ResolvedAt, C::ResolvedBy, C::Outcome])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    if !stage.history.is_empty() {
        let rows = stage.history.iter().map(|(t, rs, since)| rule_history::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            package_type: sea_orm::ActiveValue::Set(t.as_str().to_owned()),
            body: sea_orm::ActiveValue::Set(serde_json::to_string(rs).expect("a rule set always serialises")),
            since: sea_orm::ActiveValue::Set(*since),
        });
        rule_history::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(dirty)
}
