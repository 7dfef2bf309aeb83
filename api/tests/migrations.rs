//! `analytics-migrate up | down | status` on PostgreSQL and SQLite: the
//! seed's table, columns and indexes, and what the design adds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sea_orm::{ConnectionTrait, Database, Statement};
use support::{migrate, temp_sqlite, TestDb};

async fn names(db: &sea_orm::DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let mut out: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    out.sort();
    out
}

const TABLES: [&str; 7] = [
    "daily_path_views",
    "daily_users",
    "events",
    "hourly_event_counts",
    "hourly_users",
    "minute_event_counts",
    "sites",
];
const EVENT_INDEXES: [&str; 3] = [
    "idx_events_site_event_type",
    "idx_events_site_timestamp",
    "idx_events_user_id",
];

fn check_status(out: &str, state: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines.iter().all(|l| l.starts_with(state)), "{out}");
}

#[tokio::test]
async fn postgres_up_status_down() {
    let db = TestDb::create().await;
    check_status(&migrate(&db.url, "status"), "pending");
    migrate(&db.url, "up");
    migrate(&db.url, "up"); // idempotent, as on every upgrade
    check_status(&migrate(&db.url, "status"), "applied");
    let conn = db.connect().await;
    let tables = names(
        &conn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await;
    assert_eq!(tables, TABLES);
    let idx = names(
        &conn,
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events'",
    )
    .await;
    for want in EVENT_INDEXES {
        assert!(idx.contains(&want.to_string()), "{want} missing from {idx:?}");
    }
    let cols = names(
        &conn,
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'events'",
    )
    .await;
    assert_eq!(
        cols,
        [
            "event_id",
            "event_type",
            "id",
            "path",
            "props",
            "received_at",
            "referrer",
            "site_id",
            "timestamp",
            "user_id"
        ]
    );
    let unique = names(
        &conn,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE 'CREATE UNIQUE%'",
    )
    .await;
    assert!(unique.iter().any(|d| d.contains("(event_id)")), "{unique:?}");

    migrate(&db.url, "down -n 3");
    check_status(&migrate(&db.url, "status"), "pending");
    let tables = names(
        &conn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await;
    assert!(tables.is_empty(), "{tables:?}");
    migrate(&db.url, "up");
    check_status(&migrate(&db.url, "status"), "applied");
}

#[tokio::test]
async fn sqlite_up_status_down() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    migrate(&url, "up");
    check_status(&migrate(&url, "status"), "applied");
    let conn = Database::connect(url.as_str()).await.unwrap();
    let tables = names(&conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'").await;
    assert_eq!(tables, TABLES);
    let idx = names(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'idx_%'",
    )
    .await;
    assert_eq!(idx, EVENT_INDEXES);
    migrate(&url, "down -n 1");
    let lines = migrate(&url, "status");
    assert!(
        lines.contains("applied\tm20251115_000002_create_rollups")
            && lines.contains("pending\tm20251201_000003_create_dashboard_rollups"),
        "{lines}"
    );
    migrate(&url, "up");
    check_status(&migrate(&url, "status"), "applied");
}
