//! Top paths read from packs plus not yet packed rows, on PostgreSQL and
//! SQLite: exact after every mix of writes and compactions, exact while
//! compactions race concurrent writers, packed by the maintenance task
//! without anyone calling `compact`, and unpacked intact by the migration's
//! `down`.

use crate::{migrate_down, sqlite_url};
use analytics_core::event::Event;
use analytics_core::maintenance::compaction::compact;
use analytics_core::maintenance::Maintenance;
use analytics_core::ops::health::Liveness;
use analytics_core::query::stats::top_paths;
use analytics_core::store::Writer;
use chrono::{NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::db::{migrate_up, TestDb};
use testkit::rollups::{compact_all, count};

const SITES: [&str; 2] = ["big", "small"];

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
}

/// Page views (and some clicks, which must not count) over 5 days, paths
/// skewed so that ranks differ by range and ties occur.
fn events(rng: &mut ChaCha8Rng, n: usize) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let site = SITES[usize::from(rng.random_bool(0.3))];
            let path = format!("/p/{}{}", rng.random_range(0..4), "é".repeat(rng.random_range(0..3)));
            let path = if rng.random_bool(0.5) {
                format!("/{}", rng.random_range(0..40))
            } else {
                path
            };
            let ts = Utc
                .with_ymd_and_hms(2026, 10, rng.random_range(1..=5), rng.random_range(0..24), 0, 0)
                .unwrap();
            let incoming = analytics_core::event::IncomingEvent {
                site_id: Some(site.into()),
                event_type: Some(if rng.random_bool(0.9) { "page_view" } else { "click" }.into()),
                path: Some(path),
                user_id: Some(format!("u{}", rng.random_range(0..50))),
                timestamp: Some(ts.to_rfc3339()),
                ..Default::default()
            };
            incoming.validate(Utc::now()).unwrap()
        })
        .collect()
}

type Truth = BTreeMap<(String, NaiveDate, String), i64>;

fn add_truth(truth: &mut Truth, events: &[Event]) {
    for e in events.iter().filter(|e| e.is_page_view()) {
        *truth
            .entry((e.site_id.clone(), e.timestamp.date_naive(), e.path.clone()))
            .or_default() += 1;
    }
}

/// The top `limit` as the seed's SQL would rank them: views, then path bytes.
fn expected(truth: &Truth, site: &str, from: NaiveDate, to: NaiveDate, limit: usize) -> Vec<(String, i64)> {
    let mut sums: HashMap<&str, i64> = HashMap::new();
    for ((s, d, p), n) in truth {
        if s == site && (from..=to).contains(d) {
            *sums.entry(p.as_str()).or_default() += n;
        }
    }
    let mut all: Vec<(String, i64)> = sums.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
    all.truncate(limit);
    all
}

async fn assert_top_paths(db: &DatabaseConnection, truth: &Truth, when: &str) {
    for site in SITES {
        for (from, to) in [(1, 1), (3, 3), (5, 5), (1, 5), (2, 4)] {
            for limit in [3, 10, 100] {
                let got: Vec<(String, i64)> = top_paths(db, site, day(from), day(to), limit)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|p| (p.path, p.views))
                    .collect();
                assert_eq!(
                    got,
                    expected(truth, site, day(from), day(to), limit as usize),
                    "{when}: {site} days {from}..={to} limit {limit}"
                );
            }
        }
    }
}

async fn writes_and_compactions_interleaved(url: &str) {
    migrate_up(url).await;
    let db = Database::connect(url).await.unwrap();
    let writer = Writer::open(&db).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut truth = Truth::new();
    let mut batch = Vec::new();
    for round in 0..4 {
        batch = events(&mut rng, 1500);
        writer.write(&batch).await.unwrap();
        add_truth(&mut truth, &batch);
        assert_top_paths(&db, &truth, &format!("round {round}, before compaction")).await;
        compact_all(&db).await;
        assert_eq!(
            count(&db, "daily_path_packs").await,
            10,
            "round {round}: one pack per (site, day)"
        );
        assert_top_paths(&db, &truth, &format!("round {round}, after compaction")).await;
    }
    // The same events again are duplicates: nothing may change.
    assert_eq!(writer.write(&batch).await.unwrap().inserted, 0);
    assert_top_paths(&db, &truth, "after a resent batch").await;
}

#[tokio::test]
async fn postgres_packs_plus_rows_are_exact() {
    let db = TestDb::create().await;
    writes_and_compactions_interleaved(&db.url).await;
}

#[tokio::test]
async fn sqlite_packs_plus_rows_are_exact() {
    writes_and_compactions_interleaved(&sqlite_url()).await;
}

