//! Protected retention: changes that would delete data sooner wait in `pending_changes`; every
//! rule set ever in force is kept in `rule_history` with the time it was asked for (the expiry
//! floor reads it); config snapshots record who made them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PendingChanges {
    Table,
    ChangeId,
    Kind,
    Body,
    State,
    RequestedBy,
    Reason,
    CreatedAt,
    EffectiveAt,
    ResolvedAt,
    ResolvedBy,
    Outcome,
}

#[derive(DeriveIden)]
enum ConfigSnapshots {
    Table,
    Actor,
}

#[derive(DeriveIden)]
enum RuleHistory {
    Table,
    Id,
    PackageType,
    Body,
    Since,
}

#[derive(DeriveIden)]
enum RuleSets {
    Table,
    PackageType,
    Body,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use PendingChanges as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(big_integer(P::ChangeId).primary_key())
                .col(text(P::Kind))
                .col(text(P::Body))
                .col(text(P::State))
                .col(text(P::RequestedBy))
                .col(text(P::Reason))
                .col(big_integer(P::CreatedAt))
                .col(big_integer(P::EffectiveAt))
                .col(big_integer_null(P::ResolvedAt))
                .col(text(P::ResolvedBy).default(""))
                .col(text(P::Outcome).default(""))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_pending_changes_state_due")
                .table(P::Table)
                .col(P::State)
                .col(P::EffectiveAt)
                .to_owned(),
        )
        .await?;
        use ConfigSnapshots as C;
        m.alter_table(Table::alter().table(C::Table).add_column(text(C::Actor).default("")).to_owned()).await?;
        use RuleHistory as H;
        m.create_table(
            Table::create()
                .table(H::Table)
                .col(big_integer(H::Id).primary_key().auto_increment())
                .col(text(H::PackageType))
                .col(text(H::Body))
                .col(big_integer(H::Since))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_rule_history_type_since")
                .table(H::Table)
                .col(H::PackageType)
                .col(H::Since)
                .to_owned(),
        )
        .await?;
        // The rules in force now have been so since before anything this database remembers.
        m.exec_stmt(
            Query::insert()
                .into_table(H::Table)
                .columns([H::PackageType, H::Body, H::Since])
                .select_from(
                    Query::select()
                        .column(RuleSets::PackageType)
                        .column(RuleSets::Body)
                        .expr(Expr::val(0i64))
                        .from(RuleSets::Table)
                        .to_owned(),
                )
                .map_err(|e| DbErr::Migration(e.to_string()))?
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use ConfigSnapshots as C;
        m.drop_table(Table::drop().table(RuleHistory::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(C::Table).drop_column(C::Actor).to_owned()).await?;
        m.drop_table(Table::drop().table(PendingChanges::Table).to_owned()).await
    }
}
