//! `/stats`, `/stats/timeseries` and `/stats/breakdown` for a site in a
//! zone other than UTC (`analytics_core::query::zoned`) against a brute
//! force over the events written, both stores: random events around a DST
//! change, random local periods, Berlin, Kathmandu (+05:45) and St John's
//! (−03:30 / −02:30); the events written as a site receives them, the
//! answers checked between the writes.

use crate::query_v2::{many_visitors, stored, write_shuffled, SITE};
use analytics_core::query::breakdown::{BreakdownQuery, Dimension};
use analytics_core::query::series::{Interval, SeriesQuery};
use analytics_core::query::stats::StatsQuery;
use analytics_core::query::{v2, zoned};
use analytics_query::random;
use analytics_query::reference::RawEvent;
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;
use std::collections::{BTreeMap, BTreeSet};

fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// (views, unique users, visitors, events) of some events.
fn tally<'a>(events: impl Iterator<Item = &'a RawEvent>) -> (i64, i64, i64, i64) {
    let (mut views, mut n, mut users, mut visitors) = (0, 0, BTreeSet::new(), BTreeSet::new());
    for e in events {
        n += 1;
        views += i64::from(e.name == "page_view");
        if let Some(v) = &e.visitor {
            visitors.insert(v.clone());
            if v.starts_with("u:") {
                users.insert(v.clone());
            }
        }
    }
    (views, users.len() as i64, visitors.len() as i64, n)
}

fn ranked(counts: BTreeMap<String, i64>, limit: usize) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(limit);
    rows
}

