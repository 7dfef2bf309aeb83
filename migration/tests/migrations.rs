//! The migrations up, down and their status on PostgreSQL and SQLite, run
//! in-process through `Migrator` as `analytics-migrate` runs them: the
//! seed's table, columns and indexes, what the design adds, and data kept
//! across each migration that moves it (user sets, path packs, daily
//! counts, sites' time zones). Migrations use only their own code, so replaying history never
//! depends on today's writer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigrationStatus;
use testkit::db::{temp_sqlite, TestDb};

/// A connection of its own for each run, with one connection in its pool,
/// as the `analytics-migrate` process had.
async fn migrator(url: &str) -> DatabaseConnection {
    analytics_core::store::connect::connect(url, 1).await.unwrap()
}

/// Every table of the public schema but the migrations' own.
fn pg_all_tables_sql() -> &'static str {
    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'"
}

/// `analytics-migrate up [-n n]`.
async fn up(url: &str, n: Option<u32>) {
    let db = migrator(url).await;
    Migrator::up(&db, n).await.unwrap();
    db.close().await.unwrap();
}

/// `analytics-migrate down -n n`.
async fn down(url: &str, n: u32) {
    let db = migrator(url).await;
    Migrator::down(&db, Some(n)).await.unwrap();
    db.close().await.unwrap();
}

/// `analytics-migrate status`: every migration this build knows, oldest
/// first, with its state.
async fn status(url: &str) -> Vec<(String, MigrationStatus)> {
    let db = migrator(url).await;
    let out = Migrator::get_migration_with_status(&db)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.name().to_string(), m.status()))
        .collect();
    db.close().await.unwrap();
    out
}

/// The state of the migration named `name`.
async fn status_of(url: &str, name: &str) -> MigrationStatus {
    let all = status(url).await;
    all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no migration {name} in {all:?}"))
        .1
}

fn sqlite_url() -> String {
    format!("sqlite://{}?mode=rwc", temp_sqlite().display())
}

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
/// Migration 11's access tables.
const ACCESS: [&str; 3] = ["api_keys", "share_links", "site_domains"];
const ACCESS_MIGRATION: &str = "m20261202_000011_access";

/// `TABLES` and migration 11's, sorted.
fn all_tables() -> Vec<&'static str> {
    let mut all: Vec<&str> = TABLES.into_iter().chain(ACCESS).collect();
    all.sort_unstable();
    all
}

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

const EVENT_ID_PER_SITE: &str = "m20261202_000010_event_id_per_site";

const EVENT_PARTITIONS: &str = "m20261206_000012_event_partitions";
/// Migration 12's table, on PostgreSQL only.
const EVENT_KEYS: &str = "event_keys";

/// Migration 13's tables.
const CONTEXT_TABLES: [&str; 3] = ["daily_visitor_counts", "daily_visitors", "visitor_salts"];
const EVENT_CONTEXT: &str = "m20261207_000013_event_context";
/// Migration 13's columns of `events`.
const CONTEXT_COLUMNS: [&str; 15] = [
    "browser",
    "browser_version",
    "channel",
    "country",
    "device",
    "hostname",
    "os",
    "os_version",
    "source",
    "utm_campaign",
    "utm_content",
    "utm_medium",
    "utm_source",
    "utm_term",
    "visitor_id",
];

const SITE_TIMEZONE: &str = "m20261207_000014_site_timezone";
/// `sites`'s columns before migration 14 (since migration 11).
const SITE_COLUMNS: [&str; 5] = ["created_at", "deletions", "registered", "site_id", "user_count"];
/// And after it.
const SITE_COLUMNS_WITH_ZONE: [&str; 6] = [
    "created_at",
    "deletions",
    "registered",
    "site_id",
    "timezone",
    "user_count",
];

/// `all_tables()` and migration 12's, sorted: PostgreSQL's before 13.
fn postgres_tables_before_context() -> Vec<&'static str> {
    let mut all = all_tables();
    all.push(EVENT_KEYS);
    all.sort_unstable();
    all
}

