//! Reads for alerts, notifications, recovery points, and the facts the alert evaluator checks.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef};

use super::Store;
use super::convert::*;
use super::entity::*;
use crate::domain::*;
use crate::error::Result;
use crate::journal::Verifier;

/// The predicate of the partial index `idx_placements_failed_station` (the stored spelling of
/// `PlacementStatus::Failed`).
const FAILED_COPY: &str = "placements.status = 'failed'";

/// Which alerts to list (`None`: any).
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
    pub kind: Option<AlertKind>,
    pub source_id: Option<String>,
}

/// Failed copies on one station.
#[derive(Debug, Clone)]
pub struct FailedCopies {
    pub station_id: String,
    pub failed: u64,
    /// Of those, copies of packages whose retries reached the move-failure threshold.
    pub moving: u64,
    /// One of their errors.
    pub error: String,
}

/// How a channel's deliveries stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub pending: u64,
    pub delivered: u64,
    pub last_delivered_at: Option<Millis>,
    /// The oldest waiting notification's attempts and last error.
    pub failing_attempts: u32,
    pub last_error: String,
}

/// placements.package_id -> packages.package_id (the entities declare no relations).
fn copy_of_package() -> RelationDef {
    placement::Entity::belongs_to(package::Entity)
        .from(placement::Column::PackageId)
        .to(package::Column::PackageId)
        .into()
}

/// Failed copies of packages not expired, per station (count, one error).
fn failed_copies() -> sea_orm::Select<placement::Entity> {
    placement::Entity::find()
        .select_only()
        .column(placement::Column::StationId)
        .column_as(Expr::col((placement::Entity, placement::Column::PackageId)).count(), "n")
        .column_as(Expr::col((placement::Entity, placement::Column::Error)).max(), "error")
        .join(JoinType::InnerJoin, copy_of_package())
        // Spelled out, not bound: the planner uses a partial index only for a predicate it can
        // see (the index holds failed copies alone, see migration 000014).
        .filter(Expr::cust(FAILED_COPY))
        .filter(package::Column::Status.ne(PackageStatus::Expired.as_str()))
        .group_by(placement::Column::StationId)
}

/// Failed packages per source with one of their errors, from the partial covering index
/// (migration 000015) alone. Named on SQLite: its planner preferred `idx_packages_status_type`
/// and read every failed row from the table, without statistics and with them. The status is
/// a literal, as the index's predicate is (a bound one would not match it); `COUNT(*)`, as the
/// id is not in the index.
fn failed_packages(backend: sea_orm::DatabaseBackend) -> sea_orm::Statement {
    let hint = match backend {
        sea_orm::DatabaseBackend::Sqlite => "INDEXED BY idx_packages_failed_source",
        _ => "",
    };
    sea_orm::Statement::from_string(
        backend,
        format!(
            "SELECT source_id, COUNT(*), MAX(last_error) FROM packages {hint} WHERE status = '{}' GROUP BY source_id",
            PackageStatus::Failed.as_str()
        ),
    )
}

/// Rows read per journal page while verifying.
const JOURNAL_PAGE: u64 = 5000;

impl Store {
    /// Alerts matching `f`: open ones newest first, then resolved ones newest first.
    pub async fn alerts(&self, f: &AlertFilter, limit: u64) -> Result<Vec<Alert>> {
        let base = || {
            let mut q = alert::Entity::find();
            if let Some(k) = f.kind {
                q = q.filter(alert::Column::Kind.eq(k.as_str()));
            }
            if let Some(s) = &f.source_id {
                q = q.filter(alert::Column::SourceId.eq(s.as_str()));
            }
            q
        };
        let mut rows = Vec::new();
        if f.open != Some(false) {
            rows = base()
                .filter(alert::Column::ResolvedAt.is_null())
                .order_by_desc(alert::Column::RaisedAt)
                .order_by_desc(alert::Column::AlertId)
                .limit(limit)
                .all(&self.db)
                .await?;
        }
        let left = limit.saturating_sub(rows.len() as u64);
        if f.open != Some(true) && left > 0 {
            rows.extend(
                base()
                    .filter(alert::Column::ResolvedAt.is_not_null())
                    .order_by_desc(alert::Column::ResolvedAt)
                    .order_by_desc(alert::Column::AlertId)
                    .limit(left)
                    .all(&self.db)
                    .await?,
            );
        }
        rows.into_iter().map(alert_from).collect()
    }

