//! Raw events as the writer stores them, on PostgreSQL and SQLite: read back
//! field for field through the entity (SQLite rows are written by rusqlite
//! and read by sqlx), and one user's events found and deleted through the
//! user sets and the time index, without an index on `user_id`.

use analytics_core::event::{Event, IncomingEvent};
use analytics_core::store::user_events;
use analytics_core::store::Writer;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use testkit::db::TestDb;

fn event(site: &str, user: &str, ts: DateTime<Utc>, n: usize) -> Event {
    let incoming = IncomingEvent {
        site_id: Some(site.into()),
        event_type: Some(if n.is_multiple_of(3) { "click" } else { "page_view" }.into()),
        path: Some(format!("/p/{}", n % 5)),
        user_id: Some(user.into()),
        timestamp: Some(ts.to_rfc3339()),
        referrer: n.is_multiple_of(2).then(|| format!("https://ref.example/{n}")),
        props: n.is_multiple_of(4).then(|| {
            serde_json::json!({"plan": "pro", "n": n, "ratio": 0.5})
                .as_object()
                .cloned()
                .unwrap()
        }),
        ..Default::default()
    };
    incoming.validate(Utc::now()).unwrap()
}

/// Users on two sites over three days, with events on hour boundaries (the
/// first and last instant of an hour) and sub-second timestamps; "alice"
/// exists on both sites; "" is anonymous.
fn workload() -> Vec<Event> {
    let at = |d, h, m, s, ms| Utc.with_ymd_and_hms(2025, 11, d, h, m, s).unwrap() + chrono::TimeDelta::milliseconds(ms);
    let times = [
        at(1, 0, 0, 0, 0),
        at(1, 0, 59, 59, 999),
        at(1, 1, 0, 0, 0),
        at(1, 13, 30, 0, 250),
        at(1, 23, 59, 59, 999),
        at(2, 0, 0, 0, 0),
        at(3, 7, 15, 0, 1),
    ];
    let mut out = Vec::new();
    for (i, ts) in times.iter().enumerate() {
        for (j, (site, user)) in [
            ("s1", "alice"),
            ("s1", "bob"),
            ("s1", ""),
            ("s2", "alice"),
            ("s1", "carol"),
        ]
        .into_iter()
        .enumerate()
        {
            // carol only on day 3; bob never on day 2.
            if (user == "carol" && ts.date_naive().day0() != 2) || (user == "bob" && ts.date_naive().day0() == 1) {
                continue;
            }
            out.push(event(site, user, *ts, i * 5 + j));
        }
    }
    out
}

async fn user_count(db: &DatabaseConnection, site: &str, user: &str) -> i64 {
    let backend = db.get_database_backend();
    let sql = "SELECT COUNT(*) FROM events WHERE site_id = $1 AND user_id = $2";
    db.query_one_raw(Statement::from_sql_and_values(backend, sql, [site.into(), user.into()]))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
}

async fn stored_and_deleted(db: DatabaseConnection) {
    let events = workload();
    let writer = Writer::open(&db).unwrap();
    assert_eq!(writer.write(&events).await.unwrap().inserted, events.len());

    let mut stored = entity::events::Entity::find().all(&db).await.unwrap();
    stored.sort_by_key(|r| r.event_id);
    let mut sent: Vec<&Event> = events.iter().collect();
    sent.sort_by_key(|e| e.event_id);
    assert_eq!(stored.len(), sent.len());
    // PostgreSQL keeps microseconds.
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    for (row, e) in stored.iter().zip(sent) {
        let want = (
            e.event_id,
            &e.site_id,
            &e.event_type,
            &e.path,
            &e.user_id,
            micros(e.timestamp),
            micros(e.received_at),
            &e.referrer,
            e.props.clone().map(serde_json::Value::Object),
        );
        let got = (
            row.event_id,
            &row.site_id,
            &row.event_type,
            &row.path,
            &row.user_id,
            micros(row.timestamp),
            micros(row.received_at),
            &row.referrer,
            row.props.clone(),
        );
        assert_eq!(got, want);
    }

    let day = |d| NaiveDate::from_ymd_opt(2025, 11, d).unwrap();
    assert_eq!(
        user_events::hours(&db, "s1", "alice").await.unwrap(),
        [
            (day(1), 0),
            (day(1), 1),
            (day(1), 13),
            (day(1), 23),
            (day(2), 0),
            (day(3), 7)
        ]
    );
    assert_eq!(user_events::hours(&db, "s1", "carol").await.unwrap(), [(day(3), 7)]);
    assert!(user_events::hours(&db, "s1", "nobody").await.unwrap().is_empty());
    assert!(user_events::hours(&db, "s3", "alice").await.unwrap().is_empty());

    let before: Vec<(&str, &str, i64)> = vec![
        ("s1", "alice", user_count(&db, "s1", "alice").await),
        ("s1", "bob", user_count(&db, "s1", "bob").await),
        ("s1", "", user_count(&db, "s1", "").await),
        ("s1", "carol", user_count(&db, "s1", "carol").await),
        ("s2", "alice", user_count(&db, "s2", "alice").await),
    ];
    assert_eq!(before.iter().map(|b| b.2).collect::<Vec<_>>(), [7, 6, 7, 1, 7]);

    assert_eq!(user_events::delete(&db, "s1", "alice").await.unwrap(), 7);
    for (site, user, n) in &before {
        let want = if (*site, *user) == ("s1", "alice") { 0 } else { *n };
        assert_eq!(user_count(&db, site, user).await, want, "{site}/{user}");
    }
    assert_eq!(user_events::delete(&db, "s1", "alice").await.unwrap(), 0);
    assert_eq!(user_events::delete(&db, "s1", "nobody").await.unwrap(), 0);
    // The user's next event is stored and found again.
    let later = event("s1", "alice", Utc.with_ymd_and_hms(2025, 11, 4, 9, 0, 0).unwrap(), 1);
    writer.write(std::slice::from_ref(&later)).await.unwrap();
    assert_eq!(user_events::delete(&db, "s1", "alice").await.unwrap(), 1);
}

#[tokio::test]
async fn postgres_raw_events_round_trip_and_a_user_is_deleted() {
    let db = TestDb::migrated().await;
    stored_and_deleted(db.connect().await).await;
}

#[tokio::test]
async fn sqlite_raw_events_round_trip_and_a_user_is_deleted() {
    let db = crate::migrated_sqlite().await;
    stored_and_deleted(db.clone()).await;
    // The deletion reaches rows through the time index, never a table scan.
    let plan = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "EXPLAIN QUERY PLAN DELETE FROM events WHERE site_id = 's1' AND timestamp >= '2025-11-01' \
             AND timestamp < '2025-11-02' AND user_id = 'alice'",
        ))
        .await
        .unwrap();
    let detail: Vec<String> = plan.iter().map(|r| r.try_get_by_index::<String>(3).unwrap()).collect();
    assert!(
        detail
            .iter()
            .any(|d| d.contains("USING INDEX idx_events_timestamp_site")),
        "{detail:?}"
    );
}
