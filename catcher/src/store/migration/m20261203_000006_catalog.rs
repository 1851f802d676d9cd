//! The catalog (every version of every entry of every watched folder) and, per package, what
//! retention must know of the versions it holds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogVersions {
    Table,
    VersionId,
    SourceId,
    Folder,
    Path,
    Directory,
    Kind,
    SizeBytes,
    Sha256,
    Mode,
    Uid,
    Gid,
    ModifiedNs,
    Target,
    PackageId,
    SinceAt,
    UntilAt,
    Deleted,
}

#[derive(DeriveIden)]
enum PackageHolds {
    Table,
    PackageId,
    LiveVersions,
    SupersededAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use CatalogVersions as V;
        m.create_table(
            Table::create()
                .table(V::Table)
                .col(big_pk_auto(V::VersionId))
                .col(text(V::SourceId))
                .col(text(V::Folder))
                .col(text(V::Path))
                .col(text(V::Directory))
                .col(text(V::Kind))
                .col(big_integer(V::SizeBytes))
                .col(text(V::Sha256))
                .col(integer(V::Mode))
                .col(big_integer(V::Uid))
                .col(big_integer(V::Gid))
                .col(big_integer(V::ModifiedNs))
                .col(text(V::Target))
                .col(text(V::PackageId))
                .col(big_integer(V::SinceAt))
                .col(big_integer_null(V::UntilAt))
                .col(boolean(V::Deleted))
                .to_owned(),
        )
        .await?;
        // "Versions of this path" and "the current version of these paths".
        m.create_index(
            Index::create()
                .name("idx_catalog_path")
                .table(V::Table)
                .col(V::SourceId)
                .col(V::Folder)
                .col(V::Path)
                .col(V::SinceAt)
                .to_owned(),
        )
        .await?;
        // "This directory as of T".
        m.create_index(
            Index::create()
                .name("idx_catalog_directory")
                .table(V::Table)
                .col(V::SourceId)
                .col(V::Folder)
                .col(V::Directory)
                .col(V::Path)
                .to_owned(),
        )
        .await?;
        // Present entries (coverage).
        m.create_index(
            Index::create().name("idx_catalog_current").table(V::Table).col(V::UntilAt).col(V::SourceId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PackageHolds::Table)
                .col(text(PackageHolds::PackageId).primary_key())
                .col(big_integer(PackageHolds::LiveVersions))
                .col(big_integer_null(PackageHolds::SupersededAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PackageHolds::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(CatalogVersions::Table).to_owned()).await
    }
}
