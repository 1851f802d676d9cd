//! The unit of work of one group-commit transaction.
//!
//! Ops read rows through the unit, which loads and caches them, and stage every change here;
//! the unit never writes (`flush.rs` does, once, after every op has run). Each op runs between
//! `mark` and `settle`: if it fails, every change it staged is undone (an undo log of the
//! previous values), so a failed op leaves the batch exactly as it found it. So twenty progress
//! ticks of one package in a batch cost one row write, and a refused op has written nothing.

mod alerts;
mod catalog;
mod cluster;
mod credentials;
mod flush;
mod protection;
mod reads;
mod undo;

pub use self::cluster::ClusterSettings;
use self::undo::{Undo, put, staged};

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::RuleSet;
use crate::store::convert::*;
use crate::store::entity::*;

/// Rows per `IN (..)` list; keeps well under SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 400;

/// A row as loaded (`original`) and as this batch leaves it (`value`, `None` once deleted).
#[derive(Debug, Clone)]
struct Tracked<T> {
    original: Option<T>,
    value: Option<T>,
    dirty: bool,
}

impl<T: Clone> Tracked<T> {
    fn loaded(row: Option<T>) -> Self {
        Self { original: row.clone(), value: row, dirty: false }
    }
}

/// A set-based statement, run at flush before the rows are written.
#[derive(Debug, Clone)]
enum Bulk {
    /// Re-plan the stored completed packages of a rule set's type.
    Replan(RuleSet),
    /// Recount the package counters and day buckets from the packages table.
    Recount,
    /// No agent is connected (start-up), except to these other live replicas.
    ResetConnections(Vec<String>),
}

pub struct Unit<'a> {
    /// Only this module and `flush` touch the transaction: ops cannot write.
    txn: &'a DatabaseTransaction,
    pub now: Millis,
    packages: HashMap<String, Tracked<Package>>,
    sources: HashMap<String, Tracked<Source>>,
    commands: HashMap<String, Tracked<Command>>,
    cursors: HashMap<String, u64>,
    /// Last-seen times from heartbeats, written without making the source dirty.
    touches: HashMap<String, Millis>,
    /// Per package, its placements as stored (a read cache: loaded on demand or in bulk).
    stored_placements: HashMap<String, Vec<Placement>>,
    /// Per package, the placements this batch writes, by station (written blind: a copy's
    /// report needs no read of the others).
    placements: HashMap<String, BTreeMap<String, Placement>>,
    manifests: HashMap<String, Vec<ManifestEntry>>,
    /// Open move/expire commands per package, as stored (loaded once per package).
    open_stored: HashMap<String, Vec<String>>,
    /// Commands this batch created, per package.
    created_for: HashMap<String, Vec<String>>,
    journal: Vec<JournalEntry>,
    snapshots: Vec<ConfigSnapshot>,
    next_snapshot_id: Option<u64>,
    bulk: Vec<Bulk>,
    rules: Option<HashMap<PackageType, RuleSet>>,
    dirty_rules: HashSet<PackageType>,
    stations: Option<Vec<Station>>,
    /// The stations this batch declared, when it did.
    new_stations: Option<Vec<Station>>,
    /// Connected movers as stored (loaded once per batch).
    stored_movers: Option<Vec<String>>,
    /// Catalog versions and package holds.
    catalog: catalog::CatalogStage,
    /// Enrollment tokens, issued certificates, revocations.
    credentials: credentials::CredentialStage,
    /// Pending changes and the expiry floor's rules.
    protection: protection::ProtectionStage,
    /// Alerts, notifications, recovery points.
    alerts: alerts::AlertStage,
    /// The catcher's protection delay (changes that delete sooner wait this long).
    pub protection_ms: Millis,
    undo: Vec<Undo>,
    depth: usize,
    pub rules_changed: bool,
    pub status_changed: bool,
    /// Set by flush: command rows were written.
    commands_written: bool,
    /// Replicas, the singleton lease, the changes feed.
    cluster: cluster::ClusterStage,
    /// This catcher replica.
    pub replica: std::sync::Arc<str>,
    cluster_settings: ClusterSettings,
}