/// Every table of the latest schema on PostgreSQL.
fn postgres_tables() -> Vec<&'static str> {
    let mut all = postgres_tables_before_context();
    all.extend(CONTEXT_TABLES);
    all.sort_unstable();
    all
}

/// Every table of the latest schema on SQLite (no `event_keys`).
fn sqlite_tables() -> Vec<&'static str> {
    let mut all = all_tables();
    all.extend(CONTEXT_TABLES);
    all.sort_unstable();
    all
}

/// Migration 15's tables.
const CONVERSION_TABLES: [&str; 2] = ["funnels", "goals"];
const GOALS_FUNNELS: &str = "m20261207_000015_goals_funnels";

/// `tables` with migration 15's.
fn with_conversions(tables: Vec<&'static str>) -> Vec<&'static str> {
    let mut all = tables;
    all.extend(CONVERSION_TABLES);
    all.sort_unstable();
    all
}

/// Migration 16's table.
const STORE_EPOCHS: &str = "m20261207_000016_store_epochs";

/// `with_conversions(tables)` and migration 16's.
fn with_epochs(tables: Vec<&'static str>) -> Vec<&'static str> {
    let mut all = with_conversions(tables);
    all.push("store_epochs");
    all.sort_unstable();
    all
}

/// Migration 17's table.
const EVENT_BLOCKS: &str = "m20261208_000017_event_blocks";

/// `with_epochs(tables)` and migration 17's.
fn latest(tables: Vec<&'static str>) -> Vec<&'static str> {
    let mut all = with_epochs(tables);
    all.push("event_blocks");
    all.sort_unstable();
    all
}

/// How many migrations `down` reverts to undo `name` and every later one.
fn since(name: &str) -> u32 {
    let versions = migration::known_versions();
    let at = versions.iter().position(|v| v == name).unwrap();
    (versions.len() - at) as u32
}

/// Every one of the seventeen migrations is in `state`.
async fn check_status(url: &str, state: MigrationStatus) {
    let all = status(url).await;
    assert_eq!(all.len(), 17, "{all:?}");
    assert!(all.iter().all(|(_, s)| *s == state), "{all:?}");
}

#[tokio::test]
async fn postgres_up_status_down() {
    let db = TestDb::create().await;
    check_status(&db.url, MigrationStatus::Pending).await;
    up(&db.url, None).await;
    up(&db.url, None).await; // idempotent, as on every upgrade
    check_status(&db.url, MigrationStatus::Applied).await;
    let conn = db.connect().await;
    let tables = names(
        &conn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await;
    assert_eq!(tables, latest(postgres_tables()));
    // Migration 17: keyed by site and day, the blocks stored as they are
    // (compressed already).
    let block_key = "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
                     JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name \
                     WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = 'event_blocks'";
    assert_eq!(names(&conn, block_key).await, ["day", "site_id"]);
    let storage = "SELECT a.attstorage::text FROM pg_attribute a \
                   WHERE a.attrelid = 'event_blocks'::regclass AND a.attname = 'data'";
    assert_eq!(names(&conn, storage).await, ["e"]);
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, EVENT_BLOCKS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, pg_all_tables_sql()).await, with_epochs(postgres_tables()));
    // Migration 16: one row, keyed by `id`, nothing yet dropped or removed.
    let floor_key = "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
                     JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name \
                     WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = 'store_epochs'";
    assert_eq!(names(&conn, floor_key).await, ["id"]);
    let row = "SELECT CAST(id AS TEXT) || ' ' || CAST(site_removals AS TEXT) || ' ' \
               || COALESCE(CAST(first_day_kept AS TEXT), 'none') FROM store_epochs";
    assert_eq!(names(&conn, row).await, ["1 0 none"]);
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, STORE_EPOCHS).await, MigrationStatus::Pending);
    assert_eq!(
        names(&conn, pg_all_tables_sql()).await,
        with_conversions(postgres_tables())
    );
    // Migration 15: goals and funnels, keyed by site and name.
    let keys = "SELECT tc.table_name::text || '(' || string_agg(kcu.column_name::text, ',' ORDER BY kcu.ordinal_position) || ')' \
                FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu \
                ON tc.constraint_name = kcu.constraint_name WHERE tc.constraint_type = 'PRIMARY KEY' \
                AND tc.table_name IN ('goals', 'funnels') GROUP BY tc.table_name ORDER BY 1";
    assert_eq!(
        names(&conn, keys).await,
        ["funnels(site_id,name)", "goals(site_id,name)"]
    );
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, GOALS_FUNNELS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, pg_all_tables_sql()).await, postgres_tables());
    let site_columns = "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'sites'";
    assert_eq!(names(&conn, site_columns).await, SITE_COLUMNS_WITH_ZONE);
    // Migration 14: `sites.timezone`, VARCHAR(64) NOT NULL DEFAULT 'UTC'.
    let zone_column = "SELECT data_type::text || ' ' || CAST(character_maximum_length AS TEXT) || ' ' \
                       || is_nullable::text || ' ' || column_default::text FROM information_schema.columns \
                       WHERE table_name = 'sites' AND column_name = 'timezone'";
    assert_eq!(
        names(&conn, zone_column).await,
        ["character varying 64 NO 'UTC'::character varying"]
    );
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, SITE_TIMEZONE).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, site_columns).await, SITE_COLUMNS);
    assert_eq!(names(&conn, pg_all_tables_sql()).await, postgres_tables());
    // Migration 12: `events` partitioned by day, unkeyed; the key in
    // `event_keys`.
    let partitioned = "SELECT relname::text FROM pg_class WHERE relkind = 'p'";
    assert_eq!(names(&conn, partitioned).await, ["events"]);
    let event_unique = "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE 'CREATE UNIQUE%'";
    assert!(names(&conn, event_unique).await.is_empty());
    let key_indexes = "SELECT indexdef FROM pg_indexes WHERE tablename = 'event_keys'";
    let defs = names(&conn, key_indexes).await;
    assert_eq!(defs.len(), 2, "{defs:?}");
    assert!(
        defs.iter()
            .any(|d| d.starts_with("CREATE UNIQUE") && d.ends_with("(event_id, site_id)")),
        "{defs:?}"
    );
    assert!(defs.iter().any(|d| d.ends_with("(day)")), "{defs:?}");
    let pg_event_indexes =
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events' AND indexname LIKE 'idx_%'";
    assert_eq!(names(&conn, pg_event_indexes).await, EVENT_INDEXES);
    // Migration 13: the context's columns, visitor rollups and salts, and
    // 120-character event names.
    let event_columns = "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'events'";
    let cols = names(&conn, event_columns).await;
    assert!(
        CONTEXT_COLUMNS.iter().all(|c| cols.contains(&c.to_string())),
        "{cols:?}"
    );
    let name_lengths = "SELECT DISTINCT CAST(character_maximum_length AS TEXT) FROM information_schema.columns \
                        WHERE column_name = 'event_type' AND table_name IN ('events', 'daily_event_counts', 'hourly_event_counts')";
    assert_eq!(names(&conn, name_lengths).await, ["120"]);
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, EVENT_CONTEXT).await, MigrationStatus::Pending);
    let cols = names(&conn, event_columns).await;
    assert!(
        !CONTEXT_COLUMNS.iter().any(|c| cols.contains(&c.to_string())),
        "{cols:?}"
    );
    assert_eq!(
        names(&conn, pg_all_tables_sql()).await,
        postgres_tables_before_context()
    );
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, EVENT_PARTITIONS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, partitioned).await, Vec::<String>::new());
    let tables = names(
        &conn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await;
    assert_eq!(tables, all_tables());
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, ACCESS_MIGRATION).await, MigrationStatus::Pending);
    let pg_all_tables =
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'";
    assert_eq!(names(&conn, pg_all_tables).await, TABLES);
    assert_eq!(names(&conn, site_columns).await, ["site_id", "user_count"]);
    let idx = names(
        &conn,
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events'",
    )
    .await;
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
    assert!(unique.iter().any(|d| d.contains("(event_id, site_id)")), "{unique:?}");
    assert!(!unique.iter().any(|d| d.contains("(event_id)")), "{unique:?}");
    assert!(
        unique.iter().any(|d| d.contains("(id, site_id)")),
        "primary key: {unique:?}"
    );

    let pg_tables =
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'";
    let pack_columns = "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'daily_path_packs'";
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "rev", "site_id"]);
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, EVENT_ID_PER_SITE).await, MigrationStatus::Pending);
    let unique = names(
        &conn,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE 'CREATE UNIQUE%'",
    )
    .await;
    assert!(unique.iter().any(|d| d.contains("(event_id)")), "{unique:?}");
    assert!(unique.iter().any(|d| d.ends_with("(id)")), "primary key: {unique:?}");
    down(&db.url, 1).await;
    assert_eq!(names(&conn, pg_event_indexes).await, TRIMMED_EVENT_INDEXES);
    assert_eq!(status_of(&db.url, TIME_FIRST_INDEX).await, MigrationStatus::Pending);
    down(&db.url, 1).await;
    assert_eq!(status_of(&db.url, WEEKLY_ROLLUPS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, pg_tables).await, tables_before_weekly());
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "site_id"]);
    down(&db.url, 1).await;
    assert_eq!(names(&conn, pg_event_indexes).await, SEED_EVENT_INDEXES);
    assert_eq!(status_of(&db.url, RAW_EVENT_INDEXES).await, MigrationStatus::Pending);
    down(&db.url, 6).await;
    check_status(&db.url, MigrationStatus::Pending).await;
    let tables = names(
        &conn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await;
    assert!(tables.is_empty(), "{tables:?}");
    up(&db.url, None).await;
    check_status(&db.url, MigrationStatus::Applied).await;
}

