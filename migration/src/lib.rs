//! Versioned schema migrations, portable between PostgreSQL and SQLite.

pub use sea_orm_migration::prelude::*;

mod m20251115_000001_create_events;
mod m20251115_000002_create_rollups;
mod m20251201_000003_create_dashboard_rollups;
mod m20261124_000004_user_sets;
mod m20261125_000005_path_packs;
mod m20261125_000006_daily_event_counts;
mod m20261125_000007_raw_event_indexes;
mod m20261201_000008_weekly_rollups;
mod m20261202_000009_time_first_event_index;
mod m20261202_000010_event_id_per_site;
mod m20261202_000011_access;
mod m20261206_000012_event_partitions;
mod m20261207_000013_event_context;
mod m20261207_000014_site_timezone;
mod m20261207_000015_goals_funnels;
mod m20261207_000016_store_epochs;
mod m20261208_000017_event_blocks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20251115_000001_create_events::Migration),
            Box::new(m20251115_000002_create_rollups::Migration),
            Box::new(m20251201_000003_create_dashboard_rollups::Migration),
            Box::new(m20261124_000004_user_sets::Migration),
            Box::new(m20261125_000005_path_packs::Migration),
            Box::new(m20261125_000006_daily_event_counts::Migration),
            Box::new(m20261125_000007_raw_event_indexes::Migration),
            Box::new(m20261201_000008_weekly_rollups::Migration),
            Box::new(m20261202_000009_time_first_event_index::Migration),
            Box::new(m20261202_000010_event_id_per_site::Migration),
            Box::new(m20261202_000011_access::Migration),
            Box::new(m20261206_000012_event_partitions::Migration),
            Box::new(m20261207_000013_event_context::Migration),
            Box::new(m20261207_000014_site_timezone::Migration),
            Box::new(m20261207_000015_goals_funnels::Migration),
            Box::new(m20261207_000016_store_epochs::Migration),
            Box::new(m20261208_000017_event_blocks::Migration),
        ]
    }
}

/// Names of the migrations this build knows, oldest first.
pub fn known_versions() -> Vec<String> {
    Migrator::migrations().iter().map(|m| m.name().to_string()).collect()
}
