//! Retention by age: raw events older than the bound are deleted, answers
//! for the retained days are unchanged, and the old days keep answering
//! from the rollups unless retention drops those too. PostgreSQL and
//! SQLite.

use analytics_core::event::{Event, IncomingEvent};
use analytics_core::maintenance::retention::{apply, Retention};
use analytics_core::query::stats::{query, StatsQuery};
use analytics_core::store::Writer;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use testkit::db::TestDb;

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + Days::new(n)
}

fn events() -> Vec<Event> {
    (0..20u64)
        .flat_map(|d| (0..(d % 5 + 3)).map(move |i| (d, i)))
        .map(|(d, i)| {
            let ts = Utc.from_utc_datetime(&day(d).and_hms_opt((i * 5 % 24) as u32, 0, 0).unwrap());
            IncomingEvent {
                site_id: Some("s".into()),
                event_type: Some("page_view".into()),
                path: Some(format!("/{}", i % 3)),
                user_id: Some(format!("u{}", (d + i) % 7)),
                timestamp: Some(ts.to_rfc3339()),
                ..Default::default()
            }
            .validate(Utc::now())
            .unwrap()
        })
        .collect()
}

async fn answer(db: &DatabaseConnection, from: u64, to: u64) -> String {
    let q = StatsQuery {
        site_id: "s".into(),
        from: day(from),
        to: day(to),
        limit: 100,
        single_date: false,
        compare: false,
    };
    let s = query(db, &q).await.unwrap();
    format!(
        "{} {} {} {:?}",
        s.total_views, s.unique_users, s.total_events, s.top_paths
    )
}

async fn raw(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(COUNT(*) AS BIGINT) FROM events",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn retention(db: DatabaseConnection, rollups: bool) {
    let all = events();
    Writer::open(&db).unwrap().write(&all).await.unwrap();
    let old: Vec<String> = futures_answers(&db, 0..10).await;
    let kept: Vec<String> = futures_answers(&db, 10..20).await;
    let whole = answer(&db, 10, 19).await;
    // "Now" is day 19 at noon; 9 days kept: day 10 on.
    let now: DateTime<Utc> = Utc.from_utc_datetime(&day(19).and_hms_opt(12, 0, 0).unwrap());
    let deleted = apply(&db, Retention { days: 9, rollups }, now).await.unwrap();
    let older = all.iter().filter(|e| e.timestamp.date_naive() < day(10)).count();
    assert_eq!(deleted as usize, older);
    assert_eq!(raw(&db).await as usize, all.len() - older);
    assert_eq!(futures_answers(&db, 10..20).await, kept, "retained days unchanged");
    assert_eq!(answer(&db, 10, 19).await, whole);
    let now_old = futures_answers(&db, 0..10).await;
    if rollups {
        assert!(now_old.iter().all(|a| a.starts_with("0 0 0 []")), "{now_old:?}");
    } else {
        assert_eq!(now_old, old, "the rollups kept answer for the old days");
    }
    // A second run finds nothing more.
    assert_eq!(apply(&db, Retention { days: 9, rollups }, now).await.unwrap(), 0);
}

async fn futures_answers(db: &DatabaseConnection, days: std::ops::Range<u64>) -> Vec<String> {
    let mut out = Vec::new();
    for d in days {
        out.push(answer(db, d, d).await);
    }
    out
}

#[tokio::test]
async fn postgres_retention_keeps_rollups() {
    let db = TestDb::migrated().await;
    retention(db.connect().await, false).await;
}

#[tokio::test]
async fn postgres_retention_drops_rollups_when_asked() {
    let db = TestDb::migrated().await;
    retention(db.connect().await, true).await;
}

#[tokio::test]
async fn sqlite_retention_keeps_rollups() {
    retention(super::migrated_sqlite().await, false).await;
}

#[tokio::test]
async fn sqlite_retention_drops_rollups_when_asked() {
    retention(super::migrated_sqlite().await, true).await;
}
