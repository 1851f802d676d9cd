//! Commands keep the newest progress their agent reported (restores run for minutes and are
//! watched live), and restores are looked up by kind; the compaction planner finds a package's
//! current versions by package.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Commands {
    Table,
    Kind,
    CreatedAt,
    ProgressPhase,
    ProgressFilesDone,
    ProgressFilesTotal,
    ProgressBytesDone,
    ProgressBytesTotal,
    ProgressAt,
}

#[derive(DeriveIden)]
enum CatalogVersions {
    Table,
    PackageId,
    UntilAt,
}

const COUNTS: [Commands; 4] = [
    Commands::ProgressFilesDone,
    Commands::ProgressFilesTotal,
    Commands::ProgressBytesDone,
    Commands::ProgressBytesTotal,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Commands as C;
        // One column per statement: SQLite alters one at a time.
        m.alter_table(Table::alter().table(C::Table).add_column(text(C::ProgressPhase).default("")).to_owned()).await?;
        for col in COUNTS {
            m.alter_table(Table::alter().table(C::Table).add_column(big_integer(col).default(0)).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(C::Table).add_column(big_integer_null(C::ProgressAt)).to_owned()).await?;
        m.create_index(
            Index::create().name("idx_commands_kind_created").table(C::Table).col(C::Kind).col(C::CreatedAt).to_owned(),
        )
        .await?;
        use CatalogVersions as V;
        m.create_index(
            Index::create().name("idx_catalog_package").table(V::Table).col(V::PackageId).col(V::UntilAt).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Commands as C;
        m.drop_index(Index::drop().name("idx_catalog_package").table(CatalogVersions::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_commands_kind_created").table(C::Table).to_owned()).await?;
        for col in [C::ProgressPhase, C::ProgressAt].into_iter().chain(COUNTS) {
            m.alter_table(Table::alter().table(C::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
