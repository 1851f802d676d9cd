//! The alert evaluator counts failed packages per source every round. With only
//! `idx_packages_status` to go on, SQLite found the failed rows by index and then read each one
//! from the table for its source and error: over a million packages with 20,000 failed that was
//! most of a round's time (70–90 ms of 120–160), every 30 s, competing with every reader. A partial
//! index holding both columns, and only failed packages, answers the count from the index alone
//! (about 8 ms); packages that never fail (nearly all) pay nothing for it on the ingest path.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same text on SQLite and PostgreSQL; `failed` is the stored spelling of
/// `PackageStatus::Failed`. SQLite's planner does not pick it by itself: the query names it
/// (`store::alerts::failed_packages`).
const CREATE: &str =
    "CREATE INDEX idx_packages_failed_source ON packages (source_id, last_error) WHERE status = 'failed'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_packages_failed_source").table(Alias::new("packages")).to_owned()).await
    }
}
