//! Weekly user sets and path packs on PostgreSQL and SQLite: ranges with
//! whole weeks answer exactly what the daily rows do, whether the weekly rows
//! are current, stale (days written, packed, or a pack changed by a
//! processor that knows nothing of weeks) or missing; and they are what a
//! current week is read from.

use analytics_core::codec::{path_pack, user_set};
use analytics_core::event::Event;
use analytics_core::maintenance::compaction::compact;
use analytics_core::maintenance::weeks::{refresh, Refreshed};
use analytics_core::query::stats::{query, StatsQuery};
use analytics_core::store::Writer;
use chrono::{Days, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use testkit::db::{migrate_up, TestDb};
use testkit::rollups::{compact_all, count, scalar};

const SITES: [&str; 2] = ["big", "small"];

/// 2026-10-05 is a Monday; the events span three whole weeks and three days.
fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5).unwrap() + Days::new(n)
}

const DAYS: u64 = 24;

fn events(rng: &mut ChaCha8Rng, n: usize, users: u32) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let site = SITES[usize::from(rng.random_bool(0.3))];
            let d = day(rng.random_range(0..DAYS));
            let ts = Utc
                .from_utc_datetime(&d.and_hms_opt(rng.random_range(0..24), 0, 0).unwrap())
                .to_rfc3339();
            let incoming = analytics_core::event::IncomingEvent {
                site_id: Some(site.into()),
                event_type: Some(if rng.random_bool(0.9) { "page_view" } else { "click" }.into()),
                path: Some(format!("/{}", rng.random_range(0..30))),
                user_id: Some(format!("u{}", rng.random_range(0..users))),
                timestamp: Some(ts),
                ..Default::default()
            };
            incoming.validate(Utc::now()).unwrap()
        })
        .collect()
}

#[derive(Default)]
struct Truth {
    users: BTreeMap<(String, NaiveDate), BTreeSet<String>>,
    views: BTreeMap<(String, NaiveDate, String), i64>,
}

impl Truth {
    fn add(&mut self, events: &[Event]) {
        for e in events {
            let d = e.timestamp.date_naive();
            self.users
                .entry((e.site_id.clone(), d))
                .or_default()
                .insert(e.user_id.clone());
            if e.is_page_view() {
                *self.views.entry((e.site_id.clone(), d, e.path.clone())).or_default() += 1;
            }
        }
    }

    fn unique(&self, site: &str, from: NaiveDate, to: NaiveDate) -> i64 {
        let users: BTreeSet<&String> = self
            .users
            .iter()
            .filter(|((s, d), _)| s == site && (from..=to).contains(d))
            .flat_map(|(_, u)| u)
            .collect();
        users.len() as i64
    }

    fn top(&self, site: &str, from: NaiveDate, to: NaiveDate) -> Vec<(String, i64)> {
        let mut sums: HashMap<&str, i64> = HashMap::new();
        for ((s, d, p), n) in &self.views {
            if s == site && (from..=to).contains(d) {
                *sums.entry(p.as_str()).or_default() += n;
            }
        }
        let mut all: Vec<(String, i64)> = sums.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
        all
    }
}

/// Ranges with and without whole weeks, aligned and not.
const RANGES: [(u64, u64); 7] = [(0, 23), (1, 22), (0, 6), (3, 16), (2, 7), (7, 20), (5, 5)];

async fn assert_exact(db: &DatabaseConnection, truth: &Truth, when: &str) {
    for site in SITES {
        for (from, to) in RANGES {
            let q = StatsQuery {
                site_id: site.into(),
                from: day(from),
                to: day(to),
                limit: 100,
                single_date: false,
                compare: false,
            };
            let got = query(db, &q).await.unwrap();
            let top: Vec<(String, i64)> = got.top_paths.into_iter().map(|p| (p.path, p.views)).collect();
            let what = format!("{when}: {site} days {from}..={to}");
            assert_eq!(
                got.unique_users,
                truth.unique(site, day(from), day(to)),
                "{what}: users"
            );
            assert_eq!(top, truth.top(site, day(from), day(to)), "{what}: paths");
        }
    }
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap()
        .rows_affected()
}

