//! Writing a unit of work: the only code in the catcher that writes rows (migrations aside).
//! Every touched row is written once, with multi-row upserts; counters and day buckets move by
//! delta; journal entries are chained onto the stored head.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{Bulk, CHUNK, Unit};
use crate::change::Changes;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::journal as chain;
use crate::rules::RuleSet;
use crate::store::convert::*;
use crate::store::entity::*;

/// (type, tier, UTC day of `next_transition_at`): the projections' buckets.
type DayKey = (PackageType, Tier, i64);

impl Unit<'_> {
    /// Writes everything this batch changed and returns what the live view must hear.
    /// `in_flight` is the writer's running count of unfinished packages per source: updated
    /// here, so the caller must clear it if the transaction does not commit.
    pub async fn flush(mut self, in_flight: &mut HashMap<String, u64>) -> Result<Changes> {
        let txn = self.txn;
        let mut changes = Changes { status: self.status_changed, ..Default::default() };
        let mut replanned = std::collections::HashSet::new();
        let mut recount = false;
        for b in std::mem::take(&mut self.bulk) {
            match b {
                Bulk::Replan(rs) => {
                    replan_stored(txn, &rs, self.now).await?;
                    replanned.insert(rs.package_type);
                }
                Bulk::Recount => recount = true,
                Bulk::ResetConnections(others) => {
                    let mut q = source::Entity::update_many()
                        .col_expr(source::Column::Connected, Expr::value(false))
                        .col_expr(source::Column::Replica, Expr::value(Option::<String>::None))
                        .filter(source::Column::Connected.eq(true));
                    if !others.is_empty() {
                        q = q.filter(
                            sea_orm::Condition::any()
                                .add(source::Column::Replica.is_null())
                                .add(source::Column::Replica.is_not_in(others)),
                        );
                    }
                    q.exec(txn).await?;
                }
            }
        }
        if let Some(stations) = self.new_stations.take() {
            station::Entity::delete_many().exec(txn).await?;
            if !stations.is_empty() {
                station::Entity::insert_many(stations.iter().map(station_active)).exec_without_returning(txn).await?;
            }
        }
        self.write_rules().await?;

        let mut deltas: HashMap<CounterKey, Counter> = HashMap::new();
        let mut days: HashMap<DayKey, Counter> = HashMap::new();
        let mut flight: HashMap<String, i64> = HashMap::new();
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (id, t) in self.packages.drain() {
            if !t.dirty {
                continue;
            }
            if let Some(o) = &t.original {
                count(&mut deltas, &mut days, o, -1);
                if o.status.is_unfinished() {
                    *flight.entry(o.source_id.clone()).or_default() -= 1;
                }
            }
            match t.value {
                Some(p) => {
                    count(&mut deltas, &mut days, &p, 1);
                    if p.status.is_unfinished() {
                        *flight.entry(p.source_id.clone()).or_default() += 1;
                    }
                    upserts.push(p);
                }
                None if t.original.is_some() => deletes.push(id),
                None => {}
            }
        }
        for chunk in upserts.chunks(CHUNK) {
            package::Entity::insert_many(chunk.iter().map(package_active))
                .on_conflict(OnConflict::column(package::Column::PackageId).update_columns(PACKAGE_UPDATE).to_owned())
                .exec_without_returning(txn)
                .await?;
        }
        for chunk in deletes.chunks(CHUNK) {
            placement::Entity::delete_many()
                .filter(placement::Column::PackageId.is_in(chunk.iter().cloned()))
                .exec(txn)
                .await?;
            package_manifest::Entity::delete_many()
                .filter(package_manifest::Column::PackageId.is_in(chunk.iter().cloned()))
                .exec(txn)
                .await?;
            package::Entity::delete_many()
                .filter(package::Column::PackageId.is_in(chunk.iter().cloned()))
                .exec(txn)
                .await?;
        }
        // One row per package; manifests can be large, so they are written one by one.
        for (package_id, files) in std::mem::take(&mut self.manifests) {
            if deletes.contains(&package_id) {
                continue;
            }
            package_manifest::Entity::insert(manifest_active(package_id, &files)?)
                .on_conflict(
                    OnConflict::column(package_manifest::Column::PackageId)
                        .update_columns([package_manifest::Column::FileCount, package_manifest::Column::ManifestJson])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        let placements: Vec<Placement> = std::mem::take(&mut self.placements)
            .into_iter()
            .filter(|(package_id, _)| !deletes.contains(package_id))
            .flat_map(|(_, of)| of.into_values())
            .collect();
        for chunk in placements.chunks(CHUNK) {
            placement::Entity::insert_many(chunk.iter().map(placement_active))
                .on_conflict(
                    OnConflict::columns([placement::Column::PackageId, placement::Column::StationId])
                        .update_columns([
                            placement::Column::Status,
                            placement::Column::VerifiedSha256,
                            placement::Column::VerifiedAt,
                            placement::Column::Error,
                            placement::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        let mut sources: Vec<Source> =
            self.sources.drain().filter(|(_, t)| t.dirty).filter_map(|(_, t)| t.value).collect();
        for s in &mut sources {
            if let Some(at) = self.touches.remove(&s.source_id) {
                s.last_seen_at = Ord::max(s.last_seen_at, at);
            }
        }
        self.write_touches().await?;
        for chunk in sources.chunks(CHUNK) {
            source::Entity::insert_many(chunk.iter().map(source_active))
                .on_conflict(OnConflict::column(source::Column::SourceId).update_columns(SOURCE_UPDATE).to_owned())
                .exec_without_returning(txn)
                .await?;
        }
        let cursors: Vec<_> = self.cursors.drain().collect();
        let known_cursors: HashMap<String, u64> = cursors.iter().cloned().collect();
        for chunk in cursors.chunks(CHUNK) {
            let rows = chunk.iter().map(|(s, seq)| agent_cursor::ActiveModel {
                source_id: Set(s.clone()),
                last_applied_seq: Set(i64::try_from(*seq).unwrap_or(i64::MAX)),
                updated_at: Set(self.now),
            });
            agent_cursor::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(agent_cursor::Column::SourceId)
                        .update_columns([agent_cursor::Column::LastAppliedSeq, agent_cursor::Column::UpdatedAt])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
        }
        changes.restores = self.write_commands().await?;
        changes.commands = self.commands_written;
        self.write_snapshots().await?;
        super::catalog::flush(txn, std::mem::take(&mut self.catalog)).await?;
        super::credentials::flush(txn, std::mem::take(&mut self.credentials)).await?;
        changes.pending = super::protection::flush(txn, std::mem::take(&mut self.protection)).await?;
        changes.alerts = super::alerts::flush(txn, std::mem::take(&mut self.alerts)).await?;
        changes.status |= !changes.alerts.is_empty();
        if recount {
            rebuild_counters(txn).await?;
            rebuild_transition_days(txn, None).await?;
            changes.status = true;
        } else {
            deltas.retain(|_, d| d.count != 0 || d.bytes != 0);
            if !deltas.is_empty() {
                changes.status = true;
                apply_counter_deltas(txn, &deltas).await?;
            }
            days.retain(|(t, _, _), d| (d.count != 0 || d.bytes != 0) && !replanned.contains(t));
            if !days.is_empty() {
                apply_day_deltas(txn, &days).await?;
            }
            for t in replanned {
                rebuild_transition_days(txn, Some(t)).await?;
            }
        }
        if !self.journal.is_empty() {
            changes.journal = self.append_journal().await?;
        }
        changes.packages = upserts;
        changes.deleted_packages = deletes;
        changes.status |= !sources.is_empty();
        // Known counts move by this batch's deltas; unknown ones are counted once, after the writes.
        for (source_id, d) in flight {
            if let Some(n) = in_flight.get_mut(&source_id) {
                *n = n.saturating_add_signed(d);
            }
        }
        changes.sources = self.source_views(sources, in_flight, &known_cursors).await?;
        if self.rules_changed {
            changes.rules = Some(self.rules_now());
        }
        let cluster = std::mem::take(&mut self.cluster);
        // The status lists the replicas and the lease holder: a new holder or a replica
        // forgotten is news (a renewal or a heartbeat is not).
        changes.status |= cluster.membership_changed();
        super::cluster::flush(txn, cluster, &self.replica, self.now, &changes).await?;
        Ok(changes)
    }

    async fn write_rules(&mut self) -> Result<()> {
        if self.dirty_rules.is_empty() {
            return Ok(());
        }
        let rules = self.rules.as_ref().ok_or_else(|| Error::Corrupt("rule sets changed but none loaded".into()))?;
        let rows: Vec<rule_set::ActiveModel> =
            self.dirty_rules.iter().filter_map(|t| rules.get(t)).map(|rs| rule_set_active(rs, self.now)).collect();
        rule_set::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(rule_set::Column::PackageType)
                    .update_columns([rule_set::Column::Body, rule_set::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(self.txn)
            .await?;
        Ok(())
    }

    /// Writes the changed commands; returns the restores among them (the live view shows them).
    async fn write_commands(&mut self) -> Result<Vec<Command>> {
        let dirty: Vec<Command> = self.commands.drain().filter(|(_, t)| t.dirty).filter_map(|(_, t)| t.value).collect();
        self.commands_written = !dirty.is_empty();
        for chunk in dirty.chunks(CHUNK / 2) {
            let rows = chunk.iter().map(command_active).collect::<Result<Vec<_>>>()?;
            command::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(command::Column::CommandId)
                        .update_columns([
                            command::Column::State,
                            command::Column::Attempts,
                            command::Column::LeaseUntil,
                            command::Column::FinishedAt,
                            command::Column::ResultMessage,
                            command::Column::ResultDetailsJson,
                            command::Column::ProgressPhase,
                            command::Column::ProgressFilesDone,
                            command::Column::ProgressFilesTotal,
                            command::Column::ProgressBytesDone,
                            command::Column::ProgressBytesTotal,
                            command::Column::ProgressAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(self.txn)
                .await?;
        }
        Ok(dirty.into_iter().filter(|c| c.kind() == CommandKind::Restore).collect())
    }

    async fn write_snapshots(&mut self) -> Result<()> {
        let snapshots = std::mem::take(&mut self.snapshots);
        if snapshots.is_empty() {
            return Ok(());
        }
        config_snapshot::Entity::insert_many(snapshots.iter().map(snapshot_active))
            .exec_without_returning(self.txn)
            .await?;
        if self.txn.get_database_backend() == DatabaseBackend::Postgres {
            // Ids are chosen here, not by the sequence; keep the sequence ahead for other writers.
            self.txn
                .execute_unprepared(
                    "SELECT setval(pg_get_serial_sequence('config_snapshots', 'snapshot_id'), \
                     (SELECT MAX(snapshot_id) FROM config_snapshots))",
                )
                .await?;
        }
        Ok(())
    }

    /// `UPDATE sources SET last_seen_at = CASE source_id WHEN .. END WHERE source_id IN (..)`,
    /// never moving a last-seen time backwards.
    async fn write_touches(&mut self) -> Result<()> {
        let touches: Vec<(String, Millis)> = self.touches.drain().collect();
        for chunk in touches.chunks(CHUNK / 2) {
            let mut case = sea_orm::sea_query::CaseStatement::new();
            for (id, at) in chunk {
                case = case.case(source::Column::SourceId.eq(id.as_str()), Expr::val(*at));
            }
            let newest = Expr::expr(case.finally(Expr::col(source::Column::LastSeenAt)));
            let keep = Expr::case(
                Expr::col(source::Column::LastSeenAt).gt(newest.clone()),
                Expr::col(source::Column::LastSeenAt),
            )
            .finally(newest);
            source::Entity::update_many()
                .col_expr(source::Column::LastSeenAt, keep.into())
                .filter(source::Column::SourceId.is_in(chunk.iter().map(|(id, _)| id.clone())))
                .exec(self.txn)
                .await?;
        }
        Ok(())
    }

    async fn append_journal(&mut self) -> Result<Vec<JournalEvent>> {
        let head: Option<(i64, String)> = journal::Entity::find()
            .select_only()
            .columns([journal::Column::Sequence, journal::Column::Hash])
            .order_by_desc(journal::Column::Sequence)
            .limit(1)
            .into_tuple()
            .one(self.txn)
            .await?;
        let (seq, hash) = head.map_or((0, chain::GENESIS.to_owned()), |(s, h)| (u64::try_from(s).unwrap_or(0), h));
        let events = chain::chain(seq, &hash, self.now, std::mem::take(&mut self.journal));
        for chunk in events.chunks(CHUNK) {
            journal::Entity::insert_many(chunk.iter().map(journal_active)).exec_without_returning(self.txn).await?;
        }
        Ok(events)
    }

    /// The changed sources with their cursor and unfinished-package count, as committed. Only
    /// sources the writer has not counted yet, or whose cursor this batch did not set, are read.
    async fn source_views(
        &self,
        sources: Vec<Source>,
        in_flight: &mut HashMap<String, u64>,
        known_cursors: &HashMap<String, u64>,
    ) -> Result<Vec<SourceView>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let uncounted: Vec<String> =
            sources.iter().map(|s| &s.source_id).filter(|id| !in_flight.contains_key(*id)).cloned().collect();
        if !uncounted.is_empty() {
            let unfinished = PackageStatus::ALL.iter().filter(|s| s.is_unfinished()).map(|s| s.as_str());
            let counted: HashMap<String, i64> = package::Entity::find()
                .select_only()
                .column(package::Column::SourceId)
                .column_as(Expr::col(package::Column::PackageId).count(), "n")
                .filter(package::Column::Status.is_in(unfinished))
                .filter(package::Column::SourceId.is_in(uncounted.iter().cloned()))
                .group_by(package::Column::SourceId)
                .into_tuple::<(String, i64)>()
                .all(self.txn)
                .await?
                .into_iter()
                .collect();
            for id in uncounted {
                let n = counted.get(&id).map_or(0, |n| u64::try_from(*n).unwrap_or(0));
                in_flight.insert(id, n);
            }
        }
        let unknown: Vec<String> =
            sources.iter().map(|s| &s.source_id).filter(|id| !known_cursors.contains_key(*id)).cloned().collect();
        let mut cursors: HashMap<String, u64> = if unknown.is_empty() {
            HashMap::new()
        } else {
            agent_cursor::Entity::find()
                .filter(agent_cursor::Column::SourceId.is_in(unknown))
                .all(self.txn)
                .await?
                .into_iter()
                .map(|c| (c.source_id, u64::try_from(c.last_applied_seq).unwrap_or(0)))
                .collect()
        };
        cursors.extend(known_cursors.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(sources
            .into_iter()
            .map(|s| SourceView {
                in_flight: in_flight.get(&s.source_id).copied().unwrap_or(0),
                last_applied_seq: cursors.get(&s.source_id).copied().unwrap_or(0),
                source: s,
            })
            .collect())
    }
}

/// Adds (`sign` = 1) or removes (-1) a package's share of the counters and day buckets.
fn count(deltas: &mut HashMap<CounterKey, Counter>, days: &mut HashMap<DayKey, Counter>, p: &Package, sign: i64) {
    let bytes = i64::try_from(p.size_bytes).unwrap_or(0);
    let d = deltas.entry((p.package_type, p.tier, p.status)).or_default();
    d.count += sign;
    d.bytes += sign * bytes;
    if let (Some(tier), Some(at)) = (p.tier, p.next_transition_at) {
        let d = days.entry((p.package_type, tier, at.div_euclid(DAY_MS))).or_default();
        d.count += sign;
        d.bytes += sign * bytes;
    }
}

/// `ON CONFLICT (keys) DO UPDATE SET count = table.count + excluded.count, bytes = …`.
fn additive<C: sea_orm::sea_query::IntoIden + Copy>(table: &str, keys: Vec<C>, count: C, bytes: C) -> OnConflict {
    let table = Alias::new(table);
    let excluded = Alias::new("excluded");
    OnConflict::columns(keys)
        .value(count, Expr::col((table.clone(), count)).add(Expr::col((excluded.clone(), count))))
        .value(bytes, Expr::col((table, bytes)).add(Expr::col((excluded, bytes))))
        .to_owned()
}

/// Adds deltas to the (type, tier, status) counters in one statement.
async fn apply_counter_deltas(txn: &DatabaseTransaction, deltas: &HashMap<CounterKey, Counter>) -> Result<()> {
    use package_counter::Column as C;
    let rows = deltas.iter().map(|((package_type, tier, status), d)| package_counter::ActiveModel {
        package_type: Set(package_type.as_str().to_owned()),
        tier: Set(tier_str(*tier).to_owned()),
        status: Set(status.as_str().to_owned()),
        count: Set(d.count),
        bytes: Set(d.bytes),
    });
    package_counter::Entity::insert_many(rows)
        .on_conflict(additive("package_counters", vec![C::PackageType, C::Tier, C::Status], C::Count, C::Bytes))
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Adds deltas to the per-day transition buckets.
async fn apply_day_deltas(txn: &DatabaseTransaction, days: &HashMap<DayKey, Counter>) -> Result<()> {
    use transition_day::Column as C;
    let rows: Vec<_> = days
        .iter()
        .map(|((package_type, tier, day), d)| transition_day::ActiveModel {
            package_type: Set(package_type.as_str().to_owned()),
            tier: Set(tier.as_str().to_owned()),
            day: Set(*day),
            count: Set(d.count),
            bytes: Set(d.bytes),
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        transition_day::Entity::insert_many(chunk.to_vec())
            .on_conflict(additive("transition_days", vec![C::PackageType, C::Tier, C::Day], C::Count, C::Bytes))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Recomputes the day buckets of one package type (after its stored packages were re-planned),
/// or of all (`None`).
async fn rebuild_transition_days(txn: &DatabaseTransaction, t: Option<PackageType>) -> Result<()> {
    let mut clear = transition_day::Entity::delete_many();
    if let Some(t) = t {
        clear = clear.filter(transition_day::Column::PackageType.eq(t.as_str()));
    }
    clear.exec(txn).await?;
    // `as_str` is one of a fixed set of identifiers, safe to inline.
    txn.execute_unprepared(&crate::store::migration::rebuild_transition_days_sql(t.map(PackageType::as_str))).await?;
    Ok(())
}

/// Recomputes the counters from the packages table (first start after an import, or repair).
async fn rebuild_counters(txn: &DatabaseTransaction) -> Result<()> {
    package_counter::Entity::delete_many().exec(txn).await?;
    let rows: Vec<(String, String, String, i64, i64)> = package::Entity::find()
        .select_only()
        .column(package::Column::PackageType)
        .column(package::Column::Tier)
        .column(package::Column::Status)
        .column_as(Expr::col(package::Column::PackageId).count(), "n")
        .column_as(Expr::col(package::Column::SizeBytes).sum().cast_as(Alias::new("BIGINT")), "bytes")
        .group_by(package::Column::PackageType)
        .group_by(package::Column::Tier)
        .group_by(package::Column::Status)
        .into_tuple()
        .all(txn)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|(package_type, tier, status, n, bytes)| package_counter::ActiveModel {
        package_type: Set(package_type),
        tier: Set(tier),
        status: Set(status),
        count: Set(n),
        bytes: Set(bytes),
    });
    package_counter::Entity::insert_many(models).exec_without_returning(txn).await?;
    Ok(())
}

/// What an upsert may change in an existing package. A package's source, path, type and
/// creation time never change (`ingest` refuses a conflicting re-ingest), and leaving them out
/// spares SQLite rewriting the entries of the indexes on them.
const PACKAGE_UPDATE: [package::Column; 15] = [
    package::Column::SizeBytes,
    package::Column::Sha256,
    package::Column::Status,
    package::Column::BytesDone,
    package::Column::ProgressPercent,
    package::Column::Tool,
    package::Column::ToolRef,
    package::Column::Tier,
    package::Column::TierEnteredAt,
    package::Column::NextTransitionAt,
    package::Column::RetryCount,
    package::Column::LastError,
    package::Column::UpdatedAt,
    package::Column::CompletedAt,
    package::Column::ExpiredAt,
];

const SOURCE_UPDATE: [source::Column; 13] = [
    source::Column::Label,
    source::Column::Hostname,
    source::Column::Os,
    source::Column::AgentVersion,
    source::Column::Capabilities,
    source::Column::Mover,
    source::Column::FirstSeenAt,
    source::Column::LastSeenAt,
    source::Column::Connected,
    source::Column::SafetyState,
    source::Column::SafetyReason,
    source::Column::LastCompletedAt,
    source::Column::Replica,
];

/// Re-plans stored packages of `rs.package_type` after a rule change (the SQL twin of
/// `unit::replan`). Set-based, so a million packages re-plan without being loaded.
async fn replan_stored(txn: &DatabaseTransaction, rs: &RuleSet, now: Millis) -> Result<u64> {
    let mut changed = 0;
    for tier in Tier::ALL.iter().copied() {
        let mut base = package::Entity::update_many()
            .filter(package::Column::PackageType.eq(rs.package_type.as_str()))
            .filter(package::Column::Tier.eq(tier.as_str()))
            .filter(package::Column::Status.eq(PackageStatus::Completed.as_str()));
        let stays = rs.cache_ttl_secs.is_some() || rs.stop(tier).enabled;
        if stays && rs.ends_route(tier) {
            // Kept for good whatever the waits (they hold current versions): never planned to
            // expire, so the projections do not count them (`lifecycle::plan_leaving`).
            let held = sea_orm::sea_query::Query::select()
                .column(package_hold::Column::PackageId)
                .from(package_hold::Entity)
                .and_where(package_hold::Column::LiveVersions.gt(0))
                .to_owned();
            changed += package::Entity::update_many()
                .filter(package::Column::PackageType.eq(rs.package_type.as_str()))
                .filter(package::Column::Tier.eq(tier.as_str()))
                .filter(package::Column::Status.eq(PackageStatus::Completed.as_str()))
                .filter(package::Column::NextTransitionAt.is_not_null())
                .filter(package::Column::PackageId.in_subquery(held.clone()))
                .col_expr(package::Column::NextTransitionAt, Expr::value(Option::<i64>::None))
                .exec(txn)
                .await?
                .rows_affected;
            base = base.filter(package::Column::PackageId.not_in_subquery(held));
        }
        let update = if !stays {
            // The stop was switched off: move on at the scheduler's next pass.
            base.col_expr(package::Column::NextTransitionAt, Expr::value(now))
        } else {
            match rs.wait_in(tier) {
                None => base.col_expr(package::Column::NextTransitionAt, Expr::value(Option::<i64>::None)),
                Some(secs) => {
                    let ms = i64::try_from(secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
                    base.col_expr(
                        package::Column::NextTransitionAt,
                        Expr::col(package::Column::TierEnteredAt).add(Expr::value(ms)),
                    )
                }
            }
        };
        changed += update.exec(txn).await?.rows_affected;
        if let (true, Some(wait), Some(keep)) =
            (stays && rs.ends_route(tier), rs.wait_in(tier), rs.version_retention_ms())
        {
            changed += plan_superseded(txn, rs, tier, wait, keep).await?;
        }
    }
    Ok(changed)
}

/// Packages at the end of the route whose versions are all superseded stay until those
/// versions' retention ends, when that is later than their wait (`RuleSet::held`).
async fn plan_superseded(txn: &DatabaseTransaction, rs: &RuleSet, tier: Tier, wait: u64, keep: Millis) -> Result<u64> {
    let wait_ms = i64::try_from(wait).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    // Numbers and the two enum spellings only: nothing here comes from a request.
    let sql = format!(
        "UPDATE packages SET next_transition_at = \
           (SELECT h.superseded_at + {keep} FROM package_holds h WHERE h.package_id = packages.package_id) \
         WHERE package_type = '{ptype}' AND tier = '{tier}' AND status = '{done}' AND EXISTS \
           (SELECT 1 FROM package_holds h WHERE h.package_id = packages.package_id AND h.live_versions = 0 \
            AND h.superseded_at + {keep} > packages.tier_entered_at + {wait_ms})",
        ptype = rs.package_type.as_str(),
        tier = tier.as_str(),
        done = PackageStatus::Completed.as_str(),
    );
    Ok(txn.execute_unprepared(&sql).await?.rows_affected())
}
