//! Retention by age: raw events older than the bound are dropped, answers
//! for the retained days are unchanged, and the old days keep answering
//! from the rollups unless retention drops those too. PostgreSQL and
//! SQLite; on PostgreSQL the old days' partitions are dropped whole.
//!
//! And the daily partitions themselves (PostgreSQL): a resend on another
//! day still counts once (the idempotency key is not the partition's), a
//! day long past gets its partition on demand, writers racing to create
//! one day's partition all succeed, a writer whose known partition was
//! dropped creates it again, and maintenance creates the coming days.

use analytics_core::event::{Event, IncomingEvent, Policy};
use analytics_core::maintenance::retention::{apply, Retention};
use analytics_core::maintenance::{run_once, PARTITIONS_AHEAD};
use analytics_core::ops::health::Liveness;
use analytics_core::query::breakdown::{breakdown, BreakdownQuery, Dimension};
use analytics_core::query::series::{series, Interval, SeriesQuery};
use analytics_core::query::stats::{query, StatsQuery};
use analytics_core::store::postgres::partitions;
use analytics_core::store::Writer;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder};
use testkit::db::TestDb;
use testkit::rollups::{count, scalar};

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + Days::new(n)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn event(id: Option<&str>, site: &str, user: &str, path: &str, ts: DateTime<Utc>) -> Event {
    IncomingEvent {
        event_id: id.map(str::to_string),
        site_id: Some(site.into()),
        event_type: Some(if path.ends_with('2') { "click" } else { "page_view" }.into()),
        path: Some(path.into()),
        user_id: Some(user.into()),
        timestamp: Some(ts.to_rfc3339()),
        ..Default::default()
    }
    .validate_with(Utc::now(), Policy::stored())
    .unwrap()
}

