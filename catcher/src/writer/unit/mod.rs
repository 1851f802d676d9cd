//! The unit of work of one group-commit transaction.
//!
//! Ops read rows through the unit, which loads and caches them, and stage every change here;
//! the unit never writes (`flush.rs` does, once, after every op has run). Each op runs between
//! `mark` and `settle`: if it fails, every change it staged is undone (an undo log of the
//! previous values), so a failed op leaves the batch exactly as it found it. So twenty progress
//! ticks of one package in a batch cost one row write, and a refused op has written nothing.

mod flush;

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

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
    /// No agent is connected (start-up).
    ResetConnections,
}

/// One undo record: the value a key had before the current op changed it.
enum Undo {
    Package(String, Option<Tracked<Package>>),
    Source(String, Option<Tracked<Source>>),
    Command(String, Option<Tracked<Command>>),
    Cursor(String, Option<u64>),
    Touch(String, Option<Millis>),
    Placements(String, Option<BTreeMap<String, Tracked<Placement>>>),
    Manifest(String, Option<Vec<ManifestEntry>>),
    NewCommandOf(String),
    Rules(Option<HashMap<PackageType, RuleSet>>, HashSet<PackageType>),
    Stations(Option<Vec<Station>>, Option<Vec<Station>>),
}

/// Where an op started; `settle` keeps or undoes what came after.
pub(super) struct Mark {
    undo: usize,
    journal: usize,
    snapshots: usize,
    bulk: usize,
    next_snapshot_id: Option<u64>,
    status_changed: bool,
    rules_changed: bool,
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
    /// Per package, its placements by station.
    placements: HashMap<String, BTreeMap<String, Tracked<Placement>>>,
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
    undo: Vec<Undo>,
    depth: usize,
    pub rules_changed: bool,
    pub status_changed: bool,
}

impl<'a> Unit<'a> {
    pub fn new(txn: &'a DatabaseTransaction, now: Millis) -> Self {
        Self {
            txn,
            now,
            packages: HashMap::new(),
            sources: HashMap::new(),
            commands: HashMap::new(),
            cursors: HashMap::new(),
            touches: HashMap::new(),
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
            undo: Vec::new(),
            depth: 0,
            rules_changed: false,
            status_changed: false,
        }
    }

    // ---- atomicity ----

    /// Starts an atomic step (an op, or one event inside an op); steps nest.
    pub(super) fn mark(&mut self) -> Mark {
        self.depth += 1;
        Mark {
            undo: self.undo.len(),
            journal: self.journal.len(),
            snapshots: self.snapshots.len(),
            bulk: self.bulk.len(),
            next_snapshot_id: self.next_snapshot_id,
            status_changed: self.status_changed,
            rules_changed: self.rules_changed,
        }
    }

    /// Ends the step begun at `mark`: keeps what it staged when it succeeded, else undoes it.
    pub(super) fn settle(&mut self, mark: Mark, keep: bool) {
        self.depth -= 1;
        if keep {
            if self.depth == 0 {
                self.undo.clear();
            }
            return;
        }
        while self.undo.len() > mark.undo {
            match self.undo.pop().expect("undo record") {
                Undo::Package(k, v) => restore(&mut self.packages, k, v),
                Undo::Source(k, v) => restore(&mut self.sources, k, v),
                Undo::Command(k, v) => restore(&mut self.commands, k, v),
                Undo::Cursor(k, v) => restore(&mut self.cursors, k, v),
                Undo::Touch(k, v) => restore(&mut self.touches, k, v),
                Undo::Placements(k, v) => restore(&mut self.placements, k, v),
                Undo::Manifest(k, v) => restore(&mut self.manifests, k, v),
                Undo::NewCommandOf(k) => {
                    if let Some(ids) = self.created_for.get_mut(&k) {
                        ids.pop();
                    }
                }
                Undo::Rules(rules, dirty) => {
                    self.rules = rules;
                    self.dirty_rules = dirty;
                }
                Undo::Stations(stations, declared) => {
                    self.stations = stations;
                    self.new_stations = declared;
                }
            }
        }
        self.journal.truncate(mark.journal);
        self.snapshots.truncate(mark.snapshots);
        self.bulk.truncate(mark.bulk);
        self.next_snapshot_id = mark.next_snapshot_id;
        self.status_changed = mark.status_changed;
        self.rules_changed = mark.rules_changed;
    }

