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
mod packages;
pub use packages::{Due, DueGroup, PackageFilter};

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
pub(crate) fn contains_pattern(text: &str) -> sea_orm::sea_query::LikeExpr {
    sea_orm::sea_query::LikeExpr::new(format!("%{}%", catalog::like_escape(&text.to_lowercase()))).escape('\\')
}

/// `LOWER(col) LIKE pattern`: case-insensitive on SQLite and PostgreSQL alike.
pub(crate) fn lower_like(
    col: impl sea_orm::sea_query::IntoColumnRef,
    pattern: sea_orm::sea_query::LikeExpr,
) -> SimpleExpr {
    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(col))).like(pattern)
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