/// Writes through `writer`. The writer packs nothing and builds no week (the
/// maintenance task does, and none runs here), so the refreshes the test
/// counts are its own.
async fn write(writer: &Writer, truth: &mut Truth, batch: &[Event]) {
    writer.write(batch).await.unwrap();
    truth.add(batch);
}

async fn weeks_stay_exact(url: &str) {
    migrate_up(url).await;
    let db = Database::connect(url).await.unwrap();
    let writer = Writer::open(&db).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut truth = Truth::default();

    // Weekly rows, had anything built them, are deleted: answers come from
    // the days alone.
    write(&writer, &mut truth, &events(&mut rng, 4000, 300)).await;
    exec(&db, "DELETE FROM weekly_user_sets", vec![]).await;
    exec(&db, "DELETE FROM weekly_path_packs", vec![]).await;
    assert_exact(&db, &truth, "no weekly rows").await;
    compact_all(&db).await;
    let built = refresh(&db).await.unwrap();
    // Three whole weeks and a partial one, for each of two sites.
    assert_eq!(
        built,
        Refreshed {
            user_weeks: 8,
            path_weeks: 8
        }
    );
    assert_eq!(count(&db, "weekly_user_sets").await, 8);
    assert_eq!(count(&db, "weekly_path_packs").await, 8);
    assert_eq!(refresh(&db).await.unwrap(), Refreshed::default(), "nothing changed");
    assert_exact(&db, &truth, "weekly rows current").await;

    // New users and views on days of cached weeks, not yet packed.
    write(&writer, &mut truth, &events(&mut rng, 1500, 600)).await;
    assert_exact(&db, &truth, "days written since the weeks were built").await;
    compact_all(&db).await;
    assert_exact(&db, &truth, "days packed since the weeks were built").await;
    refresh(&db).await.unwrap();
    assert_eq!(refresh(&db).await.unwrap(), Refreshed::default(), "nothing changed");
    assert_exact(&db, &truth, "weeks rebuilt").await;

    // A user added to a day's set (as a processor of the previous release
    // would): its week's set is stale by its count, and rebuilt.
    let (site, d) = ("big", day(9));
    let backend = db.get_database_backend();
    let read_one = |sql: &str| Statement::from_sql_and_values(backend, sql, [site.into(), d.into()]);
    let stored = db
        .query_one_raw(read_one(
            "SELECT users FROM daily_user_sets WHERE site_id = $1 AND day = $2",
        ))
        .await
        .unwrap()
        .unwrap();
    let mut set = user_set::decode(&stored.try_get_by_index::<Vec<u8>>(0).unwrap()).unwrap();
    assert!(set.insert(1_000_000));
    let sql = "UPDATE daily_user_sets SET users = $1, user_count = $2 WHERE site_id = $3 AND day = $4";
    let encoded = user_set::encode(&set);
    let values = vec![encoded.into(), (set.len() as i64).into(), site.into(), d.into()];
    assert_eq!(exec(&db, sql, values).await, 1);
    truth.users.entry((site.into(), d)).or_default().insert("ghost".into());
    assert_exact(&db, &truth, "a day's set grew behind the weeks' back").await;
    assert_eq!(
        refresh(&db).await.unwrap(),
        Refreshed {
            user_weeks: 1,
            path_weeks: 0
        }
    );
    assert_exact(&db, &truth, "that week rebuilt").await;

    // A processor of the previous release packs rows into a day's pack and
    // knows nothing of weeks: the trigger's `rev` makes the week stale.
    let path = "/extra";
    let rev = |db: DatabaseConnection| async move {
        let row = db
            .query_one_raw(read_one(
                "SELECT rev FROM daily_path_packs WHERE site_id = $1 AND day = $2",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    let rev_before = rev(db.clone()).await;
    let stored = db
        .query_one_raw(read_one(
            "SELECT paths FROM daily_path_packs WHERE site_id = $1 AND day = $2",
        ))
        .await
        .unwrap()
        .unwrap();
    let mut pack = path_pack::decode(&stored.try_get_by_index::<Vec<u8>>(0).unwrap()).unwrap();
    *pack.entry(path.into()).or_default() += 1000;
    let sql = "UPDATE daily_path_packs SET paths = $1 WHERE site_id = $2 AND day = $3";
    let encoded = path_pack::encode(&pack);
    assert_eq!(exec(&db, sql, vec![encoded.into(), site.into(), d.into()]).await, 1);
    assert_eq!(rev(db.clone()).await, rev_before + 1, "the trigger bumps rev");
    *truth.views.entry((site.into(), d, path.into())).or_default() += 1000;
    assert_exact(&db, &truth, "a day's pack changed behind the weeks' back").await;
    assert_eq!(
        refresh(&db).await.unwrap(),
        Refreshed {
            user_weeks: 0,
            path_weeks: 1
        }
    );
    assert_exact(&db, &truth, "that week rebuilt").await;

    // A current week is read from its weekly row: emptied by hand with its
    // source kept, the range's answers lose what only it held.
    let week = (day(7), day(13));
    let mut nobody = set.clone();
    nobody.clear();
    let empty_set = user_set::encode(&nobody);
    let sql = "UPDATE weekly_user_sets SET users = $1 WHERE site_id = $2 AND first_day = $3";
    assert_eq!(
        exec(&db, sql, vec![empty_set.into(), "big".into(), week.0.into()]).await,
        1
    );
    let empty_pack = path_pack::encode(&BTreeMap::new());
    let sql = "UPDATE weekly_path_packs SET paths = $1 WHERE site_id = $2 AND first_day = $3";
    assert_eq!(
        exec(&db, sql, vec![empty_pack.into(), "big".into(), week.0.into()]).await,
        1
    );
    let q = StatsQuery {
        site_id: "big".into(),
        from: week.0,
        to: week.1,
        limit: 100,
        single_date: false,
        compare: false,
    };
    let got = query(&db, &q).await.unwrap();
    assert_eq!(got.unique_users, 0, "the week's users came from somewhere else");
    assert!(got.top_paths.is_empty(), "{:?}", got.top_paths);
    // Deleted, the week is rebuilt by the next refresh.
    exec(&db, "DELETE FROM weekly_user_sets", vec![]).await;
    exec(&db, "DELETE FROM weekly_path_packs", vec![]).await;
    assert_exact(&db, &truth, "weekly rows deleted").await;
    assert_eq!(
        refresh(&db).await.unwrap(),
        Refreshed {
            user_weeks: 8,
            path_weeks: 8
        }
    );
    assert_exact(&db, &truth, "weekly rows rebuilt from scratch").await;
}

#[tokio::test]
async fn postgres_weeks_stay_exact() {
    let db = TestDb::create().await;
    weeks_stay_exact(&db.url).await;
}

#[tokio::test]
async fn sqlite_weeks_stay_exact() {
    weeks_stay_exact(&crate::sqlite_url()).await;
}

/// A compactor racing writers on the same weeks: every read during the race
/// is at most the final answer and never shrinks, and the end is exact.
#[tokio::test]
async fn postgres_refresh_racing_writers_stays_exact() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let batches: Vec<Vec<Event>> = (0..30).map(|_| events(&mut rng, 300, 2000)).collect();
    let mut truth = Truth::default();
    for b in &batches {
        truth.add(b);
    }
    let (from, to) = (day(0), day(20));
    let final_users = truth.unique("big", from, to);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let compactor = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            let mut rebuilt = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                compact(&db).await.unwrap();
                let r = refresh(&db).await.unwrap();
                rebuilt += r.user_weeks + r.path_weeks;
            }
            rebuilt
        })
    };
    let reader = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            let (mut reads, mut last) = (0, 0);
            let q = StatsQuery {
                site_id: "big".into(),
                from,
                to,
                limit: 10,
                single_date: false,
                compare: false,
            };
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let users = query(&db, &q).await.unwrap().unique_users;
                assert!(
                    users <= final_users && users >= last,
                    "{last} then {users} of {final_users}"
                );
                (reads, last) = (reads + 1, users);
            }
            reads
        })
    };
    let writer = Writer::open(&db).unwrap();
    for b in &batches {
        writer.write(b).await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(compactor.await.unwrap() > 1, "no week was rebuilt during the race");
    assert!(reader.await.unwrap() > 1, "the reader never read during the race");
    compact_all(&db).await;
    refresh(&db).await.unwrap();
    assert_exact(&db, &truth, "after the race").await;
}

