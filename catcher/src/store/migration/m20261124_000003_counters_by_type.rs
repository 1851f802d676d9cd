//! Counters keyed by package type too, so the train lines' live counts need no table scan.
//! The table is rebuilt from the packages it summarises.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PackageCounters {
    Table,
    PackageType,
    Tier,
    Status,
    Count,
    Bytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PackageCounters::Table).to_owned()).await?;
        m.create_table(
            Table::create()
                .table(PackageCounters::Table)
                .col(text(PackageCounters::PackageType))
                .col(text(PackageCounters::Tier))
                .col(text(PackageCounters::Status))
                .col(big_integer(PackageCounters::Count))
                .col(big_integer(PackageCounters::Bytes))
                .primary_key(
                    Index::create()
                        .col(PackageCounters::PackageType)
                        .col(PackageCounters::Tier)
                        .col(PackageCounters::Status),
                )
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO package_counters (package_type, tier, status, count, bytes) \
                 SELECT package_type, tier, status, COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) \
                 FROM packages GROUP BY package_type, tier, status",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PackageCounters::Table).to_owned()).await?;
        m.create_table(
            Table::create()
                .table(PackageCounters::Table)
                .col(text(PackageCounters::Tier))
                .col(text(PackageCounters::Status))
                .col(big_integer(PackageCounters::Count))
                .col(big_integer(PackageCounters::Bytes))
                .primary_key(Index::create().col(PackageCounters::Tier).col(PackageCounters::Status))
                .to_owned(),
        )
        .await
    }
}
