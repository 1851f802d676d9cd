//! Catcher replicas on one database: the replicas alive, the singleton lease (scheduler, drills,
//! alerts, notifications) with its fencing term, the changes feed every replica's live views
//! read in commit order, and which replica holds each agent's stream.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Replicas {
    Table,
    ReplicaId,
    Address,
    StartedAt,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    Term,
    AcquiredAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    ChangeId,
    Replica,
    CommittedAt,
    Payload,
}

#[derive(DeriveIden)]
enum Sources {
    Table,
    Replica,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Replicas::Table)
                .col(text(Replicas::ReplicaId).primary_key())
                .col(text(Replicas::Address).default(""))
                .col(big_integer(Replicas::StartedAt))
                .col(big_integer(Replicas::HeartbeatAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Leases::Table)
                .col(text(Leases::Name).primary_key())
                .col(text(Leases::Holder))
                .col(big_integer(Leases::Term))
                .col(big_integer(Leases::AcquiredAt))
                .col(big_integer(Leases::ExpiresAt))
                .to_owned(),
        )
        .await?;
        // Ids are chosen by the writer under the cluster write lock: gap-free, in commit order.
        m.create_table(
            Table::create()
                .table(Changes::Table)
                .col(big_integer(Changes::ChangeId).primary_key())
                .col(text(Changes::Replica))
                .col(big_integer(Changes::CommittedAt))
                .col(text(Changes::Payload))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Sources::Table).add_column(text_null(Sources::Replica)).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Sources::Table).drop_column(Sources::Replica).to_owned()).await?;
        m.drop_table(Table::drop().table(Changes::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Leases::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Replicas::Table).to_owned()).await
    }
}
