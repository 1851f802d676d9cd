//! Persistence: entities, migrations and every read. Together with `crate::writer` (the one
//! place that writes, in group-committed transactions) the only code that knows sea-orm.

pub mod alerts;
pub mod backup;
pub mod catalog;
pub mod changes;
mod credentials;
pub use alerts::{AlertFilter, ChannelStats, FailedCopies};
pub use catalog::SearchKey;
mod command_codec;
pub mod convert;
pub mod entity;
pub mod migration;

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::MigratorTrait;

use self::convert::*;
use self::entity::*;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::RuleSet;
use crate::rules::{PendingChange, PendingState};

/// Which commands to list (every field optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandFilter {
    pub source_id: Option<String>,
    pub state: Option<CommandState>,
    /// Only open ones (pending or leased: `Some(true)`) or only finished ones (`Some(false)`).
    pub open: Option<bool>,
    pub kind: Option<CommandKind>,
}

/// Filters of a package listing; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub status: Option<PackageStatus>,
    pub source_id: Option<String>,
    pub package_type: Option<PackageType>,
    /// `Some(None)` selects packages without a tier (still on the edge).
    pub tier: Option<Option<Tier>>,
    pub path_prefix: Option<String>,
    /// Id or sha256 prefix, source id, or path substring (see `ListPackagesRequest.query`).
    pub query: Option<String>,
}

/// Journal filters.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    pub source_id: Option<String>,
    pub package_id: Option<String>,
    pub event_type: Option<EventType>,
    /// Case-insensitive substring of the event's text fields (see `QueryJournalRequest.text`).
    pub text: Option<String>,
}

/// `%text%` for a LIKE over a lowercased column, its wildcards escaped with `\`.
fn contains_pattern(text: &str) -> sea_orm::sea_query::LikeExpr {
    sea_orm::sea_query::LikeExpr::new(format!("%{}%", catalog::like_escape(&text.to_lowercase()))).escape('\\')
}

/// `LOWER(col) LIKE pattern`: case-insensitive on SQLite and PostgreSQL alike.
fn lower_like(col: impl sea_orm::sea_query::IntoColumnRef, pattern: sea_orm::sea_query::LikeExpr) -> SimpleExpr {
    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(col))).like(pattern)
}

/// Packages of one (type, tier) due within a window.
#[derive(Debug, Clone)]
pub struct DueGroup {
    pub package_type: PackageType,
    pub tier: Tier,
    pub count: u64,
    pub bytes: u64,
    pub earliest: Millis,
    /// (id, due at), soonest first.
    pub ids: Vec<(String, Millis)>,
}

/// A package whose time in its tier is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub package_id: String,
    pub tier: Tier,
    pub due_at: Millis,
}

/// Rows SQLite's worker thread may hand over before the reader takes them (sqlx's default is 50):
/// a group commit's prefetch reads hundreds, and at 50 the two threads took turns, waking each
/// other every 50 rows.
const ROW_BUFFER: usize = 1024;