#[tokio::test]
async fn sqlite_up_status_down() {
    let url = sqlite_url();
    up(&url, None).await;
    check_status(&url, MigrationStatus::Applied).await;
    let conn = Database::connect(url.as_str()).await.unwrap();
    let sqlite_tables =
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'";
    let event_indexes =
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'idx_%'";
    assert_eq!(names(&conn, sqlite_tables).await, latest(self::sqlite_tables()));
    down(&url, 1).await;
    assert_eq!(status_of(&url, EVENT_BLOCKS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, sqlite_tables).await, with_epochs(self::sqlite_tables()));
    down(&url, 1).await;
    assert_eq!(status_of(&url, STORE_EPOCHS).await, MigrationStatus::Pending);
    assert_eq!(
        names(&conn, sqlite_tables).await,
        with_conversions(self::sqlite_tables())
    );
    down(&url, 1).await;
    assert_eq!(status_of(&url, GOALS_FUNNELS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, sqlite_tables).await, self::sqlite_tables());
    let site_columns = "SELECT name FROM pragma_table_info('sites')";
    assert_eq!(names(&conn, site_columns).await, SITE_COLUMNS_WITH_ZONE);
    let zone_column = "SELECT type || ' ' || CAST(\"notnull\" AS TEXT) || ' ' || dflt_value \
                       FROM pragma_table_info('sites') WHERE name = 'timezone'";
    assert_eq!(names(&conn, zone_column).await, ["varchar(64) 1 'UTC'"]);
    down(&url, 1).await;
    assert_eq!(status_of(&url, SITE_TIMEZONE).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, site_columns).await, SITE_COLUMNS);
    assert_eq!(names(&conn, sqlite_tables).await, self::sqlite_tables());
    let event_columns = "SELECT name FROM pragma_table_info('events')";
    let cols = names(&conn, event_columns).await;
    assert!(
        CONTEXT_COLUMNS.iter().all(|c| cols.contains(&c.to_string())),
        "{cols:?}"
    );
    down(&url, 1).await;
    assert_eq!(status_of(&url, EVENT_CONTEXT).await, MigrationStatus::Pending);
    let cols = names(&conn, event_columns).await;
    assert!(
        !CONTEXT_COLUMNS.iter().any(|c| cols.contains(&c.to_string())),
        "{cols:?}"
    );
    assert_eq!(names(&conn, sqlite_tables).await, all_tables());
    let events_sql = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'";
    let before = names(&conn, events_sql).await;
    // Migration 12 is PostgreSQL's alone: SQLite keeps its table and key.
    down(&url, 1).await;
    assert_eq!(status_of(&url, EVENT_PARTITIONS).await, MigrationStatus::Pending);
    assert_eq!(names(&conn, sqlite_tables).await, all_tables());
    assert_eq!(names(&conn, events_sql).await, before);
    assert_eq!(names(&conn, site_columns).await, SITE_COLUMNS);
    down(&url, 1).await;
    assert_eq!(names(&conn, sqlite_tables).await, TABLES);
    assert_eq!(names(&conn, site_columns).await, ["site_id", "user_count"]);
    assert_eq!(names(&conn, event_indexes).await, EVENT_INDEXES);
    let pack_columns = "SELECT name FROM pragma_table_info('daily_path_packs')";
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "rev", "site_id"]);
    let sql = names(&conn, events_sql).await.join("");
    assert!(sql.contains(r#"UNIQUE ("event_id", "site_id")"#), "{sql}");
    down(&url, 1).await;
    let sql = names(&conn, events_sql).await.join("");
    assert!(sql.contains(r#"UNIQUE ("event_id")"#), "{sql}");
    assert_eq!(
        names(&conn, event_indexes).await,
        EVENT_INDEXES,
        "the rebuilt table keeps its index"
    );
    down(&url, 1).await;
    assert_eq!(names(&conn, event_indexes).await, TRIMMED_EVENT_INDEXES);
    down(&url, 1).await;
    assert_eq!(names(&conn, sqlite_tables).await, tables_before_weekly());
    assert_eq!(names(&conn, pack_columns).await, ["day", "paths", "site_id"]);
    down(&url, 1).await;
    assert_eq!(names(&conn, event_indexes).await, SEED_EVENT_INDEXES);
    down(&url, 4).await;
    let lines = status(&url).await;
    assert!(
        lines.contains(&("m20251115_000002_create_rollups".into(), MigrationStatus::Applied))
            && lines.contains(&(
                "m20251201_000003_create_dashboard_rollups".into(),
                MigrationStatus::Pending
            )),
        "{lines:?}"
    );
    up(&url, None).await;
    check_status(&url, MigrationStatus::Applied).await;
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
    up(url, Some(3)).await;
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
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .unwrap();
        }
    }
    up(url, None).await;
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
            let got = analytics_core::query::stats::totals(&db, site, date(from), date(to))
                .await
                .unwrap()
                .unique_users;
            assert_eq!(got, distinct(site, from, to), "site {site} days {from}..={to}");
        }
    }
    down(url, since("m20261124_000004_user_sets")).await;
    assert_eq!(sorted_facts(&db).await, facts);
    up(url, None).await;
    assert_eq!(
        analytics_core::query::stats::totals(&db, "b", date(1), date(3))
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
    user_sets_round_trip(&sqlite_url()).await;
}

