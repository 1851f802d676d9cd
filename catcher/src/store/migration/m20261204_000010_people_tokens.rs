//! People's bearer tokens: a name, a role, and the SHA-256 of the secret (never the secret).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PeopleTokens {
    Table,
    Name,
    TokenHash,
    Role,
    Unredacted,
    CreatedAt,
    CreatedBy,
    ExpiresAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use PeopleTokens as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(text(P::Name).primary_key())
                .col(text(P::TokenHash).unique_key())
                .col(text(P::Role))
                .col(boolean(P::Unredacted))
                .col(big_integer(P::CreatedAt))
                .col(text(P::CreatedBy))
                .col(big_integer_null(P::ExpiresAt))
                .col(big_integer_null(P::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("idx_people_tokens_revoked").table(P::Table).col(P::RevokedAt).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PeopleTokens::Table).to_owned()).await
    }
}
