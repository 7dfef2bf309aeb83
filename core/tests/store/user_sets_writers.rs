//! Unique users stay exact when several writers fold the same users, each
//! with its own cache of known ordinals: users met first by the other
//! writer, users met again, new users in every batch. On PostgreSQL (two
//! processors) and on SQLite (two writer connections on one file).

use analytics_core::event::{Event, IncomingEvent};
use analytics_core::query::stats::totals;
use analytics_core::store::Writer;
use chrono::{NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;
use std::collections::{BTreeMap, HashSet};
use testkit::db::TestDb;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, d).unwrap()
}

fn batch(rng: &mut ChaCha8Rng, users: u32, n: usize) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let ts = Utc
                .with_ymd_and_hms(2026, 9, rng.random_range(1..=3), rng.random_range(0..24), 0, 0)
                .unwrap();
            IncomingEvent {
                site_id: Some(["a", "b"][usize::from(rng.random_bool(0.4))].into()),
                event_type: Some("page_view".into()),
                path: Some("/".into()),
                user_id: Some(format!("u{}", rng.random_range(0..users))),
                timestamp: Some(ts.to_rfc3339()),
                ..Default::default()
            }
            .validate(Utc::now())
            .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn postgres_writers_with_their_own_known_ordinals_count_users_exactly() {
    let test_db = TestDb::migrated().await;
    count_users_exactly(test_db.connect().await).await;
}

#[tokio::test]
async fn sqlite_writers_with_their_own_known_ordinals_count_users_exactly() {
    count_users_exactly(crate::migrated_sqlite().await).await;
}

async fn count_users_exactly(db: DatabaseConnection) {
    let writers = [Writer::open(&db).unwrap(), Writer::open(&db).unwrap()];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut truth: BTreeMap<(String, NaiveDate), HashSet<String>> = BTreeMap::new();
    for round in 0..12u32 {
        // The user population grows, so every batch meets known and new users.
        let events = batch(&mut rng, 50 + round * 20, 300);
        for e in &events {
            truth
                .entry((e.site_id.clone(), e.timestamp.date_naive()))
                .or_default()
                .insert(e.user_id.clone());
        }
        // Both writers at once on overlapping users, then one alone.
        let (first, second) = events.split_at(150);
        let (a, b) = tokio::join!(writers[0].write(first), writers[1].write(second));
        a.unwrap();
        b.unwrap();
        writers[usize::try_from(round % 2).unwrap()].write(first).await.unwrap();
    }
    assert!(
        writers.iter().all(|w| w.known_users() > 0),
        "the writers never learnt an ordinal"
    );
    for site in ["a", "b"] {
        for (from, to) in [(1, 1), (2, 2), (3, 3), (1, 3), (2, 3)] {
            let want: HashSet<&String> = truth
                .range((site.to_string(), day(from))..=(site.to_string(), day(to)))
                .flat_map(|(_, users)| users)
                .collect();
            let got = totals(&db, site, day(from), day(to)).await.unwrap().unique_users;
            assert_eq!(
                got,
                i64::try_from(want.len()).unwrap(),
                "site {site}, days {from}..={to}"
            );
        }
    }
}
