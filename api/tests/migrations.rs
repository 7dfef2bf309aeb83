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

const TABLES: [&str; 12] = [
    "daily_event_counts",
    "daily_path_packs",
    "daily_path_views",
    "daily_user_sets",
    "events",
    "hourly_event_counts",
    "hourly_user_sets",
    "minute_event_counts",
    "site_users",
    "sites",
    "weekly_path_packs",
    "weekly_user_sets",
];
/// Migration 8's caches.
const WEEKLY: [&str; 2] = ["weekly_path_packs", "weekly_user_sets"];
const WEEKLY_ROLLUPS: &str = "m20261201_000008_weekly_rollups";

/// `TABLES` without migration 8's.
fn tables_before_weekly() -> Vec<&'static str> {
    TABLES.into_iter().filter(|t| !WEEKLY.contains(t)).collect()
}
/// The seed's three raw-event indexes, which migration 7 trims to one.
const SEED_EVENT_INDEXES: [&str; 3] = [
    "idx_events_site_event_type",
    "idx_events_site_timestamp",
    "idx_events_user_id",
];
/// Migration 7's one index, which migration 9 puts in time order first.
const TRIMMED_EVENT_INDEXES: [&str; 1] = ["idx_events_site_timestamp"];
const EVENT_INDEXES: [&str; 1] = ["idx_events_timestamp_site"];
const RAW_EVENT_INDEXES: &str = "m20261125_000007_raw_event_indexes";
const TIME_FIRST_INDEX: &str = "m20261202_000009_time_first_event_index";

fn check_status(out: &str, state: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
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
    let pg_event_indexes =
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events' AND indexname LIKE 'idx_%'";
    assert_eq!(names(&conn, pg_event_indexes).await, EVENT_INDEXES, "{idx:?}");
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

    let pg_tables =
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'";
    let pack_columns = "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'daily_path_packs'";
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "rev", "site_id"]);
    migrate(&db.url, "down -n 1");
    assert_eq!(names(&conn, pg_event_indexes).await, TRIMMED_EVENT_INDEXES);
    assert!(migrate(&db.url, "status").contains(&format!("pending\t{TIME_FIRST_INDEX}")));
    migrate(&db.url, "down -n 1");
    assert!(migrate(&db.url, "status").contains(&format!("pending\t{WEEKLY_ROLLUPS}")));
    assert_eq!(names(&conn, pg_tables).await, tables_before_weekly());
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "site_id"]);
    migrate(&db.url, "down -n 1");
    assert_eq!(names(&conn, pg_event_indexes).await, SEED_EVENT_INDEXES);
    assert!(migrate(&db.url, "status").contains(&format!("pending\t{RAW_EVENT_INDEXES}")));
    migrate(&db.url, "down -n 6");
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
    let sqlite_tables =
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'";
    let event_indexes =
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'idx_%'";
    assert_eq!(names(&conn, sqlite_tables).await, TABLES);
    assert_eq!(names(&conn, event_indexes).await, EVENT_INDEXES);
    let pack_columns = "SELECT name FROM pragma_table_info('daily_path_packs')";
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "rev", "site_id"]);
    migrate(&url, "down -n 1");
    assert_eq!(names(&conn, event_indexes).await, TRIMMED_EVENT_INDEXES);
    migrate(&url, "down -n 1");
    assert_eq!(names(&conn, sqlite_tables).await, tables_before_weekly());
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "site_id"]);
    migrate(&url, "down -n 1");
    assert_eq!(names(&conn, event_indexes).await, SEED_EVENT_INDEXES);
    migrate(&url, "down -n 4");
    let lines = migrate(&url, "status");
    assert!(
        lines.contains("applied\tm20251115_000002_create_rollups")
            && lines.contains("pending\tm20251201_000003_create_dashboard_rollups"),
        "{lines}"
    );
    migrate(&url, "up");
    check_status(&migrate(&url, "status"), "applied");
}

/// (site, day, hour, user) facts as the per-user rollups held them before the
/// user sets: two sites, users across days and hours, one user on both sites.
fn user_facts() -> Vec<(String, chrono::NaiveDate, i16, String)> {
    let mut out = Vec::new();
    for (i, site) in ["a", "b"].iter().enumerate() {
        for day in 1..=3u32 {
            for hour in [0i16, 5, 23] {
                for u in 0..(10 + i * 5 + day as usize) {
                    if !(u + hour as usize).is_multiple_of(3) {
                        let d = chrono::NaiveDate::from_ymd_opt(2025, 11, day).unwrap();
                        out.push((site.to_string(), d, hour, format!("user-{u}")));
                    }
                }
            }
        }
    }
    out.push((
        "b".into(),
        chrono::NaiveDate::from_ymd_opt(2025, 11, 2).unwrap(),
        7,
        "user-0".into(),
    ));
    out.sort();
    out
}