    /// One alert.
    pub async fn alert(&self, id: &str) -> Result<Option<Alert>> {
        alert::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(alert_from).transpose()
    }

    /// Open alerts and how many of them nobody acknowledged.
    pub async fn alert_counts(&self) -> Result<(u64, u64)> {
        // Counted in SQL: the status is recomputed often, and a fleet can have thousands open.
        let (open, acknowledged): (i64, i64) = alert::Entity::find()
            .select_only()
            .column_as(Expr::col(alert::Column::AlertId).count(), "open")
            .column_as(Expr::col(alert::Column::AcknowledgedAt).count(), "acknowledged")
            .filter(alert::Column::ResolvedAt.is_null())
            .into_tuple()
            .one(&self.db)
            .await?
            .unwrap_or((0, 0));
        let open = u64::try_from(open).unwrap_or(0);
        Ok((open, open.saturating_sub(u64::try_from(acknowledged).unwrap_or(0))))
    }

    /// Every recovery point (of one source when given), by source then folder.
    pub async fn recovery_points(&self, source_id: Option<&str>) -> Result<Vec<RecoveryPoint>> {
        let mut q = recovery_point::Entity::find();
        if let Some(s) = source_id {
            q = q.filter(recovery_point::Column::SourceId.eq(s));
        }
        let rows = q
            .order_by_asc(recovery_point::Column::SourceId)
            .order_by_asc(recovery_point::Column::Folder)
            .all(&self.db)
            .await?;
        rows.into_iter().map(recovery_point_from).collect()
    }

