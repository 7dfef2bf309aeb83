//! Deleting a user leaves every answer equal to the answer of a database
//! that never saw them: `/stats` over every day and over ranges with whole
//! weeks (weekly caches built before the deletion), top paths (views in
//! rows and in packs), hourly and daily series, event-type breakdowns and
//! the live minutes. Then the user comes back (the writer that knew their
//! old ordinal must not reuse it) and is deleted again. PostgreSQL and
//! SQLite.

use analytics_core::event::{Event, IncomingEvent};
use analytics_core::maintenance::compaction::compact;
use analytics_core::maintenance::run_once;
use analytics_core::ops::health::Liveness;
use analytics_core::query::breakdown::{breakdown, BreakdownQuery, Dimension};
use analytics_core::query::live::live;
use analytics_core::query::series::{series, Interval, SeriesQuery};
use analytics_core::query::stats::{query, StatsQuery};
use analytics_core::store::{user_events, Writer};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;
use testkit::db::TestDb;
use testkit::rollups::{count, scalar};

const SITES: [&str; 2] = ["s", "t"];
/// 2026-10-05 is a Monday: 17 days, two whole weeks and three days.
fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5).unwrap() + Days::new(n)
}
const DAYS: u64 = 17;

fn events(rng: &mut ChaCha8Rng, n: usize, users: &[&str]) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let d = day(rng.random_range(0..DAYS));
            let ts = Utc
                .from_utc_datetime(
                    &d.and_hms_opt(rng.random_range(0..24), rng.random_range(0..60), 0)
                        .unwrap(),
                )
                .to_rfc3339();
            let kind = ["page_view", "page_view", "page_view", "click", "signup"][rng.random_range(0..5)];
            IncomingEvent {
                site_id: Some(SITES[usize::from(rng.random_bool(0.2))].into()),
                event_type: Some(kind.into()),
                path: Some(format!("/p{}", rng.random_range(0..12))),
                user_id: Some(users[rng.random_range(0..users.len())].into()),
                timestamp: Some(ts),
                ..Default::default()
            }
            .validate(Utc::now())
            .unwrap()
        })
        .collect()
}

/// Every answer the queries give over `db`, as text, for comparison; the
/// live minutes as of `now` (one instant for the answers compared: each
/// taking its own, a minute boundary between them moved the live window).
async fn answers(db: &DatabaseConnection, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    let mut ranges: Vec<(u64, u64)> = (0..DAYS).map(|d| (d, d)).collect();
    ranges.extend([(0, DAYS - 1), (0, 13), (2, 15), (7, 13), (3, 9)]);
    for site in SITES {
        for (from, to) in &ranges {
            let (from, to) = (day(*from), day(*to));
            let q = StatsQuery {
                site_id: site.into(),
                from,
                to,
                limit: 100,
                single_date: false,
                compare: false,
            };
            out.push(format!("stats {site} {from} {to}: {:?}", query(db, &q).await.unwrap()));
            let b = BreakdownQuery {
                site_id: site.into(),
                from,
                to,
                by: Dimension::EventType,
                limit: 100,
            };
            out.push(format!(
                "types {site} {from} {to}: {:?}",
                breakdown(db, &b).await.unwrap().rows
            ));
        }
        for interval in [Interval::Hour, Interval::Day] {
            let q = SeriesQuery {
                site_id: site.into(),
                from: day(0),
                to: day(DAYS - 1),
                interval,
            };
            out.push(format!(
                "series {site} {interval:?}: {:?}",
                series(db, &q).await.unwrap().points
            ));
        }
        out.push(format!("live {site}: {:?}", live(db, site, now).await.unwrap().minutes));
    }
    out
}

async fn write_all(db: &DatabaseConnection, writer: &Writer, batches: &[Vec<Event>]) {
    for (i, b) in batches.iter().enumerate() {
        writer.write(b).await.unwrap();
        if i % 2 == 1 {
            compact(db).await.unwrap();
        }
    }
}

fn without(batches: &[Vec<Event>], user: &str) -> Vec<Vec<Event>> {
    batches
        .iter()
        .map(|b| {
            b.iter()
                .filter(|e| !(e.site_id == "s" && e.user_id == user))
                .cloned()
                .collect()
        })
        .collect()
}

