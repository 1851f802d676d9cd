//! Projections without scanning the window: packages due per (type, tier, UTC day), kept by the
//! writer like `package_counters`; plus the indexes that answer a window's partial days and each
//! group's earliest packages from the index alone, and one for status + type listings.

use sea_orm_migration::{prelude::*, schema::*};

use crate::domain::DAY_MS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TransitionDays {
    Table,
    PackageType,
    Tier,
    Day,
    Count,
    Bytes,
}

#[derive(DeriveIden, Clone, Copy)]
enum Packages {
    Table,
    PackageId,
    Status,
    PackageType,
    Tier,
    NextTransitionAt,
    SizeBytes,
}

/// Recomputes the table's rows from the packages, of one type or all (migration, a rule change's
/// re-plan, a first start on imported packages). `package_type` must be a storage spelling.
pub fn rebuild_transition_days_sql(package_type: Option<&str>) -> String {
    let only = package_type.map_or(String::new(), |t| format!(" AND package_type = '{t}'"));
    format!(
        "INSERT INTO transition_days (package_type, tier, day, count, bytes) \
         SELECT package_type, tier, next_transition_at / {DAY_MS}, COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) \
         FROM packages WHERE next_transition_at IS NOT NULL AND tier <> ''{only} \
         GROUP BY package_type, tier, next_transition_at / {DAY_MS}"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TransitionDays::Table)
                .col(text(TransitionDays::PackageType))
                .col(text(TransitionDays::Tier))
                .col(big_integer(TransitionDays::Day))
                .col(big_integer(TransitionDays::Count))
                .col(big_integer(TransitionDays::Bytes))
                .primary_key(
                    Index::create().col(TransitionDays::PackageType).col(TransitionDays::Tier).col(TransitionDays::Day),
                )
                .to_owned(),
        )
        .await?;
        m.get_connection().execute_unprepared(&rebuild_transition_days_sql(None)).await?;
        // The window's first and last (partial) days are summed from this index alone.
        m.drop_index(Index::drop().name("idx_packages_next_transition").table(Packages::Table).to_owned()).await?;
        m.create_index(
            Index::create()
                .name("idx_packages_next_transition_cover")
                .table(Packages::Table)
                .col(Packages::NextTransitionAt)
                .col(Packages::PackageType)
                .col(Packages::Tier)
                .col(Packages::SizeBytes)
                .to_owned(),
        )
        .await?;
        // A group's earliest due packages: an index range, however sparse the group.
        m.create_index(
            Index::create()
                .name("idx_packages_type_tier_next")
                .table(Packages::Table)
                .col(Packages::PackageType)
                .col(Packages::Tier)
                .col(Packages::NextTransitionAt)
                .to_owned(),
        )
        .await?;
        // "Failed user data, newest first", the dashboard's commonest two-filter listing: a
        // range scan instead of walking one filter's index until the other matches 100 times.
        m.create_index(
            Index::create()
                .name("idx_packages_status_type")
                .table(Packages::Table)
                .col(Packages::Status)
                .col(Packages::PackageType)
                .col(Packages::PackageId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_packages_status_type").table(Packages::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_packages_type_tier_next").table(Packages::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_packages_next_transition_cover").table(Packages::Table).to_owned())
            .await?;
        m.create_index(
            Index::create()
                .name("idx_packages_next_transition")
                .table(Packages::Table)
                .col(Packages::NextTransitionAt)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(TransitionDays::Table).to_owned()).await
    }
}