/// Migration 6 fills `daily_event_counts` from the hourly counts.
async fn daily_counts_backfill(url: &str) {
    up(url, Some(5)).await;
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
        let sql =
            "INSERT INTO hourly_event_counts (site_id, day, hour, event_type, events) VALUES ($1, $2, $3, $4, $5)";
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
    up(url, None).await;
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
    daily_counts_backfill(&sqlite_url()).await;
}

/// Migration 14 puts every site, those there before it and those a writer
/// adds after it (naming only `site_id`), in UTC; a zone set survives
/// another `up`; `down` drops the column and keeps every site.
async fn site_timezone_round_trip(url: &str) {
    up(url, Some(13)).await;
    let db = Database::connect(url).await.unwrap();
    let run = |sql: &'static str| {
        let db = &db;
        async move {
            db.execute_unprepared(sql).await.unwrap();
        }
    };
    run("INSERT INTO sites (site_id, user_count, registered) VALUES ('old', 3, TRUE)").await;
    up(url, None).await;
    assert_eq!(status_of(url, SITE_TIMEZONE).await, MigrationStatus::Applied);
    run("INSERT INTO sites (site_id) VALUES ('new') ON CONFLICT (site_id) DO NOTHING").await;
    let zones = "SELECT site_id || ' ' || timezone FROM sites";
    assert_eq!(names(&db, zones).await, ["new UTC", "old UTC"]);
    run("UPDATE sites SET timezone = 'Asia/Kathmandu' WHERE site_id = 'old'").await;
    up(url, None).await;
    assert_eq!(names(&db, zones).await, ["new UTC", "old Asia/Kathmandu"]);
    let null = db
        .execute_unprepared("UPDATE sites SET timezone = NULL WHERE site_id = 'new'")
        .await;
    assert!(null.is_err(), "timezone is NOT NULL");
    down(url, since(SITE_TIMEZONE)).await;
    assert_eq!(status_of(url, SITE_TIMEZONE).await, MigrationStatus::Pending);
    let kept = "SELECT site_id || ' ' || CAST(user_count AS TEXT) FROM sites";
    assert_eq!(names(&db, kept).await, ["new 0", "old 3"]);
    assert!(db.execute_unprepared("SELECT timezone FROM sites").await.is_err());
    up(url, None).await;
    assert_eq!(
        names(&db, zones).await,
        ["new UTC", "old UTC"],
        "a new column, every site in UTC"
    );
}