/// Packing happens without anyone calling `compact`: a maintenance task per
/// database, each on its own schedule, packs what the writers wrote (a
/// process-wide throttle once packed only the first database written to, and
/// the other a minute later), reports in, and stops cleanly.
#[tokio::test]
async fn maintenance_packs_every_database_by_itself() {
    let (a, b) = (TestDb::migrated().await, TestDb::migrated().await);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let liveness = Arc::new(Liveness::default());
    let mut dbs = Vec::new();
    let mut tasks = Vec::new();
    for test_db in [&a, &b] {
        let db = test_db.connect().await;
        let writer = Writer::open(&db).unwrap();
        assert_eq!(writer.write(&events(&mut rng, 500)).await.unwrap().inserted, 500);
        assert_eq!(count(&db, "daily_path_packs").await, 0, "nothing packs inside a write");
        let every = Duration::from_millis(100);
        tasks.push(Maintenance::spawn(
            db.clone(),
            liveness.clone(),
            every,
            Some(writer.state().clone()),
            None,
        ));
        dbs.push(db);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (name, db) in ["first", "second"].into_iter().zip(&dbs) {
        while count(db, "daily_path_packs").await == 0 || count(db, "daily_path_views").await > 0 {
            assert!(
                Instant::now() < deadline,
                "the {name} database was not packed by its maintenance task"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(liveness.stalled().is_empty(), "{:?}", liveness.stalled());
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task.stop())
            .await
            .expect("the maintenance task stops when asked");
    }
}

#[tokio::test]
async fn postgres_compaction_racing_writers_loses_nothing() {
    let test_db = TestDb::migrated().await;
    compaction_racing_writers(test_db.connect().await).await;
}

/// On SQLite the writers' connections and the compactor's take turns at the
/// one write lock.
#[tokio::test]
async fn sqlite_compaction_racing_writers_loses_nothing() {
    compaction_racing_writers(crate::migrated_sqlite().await).await;
}

/// Two writers on the same (site, day)s while a compactor packs in a loop:
/// every view ends up counted exactly once.
async fn compaction_racing_writers(db: DatabaseConnection) {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let batches: Vec<Vec<Event>> = (0..40).map(|_| events(&mut rng, 400)).collect();
    let mut truth = Truth::new();
    for b in &batches {
        add_truth(&mut truth, b);
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let compactor = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                compact(&db).await.unwrap();
                runs += 1;
            }
            runs
        })
    };
    let (odd, even): (Vec<_>, Vec<_>) = batches.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let start_writer = |batches: Vec<(usize, Vec<Event>)>| {
        let writer = Writer::open(&db).unwrap();
        tokio::spawn(async move {
            for (_, b) in batches {
                writer.write(&b).await.unwrap();
            }
        })
    };
    // Reads during the race: a view counted in both tables, or in neither,
    // would show as a path above its final count or as a total that shrinks.
    let final_views: HashMap<String, i64> = expected(&truth, "big", day(1), day(5), 1000).into_iter().collect();
    let reader = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            let (mut reads, mut last_total) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let top = top_paths(&db, "big", day(1), day(5), 100).await.unwrap();
                for p in &top {
                    assert!(p.views <= final_views[&p.path], "{} read as {} views", p.path, p.views);
                }
                let total: i64 = top.iter().map(|p| p.views).sum();
                assert!(total >= last_total, "the total went from {last_total} to {total}");
                (reads, last_total) = (reads + 1, total);
            }
            reads
        })
    };
    let (a, b) = (start_writer(odd), start_writer(even));
    a.await.unwrap();
    b.await.unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = compactor.await.unwrap();
    assert!(runs > 1, "the compactor ran {runs} times: no race was exercised");
    assert!(reader.await.unwrap() > 1, "the reader never read during the race");
    assert!(count(&db, "daily_path_packs").await > 0);
    assert_top_paths(&db, &truth, "after the race").await;
    compact(&db).await.unwrap();
    assert_top_paths(&db, &truth, "after a final compaction").await;
}

async fn stored_path_views(db: &DatabaseConnection) -> Truth {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT site_id, day, path, views FROM daily_path_views",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                    r.try_get_by_index(2).unwrap(),
                ),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect()
}

/// `down` folds packs back into `daily_path_views`, adding to the rows
/// written after the last compaction; `up` again answers the same.
async fn migration_unpacks_everything(url: &str) {
    migrate_up(url).await;
    let db = Database::connect(url).await.unwrap();
    let writer = Writer::open(&db).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut truth = Truth::new();
    for _ in 0..2 {
        let batch = events(&mut rng, 1000);
        writer.write(&batch).await.unwrap();
        add_truth(&mut truth, &batch);
        compact(&db).await.unwrap();
    }
    let batch = events(&mut rng, 500);
    writer.write(&batch).await.unwrap();
    add_truth(&mut truth, &batch);
    // Every migration from the latest down to 5 (path packs) included.
    let versions = migration::known_versions();
    let packs = versions
        .iter()
        .position(|v| v == "m20261125_000005_path_packs")
        .unwrap();
    migrate_down(url, (versions.len() - packs) as u32).await;
    assert_eq!(stored_path_views(&db).await, truth);
    migrate_up(url).await;
    assert_top_paths(&db, &truth, "after down and up").await;
}

#[tokio::test]
async fn postgres_migration_down_unpacks_every_view() {
    let db = TestDb::create().await;
    migration_unpacks_everything(&db.url).await;
}

#[tokio::test]
async fn sqlite_migration_down_unpacks_every_view() {
    migration_unpacks_everything(&sqlite_url()).await;
}
