//! The initial schema: every table, with an index for each list filter and for the scheduler.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Sources {
    Table,
    SourceId,
    Label,
    Hostname,
    Os,
    AgentVersion,
    Capabilities,
    FirstSeenAt,
    LastSeenAt,
    Connected,
    SafetyState,
    SafetyReason,
    LastCompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AgentCursors {
    Table,
    SourceId,
    LastAppliedSeq,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Packages {
    Table,
    PackageId,
    SourceId,
    Path,
    PackageType,
    SizeBytes,
    Sha256,
    Status,
    BytesDone,
    ProgressPercent,
    Tool,
    ToolRef,
    Tier,
    TierEnteredAt,
    NextTransitionAt,
    RetryCount,
    LastError,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
    ExpiredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Placements {
    Table,
    PackageId,
    StationId,
    Status,
    VerifiedSha256,
    VerifiedAt,
    Error,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Stations {
    Table,
    StationId,
    Tier,
    Kind,
    Uri,
}

#[derive(DeriveIden, Clone, Copy)]
enum RuleSets {
    Table,
    PackageType,
    Body,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConfigSnapshots {
    Table,
    SnapshotId,
    CreatedAt,
    Reason,
    Sha256,
    ConfigJson,
}

#[derive(DeriveIden, Clone, Copy)]
enum Journal {
    Table,
    Sequence,
    At,
    Actor,
    EventType,
    SourceId,
    PackageId,
    StationId,
    StatusBefore,
    StatusAfter,
    Checksum,
    Error,
    DetailsJson,
    PrevHash,
    Hash,
}

#[derive(DeriveIden, Clone, Copy)]
enum Commands {
    Table,
    CommandId,
    SourceId,
    Kind,
    PackageId,
    FromStationId,
    ToStationId,
    ArgsJson,
    State,
    Attempts,
    LeaseUntil,
    CreatedAt,
    FinishedAt,
    ResultMessage,
    ResultDetailsJson,
}

#[derive(DeriveIden, Clone, Copy)]
enum PackageCounters {
    Table,
    Tier,
    Status,
    Count,
    Bytes,
}

fn index<T: IntoIden + Copy + 'static>(table: T, name: &str, cols: &[T]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for col in cols {
        idx.col(*col);
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sources::Table)
                .col(text(Sources::SourceId).primary_key())
                .col(text(Sources::Label))
                .col(text(Sources::Hostname))
                .col(text(Sources::Os))
                .col(text(Sources::AgentVersion))
                .col(text(Sources::Capabilities))
                .col(big_integer(Sources::FirstSeenAt))
                .col(big_integer(Sources::LastSeenAt))
                .col(boolean(Sources::Connected))
                .col(text(Sources::SafetyState))
                .col(text(Sources::SafetyReason))
                .col(big_integer_null(Sources::LastCompletedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AgentCursors::Table)
                .col(text(AgentCursors::SourceId).primary_key())
                .col(big_integer(AgentCursors::LastAppliedSeq))
                .col(big_integer(AgentCursors::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Packages::Table)
                .col(text(Packages::PackageId).primary_key())
                .col(text(Packages::SourceId))
                .col(text(Packages::Path))
                .col(text(Packages::PackageType))
                .col(big_integer(Packages::SizeBytes))
                .col(text(Packages::Sha256))
                .col(text(Packages::Status))
                .col(big_integer(Packages::BytesDone))
                .col(integer(Packages::ProgressPercent))
                .col(text(Packages::Tool))
                .col(text(Packages::ToolRef))
                .col(text(Packages::Tier))
                .col(big_integer_null(Packages::TierEnteredAt))
                .col(big_integer_null(Packages::NextTransitionAt))
                .col(integer(Packages::RetryCount))
                .col(text(Packages::LastError))
                .col(big_integer(Packages::CreatedAt))
                .col(big_integer(Packages::UpdatedAt))
                .col(big_integer_null(Packages::CompletedAt))
                .col(big_integer_null(Packages::ExpiredAt))
                .to_owned(),
        )
        .await?;
        // Listing is newest first by package id (UUIDv7, time-ordered); each filter gets a
        // composite index so "filter + order + limit" is an index range scan.
        for (name, col) in [
            ("idx_packages_status", Packages::Status),
            ("idx_packages_source", Packages::SourceId),
            ("idx_packages_type", Packages::PackageType),
            ("idx_packages_tier", Packages::Tier),
        ] {
            m.create_index(index(Packages::Table, name, &[col, Packages::PackageId])).await?;
        }
        m.create_index(index(Packages::Table, "idx_packages_next_transition", &[Packages::NextTransitionAt])).await?;
        m.create_table(
            Table::create()
                .table(Placements::Table)
                .col(text(Placements::PackageId))
                .col(text(Placements::StationId))
                .col(text(Placements::Status))
                .col(text(Placements::VerifiedSha256))
                .col(big_integer_null(Placements::VerifiedAt))
                .col(text(Placements::Error))
                .col(big_integer(Placements::UpdatedAt))
                .primary_key(Index::create().col(Placements::PackageId).col(Placements::StationId))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Placements::Table, "idx_placements_station", &[Placements::StationId])).await?;
        m.create_table(
            Table::create()
                .table(Stations::Table)
                .col(text(Stations::StationId).primary_key())
                .col(text(Stations::Tier))
                .col(text(Stations::Kind))
                .col(text(Stations::Uri))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RuleSets::Table)
                .col(text(RuleSets::PackageType).primary_key())
                .col(text(RuleSets::Body))
                .col(big_integer(RuleSets::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ConfigSnapshots::Table)
                .col(big_pk_auto(ConfigSnapshots::SnapshotId))
                .col(big_integer(ConfigSnapshots::CreatedAt))
                .col(text(ConfigSnapshots::Reason))
                .col(text(ConfigSnapshots::Sha256))
                .col(text(ConfigSnapshots::ConfigJson))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Journal::Table)
                .col(big_integer(Journal::Sequence).primary_key())
                .col(big_integer(Journal::At))
                .col(text(Journal::Actor))
                .col(text(Journal::EventType))
                .col(text(Journal::SourceId))
                .col(text(Journal::PackageId))
                .col(text(Journal::StationId))
                .col(text(Journal::StatusBefore))
                .col(text(Journal::StatusAfter))
                .col(text(Journal::Checksum))
                .col(text(Journal::Error))
                .col(text(Journal::DetailsJson))
                .col(text(Journal::PrevHash))
                .col(text(Journal::Hash))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_journal_package", Journal::PackageId),
            ("idx_journal_source", Journal::SourceId),
            ("idx_journal_type", Journal::EventType),
        ] {
            m.create_index(index(Journal::Table, name, &[col, Journal::Sequence])).await?;
        }
        m.create_table(
            Table::create()
                .table(Commands::Table)
                .col(text(Commands::CommandId).primary_key())
                .col(text(Commands::SourceId))
                .col(text(Commands::Kind))
                .col(text(Commands::PackageId))
                .col(text(Commands::FromStationId))
                .col(text(Commands::ToStationId))
                .col(text(Commands::ArgsJson))
                .col(text(Commands::State))
                .col(integer(Commands::Attempts))
                .col(big_integer_null(Commands::LeaseUntil))
                .col(big_integer(Commands::CreatedAt))
                .col(big_integer_null(Commands::FinishedAt))
                .col(text(Commands::ResultMessage))
                .col(text(Commands::ResultDetailsJson))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Commands::Table, "idx_commands_source_state", &[Commands::SourceId, Commands::State]))
            .await?;
        m.create_index(index(Commands::Table, "idx_commands_state_lease", &[Commands::State, Commands::LeaseUntil]))
            .await?;
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
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "package_counters",
            "commands",
            "journal",
            "config_snapshots",
            "rule_sets",
            "stations",
            "placements",
            "packages",
            "agent_cursors",
            "sources",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}