#[tokio::test]
async fn postgres_site_timezone_migration_defaults_to_utc_and_rolls_back() {
    let db = TestDb::create().await;
    site_timezone_round_trip(&db.url).await;
}

#[tokio::test]
async fn sqlite_site_timezone_migration_defaults_to_utc_and_rolls_back() {
    site_timezone_round_trip(&sqlite_url()).await;
}

/// Removing a site (`analytics_core::access::sites::remove`) deletes from
/// every table with a `site_id` column: those `SITE_TABLES` names, and on
/// PostgreSQL `POSTGRES_SITE_TABLES` too. A day partition of `events` is
/// reached through `events`.
async fn site_tables_cover(url: &str) {
    use analytics_core::store::schema::{POSTGRES_SITE_TABLES, SITE_TABLES};
    up(url, None).await;
    let db = Database::connect(url).await.unwrap();
    let event = analytics_core::event::IncomingEvent {
        site_id: Some("s".into()),
        event_type: Some("page_view".into()),
        ..Default::default()
    }
    .validate(chrono::Utc::now())
    .unwrap();
    analytics_core::store::Writer::open(&db)
        .unwrap()
        .write(&[event])
        .await
        .unwrap();
    let (found, mut want): (Vec<String>, Vec<&str>) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => (
            names(
                &db,
                "SELECT DISTINCT c.relname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 WHERE a.attname = 'site_id' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
                 AND c.relnamespace = current_schema()::regnamespace",
            )
            .await,
            SITE_TABLES.into_iter().chain(POSTGRES_SITE_TABLES).collect(),
        ),
        _ => (
            names(
                &db,
                "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name = 'site_id'",
            )
            .await,
            SITE_TABLES.to_vec(),
        ),
    };
    want.sort_unstable();
    assert_eq!(found, want);
}