async fn check(db: &DatabaseConnection, seed: u64) -> (usize, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: DateTime<Utc> = "2024-10-26T00:00:00Z".parse().unwrap(); // Europe's clocks go back on the 27th
    let mut all = random::events(&mut rng, start, 300);
    many_visitors(&mut all, start);
    // Written as a site receives them: all before a late hour, then the
    // rest in three rounds, answers checked after each through one kept
    // cache (which reads only the recent events when it can).
    let boundary = start + Duration::hours(rng.random_range(56..68));
    let (mut events, mut later): (Vec<RawEvent>, Vec<RawEvent>) = all.into_iter().partition(|e| e.timestamp < boundary);
    later.shuffle(&mut rng);
    let mut rounds = later.chunks(later.len() / 3 + 1).map(<[RawEvent]>::to_vec);
    write_shuffled(db, &mut rng, &events.iter().map(stored).collect::<Vec<_>>()).await;
    let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    let mut checked = 0;
    for k in 0..32 {
        if k % 8 == 7 {
            if let Some(round) = rounds.next() {
                write_shuffled(db, &mut rng, &round.iter().map(stored).collect::<Vec<_>>()).await;
                events.extend(round);
            }
        }
        let tz: Tz = [
            chrono_tz::Europe::Berlin,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::St_Johns,
        ][rng.random_range(0..3)];
        let from = start.date_naive() + Duration::days(rng.random_range(-1..3));
        let to = from + Duration::days(rng.random_range(0..3));
        let limit = rng.random_range(1..6);
        let inside = |e: &&RawEvent| (from..=to).contains(&local_date(tz, e.timestamp));
        let (views, users, visitors, n) = tally(events.iter().filter(inside));

        let q = StatsQuery {
            site_id: SITE.into(),
            from,
            to,
            limit,
            single_date: false,
            compare: true,
        };
        let got = zoned::stats(db, &cache, &q, tz).await.unwrap();
        assert_eq!(
            (got.total_views, got.unique_users, got.visitors, got.total_events),
            (views, users, visitors, n),
            "{tz} {from}..{to}"
        );
        let mut paths = BTreeMap::new();
        for e in events.iter().filter(inside).filter(|e| e.name == "page_view") {
            *paths.entry(e.path.clone()).or_default() += 1;
        }
        let top: Vec<(String, i64)> = got.top_paths.iter().map(|p| (p.path.clone(), p.views)).collect();
        assert_eq!(top, ranked(paths, limit as usize), "{tz} {from}..{to}");
        let previous = got.previous.unwrap();
        let before = |e: &&RawEvent| (previous.from..=previous.to).contains(&local_date(tz, e.timestamp));
        let p = tally(events.iter().filter(before));
        assert_eq!(
            (
                previous.total_views,
                previous.unique_users,
                previous.visitors,
                previous.total_events
            ),
            p
        );

        for by in [Dimension::Path, Dimension::EventType] {
            let q = BreakdownQuery {
                site_id: SITE.into(),
                from,
                to,
                by,
                limit,
            };
            let got = zoned::breakdown(db, &cache, &q, tz).await.unwrap();
            let mut counts = BTreeMap::new();
            for e in events.iter().filter(inside) {
                match by {
                    Dimension::Path if e.name == "page_view" => *counts.entry(e.path.clone()).or_default() += 1,
                    Dimension::Path => {}
                    Dimension::EventType => *counts.entry(e.name.clone()).or_default() += 1,
                }
            }
            let rows: Vec<(String, i64)> = got.rows.iter().map(|r| (r.key.clone(), r.count)).collect();
            assert_eq!(rows, ranked(counts, limit as usize), "{by:?} {tz} {from}..{to}");
        }

        for interval in [Interval::Hour, Interval::Day] {
            let q = SeriesQuery {
                site_id: SITE.into(),
                from,
                to,
                interval,
            };
            let got = zoned::series(db, &cache, &q, tz).await.unwrap();
            // Each event's bucket, found from its own local time: the start
            // of its local hour, or its local date.
            let mut expected: BTreeMap<String, Vec<&RawEvent>> = BTreeMap::new();
            for e in events.iter().filter(inside) {
                let local = e.timestamp.with_timezone(&tz);
                let key = match interval {
                    Interval::Hour => {
                        let into = Duration::seconds(i64::from(local.minute() * 60 + local.second()))
                            + Duration::nanoseconds(i64::from(local.nanosecond()));
                        (e.timestamp - into).to_rfc3339()
                    }
                    Interval::Day => local.date_naive().to_string(),
                };
                expected.entry(key).or_default().push(e);
            }
            let mut seen = BTreeMap::new();
            for (k, point) in got.points.iter().enumerate() {
                let local = point.start.with_timezone(&tz);
                match interval {
                    Interval::Hour => assert_eq!((local.minute(), local.second()), (0, 0), "{}", point.start),
                    Interval::Day => assert_eq!(local.date_naive(), from + Duration::days(k as i64)),
                }
                if k > 0 {
                    assert!(got.points[k - 1].start < point.start);
                }
                let key = match interval {
                    Interval::Hour => point.start.to_rfc3339(),
                    Interval::Day => local.date_naive().to_string(),
                };
                if point.events > 0 {
                    seen.insert(key, (point.views, point.unique_users, point.events));
                }
            }
            let want: BTreeMap<String, (i64, i64, i64)> = expected
                .into_iter()
                .map(|(k, es)| {
                    let (v, u, _, n) = tally(es.into_iter());
                    (k, (v, u, n))
                })
                .collect();
            assert_eq!(seen, want, "{interval:?} {tz} {from}..{to}");
            if interval == Interval::Day {
                assert_eq!(got.points.len() as i64, (to - from).num_days() + 1);
            }
        }
        checked += 1;
    }
    (checked, cache.stats().recent)
}

#[tokio::test]
async fn zoned_stats_equal_a_brute_force_on_postgres() {
    let pg = testkit::db::TestDb::migrated().await;
    let (checked, recent) = check(&pg.connect().await, 11).await;
    assert_eq!(checked, 32);
    assert!(recent >= 2, "the recent reads were exercised {recent} times");
}

#[tokio::test]
async fn zoned_stats_equal_a_brute_force_on_sqlite() {
    let (checked, recent) = check(&crate::migrated_sqlite().await, 12).await;
    assert_eq!(checked, 32);
    assert!(recent >= 2, "the recent reads were exercised {recent} times");
}
