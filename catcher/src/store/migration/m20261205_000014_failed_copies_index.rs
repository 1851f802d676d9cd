//! The alert evaluator's index of failed copies becomes partial: it held an entry for every
//! copy (verified ones are nearly all of them) and every reported copy paid for one more index
//! insert on the agents' hottest path; now only failed copies are in it, which is all the
//! evaluator asks for (`store::alerts::failed_copies_by_station`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same text on SQLite and PostgreSQL (both have partial indexes); `failed` is the stored
/// spelling of `PlacementStatus::Failed`.
const CREATE: &str = "CREATE INDEX idx_placements_failed_station ON placements (station_id) WHERE status = 'failed'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_placements_status_station").table(Alias::new("placements")).to_owned())
            .await?;
        m.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_placements_failed_station").table(Alias::new("placements")).to_owned())
            .await?;
        m.create_index(
            Index::create()
                .name("idx_placements_status_station")
                .table(Alias::new("placements"))
                .col(Alias::new("status"))
                .col(Alias::new("station_id"))
                .to_owned(),
        )
        .await
    }
}