    fn log(&mut self, undo: Undo) {
        if self.depth > 0 {
            self.undo.push(undo);
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
                replan(&mut p, rs, self.now);
            }
        }
        p
    }

    /// Stores a new or changed package (the caller loaded it through `package` first).
    pub fn put_package(&mut self, mut p: Package) {
        p.updated_at = self.now;
        let prev = self.packages.get(&p.package_id).cloned();
        self.log(Undo::Package(p.package_id.clone(), prev));
        let entry = self.packages.entry(p.package_id.clone()).or_insert_with(|| Tracked::loaded(None));
        entry.value = Some(p);
        entry.dirty = true;
    }

    pub fn delete_package(&mut self, id: &str) {
        let prev = self.packages.get(id).cloned();
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
            replan(&mut p, rs, self.now);
            if p.next_transition_at != before {
                let prev = self.packages.get(&id).cloned();
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

    /// Loads the placements of many packages in a few queries.
    pub async fn prefetch_placements(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.placements);
        for chunk in wanted.chunks(CHUNK) {
            let mut found: HashMap<String, BTreeMap<String, Tracked<Placement>>> = HashMap::new();
            for row in placement::Entity::find()
                .filter(placement::Column::PackageId.is_in(chunk.to_vec()))
                .all(self.txn)
                .await?
            {
                let p = placement_from(row)?;
                found.entry(p.package_id.clone()).or_default().insert(p.station_id.clone(), Tracked::loaded(Some(p)));
            }
            for id in chunk {
                self.placements.insert(id.clone(), found.remove(id).unwrap_or_default());
            }
        }
        Ok(())
    }

    /// A package's placements as this batch sees them, by station id.
    pub async fn placements_of(&mut self, package_id: &str) -> Result<Vec<Placement>> {
        if !self.placements.contains_key(package_id) {
            self.prefetch_placements([package_id.to_owned()]).await?;
        }
        Ok(self.placements[package_id].values().filter_map(|t| t.value.clone()).collect())
    }

    /// Stores a placement (loading the package's others first, so they stay known).
    pub async fn put_placement(&mut self, p: Placement) -> Result<()> {
        if !self.placements.contains_key(&p.package_id) {
            self.prefetch_placements([p.package_id.clone()]).await?;
        }
        let prev = self.placements.get(&p.package_id).cloned();
        self.log(Undo::Placements(p.package_id.clone(), prev));
        let of = self.placements.get_mut(&p.package_id).expect("loaded above");
        let t = of.entry(p.station_id.clone()).or_insert_with(|| Tracked::loaded(None));
        t.value = Some(p);
        t.dirty = true;
        Ok(())
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
        let prev = self.sources.get(&s.source_id).cloned();
        self.log(Undo::Source(s.source_id.clone(), prev));
        let entry = self.sources.entry(s.source_id.clone()).or_insert_with(|| Tracked::loaded(None));
        entry.value = Some(s);
        entry.dirty = true;
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

    /// Stages "no agent is connected" (start-up), for the stored sources and the cached ones.
    pub fn reset_connections(&mut self) {
        let connected: Vec<Source> =
            self.sources.values().filter_map(|t| t.value.clone()).filter(|s| s.connected).collect();
        for mut s in connected {
            s.connected = false;
            self.put_source(s);
        }
        self.bulk.push(Bulk::ResetConnections);
        self.status_changed = true;
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
        let prev = self.commands.get(&c.command_id).cloned();
        if prev.is_none() && !c.package_id.is_empty() {
            self.created_for.entry(c.package_id.clone()).or_default().push(c.command_id.clone());
            self.log(Undo::NewCommandOf(c.package_id.clone()));
        }
        self.log(Undo::Command(c.command_id.clone(), prev));
        let entry = self.commands.entry(c.command_id.clone()).or_insert_with(|| Tracked::loaded(None));
        entry.value = Some(c);
        entry.dirty = true;
        // The dispatcher and the status view count open commands.
        self.status_changed = true;
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
    ) -> Result<u64> {
        let id = match self.next_snapshot_id {
            Some(id) => id,
            None => {
                if self.txn.get_database_backend() == DatabaseBackend::Postgres {
                    // Replicas sharing one database take turns, as for the journal.
                    self.txn
                        .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({})", flush::JOURNAL_LOCK))
                        .await?;
                }
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

    // ---- reads beyond the cached rows ----

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

fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: Option<V>) {
    match v {
        Some(v) => map.insert(k, v),
        None => map.remove(&k),
    };
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
fn replan(p: &mut Package, rs: &RuleSet, now: Millis) {
    if p.status != PackageStatus::Completed {
        return;
    }
    if let (Some(tier), Some(entered)) = (p.tier, p.tier_entered_at) {
        let stays = rs.cache_ttl_secs.is_some() || rs.stop(tier).enabled;
        p.next_transition_at = if stays { rs.due_at(tier, entered) } else { Some(now) };
    }
}