async fn sorted_facts(db: &sea_orm::DatabaseConnection) -> Vec<(String, chrono::NaiveDate, i16, String)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT site_id, day, hour, user_id FROM hourly_users",
        ))
        .await
        .unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Migration 4 turns the per-user rows into user sets and back without
/// losing or inventing a user; unique counts over days and ranges match.
async fn user_sets_round_trip(url: &str) {
    migrate(url, "up -n 3");
    let db = Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let facts = user_facts();
    for (site, day, hour, user) in &facts {
        for (sql, values) in [
            (
                "INSERT INTO hourly_users (site_id, day, hour, user_id) VALUES ($1, $2, $3, $4)",
                vec![
                    site.as_str().into(),
                    (*day).into(),
                    (*hour).into(),
                    user.as_str().into(),
                ],
            ),
            (
                "INSERT INTO daily_users (site_id, day, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![site.as_str().into(), (*day).into(), user.as_str().into()],
            ),
            (
                "INSERT INTO sites (site_id) VALUES ($1) ON CONFLICT DO NOTHING",
                vec![site.as_str().into()],
            ),
        ] {
            let sql = analytics_core::db::portable(backend, sql);
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .unwrap();
        }
    }
    migrate(url, "up");
    let distinct = |site: &str, from: u32, to: u32| {
        facts
            .iter()
            .filter(|(s, d, _, _)| s == site && (from..=to).contains(&chrono::Datelike::day(d)))
            .map(|(_, _, _, u)| u.clone())
            .collect::<std::collections::HashSet<_>>()
            .len() as i64
    };
    let date = |d| chrono::NaiveDate::from_ymd_opt(2025, 11, d).unwrap();
    for site in ["a", "b"] {
        for (from, to) in [(1, 1), (2, 2), (3, 3), (1, 3), (2, 3)] {
            let got = analytics_core::stats::totals(&db, site, date(from), date(to))
                .await
                .unwrap()
                .unique_users;
            assert_eq!(got, distinct(site, from, to), "site {site} days {from}..={to}");
        }
    }
    migrate(url, "down -n 6");
    assert_eq!(sorted_facts(&db).await, facts);
    migrate(url, "up");
    assert_eq!(
        analytics_core::stats::totals(&db, "b", date(1), date(3))
            .await
            .unwrap()
            .unique_users,
        distinct("b", 1, 3)
    );
}

#[tokio::test]
async fn postgres_user_sets_migration_keeps_every_user() {
    let db = TestDb::create().await;
    user_sets_round_trip(&db.url).await;
}

#[tokio::test]
async fn sqlite_user_sets_migration_keeps_every_user() {
    user_sets_round_trip(&format!("sqlite://{}?mode=rwc", temp_sqlite().display())).await;
}

/// Migration 6 fills `daily_event_counts` from the hourly counts.
async fn daily_counts_backfill(url: &str) {
    migrate(url, "up -n 5");
    let db = Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = [
        ("a", 1, 0, "page_view", 3i64),
        ("a", 1, 13, "page_view", 4),
        ("a", 1, 13, "click", 2),
        ("a", 2, 23, "page_view", 1),
        ("b", 1, 5, "signup", 7),
    ];
    for (site, day, hour, event_type, events) in rows {
        let sql = analytics_core::db::portable(
            backend,
            "INSERT INTO hourly_event_counts (site_id, day, hour, event_type, events) VALUES ($1, $2, $3, $4, $5)",
        );
        let values: Vec<sea_orm::Value> = vec![
            site.into(),
            chrono::NaiveDate::from_ymd_opt(2025, 11, day).unwrap().into(),
            (hour as i16).into(),
            event_type.into(),
            events.into(),
        ];
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
    migrate(url, "up");
    let got = names(
        &db,
        "SELECT site_id || ' ' || CAST(day AS TEXT) || ' ' || event_type || ' ' || CAST(events AS TEXT) FROM daily_event_counts",
    )
    .await;
    assert_eq!(
        got,
        [
            "a 2025-11-01 click 2",
            "a 2025-11-01 page_view 7",
            "a 2025-11-02 page_view 1",
            "b 2025-11-01 signup 7"
        ]
    );
}

#[tokio::test]
async fn postgres_daily_counts_are_filled_from_hourly() {
    let db = TestDb::create().await;
    daily_counts_backfill(&db.url).await;
}

#[tokio::test]
async fn sqlite_daily_counts_are_filled_from_hourly() {
    daily_counts_backfill(&format!("sqlite://{}?mode=rwc", temp_sqlite().display())).await;
}
