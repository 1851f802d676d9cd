//! Alerts (one open per kind and subject), their notifications (a durable delivery queue), and
//! each folder's recovery point.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Alerts {
    Table,
    AlertId,
    Kind,
    Subject,
    SourceId,
    Message,
    RaisedAt,
    ResolvedAt,
    AcknowledgedAt,
    AcknowledgedBy,
    Note,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    NotificationId,
    AlertId,
    Channel,
    Transition,
    State,
    Attempts,
    CreatedAt,
    NextAttemptAt,
    DeliveredAt,
    LastError,
}

#[derive(DeriveIden)]
enum RecoveryPoints {
    Table,
    SourceId,
    Folder,
    PackageType,
    FirstPassAt,
    LastBackupAt,
    LastPassAt,
    Unprotected,
}

#[derive(DeriveIden)]
enum Placements {
    Table,
    Status,
    StationId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Alerts as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(text(A::AlertId).primary_key())
                .col(text(A::Kind))
                .col(text(A::Subject))
                .col(text(A::SourceId).default(""))
                .col(text(A::Message))
                .col(big_integer(A::RaisedAt))
                .col(big_integer_null(A::ResolvedAt))
                .col(big_integer_null(A::AcknowledgedAt))
                .col(text(A::AcknowledgedBy).default(""))
                .col(text(A::Note).default(""))
                .to_owned(),
        )
        .await?;
        // Open alerts are few and read on every evaluation; resolved ones are listed newest first.
        m.create_index(
            Index::create()
                .name("idx_alerts_resolved_raised")
                .table(A::Table)
                .col(A::ResolvedAt)
                .col(A::RaisedAt)
                .to_owned(),
        )
        .await?;
        use Notifications as N;
        m.create_table(
            Table::create()
                .table(N::Table)
                .col(text(N::NotificationId).primary_key())
                .col(text(N::AlertId))
                .col(text(N::Channel))
                .col(text(N::Transition))
                .col(text(N::State))
                .col(integer(N::Attempts).default(0))
                .col(big_integer(N::CreatedAt))
                .col(big_integer(N::NextAttemptAt))
                .col(big_integer_null(N::DeliveredAt))
                .col(text(N::LastError).default(""))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_notifications_state_due")
                .table(N::Table)
                .col(N::State)
                .col(N::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // The evaluator looks for failed copies every round: few rows among millions.
        m.create_index(
            Index::create()
                .name("idx_placements_status_station")
                .table(Placements::Table)
                .col(Placements::Status)
                .col(Placements::StationId)
                .to_owned(),
        )
        .await?;
        use RecoveryPoints as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(text(R::SourceId))
                .col(text(R::Folder))
                .col(text(R::PackageType))
                .col(big_integer(R::FirstPassAt))
                .col(big_integer_null(R::LastBackupAt))
                .col(big_integer(R::LastPassAt))
                .col(big_integer(R::Unprotected).default(0))
                .primary_key(Index::create().col(R::SourceId).col(R::Folder))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RecoveryPoints::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_placements_status_station").table(Placements::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Notifications::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Alerts::Table).to_owned()).await
    }
}