impl<'a> Unit<'a> {
    pub fn new(
        txn: &'a DatabaseTransaction,
        now: Millis,
        protection_ms: Millis,
        cluster_settings: ClusterSettings,
    ) -> Self {
        Self {
            txn,
            now,
            packages: HashMap::new(),
            sources: HashMap::new(),
            commands: HashMap::new(),
            cursors: HashMap::new(),
            touches: HashMap::new(),
            stored_placements: HashMap::new(),
            placements: HashMap::new(),
            manifests: HashMap::new(),
            open_stored: HashMap::new(),
            created_for: HashMap::new(),
            journal: Vec::new(),
            snapshots: Vec::new(),
            next_snapshot_id: None,
            bulk: Vec::new(),
            rules: None,
            dirty_rules: HashSet::new(),
            stations: None,
            new_stations: None,
            stored_movers: None,
            catalog: catalog::CatalogStage::default(),
            credentials: credentials::CredentialStage::default(),
            protection: protection::ProtectionStage::default(),
            alerts: alerts::AlertStage::default(),
            protection_ms,
            undo: Vec::new(),
            depth: 0,
            rules_changed: false,
            status_changed: false,
            commands_written: false,
            cluster: cluster::ClusterStage::default(),
            replica: cluster_settings.replica.clone(),
            cluster_settings,
        }
    }

    // ---- packages ----

    /// The package as this batch sees it.
    pub async fn package(&mut self, id: &str) -> Result<Option<Package>> {
        if let Some(t) = self.packages.get(id) {
            return Ok(t.value.clone());
        }
        let loaded = package::Entity::find_by_id(id.to_owned()).one(self.txn).await?.map(package_from).transpose()?;
        let loaded = loaded.map(|p| self.replanned(p));
        self.packages.insert(id.to_owned(), Tracked::loaded(loaded.clone()));
        Ok(loaded)
    }

