//! Schema migrations, applied at start (and by `catcher migrate`).

use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261124_000002_manifests;
mod m20261124_000003_counters_by_type;
mod m20261124_000004_transition_days;
mod m20261202_000005_movers_and_command_lookups;
mod m20261203_000006_catalog;
mod m20261203_000007_kept_and_ranges;
mod m20261203_000008_progress_and_compaction;
mod m20261203_000009_credentials;
mod m20261204_000010_people_tokens;
mod m20261204_000011_pending_changes;
mod m20261204_000012_alerts;
mod m20261205_000013_replicas;
mod m20261205_000014_failed_copies_index;
mod m20261205_000015_failed_packages_index;

pub use m20261124_000004_transition_days::rebuild_transition_days_sql;

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_manifests::Migration),
            Box::new(m20261124_000003_counters_by_type::Migration),
            Box::new(m20261124_000004_transition_days::Migration),
            Box::new(m20261202_000005_movers_and_command_lookups::Migration),
            Box::new(m20261203_000006_catalog::Migration),
            Box::new(m20261203_000007_kept_and_ranges::Migration),
            Box::new(m20261203_000008_progress_and_compaction::Migration),
            Box::new(m20261203_000009_credentials::Migration),
            Box::new(m20261204_000010_people_tokens::Migration),
            Box::new(m20261204_000011_pending_changes::Migration),
            Box::new(m20261204_000012_alerts::Migration),
            Box::new(m20261205_000013_replicas::Migration),
            Box::new(m20261205_000014_failed_copies_index::Migration),
            Box::new(m20261205_000015_failed_packages_index::Migration),
        ]
    }
}
