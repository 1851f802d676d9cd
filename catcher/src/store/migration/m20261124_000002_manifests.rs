//! Package manifests (the files inside each package), kept apart so package rows stay small.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PackageManifests {
    Table,
    PackageId,
    FileCount,
    ManifestJson,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PackageManifests::Table)
                .col(text(PackageManifests::PackageId).primary_key())
                .col(big_integer(PackageManifests::FileCount))
                .col(text(PackageManifests::ManifestJson))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PackageManifests::Table).to_owned()).await
    }
}
