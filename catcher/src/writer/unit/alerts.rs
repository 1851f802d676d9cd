//! Staged alerts (the open ones loaded once per batch), notifications queued or attempted, and
//! folders' recovery points.

use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::undo::{Undo, put};
use super::{Tracked, Unit};
use crate::domain::*;
use crate::error::Result;
use crate::store::convert::{
    alert_active, alert_from, notification_active, notification_from, recovery_point_active, recovery_point_from,
};
use crate::store::entity::{alert, notification, recovery_point};

#[derive(Default)]
pub(super) struct AlertStage {
    /// By alert id.
    pub alerts: HashMap<String, Tracked<Alert>>,
    /// Every open alert is in `alerts` (loaded once per batch).
    pub open_loaded: bool,
    /// By notification id.
    pub notifications: HashMap<String, Tracked<Notification>>,
    /// By `point_key`.
    pub points: HashMap<String, Tracked<RecoveryPoint>>,
}

fn point_key(source_id: &str, folder: &str) -> String {
    format!("{source_id}\u{0}{folder}")
}

impl Unit<'_> {
    /// Every open alert, as this batch sees it.
    pub async fn open_alerts(&mut self) -> Result<Vec<Alert>> {
        if !self.alerts.open_loaded {
            let rows = alert::Entity::find().filter(alert::Column::ResolvedAt.is_null()).all(self.txn).await?;
            for row in rows {
                let a = alert_from(row)?;
                self.alerts.alerts.entry(a.id.clone()).or_insert_with(|| Tracked::loaded(Some(a)));
            }
            self.alerts.open_loaded = true;
        }
        Ok(self.alerts.alerts.values().filter_map(|t| t.value.clone()).filter(Alert::is_open).collect())
    }

    /// The alert with this id, as this batch sees it.
    pub async fn alert(&mut self, id: &str) -> Result<Option<Alert>> {
        if let Some(t) = self.alerts.alerts.get(id) {
            return Ok(t.value.clone());
        }
        let row = alert::Entity::find_by_id(id.to_owned()).one(self.txn).await?.map(alert_from).transpose()?;
        self.alerts.alerts.insert(id.to_owned(), Tracked::loaded(row.clone()));
        Ok(row)
    }

    pub fn put_alert(&mut self, a: Alert) {
        let key = a.id.clone();
        let before = put(&mut self.alerts.alerts, key.clone(), a);
        self.log(Undo::Alert(key, before));
    }

    /// The notification with this id, as this batch sees it.
    pub async fn notification(&mut self, id: &str) -> Result<Option<Notification>> {
        if let Some(t) = self.alerts.notifications.get(id) {
            return Ok(t.value.clone());
        }
        let row =
            notification::Entity::find_by_id(id.to_owned()).one(self.txn).await?.map(notification_from).transpose()?;
        self.alerts.notifications.insert(id.to_owned(), Tracked::loaded(row.clone()));
        Ok(row)
    }

    pub fn put_notification(&mut self, n: Notification) {
        let key = n.id.clone();
        let before = put(&mut self.alerts.notifications, key.clone(), n);
        self.log(Undo::Notification(key, before));
    }

    /// A folder's recovery point, as this batch sees it.
    pub async fn recovery_point(&mut self, source_id: &str, folder: &str) -> Result<Option<RecoveryPoint>> {
        let key = point_key(source_id, folder);
        if let Some(t) = self.alerts.points.get(&key) {
            return Ok(t.value.clone());
        }
        let row = recovery_point::Entity::find_by_id((source_id.to_owned(), folder.to_owned()))
            .one(self.txn)
            .await?
            .map(recovery_point_from)
            .transpose()?;
        self.alerts.points.insert(key, Tracked::loaded(row.clone()));
        Ok(row)
    }

    pub fn put_recovery_point(&mut self, p: RecoveryPoint) {
        let key = point_key(&p.source_id, &p.folder);
        let before = put(&mut self.alerts.points, key.clone(), p);
        self.log(Undo::Point(key, before));
    }
}

/// Writes what the batch staged; answers the alerts written (for the live views).
pub(super) async fn flush(txn: &sea_orm::DatabaseTransaction, stage: AlertStage) -> Result<Vec<Alert>> {
    let alerts: Vec<Alert> = stage.alerts.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    for rows in alerts.chunks(super::CHUNK) {
        use alert::Column as C;
        alert::Entity::insert_many(rows.iter().map(alert_active))
            .on_conflict(
                OnConflict::column(C::AlertId)
                    .update_columns([C::Message, C::ResolvedAt, C::AcknowledgedAt, C::AcknowledgedBy, C::Note])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    let notes: Vec<Notification> =
        stage.notifications.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    for rows in notes.chunks(super::CHUNK) {
        use notification::Column as C;
        notification::Entity::insert_many(rows.iter().map(notification_active))
            .on_conflict(
                OnConflict::column(C::NotificationId)
                    .update_columns([C::State, C::Attempts, C::NextAttemptAt, C::DeliveredAt, C::LastError])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    let points: Vec<RecoveryPoint> = stage.points.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    // Rows per statement stay well under SQLite's and PostgreSQL's parameter limits.
    for rows in points.chunks(super::CHUNK) {
        use recovery_point::Column as C;
        recovery_point::Entity::insert_many(rows.iter().map(recovery_point_active))
            .on_conflict(
                OnConflict::columns([C::SourceId, C::Folder])
                    .update_columns([C::PackageType, C::LastBackupAt, C::LastPassAt, C::Unprotected])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(alerts)
}