    /// Notifications waiting whose next attempt is due, in the order they were queued (so an
    /// alert's resolve never overtakes its raise on a channel), leaving out the `paused` channels.
    pub async fn due_notifications(&self, now: Millis, paused: &[String], limit: u64) -> Result<Vec<Notification>> {
        let mut q = notification::Entity::find()
            .filter(notification::Column::State.eq(DeliveryState::Pending.as_str()))
            .filter(notification::Column::NextAttemptAt.lte(now));
        if !paused.is_empty() {
            q = q.filter(notification::Column::Channel.is_not_in(paused.iter().map(String::as_str)));
        }
        let rows = q
            .order_by_asc(notification::Column::CreatedAt)
            .order_by_asc(notification::Column::NotificationId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(notification_from).collect()
    }

    /// When the next waiting notification of a channel not `paused` is due.
    pub async fn next_notification_at(&self, paused: &[String]) -> Result<Option<Millis>> {
        let mut q = notification::Entity::find()
            .select_only()
            .column_as(Expr::col(notification::Column::NextAttemptAt).min(), "at")
            .filter(notification::Column::State.eq(DeliveryState::Pending.as_str()));
        if !paused.is_empty() {
            q = q.filter(notification::Column::Channel.is_not_in(paused.iter().map(String::as_str)));
        }
        let at: Option<Option<i64>> = q.into_tuple().one(&self.db).await?;
        Ok(at.flatten())
    }

    /// Per channel: waiting and delivered counts, the last delivery, the oldest waiting one's
    /// attempts and error.
    pub async fn channel_stats(&self) -> Result<HashMap<String, ChannelStats>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = notification::Entity::find()
            .select_only()
            .column(notification::Column::Channel)
            .column(notification::Column::State)
            .column_as(Expr::col(notification::Column::NotificationId).count(), "n")
            .column_as(Expr::col(notification::Column::DeliveredAt).max(), "last")
            .group_by(notification::Column::Channel)
            .group_by(notification::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut out: HashMap<String, ChannelStats> = HashMap::new();
        for (channel, state, n, last) in rows {
            let s = out.entry(channel).or_default();
            match DeliveryState::parse(&state) {
                Some(DeliveryState::Pending) => s.pending = u64::try_from(n).unwrap_or(0),
                Some(DeliveryState::Delivered) => {
                    s.delivered = u64::try_from(n).unwrap_or(0);
                    s.last_delivered_at = last;
                }
                _ => {}
            }
        }
        for (channel, s) in out.iter_mut().filter(|(_, s)| s.pending > 0) {
            let oldest = notification::Entity::find()
                .filter(notification::Column::Channel.eq(channel.as_str()))
                .filter(notification::Column::State.eq(DeliveryState::Pending.as_str()))
                .order_by_desc(notification::Column::Attempts)
                .one(&self.db)
                .await?;
            if let Some(n) = oldest {
                s.failing_attempts = u32::try_from(n.attempts).unwrap_or(0);
                s.last_error = n.last_error;
            }
        }
        Ok(out)
    }

    /// Per station: copies marked failed (damaged, missing, or a failed upload or move) of
    /// packages not expired, how many of those packages failed `moves` times or more, and one
    /// of the errors; counted in SQL through the partial index of failed copies, never cut off.
    pub async fn failed_copies_by_station(&self, moves: u32) -> Result<Vec<FailedCopies>> {
        let all: Vec<(String, i64, Option<String>)> = failed_copies().into_tuple().all(&self.db).await?;
        let moving: Vec<(String, i64, Option<String>)> = failed_copies()
            .filter(package::Column::RetryCount.gte(i32::try_from(moves).unwrap_or(i32::MAX)))
            .into_tuple()
            .all(&self.db)
            .await?;
        let moving: HashMap<String, u64> =
            moving.into_iter().map(|(s, n, _)| (s, u64::try_from(n).unwrap_or(0))).collect();
        Ok(all
            .into_iter()
            .map(|(station_id, n, error)| FailedCopies {
                moving: moving.get(&station_id).copied().unwrap_or(0),
                station_id,
                failed: u64::try_from(n).unwrap_or(0),
                error: error.unwrap_or_default(),
            })
            .collect())
    }

    /// Failed packages per source, with one of their errors.
    pub async fn failed_packages_by_source(&self) -> Result<HashMap<String, (u64, String)>> {
        let mut out = HashMap::new();
        for row in self.db.query_all_raw(failed_packages(self.backend())).await? {
            let (source, n, error): (String, i64, Option<String>) =
                (row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?);
            out.insert(source, (u64::try_from(n).unwrap_or(0), error.unwrap_or_default()));
        }
        Ok(out)
    }

    /// Checks the journal's chain from where `verifier` stopped to the head; answers the first
    /// event that does not fit, with what is wrong.
    pub async fn verify_journal_from(&self, verifier: &mut Verifier) -> Result<Option<(u64, String)>> {
        let mut from = verifier.next_sequence();
        loop {
            let page = self.journal_page(&super::JournalFilter::default(), from, JOURNAL_PAGE).await?;
            let Some(last) = page.last().map(|e| e.sequence) else { return Ok(None) };
            for e in &page {
                if let Err(problem) = verifier.check(e) {
                    return Ok(Some((e.sequence, problem)));
                }
            }
            from = last + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, QueryTrait};

    use super::*;

    async fn plan(store: &Store, mut statement: sea_orm::Statement) -> Vec<String> {
        statement.sql = format!("EXPLAIN QUERY PLAN {}", statement.sql);
        let rows = store.db().query_all_raw(statement).await.unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect()
    }

    /// The evaluator's counts of failed copies and failed packages read their partial indexes,
    /// whose predicates are spelled as the catcher stores a failed copy and a failed package;
    /// the packages' count reads no table row.
    #[tokio::test]
    async fn failure_counts_use_the_partial_indexes() {
        assert_eq!(FAILED_COPY, format!("placements.status = '{}'", PlacementStatus::Failed.as_str()));
        let backend = sea_orm::DatabaseBackend::Sqlite;
        assert!(failed_packages(backend).sql.contains(&format!("status = '{}'", PackageStatus::Failed.as_str())));
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display()), 1).await.unwrap();
        store.migrate().await.unwrap();
        let steps = plan(&store, failed_copies().build(backend)).await;
        assert!(steps.iter().any(|s| s.contains("idx_placements_failed_station")), "{steps:?}");
        let steps = plan(&store, failed_packages(backend)).await;
        assert!(steps.iter().any(|s| s.contains("COVERING INDEX idx_packages_failed_source")), "{steps:?}");
    }
}
