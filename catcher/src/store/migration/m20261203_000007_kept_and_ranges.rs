//! Catalog versions learn two things: the package a version without a copy keeps (its path's
//! last stored bytes, held until a stored version follows), and where in its package a file's
//! bytes are (so one file is read without the rest of the package).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogVersions {
    Table,
    KeptPackageId,
    PackOffset,
    PackLength,
    PackSkip,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use CatalogVersions as V;
        // One column per statement: SQLite alters one at a time.
        m.alter_table(Table::alter().table(V::Table).add_column(text(V::KeptPackageId).default("")).to_owned()).await?;
        for col in [V::PackOffset, V::PackLength, V::PackSkip] {
            m.alter_table(Table::alter().table(V::Table).add_column(big_integer(col).default(0)).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use CatalogVersions as V;
        for col in [V::KeptPackageId, V::PackOffset, V::PackLength, V::PackSkip] {
            m.alter_table(Table::alter().table(V::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