fn events() -> Vec<Event> {
    (0..20u64)
        .flat_map(|d| (0..(d % 5 + 3)).map(move |i| (d, i)))
        .map(|(d, i)| {
            let ts = Utc.from_utc_datetime(&day(d).and_hms_opt((i * 5 % 24) as u32, 0, 0).unwrap());
            event(None, "s", &format!("u{}", (d + i) % 7), &format!("/{}", i % 3), ts)
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

/// Every other answer over days `from..=to`: the series by hour and by
/// day, and the breakdowns by event type and by path.
async fn other_answers(db: &DatabaseConnection, from: u64, to: u64) -> Vec<String> {
    let mut out = Vec::new();
    for interval in [Interval::Hour, Interval::Day] {
        let q = SeriesQuery {
            site_id: "s".into(),
            from: day(from),
            to: day(to),
            interval,
        };
        out.push(format!("{interval:?} {:?}", series(db, &q).await.unwrap().points));
    }
    for by in [Dimension::EventType, Dimension::Path] {
        let q = BreakdownQuery {
            site_id: "s".into(),
            from: day(from),
            to: day(to),
            by,
            limit: 100,
        };
        out.push(format!("{:?}", breakdown(db, &q).await.unwrap().rows));
    }
    out
}

async fn raw(db: &DatabaseConnection) -> i64 {
    count(db, "events").await
}

/// The raw rows from `from` on, whole, in id order.
async fn rows_from(db: &DatabaseConnection, from: NaiveDate) -> Vec<entity::events::Model> {
    entity::events::Entity::find()
        .filter(entity::events::Column::Timestamp.gte(midnight(from)))
        .order_by_asc(entity::events::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// The day partitions of `events`, by name (PostgreSQL).
async fn partition_names(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
        ))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get_by_index(0).unwrap()).collect()
}

fn names_of(days: impl IntoIterator<Item = u64>) -> Vec<String> {
    days.into_iter().map(|d| partitions::name(day(d))).collect()
}

async fn retention(db: DatabaseConnection, rollups: bool) {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let all = events();
    Writer::open(&db).unwrap().write(&all).await.unwrap();
    if postgres {
        assert_eq!(partition_names(&db).await, names_of(0..20), "one partition per day");
    }
    let old: Vec<String> = futures_answers(&db, 0..10).await;
    let kept: Vec<String> = futures_answers(&db, 10..20).await;
    let whole = answer(&db, 10, 19).await;
    let others = other_answers(&db, 10, 19).await;
    let kept_rows = rows_from(&db, day(10)).await;
    // "Now" is day 19 at noon; 9 days kept: day 10 on.
    let now: DateTime<Utc> = Utc.from_utc_datetime(&day(19).and_hms_opt(12, 0, 0).unwrap());
    let r = Retention { days: 9, rollups };
    assert_eq!(r.first_day_kept(now), day(10));
    let dropped = apply(&db, r, now).await.unwrap();
    let older = all.iter().filter(|e| e.timestamp.date_naive() < day(10)).count();
    assert_eq!(dropped.events as usize, older);
    assert_eq!(raw(&db).await as usize, all.len() - older);
    if postgres {
        assert_eq!(dropped.partitions, (0..10).map(day).collect::<Vec<_>>());
        assert_eq!(
            partition_names(&db).await,
            names_of(10..20),
            "the old days' partitions are gone"
        );
        assert_eq!(count(&db, "event_keys").await, raw(&db).await, "one key a row");
    } else {
        assert!(dropped.partitions.is_empty());
    }
    assert_eq!(rows_from(&db, day(10)).await, kept_rows, "retained rows untouched");
    assert_eq!(rows_from(&db, day(0)).await, kept_rows, "and no other row left");
    assert_eq!(futures_answers(&db, 10..20).await, kept, "retained days unchanged");
    assert_eq!(answer(&db, 10, 19).await, whole);
    assert_eq!(other_answers(&db, 10, 19).await, others);
    let now_old = futures_answers(&db, 0..10).await;
    if rollups {
        assert!(now_old.iter().all(|a| a.starts_with("0 0 0 []")), "{now_old:?}");
    } else {
        assert_eq!(now_old, old, "the rollups kept answer for the old days");
    }
    // A second run finds nothing more.
    let again = apply(&db, r, now).await.unwrap();
    assert_eq!((again.events, again.partitions.len()), (0, 0));
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

/// The reason the key is not the partition's: a resend that the api
/// stamped with another day's timestamp is still the same event.
#[tokio::test]
async fn postgres_resend_on_another_day_counts_once() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    let id = "0191d0a4-0000-7000-8000-0000000000aa";
    let first = event(
        Some(id),
        "s",
        "u",
        "/a",
        midnight(day(3)) + chrono::TimeDelta::hours(23),
    );
    let resent = event(
        Some(id),
        "s",
        "u",
        "/a",
        midnight(day(4)) + chrono::TimeDelta::minutes(5),
    );
    let other_site = event(Some(id), "t", "u", "/a", midnight(day(4)));
    let writer = Writer::open(&db).unwrap();
    let o = writer.write(&[first]).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 0));
    let o = writer.write(std::slice::from_ref(&resent)).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (0, 1), "the resend is a duplicate");
    // Another writer (no cache of this day) and a batch mixing both.
    let o = Writer::open(&db).unwrap().write(&[resent, other_site]).await.unwrap();
    assert_eq!(
        (o.inserted, o.duplicates),
        (1, 1),
        "another site's event with the same id is new"
    );
    assert_eq!(raw(&db).await, 2);
    assert_eq!(count(&db, "event_keys").await, 2);
    assert_eq!(answer(&db, 3, 3).await, "1 1 1 [PathViews { path: \"/a\", views: 1 }]");
    assert_eq!(
        answer(&db, 4, 4).await,
        "0 0 0 []",
        "nothing counted on the resend's day"
    );
    assert_eq!(answer(&db, 3, 4).await, "1 1 1 [PathViews { path: \"/a\", views: 1 }]");
}