#[tokio::test]
async fn postgres_site_tables_cover_every_table_with_a_site() {
    let db = TestDb::create().await;
    site_tables_cover(&db.url).await;
}

#[tokio::test]
async fn sqlite_site_tables_cover_every_table_with_a_site() {
    site_tables_cover(&sqlite_url()).await;
}

/// Every raw event as text, in id order.
async fn raw_events(db: &DatabaseConnection) -> Vec<String> {
    names(
        db,
        "SELECT lpad(CAST(id AS TEXT), 6, '0') || ' ' || CAST(event_id AS TEXT) || ' ' || site_id || ' ' \
           || event_type || ' ' || path || ' ' || user_id || ' ' \
           || to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' ' \
           || to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' ' \
           || COALESCE(referrer, '-') || ' ' || COALESCE(CAST(props AS TEXT), '-') FROM events",
    )
    .await
}

/// Migration 12 moves every row into its UTC day's partition and its key
/// into `event_keys`, whatever the session's time zone; the writer then
/// takes a resend as a duplicate and a new day as a new partition; `down`
/// puts every row back under the old unique key.
#[tokio::test]
async fn postgres_partitions_migration_keeps_every_event() {
    let db = TestDb::create().await;
    up(&db.url, Some(11)).await;
    let conn = db.connect().await;
    // Bounds and days must not follow the session's zone.
    conn.execute_unprepared(&format!("ALTER DATABASE {} SET TimeZone = 'America/New_York'", db.name))
        .await
        .unwrap();
    conn.close().await.unwrap();
    let conn = db.connect().await;
    let shared_id = "0191d0a4-0000-7000-8000-000000000001";
    let rows = [
        // 2025-11-15 04:30 UTC, the 14th in New York.
        (
            shared_id,
            "a",
            "2025-11-14T23:30:00-05:00",
            Some("https://r.example/"),
            Some(r#"{"k": 1}"#),
        ),
        (shared_id, "b", "2025-11-15T00:00:00Z", None, None),
        (
            "0191d0a4-0000-7000-8000-000000000002",
            "a",
            "2025-11-15T23:59:59.999Z",
            None,
            None,
        ),
        (
            "0191d0a4-0000-7000-8000-000000000003",
            "a",
            "2025-11-16T00:00:00Z",
            None,
            None,
        ),
        (
            "0191d0a4-0000-7000-8000-000000000004",
            "b",
            "0001-01-01T00:00:00Z",
            None,
            None,
        ),
        (
            "0191d0a4-0000-7000-8000-000000000005",
            "b",
            "2024-02-29T12:00:00Z",
            Some(""),
            None,
        ),
    ];
    for (id, site, ts, referrer, props) in rows {
        conn.execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "INSERT INTO events (event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props) \
             VALUES (CAST($1 AS uuid), $2, 'page_view', '/p', 'u', CAST($3 AS timestamptz), now(), $4, CAST($5 AS jsonb))",
            [id.into(), site.into(), ts.into(), referrer.into(), props.into()],
        ))
        .await
        .unwrap();
    }
    let before = raw_events(&conn).await;
    up(&db.url, None).await;
    assert_eq!(raw_events(&conn).await, before, "every row, as it was");
    let partitions = "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                      WHERE i.inhparent = 'events'::regclass";
    assert_eq!(
        names(&conn, partitions).await,
        [
            "events_p00010101",
            "events_p20240229",
            "events_p20251115",
            "events_p20251116"
        ]
    );
    let per_partition = names(
        &conn,
        "SELECT tableoid::regclass::text || ' ' || CAST(COUNT(*) AS TEXT) FROM events GROUP BY tableoid",
    )
    .await;
    assert_eq!(
        per_partition,
        [
            "events_p00010101 1",
            "events_p20240229 1",
            "events_p20251115 3",
            "events_p20251116 1"
        ]
    );
    let keys = names(
        &conn,
        "SELECT site_id || ' ' || to_char(day, 'YYYY-MM-DD') || ' ' || CAST(event_id AS TEXT) FROM event_keys",
    )
    .await;
    assert_eq!(
        keys,
        [
            "a 2025-11-15 0191d0a4-0000-7000-8000-000000000001",
            "a 2025-11-15 0191d0a4-0000-7000-8000-000000000002",
            "a 2025-11-16 0191d0a4-0000-7000-8000-000000000003",
            "b 0001-01-01 0191d0a4-0000-7000-8000-000000000004",
            "b 2024-02-29 0191d0a4-0000-7000-8000-000000000005",
            "b 2025-11-15 0191d0a4-0000-7000-8000-000000000001",
        ]
    );

    // The writer: a resend (another timestamp, another day) is a duplicate;
    // a new day gets its partition; ids keep counting up.
    let event = |id: &str, site: &str, ts: &str| {
        analytics_core::event::IncomingEvent {
            event_id: Some(id.into()),
            site_id: Some(site.into()),
            event_type: Some("page_view".into()),
            path: Some("/q".into()),
            timestamp: Some(ts.into()),
            ..Default::default()
        }
        .validate_with(chrono::Utc::now(), analytics_core::event::Policy::stored())
        .unwrap()
    };
    let writer = analytics_core::store::Writer::open(&conn).unwrap();
    let outcome = writer
        .write(&[
            event(shared_id, "a", "2025-11-20T10:00:00Z"),
            event("0191d0a4-0000-7000-8000-000000000006", "a", "2025-11-20T10:00:00Z"),
        ])
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 1), "{outcome:?}");
    assert!(names(&conn, partitions).await.contains(&"events_p20251120".to_string()));
    let ids = names(&conn, "SELECT lpad(CAST(id AS TEXT), 6, '0') FROM events").await;
    assert_eq!(ids.len(), 7);
    assert_eq!(ids.last().unwrap(), "000007", "the sequence went on: {ids:?}");
    let after = raw_events(&conn).await;

    // Migration 12 and every later one.
    down(&db.url, since(EVENT_PARTITIONS)).await;
    assert_eq!(raw_events(&conn).await, after, "every row back in the old table");
    assert!(names(&conn, partitions).await.is_empty());
    let unique = names(
        &conn,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE 'CREATE UNIQUE%'",
    )
    .await;
    assert!(unique.iter().any(|d| d.contains("(event_id, site_id)")), "{unique:?}");
    assert!(unique.iter().any(|d| d.contains("(id, site_id)")), "{unique:?}");
    up(&db.url, None).await;
    assert_eq!(raw_events(&conn).await, after, "and up again");
}

