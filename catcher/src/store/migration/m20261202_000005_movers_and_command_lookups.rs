//! Movers as a real column (the scheduler looked them up with a LIKE over the serialized
//! capabilities), and an index for a package's open commands (looked up per due package).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sources {
    Table,
    Mover,
    Connected,
}

#[derive(DeriveIden)]
enum Commands {
    Table,
    PackageId,
    State,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Sources::Table).add_column(boolean(Sources::Mover).default(false)).to_owned(),
        )
        .await?;
        // Capabilities are stored comma-separated; `mover` is one whole item of the list.
        m.get_connection()
            .execute_unprepared("UPDATE sources SET mover = TRUE WHERE ',' || capabilities || ',' LIKE '%,mover,%'")
            .await?;
        m.create_index(
            Index::create()
                .name("idx_sources_connected_mover")
                .table(Sources::Table)
                .col(Sources::Connected)
                .col(Sources::Mover)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_commands_package_state")
                .table(Commands::Table)
                .col(Commands::PackageId)
                .col(Commands::State)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_commands_package_state").table(Commands::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_sources_connected_mover").table(Sources::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Sources::Table).drop_column(Sources::Mover).to_owned()).await
    }
}