    /// Loads many packages in a few `IN (..)` queries, so the ops that follow find them (or
    /// their absence) cached instead of making one database round trip each.
    pub async fn prefetch_packages(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.packages);
        for chunk in wanted.chunks(CHUNK) {
            let rows =
                package::Entity::find().filter(package::Column::PackageId.is_in(chunk.to_vec())).all(self.txn).await?;
            let mut found = HashMap::with_capacity(rows.len());
            for row in rows {
                let p = self.replanned(package_from(row)?);
                found.insert(p.package_id.clone(), p);
            }
            for id in chunk {
                self.packages.insert(id.clone(), Tracked::loaded(found.remove(id)));
            }
        }
        Ok(())
    }

    /// A stored package as it is once this batch's staged re-plans have run (they run in SQL at
    /// flush, before the rows this batch changed are written).
    fn replanned(&self, mut p: Package) -> Package {
        for b in &self.bulk {
            if let Bulk::Replan(rs) = b
                && rs.package_type == p.package_type
            {
                let held = self.held_now(&p.package_id);
                replan(&mut p, rs, self.now, held);
            }
        }
        p
    }

    /// Whether a package holds current versions, as far as this batch has loaded its hold (one
    /// not loaded counts as not held: at worst it comes due and is re-checked once).
    fn held_now(&self, package_id: &str) -> bool {
        self.catalog.holds.get(package_id).and_then(|t| t.value.as_ref()).is_some_and(|h| h.live_versions > 0)
    }

    /// Stores a new or changed package (the caller loaded it through `package` first).
    pub fn put_package(&mut self, mut p: Package) {
        p.updated_at = self.now;
        let id = p.package_id.clone();
        let prev = put(&mut self.packages, id.clone(), p);
        self.log(Undo::Package(id, prev));
    }

    pub fn delete_package(&mut self, id: &str) {
        let prev = staged(&self.packages, id);
        if let Some(t) = self.packages.get_mut(id) {
            t.value = None;
            t.dirty = true;
            self.log(Undo::Package(id.to_owned(), prev));
        }
    }

    /// Re-plans the cached completed packages of `rs`'s type and stages the same for the stored ones.
    pub fn replan_type(&mut self, rs: &RuleSet) {
        let ids: Vec<String> = self
            .packages
            .iter()
            .filter(|(_, t)| t.value.as_ref().is_some_and(|p| p.package_type == rs.package_type))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let mut p = self.packages[&id].value.clone().expect("filtered on a value");
            let before = p.next_transition_at;
            let held = self.held_now(&id);
            replan(&mut p, rs, self.now, held);
            if p.next_transition_at != before {
                let prev = staged(&self.packages, &id);
                self.log(Undo::Package(id.clone(), prev));
                let t = self.packages.get_mut(&id).expect("cached");
                t.value = Some(p);
                t.dirty = true;
            }
        }
        self.bulk.push(Bulk::Replan(rs.clone()));
    }

    pub fn put_manifest(&mut self, package_id: &str, files: Vec<ManifestEntry>) {
        let prev = self.manifests.insert(package_id.to_owned(), files);
        self.log(Undo::Manifest(package_id.to_owned(), prev));
    }

    // ---- placements ----

    /// Loads the stored placements of many packages in a few queries.
    pub async fn prefetch_placements(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.stored_placements);
        for chunk in wanted.chunks(CHUNK) {
            let mut found: HashMap<String, Vec<Placement>> = HashMap::new();
            for row in placement::Entity::find()
                .filter(placement::Column::PackageId.is_in(chunk.to_vec()))
                .all(self.txn)
                .await?
            {
                let p = placement_from(row)?;
                found.entry(p.package_id.clone()).or_default().push(p);
            }
            for id in chunk {
                self.stored_placements.insert(id.clone(), found.remove(id).unwrap_or_default());
            }
        }
        Ok(())
    }

    /// A package's placements as this batch sees them (stored ones overlaid with this batch's),
    /// sorted by station id.
    pub async fn placements_of(&mut self, package_id: &str) -> Result<Vec<Placement>> {
        if !self.stored_placements.contains_key(package_id) {
            self.prefetch_placements([package_id.to_owned()]).await?;
        }
        let mut by_station: BTreeMap<&str, &Placement> =
            self.stored_placements[package_id].iter().map(|p| (p.station_id.as_str(), p)).collect();
        for (station, p) in self.placements.get(package_id).into_iter().flatten() {
            by_station.insert(station.as_str(), p);
        }
        Ok(by_station.into_values().cloned().collect())
    }

    /// Stores a placement.
    pub fn put_placement(&mut self, p: Placement) {
        let (package, station) = (p.package_id.clone(), p.station_id.clone());
        let prev = self.placements.entry(package.clone()).or_default().insert(station.clone(), p);
        self.log(Undo::Placement(package, station, prev));
    }

    // ---- sources and cursors ----

    pub async fn source(&mut self, id: &str) -> Result<Option<Source>> {
        if let Some(t) = self.sources.get(id) {
            return Ok(t.value.clone());
        }
        let loaded = source::Entity::find_by_id(id.to_owned()).one(self.txn).await?.map(source_from).transpose()?;
        self.sources.insert(id.to_owned(), Tracked::loaded(loaded.clone()));
        Ok(loaded)
    }

    /// Loads many sources and their cursors in a few queries (see `prefetch_packages`).
    pub async fn prefetch_sources(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.sources);
        for chunk in wanted.chunks(CHUNK) {
            let mut found: HashMap<String, Source> = HashMap::new();
            for row in
                source::Entity::find().filter(source::Column::SourceId.is_in(chunk.to_vec())).all(self.txn).await?
            {
                let s = source_from(row)?;
                found.insert(s.source_id.clone(), s);
            }
            let cursors: HashMap<String, i64> = agent_cursor::Entity::find()
                .filter(agent_cursor::Column::SourceId.is_in(chunk.to_vec()))
                .all(self.txn)
                .await?
                .into_iter()
                .map(|c| (c.source_id, c.last_applied_seq))
                .collect();
            for id in chunk {
                self.sources.insert(id.clone(), Tracked::loaded(found.remove(id)));
                let c = cursors.get(id).map_or(0, |n| u64::try_from(*n).unwrap_or(0));
                self.cursors.entry(id.clone()).or_insert(c);
            }
        }
        Ok(())
    }

    /// The source, registered now if it was never seen.
    pub async fn source_or_new(&mut self, id: &str, actor: &str) -> Result<Source> {
        if let Some(s) = self.source(id).await? {
            return Ok(s);
        }
        let s = Source::new(id, self.now);
        let mut e = JournalEntry::new(EventType::SourceRegistered, actor);
        e.source_id = id.to_owned();
        self.journal(e);
        self.put_source(s.clone());
        Ok(s)
    }

    pub fn put_source(&mut self, s: Source) {
        let id = s.source_id.clone();
        let prev = put(&mut self.sources, id.clone(), s);
        self.log(Undo::Source(id, prev));
    }

    /// Records that the source was heard from at `at` (heartbeats). Unlike `put_source` this
    /// neither rewrites the row nor tells the live view: last-seen alone is not news.
    pub fn touch(&mut self, id: &str, at: Millis) {
        let prev = self.touches.get(id).copied();
        self.log(Undo::Touch(id.to_owned(), prev));
        self.touches.insert(id.to_owned(), prev.map_or(at, |p| p.max(at)));
    }

    /// Highest applied sequence of a source, as this batch sees it.
    pub async fn cursor(&mut self, source_id: &str) -> Result<u64> {
        if let Some(c) = self.cursors.get(source_id) {
            return Ok(*c);
        }
        let row = agent_cursor::Entity::find_by_id(source_id.to_owned()).one(self.txn).await?;
        let c = row.map_or(0, |r| u64::try_from(r.last_applied_seq).unwrap_or(0));
        self.cursors.insert(source_id.to_owned(), c);
        Ok(c)
    }

    pub fn set_cursor(&mut self, source_id: &str, seq: u64) {
        let prev = self.cursors.insert(source_id.to_owned(), seq);
        self.log(Undo::Cursor(source_id.to_owned(), prev));
    }

    /// Stages "no agent is connected" (start-up) for the stored sources and the cached ones,
    /// except those whose stream another live replica holds.
    pub async fn reset_connections(&mut self) -> Result<()> {
        // SQLite is one catcher's file: whatever its last run left connected is not.
        let mut live = if sea_orm::ConnectionTrait::get_database_backend(self.txn) == sea_orm::DatabaseBackend::Sqlite {
            vec![self.replica.to_string()]
        } else {
            self.live_replicas().await?
        };
        let on_live = |s: &Source| s.replica.as_ref().is_some_and(|r| live.contains(r) && **r != *self.replica);
        let connected: Vec<Source> =
            self.sources.values().filter_map(|t| t.value.clone()).filter(|s| s.connected && !on_live(s)).collect();
        for mut s in connected {
            s.connected = false;
            s.replica = None;
            self.put_source(s);
        }
        live.retain(|r| **r != *self.replica);
        self.bulk.push(Bulk::ResetConnections(live));
        self.status_changed = true;
        Ok(())
    }

    /// The connected sources with the mover capability, sorted, as this batch sees them.
    pub async fn movers(&mut self) -> Result<Vec<String>> {
        if self.stored_movers.is_none() {
            let rows: Vec<String> = source::Entity::find()
                .select_only()
                .column(source::Column::SourceId)
                .filter(source::Column::Connected.eq(true))
                .filter(source::Column::Mover.eq(true))
                .into_tuple()
                .all(self.txn)
                .await?;
            self.stored_movers = Some(rows);
        }
        let mut movers: HashSet<&str> = self.stored_movers.iter().flatten().map(String::as_str).collect();
        for (id, t) in &self.sources {
            if !t.dirty {
                continue;
            }
            match &t.value {
                Some(s) if s.connected && s.capabilities.contains(&Capability::Mover) => movers.insert(id),
                _ => movers.remove(id.as_str()),
            };
        }
        let mut out: Vec<String> = movers.into_iter().map(str::to_owned).collect();
        out.sort_unstable();
        Ok(out)
    }

    // ---- commands ----

    /// Loads many commands in a few queries.
    pub async fn prefetch_commands(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.commands);
        for chunk in wanted.chunks(CHUNK) {
            let mut found: HashMap<String, Command> = HashMap::new();
            for row in
                command::Entity::find().filter(command::Column::CommandId.is_in(chunk.to_vec())).all(self.txn).await?
            {
                let c = command_from(row)?;
                found.insert(c.command_id.clone(), c);
            }
            for id in chunk {
                self.commands.insert(id.clone(), Tracked::loaded(found.remove(id)));
            }
        }
        Ok(())
    }

    pub async fn command(&mut self, id: &str) -> Result<Option<Command>> {
        if !self.commands.contains_key(id) {
            self.prefetch_commands([id.to_owned()]).await?;
        }
        Ok(self.commands[id].value.clone())
    }

    /// Stores a new or changed command.
    pub fn put_command(&mut self, c: Command) {
        if !self.commands.contains_key(&c.command_id) && !c.package_id.is_empty() {
            self.created_for.entry(c.package_id.clone()).or_default().push(c.command_id.clone());
            self.log(Undo::NewCommandOf(c.package_id.clone()));
        }
        let open = |c: &Command| matches!(c.state, CommandState::Pending | CommandState::Leased);
        let was_open = self.commands.get(&c.command_id).and_then(|t| t.value.as_ref()).map(open);
        // The status view counts open commands: a new one or one opened or closed changes it,
        // a lease renewed does not.
        if was_open != Some(open(&c)) {
            self.status_changed = true;
        }
        let id = c.command_id.clone();
        let prev = put(&mut self.commands, id.clone(), c);
        self.log(Undo::Command(id, prev));
    }

    /// Loads the open MOVE/EXPIRE commands of many packages in a few queries.
    pub async fn prefetch_open_moves(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.open_stored);
        let open = [CommandState::Pending.as_str(), CommandState::Leased.as_str()];
        let kinds = [CommandKind::Move.as_str(), CommandKind::Expire.as_str()];
        for chunk in wanted.chunks(CHUNK) {
            let mut by_package: HashMap<String, Vec<String>> = HashMap::new();
            let rows = command::Entity::find()
                .filter(command::Column::PackageId.is_in(chunk.to_vec()))
                .filter(command::Column::State.is_in(open))
                .filter(command::Column::Kind.is_in(kinds))
                .all(self.txn)
                .await?;
            for row in rows {
                let c = command_from(row)?;
                by_package.entry(c.package_id.clone()).or_default().push(c.command_id.clone());
                self.commands.entry(c.command_id.clone()).or_insert_with(|| Tracked::loaded(Some(c)));
            }
            for id in chunk {
                self.open_stored.insert(id.clone(), by_package.remove(id).unwrap_or_default());
            }
        }
        Ok(())
    }

    /// A package's open MOVE/EXPIRE commands as this batch sees them.
    pub async fn open_moves_of(&mut self, package_id: &str) -> Result<Vec<Command>> {
        if !self.open_stored.contains_key(package_id) {
            self.prefetch_open_moves([package_id.to_owned()]).await?;
        }
        let ids = self.open_stored[package_id].iter().chain(self.created_for.get(package_id).into_iter().flatten());
        Ok(ids
            .filter_map(|id| self.commands.get(id).and_then(|t| t.value.clone()))
            .filter(|c| {
                matches!(c.state, CommandState::Pending | CommandState::Leased)
                    && matches!(c.kind(), CommandKind::Move | CommandKind::Expire)
            })
            .collect())
    }

    // ---- rules ----

    pub async fn rules(&mut self) -> Result<&HashMap<PackageType, RuleSet>> {
        if self.rules.is_none() {
            let rows = rule_set::Entity::find().all(self.txn).await?;
            let mut map = HashMap::new();
            for row in rows {
                let rs = rule_set_from(&row)?;
                map.insert(rs.package_type, rs);
            }
            self.rules = Some(map);
        }
        Ok(self.rules.get_or_insert_default())
    }

    pub async fn rule(&mut self, t: PackageType) -> Result<RuleSet> {
        self.rules().await?.get(&t).cloned().ok_or_else(|| Error::Corrupt(format!("no rule set for {t}")))
    }

    /// Replaces rule sets (the caller re-plans their packages).
    pub async fn put_rules(&mut self, sets: &[RuleSet]) -> Result<()> {
        self.rules().await?;
        self.log(Undo::Rules(self.rules.clone(), self.dirty_rules.clone()));
        let map = self.rules.get_or_insert_default();
        for rs in sets {
            map.insert(rs.package_type, rs.clone());
            self.dirty_rules.insert(rs.package_type);
        }
        self.rules_changed = true;
        Ok(())
    }

    /// The rule sets as this batch leaves them (for the live view), sorted by type.
    fn rules_now(&mut self) -> Vec<RuleSet> {
        let mut sets: Vec<RuleSet> = self.rules.take().unwrap_or_default().into_values().collect();
        sets.sort_by_key(|r| r.package_type);
        sets
    }

    // ---- stations ----

    /// The stations as this batch sees them.
    pub async fn stations(&mut self) -> Result<&[Station]> {
        if self.stations.is_none() {
            let rows = station::Entity::find().all(self.txn).await?;
            self.stations = Some(rows.into_iter().map(station_from).collect::<Result<_>>()?);
        }
        Ok(self.stations.as_deref().unwrap_or_default())
    }

    /// Replaces the stations.
    pub fn put_stations(&mut self, stations: Vec<Station>) {
        self.log(Undo::Stations(self.stations.clone(), self.new_stations.clone()));
        self.stations = Some(stations.clone());
        self.new_stations = Some(stations);
        self.status_changed = true;
    }

    // ---- snapshots and journal ----

    /// Stages a config snapshot; its id is the next free one.
    pub async fn put_snapshot(
        &mut self,
        created_at: Millis,
        reason: &str,
        sha256: String,
        config_json: String,
        actor: &str,
    ) -> Result<u64> {
        let id = match self.next_snapshot_id {
            Some(id) => id,
            None => {
                let max: Option<i64> = config_snapshot::Entity::find()
                    .select_only()
                    .column(config_snapshot::Column::SnapshotId)
                    .order_by_desc(config_snapshot::Column::SnapshotId)
                    .limit(1)
                    .into_tuple()
                    .one(self.txn)
                    .await?;
                max.map_or(1, |m| u64::try_from(m).unwrap_or(0) + 1)
            }
        };
        self.next_snapshot_id = Some(id + 1);
        self.snapshots.push(ConfigSnapshot {
            snapshot_id: id,
            created_at,
            reason: reason.to_owned(),
            sha256,
            config_json,
            actor: actor.to_owned(),
        });
        Ok(id)
    }

    pub fn journal(&mut self, entry: JournalEntry) {
        self.journal.push(entry);
    }

    /// Stages a recount of the counters and day buckets (first start after an import).
    pub fn recount(&mut self) {
        self.bulk.push(Bulk::Recount);
    }
}

/// The ids not cached yet, sorted and without duplicates.
fn missing<V>(ids: impl IntoIterator<Item = String>, cached: &HashMap<String, V>) -> Vec<String> {
    let mut wanted: Vec<String> = ids.into_iter().filter(|id| !cached.contains_key(id)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}

/// When a completed package leaves its tier under `rs` (the in-memory twin of the bulk re-plan
/// in `flush::replan_stored`).
/// `held`: the package holds current versions (as far as this batch knows its hold).
fn replan(p: &mut Package, rs: &RuleSet, now: Millis, held: bool) {
    if p.status != PackageStatus::Completed {
        return;
    }
    if let (Some(tier), Some(entered)) = (p.tier, p.tier_entered_at) {
        let stays = rs.cache_ttl_secs.is_some() || rs.stop(tier).enabled;
        if stays && held && rs.ends_route(tier) {
            p.next_transition_at = None;
            return;
        }
        p.next_transition_at = if stays { rs.due_at(tier, entered) } else { Some(now) };
    }
}
