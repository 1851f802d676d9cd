//! Machine credentials: one-time enrollment tokens (stored only as hashes) and the agent
//! certificates the catcher signed, each bound to one source and revocable.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EnrollmentTokens {
    Table,
    TokenId,
    TokenHash,
    SourceId,
    Mover,
    UsesLeft,
    ExpiresAt,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum AgentCredentials {
    Table,
    Serial,
    SourceId,
    Mover,
    KeySha256,
    IssuedAt,
    ExpiresAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use EnrollmentTokens as E;
        m.create_table(
            Table::create()
                .table(E::Table)
                .col(text(E::TokenId).primary_key())
                .col(text(E::TokenHash).unique_key())
                .col(text(E::SourceId))
                .col(boolean(E::Mover))
                .col(big_integer(E::UsesLeft))
                .col(big_integer(E::ExpiresAt))
                .col(big_integer(E::CreatedAt))
                .col(text(E::CreatedBy))
                .to_owned(),
        )
        .await?;
        use AgentCredentials as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(text(A::Serial).primary_key())
                .col(text(A::SourceId))
                .col(boolean(A::Mover))
                .col(text(A::KeySha256))
                .col(big_integer(A::IssuedAt))
                .col(big_integer(A::ExpiresAt))
                .col(big_integer_null(A::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_agent_credentials_source").table(A::Table).col(A::SourceId).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_agent_credentials_revoked").table(A::Table).col(A::RevokedAt).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AgentCredentials::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(EnrollmentTokens::Table).to_owned()).await
    }
}