/// An import of old history creates its days' partitions as it goes.
#[tokio::test]
async fn postgres_far_past_day_gets_its_partition() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    let long_ago = NaiveDate::from_ymd_opt(2001, 2, 3).unwrap();
    let first_day = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
    let batch = [
        event(
            None,
            "s",
            "u",
            "/old",
            midnight(long_ago) + chrono::TimeDelta::hours(12),
        ),
        event(None, "s", "u", "/older", midnight(first_day)),
    ];
    let o = Writer::open(&db).unwrap().write(&batch).await.unwrap();
    assert_eq!(o.inserted, 2);
    let names = partition_names(&db).await;
    assert_eq!(names, [partitions::name(first_day), partitions::name(long_ago)]);
    assert_eq!(names, ["events_p00010101", "events_p20010203"]);
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM events_p20010203 WHERE path = '/old'"
        )
        .await,
        1,
        "the row is in its day's partition"
    );
}

/// Writers of different processes (no shared cache) meeting the same new
/// days at once: every one of them creates or finds the partitions, none
/// fails, and each event is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_writers_creating_the_same_partition_all_succeed() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    const WRITERS: u64 = 6;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let writer = Writer::open(&db).unwrap();
        tasks.spawn(async move {
            // Every writer sends the same 30 events over the same three new
            // days, so that their keys race as well as their partitions.
            let batch: Vec<Event> = (0..30u64)
                .map(|i| {
                    let id = format!("0191d0a4-0000-7000-8000-{i:012x}");
                    let ts = midnight(day(50 + i % 3)) + chrono::TimeDelta::minutes(i as i64);
                    event(Some(&id), "s", &format!("u{}", i % 4), "/x", ts)
                })
                .collect();
            writer.write(&batch).await
        });
    }
    let mut inserted = 0;
    while let Some(done) = tasks.join_next().await {
        inserted += done.unwrap().unwrap().inserted;
    }
    assert_eq!(inserted, 30, "each event once, whichever writer won it");
    assert_eq!(partition_names(&db).await, names_of(50..53));
    assert_eq!(raw(&db).await, 30);
    assert_eq!(
        answer(&db, 50, 52).await.split(' ').take(3).collect::<Vec<_>>(),
        ["30", "4", "30"]
    );
}

/// A writer that knew a day's partition, after retention dropped it (here
/// or in another process), creates it again and writes the batch.
#[tokio::test]
async fn postgres_writer_recreates_a_partition_dropped_under_it() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    let writer = Writer::open(&db).unwrap();
    writer
        .write(&[event(None, "s", "u", "/a", midnight(day(1)))])
        .await
        .unwrap();
    let now = midnight(day(5));
    let dropped = apply(
        &db,
        Retention {
            days: 2,
            rollups: false,
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!((dropped.events, dropped.partitions.clone()), (1, vec![day(1)]));
    assert!(partition_names(&db).await.is_empty());
    // A late event of that day, through the writer that cached it.
    let o = writer
        .write(&[event(
            None,
            "s",
            "u",
            "/b",
            midnight(day(1)) + chrono::TimeDelta::hours(1),
        )])
        .await
        .unwrap();
    assert_eq!(o.inserted, 1);
    assert_eq!(partition_names(&db).await, names_of([1]));
    assert_eq!(raw(&db).await, 1);
}

/// Each maintenance round makes sure of today's partition and the next
/// days', so that writers meet them already there.
#[tokio::test]
async fn postgres_maintenance_creates_the_coming_days() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    assert!(partition_names(&db).await.is_empty());
    let liveness = Liveness::default();
    run_once(&db, &liveness, None, None).await;
    run_once(&db, &liveness, None, None).await; // idempotent
    let today = Utc::now().date_naive();
    let want: Vec<String> = today
        .iter_days()
        .take(1 + PARTITIONS_AHEAD)
        .map(partitions::name)
        .collect();
    let got = partition_names(&db).await;
    // A round that ran across midnight made one day more.
    assert!(got.starts_with(&want) || got.ends_with(&want), "{got:?} {want:?}");
}
