//! The store on PostgreSQL and SQLite, through the writer, the maintenance
//! chores and the queries: one test binary (one link) for what used to be
//! five in api/tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deletion;
mod export;
mod import;
mod path_packs;
mod query_v2;
mod raw_events;
mod retention;
mod timestamps;
mod user_sets_writers;
mod week_rollups;
mod zoned;

use sea_orm::DatabaseConnection;

/// Migrations run in-process on a connection of their own, as the
/// `analytics-migrate` binary ran them in a process of its own.
pub async fn migrate_down(url: &str, n: u32) {
    use migration::MigratorTrait;
    let conn = analytics_core::store::connect::connect(url, 1).await.unwrap();
    migration::Migrator::down(&conn, Some(n)).await.unwrap();
    conn.close().await.unwrap();
}

/// A fresh SQLite file's URL, not migrated.
pub fn sqlite_url() -> String {
    format!("sqlite://{}?mode=rwc", testkit::db::temp_sqlite().display())
}

/// A migrated SQLite file and a connection to it.
pub async fn migrated_sqlite() -> DatabaseConnection {
    let url = testkit::db::migrated_sqlite().await;
    sea_orm::Database::connect(url.as_str()).await.unwrap()
}