/// The code of a migration file, comments taken out: prose may name
/// anything, code may not.
fn code_of(src: &str) -> String {
    let mut out = String::new();
    let mut chars = src.chars().peekable();
    let (mut in_string, mut block_depth) = (false, 0);
    while let Some(c) = chars.next() {
        if block_depth > 0 {
            match (c, chars.peek()) {
                ('*', Some('/')) => {
                    chars.next();
                    block_depth -= 1;
                }
                ('/', Some('*')) => {
                    chars.next();
                    block_depth += 1;
                }
                ('\n', _) => out.push('\n'),
                _ => {}
            }
            continue;
        }
        if in_string {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('/', Some('/')) => {
                for rest in chars.by_ref() {
                    if rest == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                block_depth = 1;
            }
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Replaying history on a fresh database must not depend on today's code:
/// no migration (nor the list of them) uses `analytics_core`.
#[test]
fn migrations_use_only_their_own_code() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.starts_with('m') && name.ends_with(".rs") && name != "main.rs") || name == "lib.rs"
        })
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        Migrator::migrations().len() + 1,
        "every migration and lib.rs: {files:?}"
    );
    let mut offenders = Vec::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (n, line) in code.lines().enumerate() {
            if line.contains("analytics_core") || line.contains("analytics-core") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "migrations must use only their own code:\n{}",
        offenders.join("\n")
    );
    // The scan sees code, and only code.
    assert!(code_of("use analytics_core::x; // y").contains("analytics_core"));
    assert!(
        !code_of("/// analytics_core\n/* analytics_core */ let s = \"//\"; // analytics_core")
            .contains("analytics_core")
    );
}
