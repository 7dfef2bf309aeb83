//! Direct reads and chores on a migrated database, for the rollup tests.

use analytics_core::maintenance::compaction::compact;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

pub async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    scalar(db, &format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}")).await
}

/// The first column of the first row of `sql`, a BIGINT.
pub async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Compacts until no row is left. A row held by another transaction (a
/// writer's, or a maintenance task's compaction) is skipped by one run and
/// taken by a later one.
pub async fn compact_all(db: &DatabaseConnection) {
    for _ in 0..100 {
        compact(db).await.unwrap();
        if count(db, "daily_path_views").await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("daily_path_views still has rows after 100 compactions");
}