async fn deleted_as_if_never_seen(db: DatabaseConnection, fresh: DatabaseConnection) {
    let liveness = Liveness::default();
    let users: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let batches: Vec<Vec<Event>> = (0..6).map(|_| events(&mut rng, 500, &names)).collect();
    let writer = Writer::open(&db).unwrap();
    write_all(&db, &writer, &batches).await;
    // Weekly caches built from the days as they were.
    run_once(&db, &liveness, None, None).await;
    assert!(scalar(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM weekly_user_sets").await > 0);

    let gone = "u3";
    let sent = batches
        .iter()
        .flatten()
        .filter(|e| e.site_id == "s" && e.user_id == gone)
        .count();
    assert!(sent > 10, "the user had events ({sent})");
    let removed = user_events::delete(&db, "s", gone).await.unwrap();
    assert_eq!(removed as usize, sent);
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM site_users WHERE site_id = 's' AND user_id = 'u3'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM events WHERE site_id = 's' AND user_id = 'u3'"
        )
        .await,
        0
    );
    // The other site's u3 is another user.
    assert!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM events WHERE site_id = 't' AND user_id = 'u3'"
        )
        .await
            > 0
    );

    let fresh_writer = Writer::open(&fresh).unwrap();
    let kept = without(&batches, gone);
    write_all(&fresh, &fresh_writer, &kept).await;
    run_once(&fresh, &liveness, None, None).await;
    let now = Utc::now();
    let want = answers(&fresh, now).await;
    assert_eq!(answers(&db, now).await, want, "right after the deletion");
    // After maintenance rebuilds the dropped weeks too.
    run_once(&db, &liveness, None, None).await;
    assert_eq!(answers(&db, now).await, want, "after the weeks are rebuilt");

    // The user comes back through the writer that knew their old ordinal.
    let back: Vec<Event> = events(&mut rng, 200, &[gone, "u7"]);
    writer.write(&back).await.unwrap();
    fresh_writer.write(&back).await.unwrap();
    run_once(&db, &liveness, None, None).await;
    run_once(&fresh, &liveness, None, None).await;
    let now = Utc::now();
    assert_eq!(
        answers(&db, now).await,
        answers(&fresh, now).await,
        "the user came back"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM site_users WHERE site_id = 's' AND user_id = 'u3'"
        )
        .await,
        1,
        "a new ordinal row, not the cached old one"
    );
    // And is deleted again: nothing of them is left anywhere.
    let again = back.iter().filter(|e| e.site_id == "s" && e.user_id == gone).count();
    assert_eq!(user_events::delete(&db, "s", gone).await.unwrap() as usize, again);
    assert_eq!(
        user_events::delete(&db, "s", gone).await.unwrap(),
        0,
        "a second deletion finds nothing"
    );
    keys_match_rows(&db).await;
    // Never seen: a resend of one of their deleted events is new again.
    let resent: Vec<Event> = back
        .iter()
        .filter(|e| e.site_id == "s" && e.user_id == gone)
        .take(1)
        .cloned()
        .collect();
    assert_eq!(writer.write(&resent).await.unwrap().inserted, 1);
}

/// On PostgreSQL every raw row has its key in `event_keys`, and no key is
/// left without its row.
async fn keys_match_rows(db: &DatabaseConnection) {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let orphans = "SELECT CAST(COUNT(*) AS BIGINT) FROM event_keys k \
                       WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = k.event_id AND e.site_id = k.site_id)";
        assert_eq!(scalar(db, orphans).await, 0, "keys without rows");
        assert_eq!(count(db, "event_keys").await, count(db, "events").await);
    }
}

/// Removing a site takes every row of it, its keys with it on PostgreSQL:
/// its events sent again count again; the other site's stay.
async fn removed_site_is_as_if_never_seen(db: DatabaseConnection) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let batch = events(&mut rng, 300, &["a", "b", "c"]);
    let writer = Writer::open(&db).unwrap();
    writer.write(&batch).await.unwrap();
    let of_s = batch.iter().filter(|e| e.site_id == "s").count();
    assert_eq!(
        analytics_core::access::sites::remove(&db, "s").await.unwrap() as usize,
        of_s
    );
    assert_eq!(count(&db, "events").await as usize, batch.len() - of_s);
    keys_match_rows(&db).await;
    let o = writer.write(&batch).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (of_s, batch.len() - of_s));
    keys_match_rows(&db).await;
}

#[tokio::test]
async fn postgres_a_removed_site_is_as_if_never_seen() {
    let db = TestDb::migrated().await;
    removed_site_is_as_if_never_seen(db.connect().await).await;
}

#[tokio::test]
async fn sqlite_a_removed_site_is_as_if_never_seen() {
    removed_site_is_as_if_never_seen(super::migrated_sqlite().await).await;
}

#[tokio::test]
async fn postgres_a_deleted_user_is_as_if_never_seen() {
    let (db, fresh) = (TestDb::migrated().await, TestDb::migrated().await);
    deleted_as_if_never_seen(db.connect().await, fresh.connect().await).await;
}

#[tokio::test]
async fn sqlite_a_deleted_user_is_as_if_never_seen() {
    deleted_as_if_never_seen(super::migrated_sqlite().await, super::migrated_sqlite().await).await;
}