/// Handle to the metadata database.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if let Some(path) = sqlite_path(url)
            && let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Unavailable(format!("cannot create database directory {}: {e}", dir.display())))?;
        }
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // WAL lets readers run beside the single writer; FULL keeps an acknowledged commit
                // across power loss. Group commit amortises the fsync.
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(false)
                    // 16 MiB of page cache (default 2 MiB): a group commit of thousands of rows
                    // otherwise spills dirty pages mid-transaction. Grows only as it is used.
                    .pragma("cache_size", "-16384")
                    // `Store::checkpoints` copies the WAL back from its own connection; the
                    // committing writer only does it itself if that falls far behind (~40 MiB).
                    .pragma("wal_autocheckpoint", "10000")
                    // Statement journals of multi-row upserts stay in memory: written to a temp
                    // file they were a third of a small group commit's time.
                    .pragma("temp_store", "memory")
                    .row_buffer_size(ROW_BUFFER)
            });
        let db = Database::connect(opts).await?;
        Ok(Self { db })
    }

    /// Applies pending migrations.
    /// On PostgreSQL in one transaction under an advisory lock: replicas starting together
    /// take turns, and the later ones find the schema current.
    pub async fn migrate(&self) -> Result<()> {
        if self.backend() != DatabaseBackend::Postgres {
            migration::Migrator::up(&self.db, None).await?;
            return Ok(());
        }
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let txn = self.db.begin().await?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")).await?;
        migration::Migrator::up(&txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// SQLite only: checkpoints the WAL every `every` from a pool connection, so the writer's
    /// commits do not pay for copying pages back into the database file. Returns at `stop`
    /// (on other databases it only waits for it: a worker that ends early means trouble).
    pub async fn checkpoints(&self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        if self.backend() != DatabaseBackend::Sqlite {
            return stop.cancelled().await;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
            // PASSIVE never waits for readers or the writer; what it cannot copy now it copies next time.
            if let Err(e) = self.db.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!(error = %e, "WAL checkpoint failed; SQLite's automatic one still runs");
            }
        }
    }

    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }

    // ---- packages ----

    pub async fn package(&self, id: &str) -> Result<Option<Package>> {
        package::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(package_from).transpose()
    }

    /// The files inside a package (empty when its agent reported none).
    pub async fn manifest(&self, id: &str) -> Result<Vec<ManifestEntry>> {
        match package_manifest::Entity::find_by_id(id.to_owned()).one(&self.db).await? {
            Some(row) => {
                serde_json::from_str(&row.manifest_json).map_err(|e| Error::Corrupt(format!("manifest of {id}: {e}")))
            }
            None => Ok(Vec::new()),
        }
    }

    /// A page of packages, newest first; `after` is the last id of the previous page.
    pub async fn list_packages(&self, f: &PackageFilter, after: Option<&str>, limit: u64) -> Result<Vec<Package>> {
        let mut q = package::Entity::find();
        if let Some(s) = f.status {
            q = q.filter(package::Column::Status.eq(s.as_str()));
        }
        if let Some(s) = &f.source_id {
            q = q.filter(package::Column::SourceId.eq(s.as_str()));
        }
        if let Some(t) = f.package_type {
            q = q.filter(package::Column::PackageType.eq(t.as_str()));
        }
        if let Some(t) = f.tier {
            q = q.filter(package::Column::Tier.eq(tier_str(t)));
        }
        if let Some(p) = &f.path_prefix {
            // LIKE finds candidates by index, its wildcards escaped (`/x_y` is not `/xzy`); the
            // exact comparison keeps it case-sensitive on SQLite too.
            let pattern = sea_orm::sea_query::LikeExpr::new(format!("{}%", catalog::like_escape(p))).escape('\\');
            // An INTEGER argument: PostgreSQL has no SUBSTR(text, int, bigint).
            let n = i32::try_from(p.chars().count()).unwrap_or(i32::MAX);
            let head = sea_orm::sea_query::Func::cust("SUBSTR").arg(Expr::col(package::Column::Path)).arg(1).arg(n);
            q = q.filter(package::Column::Path.like(pattern)).filter(Expr::expr(head).eq(p.as_str()));
        }
        if let Some(text) = &f.query {
            let lower = text.to_lowercase();
            let prefix = sea_orm::sea_query::LikeExpr::new(format!("{}%", catalog::like_escape(&lower))).escape('\\');
            q = q.filter(
                Condition::any()
                    .add(lower_like(package::Column::PackageId, prefix.clone()))
                    .add(lower_like(package::Column::Sha256, prefix))
                    .add(package::Column::SourceId.eq(text.as_str()))
                    .add(lower_like(package::Column::Path, contains_pattern(text))),
            );
        }
        if let Some(a) = after {
            q = q.filter(package::Column::PackageId.lt(a));
        }
        let rows = q.order_by_desc(package::Column::PackageId).limit(limit).all(&self.db).await?;
        rows.into_iter().map(package_from).collect()
    }

    /// Manifest entry counts of the given packages (those with a manifest).
    pub async fn file_counts_of(&self, ids: &[String]) -> Result<HashMap<String, u64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, i64)> = package_manifest::Entity::find()
                .select_only()
                .column(package_manifest::Column::PackageId)
                .column(package_manifest::Column::FileCount)
                .filter(package_manifest::Column::PackageId.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(rows.into_iter().map(|(id, n)| (id, u64::try_from(n).unwrap_or(0))));
        }
        Ok(out)
    }

    /// Placements of the given packages, grouped by package id.
    pub async fn placements_of(&self, ids: &[String]) -> Result<HashMap<String, Vec<Placement>>> {
        let mut out: HashMap<String, Vec<Placement>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(500) {
            let rows = placement::Entity::find()
                .filter(placement::Column::PackageId.is_in(chunk.iter().cloned()))
                .order_by_asc(placement::Column::StationId)
                .all(&self.db)
                .await?;
            for row in rows {
                let p = placement_from(row)?;
                out.entry(p.package_id.clone()).or_default().push(p);
            }
        }
        Ok(out)
    }

    /// Unfinished packages of a source, oldest first.
    pub async fn resume_list(&self, source_id: &str) -> Result<Vec<Package>> {
        let unfinished = [PackageStatus::Pending, PackageStatus::InProgress, PackageStatus::Failed].map(|s| s.as_str());
        let rows = package::Entity::find()
            .filter(package::Column::SourceId.eq(source_id))
            .filter(package::Column::Status.is_in(unfinished))
            .order_by_asc(package::Column::PackageId)
            .limit(10_000)
            .all(&self.db)
            .await?;
        rows.into_iter().map(package_from).collect()
    }

    /// Packages whose time in their tier is up, soonest first.
    pub async fn due_packages(&self, now: Millis, limit: u64) -> Result<Vec<Due>> {
        let rows: Vec<(String, String, Option<i64>)> = package::Entity::find()
            .select_only()
            .columns([package::Column::PackageId, package::Column::Tier, package::Column::NextTransitionAt])
            .filter(package::Column::NextTransitionAt.lte(now))
            .order_by_asc(package::Column::NextTransitionAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .filter(|(_, tier, _)| !tier.is_empty())
            .map(|(package_id, tier, due)| {
                Ok(Due { package_id, tier: parse_stored(&tier, Tier::parse, "tier")?, due_at: due.unwrap_or(now) })
            })
            .collect()
    }

    /// Packages due to leave their tier in `[from, until]`, per (type, tier), with each group's
    /// `ids_per_group` soonest. Whole UTC days inside the window come from the `transition_days`
    /// buckets; only the partial first and last days are summed from the (covering) index, so a
    /// 30-day projection over a million packages reads a few thousand index entries, not half
    /// the table.
    pub async fn due_groups(&self, from: Millis, until: Millis, ids_per_group: u64) -> Result<Vec<DueGroup>> {
        // (count, bytes, earliest if an exact part saw the group)
        let mut sums: HashMap<(String, String), (i64, i64, Option<Millis>)> = HashMap::new();
        let mut add = |rows: Vec<(String, String, i64, i64, Option<Millis>)>| {
            for (ptype, tier, n, bytes, earliest) in rows {
                let e = sums.entry((ptype, tier)).or_default();
                e.0 += n;
                e.1 += bytes;
                e.2 = match (e.2, earliest) {
                    (Some(a), Some(b)) => Some(Ord::min(a, b)),
                    (a, b) => a.or(b),
                };
            }
        };
        // Days [first_full, last_partial) are whole; the rest of the window is counted exactly.
        let first_full = from.div_euclid(DAY_MS) + 1;
        let last_partial = until.div_euclid(DAY_MS);
        if last_partial - first_full >= 1 {
            add(self.window_sums(from, first_full * DAY_MS - 1).await?);
            add(self.window_sums(last_partial * DAY_MS, until).await?);
            let days: Vec<(String, String, i64, i64)> = transition_day::Entity::find()
                .select_only()
                .column(transition_day::Column::PackageType)
                .column(transition_day::Column::Tier)
                .column_as(transition_day::Column::Count.sum().cast_as(Alias::new("BIGINT")), "n")
                .column_as(transition_day::Column::Bytes.sum().cast_as(Alias::new("BIGINT")), "bytes")
                .filter(transition_day::Column::Day.gte(first_full))
                .filter(transition_day::Column::Day.lt(last_partial))
                .group_by(transition_day::Column::PackageType)
                .group_by(transition_day::Column::Tier)
                .into_tuple()
                .all(&self.db)
                .await?;
            add(days.into_iter().map(|(t, tier, n, bytes)| (t, tier, n, bytes, None)).collect());
        } else {
            add(self.window_sums(from, until).await?);
        }
        let mut keys: Vec<_> = sums.into_iter().filter(|((_, tier), (n, ..))| !tier.is_empty() && *n > 0).collect();
        keys.sort();
        let mut groups = Vec::with_capacity(keys.len());
        for ((ptype, tier), (n, bytes, earliest)) in keys {
            let (ids, earliest) = match (ids_per_group, earliest) {
                (0, Some(at)) => (Vec::new(), at),
                _ => {
                    // The soonest ids (at least one, for `earliest`) from the (type, tier, due) index.
                    let mut ids = self.soonest(&ptype, &tier, from, until, Ord::max(ids_per_group, 1)).await?;
                    let at = ids.first().map_or(from, |(_, at)| *at);
                    ids.truncate(usize::try_from(ids_per_group).unwrap_or(usize::MAX));
                    (ids, at)
                }
            };
            groups.push(DueGroup {
                package_type: parse_stored(&ptype, PackageType::parse, "package type")?,
                tier: parse_stored(&tier, Tier::parse, "tier")?,
                count: u64::try_from(n).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
                earliest,
                ids,
            });
        }
        Ok(groups)
    }

    /// Count, bytes and earliest due time per (type, tier) of packages due in `[from, until]`,
    /// from the covering index. SQLite is told which index: with statistics it prefers a skip
    /// scan of the (type, tier, due) index, several times slower for this.
    async fn window_sums(
        &self,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<(String, String, i64, i64, Option<Millis>)>> {
        let backend = self.db.get_database_backend();
        let (hint, a, b) = match backend {
            DatabaseBackend::Sqlite => ("INDEXED BY idx_packages_next_transition_cover", "?", "?"),
            _ => ("", "$1", "$2"),
        };
        let sql = format!(
            "SELECT package_type, tier, COUNT(next_transition_at), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT), \
             MIN(next_transition_at) FROM packages {hint} \
             WHERE next_transition_at >= {a} AND next_transition_at <= {b} GROUP BY package_type, tier"
        );
        let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [from.into(), until.into()]);
        let mut out = Vec::new();
        for row in self.db.query_all_raw(stmt).await? {
            out.push((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
                row.try_get_by_index(3)?,
                row.try_get_by_index(4)?,
            ));
        }
        Ok(out)
    }

    /// A group's `limit` soonest packages due in `[from, until]`: (id, due at).
    async fn soonest(
        &self,
        ptype: &str,
        tier: &str,
        from: Millis,
        until: Millis,
        limit: u64,
    ) -> Result<Vec<(String, Millis)>> {
        let rows: Vec<(String, Option<Millis>)> = package::Entity::find()
            .select_only()
            .columns([package::Column::PackageId, package::Column::NextTransitionAt])
            .filter(package::Column::PackageType.eq(ptype))
            .filter(package::Column::Tier.eq(tier))
            .filter(package::Column::NextTransitionAt.gte(from))
            .filter(package::Column::NextTransitionAt.lte(until))
            .order_by_asc(package::Column::NextTransitionAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(id, at)| (id, at.unwrap_or(from))).collect())
    }

    /// The incrementally kept (type, tier, status) counters.
    pub async fn counters(&self) -> Result<HashMap<CounterKey, Counter>> {
        let mut out = HashMap::new();
        for row in package_counter::Entity::find().all(&self.db).await? {
            let package_type = parse_stored(&row.package_type, PackageType::parse, "package type")?;
            let tier = if row.tier.is_empty() { None } else { Some(parse_stored(&row.tier, Tier::parse, "tier")?) };
            let status = parse_stored(&row.status, PackageStatus::parse, "package status")?;
            out.insert((package_type, tier, status), Counter { count: row.count, bytes: row.bytes });
        }
        Ok(out)
    }

    /// Newest packages of a tier.
    pub async fn tier_samples(&self, tier: Option<Tier>, limit: u64) -> Result<Vec<Package>> {
        self.list_packages(&PackageFilter { tier: Some(tier), ..Default::default() }, None, limit).await
    }

    // ---- sources ----

    pub async fn source(&self, id: &str) -> Result<Option<Source>> {
        source::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(source_from).transpose()
    }

    pub async fn sources(&self) -> Result<Vec<Source>> {
        let rows = source::Entity::find().order_by_asc(source::Column::SourceId).all(&self.db).await?;
        rows.into_iter().map(source_from).collect()
    }

    /// Unfinished package counts per source.
    pub async fn in_flight_by_source(&self) -> Result<HashMap<String, u64>> {
        let unfinished = [PackageStatus::Pending, PackageStatus::InProgress, PackageStatus::Failed].map(|s| s.as_str());
        let rows: Vec<(String, i64)> = package::Entity::find()
            .select_only()
            .column(package::Column::SourceId)
            .column_as(Expr::col(package::Column::PackageId).count(), "n")
            .filter(package::Column::Status.is_in(unfinished))
            .group_by(package::Column::SourceId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(s, n)| (s, u64::try_from(n).unwrap_or(0))).collect())
    }

    /// (total, connected, stopped for safety) sources.
    pub async fn source_counts(&self) -> Result<(u64, u64, u64)> {
        // One pass: total, connected, stopped for safety.
        let flag =
            |cond: sea_orm::sea_query::SimpleExpr| Expr::case(cond, 1).finally(0).sum().cast_as(Alias::new("BIGINT"));
        let row: Option<(i64, Option<i64>, Option<i64>)> = source::Entity::find()
            .select_only()
            .column_as(Expr::col(source::Column::SourceId).count(), "total")
            .column_as(flag(source::Column::Connected.eq(true)), "connected")
            .column_as(flag(source::Column::SafetyState.eq(SafetyState::StoppedForSafety.as_str())), "stopped")
            .into_tuple()
            .one(&self.db)
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(row.map_or((0, 0, 0), |(t, c, s)| (n(t), n(c.unwrap_or(0)), n(s.unwrap_or(0)))))
    }

    /// Highest applied event sequence of a source.
    pub async fn cursor(&self, source_id: &str) -> Result<u64> {
        let row = agent_cursor::Entity::find_by_id(source_id.to_owned()).one(&self.db).await?;
        Ok(row.map_or(0, |r| u64::try_from(r.last_applied_seq).unwrap_or(0)))
    }

    // ---- policy ----

    pub async fn rule_sets(&self) -> Result<Vec<RuleSet>> {
        let rows = rule_set::Entity::find().all(&self.db).await?;
        let mut sets = rows.iter().map(rule_set_from).collect::<Result<Vec<_>>>()?;
        sets.sort_by_key(|r| r.package_type);
        Ok(sets)
    }

    pub async fn stations(&self) -> Result<Vec<Station>> {
        let rows = station::Entity::find().all(&self.db).await?;
        let mut out = rows.into_iter().map(station_from).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.tier, &a.station_id).cmp(&(b.tier, &b.station_id)));
        Ok(out)
    }

    pub async fn snapshots(&self, limit: u64) -> Result<Vec<ConfigSnapshot>> {
        let rows = config_snapshot::Entity::find()
            .order_by_desc(config_snapshot::Column::SnapshotId)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(snapshot_from).collect())
    }

    pub async fn snapshot(&self, id: u64) -> Result<Option<ConfigSnapshot>> {
        let id = i64::try_from(id).map_err(|_| Error::invalid("snapshot_id", "out of range"))?;
        Ok(config_snapshot::Entity::find_by_id(id).one(&self.db).await?.map(snapshot_from))
    }

    /// Open pending changes by effective_at; with `include_resolved`, then the resolved ones,
    /// newest first; at most `limit` in all.
    pub async fn pending_changes(&self, include_resolved: bool, limit: u64) -> Result<Vec<PendingChange>> {
        let open = pending_change::Column::State.eq(PendingState::Pending.as_str());
        let mut rows = pending_change::Entity::find()
            .filter(open.clone())
            .order_by_asc(pending_change::Column::EffectiveAt)
            .order_by_asc(pending_change::Column::ChangeId)
            .limit(limit)
            .all(&self.db)
            .await?;
        let left = limit.saturating_sub(rows.len() as u64);
        if include_resolved && left > 0 {
            rows.extend(
                pending_change::Entity::find()
                    .filter(open.not())
                    .order_by_desc(pending_change::Column::ChangeId)
                    .limit(left)
                    .all(&self.db)
                    .await?,
            );
        }
        rows.into_iter().map(pending_from).collect()
    }

    // ---- journal ----

    /// Events matching `f`, newest first, below `before` (0 = from the head).
    pub async fn journal(&self, f: &JournalFilter, before: u64, limit: u64) -> Result<Vec<JournalEvent>> {
        let mut q = journal::Entity::find();
        if let Some(s) = &f.source_id {
            q = q.filter(journal::Column::SourceId.eq(s.as_str()));
        }
        if let Some(p) = &f.package_id {
            q = q.filter(journal::Column::PackageId.eq(p.as_str()));
        }
        if let Some(t) = f.event_type {
            q = q.filter(journal::Column::EventType.eq(t.as_str()));
        }
        if let Some(text) = &f.text {
            let cols = [
                journal::Column::EventType,
                journal::Column::Actor,
                journal::Column::SourceId,
                journal::Column::PackageId,
                journal::Column::StationId,
                journal::Column::StatusBefore,
                journal::Column::StatusAfter,
                journal::Column::Error,
                journal::Column::DetailsJson,
            ];
            let any = cols.into_iter().fold(Condition::any(), |c, col| c.add(lower_like(col, contains_pattern(text))));
            q = q.filter(any);
        }
        if before > 0 {
            q = q.filter(journal::Column::Sequence.lt(i64::try_from(before).unwrap_or(i64::MAX)));
        }
        let rows = q.order_by_desc(journal::Column::Sequence).limit(limit).all(&self.db).await?;
        Ok(rows.into_iter().map(journal_from).collect())
    }

    /// Events matching `f` from `from` on, oldest first, one page.
    pub async fn journal_page(&self, f: &JournalFilter, from: u64, limit: u64) -> Result<Vec<JournalEvent>> {
        let mut q =
            journal::Entity::find().filter(journal::Column::Sequence.gte(i64::try_from(from).unwrap_or(i64::MAX)));
        if let Some(s) = &f.source_id {
            q = q.filter(journal::Column::SourceId.eq(s.as_str()));
        }
        if let Some(p) = &f.package_id {
            q = q.filter(journal::Column::PackageId.eq(p.as_str()));
        }
        let rows = q.order_by_asc(journal::Column::Sequence).limit(limit).all(&self.db).await?;
        Ok(rows.into_iter().map(journal_from).collect())
    }

    /// Newest sequence (0 when empty).
    pub async fn journal_head(&self) -> Result<u64> {
        let head: Option<Option<i64>> = journal::Entity::find()
            .select_only()
            .column_as(Expr::col(journal::Column::Sequence).max(), "head")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(head.flatten().map_or(0, |h| u64::try_from(h).unwrap_or(0)))
    }

    /// The newest restore drill result in the journal (two indexed lookups).
    pub async fn last_drill(&self) -> Result<Option<JournalEvent>> {
        use sea_orm::QueryOrder;
        let mut newest: Option<journal::Model> = None;
        for kind in ["restore_drill.passed", "restore_drill.failed"] {
            let row = journal::Entity::find()
                .filter(journal::Column::EventType.eq(kind))
                .order_by_desc(journal::Column::Sequence)
                .one(&self.db)
                .await?;
            if let Some(r) = row
                && newest.as_ref().is_none_or(|n| n.sequence < r.sequence)
            {
                newest = Some(r);
            }
        }
        Ok(newest.map(journal_from))
    }

    // ---- commands ----

    /// Commands matching `f`, newest first.
    pub async fn commands(&self, f: &CommandFilter, limit: u64) -> Result<Vec<Command>> {
        let mut q = command::Entity::find();
        if let Some(s) = &f.source_id {
            q = q.filter(command::Column::SourceId.eq(s));
        }
        if let Some(s) = f.state {
            q = q.filter(command::Column::State.eq(s.as_str()));
        }
        let open = [CommandState::Pending.as_str(), CommandState::Leased.as_str()];
        match f.open {
            Some(true) => q = q.filter(command::Column::State.is_in(open)),
            Some(false) => q = q.filter(command::Column::State.is_not_in(open)),
            None => {}
        }
        if let Some(k) = f.kind {
            q = q.filter(command::Column::Kind.eq(k.as_str()));
        }
        let rows = q
            .order_by_desc(command::Column::CreatedAt)
            .order_by_desc(command::Column::CommandId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(command_from).collect()
    }

    /// Restores for the live view: every open one, oldest first, then the newest finished ones.
    pub async fn restores(&self, finished: u64) -> Result<Vec<Command>> {
        let kind = Some(CommandKind::Restore);
        let mut open = self.commands(&CommandFilter { open: Some(true), kind, ..Default::default() }, 1000).await?;
        open.reverse();
        open.extend(self.commands(&CommandFilter { open: Some(false), kind, ..Default::default() }, finished).await?);
        Ok(open)
    }

    /// Commands due for delivery to connected agents, oldest first: pending ones, leased ones
    /// whose lease ran out by `now`, and every open one of the sources in `fresh` (just
    /// reconnected). Filtered in SQL, so commands for offline sources never crowd out the rest.
    pub async fn due_commands(&self, now: Millis, fresh: &[String], limit: u64, replica: &str) -> Result<Vec<Command>> {
        use sea_orm::Condition;
        use sea_orm::sea_query::Query;
        let open = [CommandState::Pending, CommandState::Leased].map(|s| s.as_str());
        let connected = Query::select()
            .column(source::Column::SourceId)
            .from(source::Entity)
            .and_where(source::Column::Connected.eq(true))
            .and_where(source::Column::Replica.eq(replica))
            .to_owned();
        let mut due = Condition::any()
            .add(command::Column::State.eq(CommandState::Pending.as_str()))
            .add(command::Column::LeaseUntil.lte(now))
            .add(command::Column::LeaseUntil.is_null());
        if !fresh.is_empty() {
            due = due.add(command::Column::SourceId.is_in(fresh.iter().cloned()));
        }
        let rows = command::Entity::find()
            .filter(command::Column::State.is_in(open))
            .filter(command::Column::SourceId.in_subquery(connected))
            .filter(due)
            .order_by_asc(command::Column::CreatedAt)
            .order_by_asc(command::Column::CommandId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(command_from).collect()
    }

    pub async fn open_command_count(&self) -> Result<u64> {
        let open = [CommandState::Pending, CommandState::Leased].map(|s| s.as_str());
        Ok(command::Entity::find().filter(command::Column::State.is_in(open)).count(&self.db).await?)
    }
}

/// Key of the advisory lock migrations run under (PostgreSQL).
const MIGRATE_LOCK: i64 = 0x4542_4b4d; // "EBKM"

/// The file of a SQLite URL, if it names one.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    sqlite_path(url).map(std::path::PathBuf::from)
}

/// The file path of a SQLite URL, if it names a file.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}