/// The number of weekly rows whose `source` equals their daily rows' sum.
async fn current_weeks(db: &DatabaseConnection, weekly: &str, daily: &str, source: &str) -> i64 {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM {weekly} w WHERE w.source = \
           (SELECT SUM(d.{source}) FROM {daily} d WHERE d.site_id = w.site_id \
              AND d.day >= w.first_day AND d.day <= w.last_day)"
    );
    scalar(db, &sql).await
}

async fn current_user_weeks(db: &DatabaseConnection) -> i64 {
    current_weeks(db, "weekly_user_sets", "daily_user_sets", "user_count").await
}

/// A round given this writer's touched days rebuilds the weeks its commits
/// changed and leaves a week only another writer changed for a full scan:
/// what the maintenance task does between its hourly full scans.
async fn touched_rounds_rebuild_only_what_changed(db: DatabaseConnection) {
    use analytics_core::maintenance::run_once;
    use analytics_core::ops::health::Liveness;
    let liveness = Liveness::default();
    let (mine, other) = (Writer::open(&db).unwrap(), Writer::open(&db).unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let mut truth = Truth::default();
    write(&mine, &mut truth, &events(&mut rng, 2_000, 50)).await;
    run_once(&db, &liveness, None, None).await;
    let weeks = count(&db, "weekly_user_sets").await;
    assert!(weeks >= 6, "a full round builds every week of both sites ({weeks})");
    assert_eq!(current_user_weeks(&db).await, weeks);
    let _ = mine.state().touched.take();

    // New users on the first week, through the other writer: stale, and not
    // this writer's to notice. Clicks, not page views: no path row for the
    // compaction to pack (a packed day is checked whoever wrote it).
    let first_week: Vec<Event> = events(&mut rng, 400, 10_000)
        .into_iter()
        .filter(|e| e.timestamp.date_naive() < day(7))
        .map(|mut e| {
            e.event_type = "click".into();
            e
        })
        .collect();
    write(&other, &mut truth, &first_week).await;
    assert!(
        current_user_weeks(&db).await < weeks,
        "the other writer made weeks stale"
    );
    run_once(&db, &liveness, Some(mine.state()), None).await;
    let after_mine = current_user_weeks(&db).await;
    assert!(
        after_mine < weeks,
        "a round of this writer's days leaves the other's weeks"
    );

    // The same kind of change through this writer is rebuilt by its round.
    let _ = other.state().touched.take();
    let later: Vec<Event> = events(&mut rng, 400, 10_000)
        .into_iter()
        .filter(|e| e.timestamp.date_naive() >= day(14) && e.timestamp.date_naive() < day(21))
        .collect();
    write(&mine, &mut truth, &later).await;
    run_once(&db, &liveness, Some(mine.state()), None).await;
    let stale_before = weeks - after_mine;
    assert_eq!(
        weeks - current_user_weeks(&db).await,
        stale_before,
        "this writer's weeks were rebuilt, the other's left as they were"
    );
    // A full round catches the rest; answers were exact all along.
    assert_exact(&db, &truth, "before the full round").await;
    run_once(&db, &liveness, None, None).await;
    assert_eq!(current_user_weeks(&db).await, weeks);
    assert_exact(&db, &truth, "after the full round").await;
}

#[tokio::test]
async fn postgres_touched_rounds_rebuild_only_what_changed() {
    let db = TestDb::migrated().await;
    touched_rounds_rebuild_only_what_changed(db.connect().await).await;
}

#[tokio::test]
async fn sqlite_touched_rounds_rebuild_only_what_changed() {
    touched_rounds_rebuild_only_what_changed(super::migrated_sqlite().await).await;
}
