//! Weekly user sets and path packs, so that a long range reads one row per
//! whole Monday–Sunday week instead of seven: a 30-day `/stats` read 30 sets
//! and 30 packs (about 320 KB at 10M events, most of the api's 2 ms of CPU
//! per answer) and now reads 4 or 5 of each, plus the days at the edges.
//!
//! They are caches of the daily rows, never written by the batch writer
//! (no cost on ingest): the compactor rebuilds a week when its daily rows
//! changed, and stamps the row with the `source` it was built from:
//! - users: the sum of the week's daily `user_count`. A daily set only
//!   ever gains users (no statement removes one, and its rows are never
//!   deleted), so a day's set is unchanged exactly when its count is, and the
//!   week's union is current exactly when the sum is.
//! - paths: the sum of the week's daily packs' `rev`, which a trigger bumps
//!   on every update of a pack (migration 8), whoever makes it.
//!
//! A reader takes a week's row only if its `source` equals the sum it
//! recomputes from the daily rows in the same statement (one snapshot), and
//! the week's daily rows otherwise: a stale or missing week costs speed,
//! never exactness. A processor of the previous release, which knows nothing
//! of these tables, can only make weeks stale.

use crate::path_packs;
use crate::user_sets;
use chrono::{Datelike, Days, NaiveDate};
use roaring::RoaringBitmap;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use std::collections::{BTreeMap, HashMap};

/// Weeks rebuilt per run and kind; the rest wait for the next run.
const WEEKS_PER_RUN: usize = 2000;

/// The Monday and the Sunday of `day`'s week.
pub fn week_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
    (monday, monday + Days::new(6))
}

/// The first Monday and the last Sunday of the whole weeks inside
/// `from..=to`, if there is at least one.
pub fn whole_weeks(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = from + Days::new(u64::from((7 - from.weekday().num_days_from_monday()) % 7));
    let last = to - Days::new(u64::from((to.weekday().num_days_from_monday() + 1) % 7));
    (first.checked_add_days(Days::new(6))? <= last).then_some((first, last))
}

/// A cached kind: the weekly table, the daily table it caches, the daily
/// column its `source` sums, and the blob column.
pub(crate) struct Cache {
    pub weekly: &'static str,
    pub daily: &'static str,
    pub source: &'static str,
    pub blob: &'static str,
}

pub(crate) const USERS: Cache = Cache {
    weekly: "weekly_user_sets",
    daily: "daily_user_sets",
    source: "user_count",
    blob: "users",
};

pub(crate) const PATHS: Cache = Cache {
    weekly: "weekly_path_packs",
    daily: "daily_path_packs",
    source: "rev",
    blob: "paths",
};

impl Cache {
    /// `<name> AS (…)`: the current weekly rows of site `$1` among the weeks
    /// from `$4` to `$5` (first and last day), for a statement's `WITH`.
    pub(crate) fn fresh_weeks_cte(&self, name: &str) -> String {
        let Cache {
            weekly,
            daily,
            source,
            blob,
        } = self;
        format!(
            "{name} AS (SELECT w.first_day, w.last_day, w.{blob} AS blob FROM {weekly} w \
               WHERE w.site_id = $1 AND w.first_day >= $4 AND w.last_day <= $5 \
               AND w.source = (SELECT SUM(d.{source}) FROM {daily} d \
                 WHERE d.site_id = $1 AND d.day >= w.first_day AND d.day <= w.last_day))"
        )
    }

    /// `kind`'s blobs of site `$1` from `$2` to `$3`: the current weeks of
    /// `cte`, and the daily rows of every other day.
    pub(crate) fn blobs(&self, kind: u8, cte: &str) -> String {
        let Cache { daily, blob, .. } = self;
        format!(
            "SELECT {kind}, NULL, NULL, NULL, blob FROM {cte} UNION ALL \
             SELECT {kind}, NULL, NULL, NULL, d.{blob} FROM {daily} d \
               WHERE d.site_id = $1 AND d.day >= $2 AND d.day <= $3 \
               AND NOT EXISTS (SELECT 1 FROM {cte} c WHERE d.day >= c.first_day AND d.day <= c.last_day)"
        )
    }
}

/// Weeks rebuilt by one `refresh`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub user_weeks: usize,
    pub path_weeks: usize,
}

/// Rebuilds every week whose daily rows changed since its row was built (up
/// to `WEEKS_PER_RUN` of each kind), one statement to read a week and one
/// to store it, so it holds no lock a writer could wait on for long.
pub async fn refresh(db: &DatabaseConnection) -> Result<Refreshed, DbErr> {
    let mut done = Refreshed::default();
    for week in stale(db, &USERS).await? {
        done.user_weeks += usize::from(rebuild_users(db, &week).await?);
    }
    for week in stale(db, &PATHS).await? {
        done.path_weeks += usize::from(rebuild_paths(db, &week).await?);
    }
    Ok(done)
}

#[derive(Debug, Clone)]
struct Week {
    site_id: String,
    first_day: NaiveDate,
    last_day: NaiveDate,
}

impl Week {
    fn values(&self) -> Vec<Value> {
        vec![
            self.site_id.as_str().into(),
            self.first_day.into(),
            self.last_day.into(),
        ]
    }
}

/// Weeks of at least two daily rows whose stored `source` differs from the
/// current sum, or that have no row yet. A week of one day gains nothing.
async fn stale(db: &DatabaseConnection, cache: &Cache) -> Result<Vec<Week>, DbErr> {
    let backend = db.get_database_backend();
    let daily = db
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT site_id, day, CAST({} AS BIGINT) FROM {}",
                cache.source, cache.daily
            ),
        ))
        .await?;
    let mut sums: BTreeMap<(String, NaiveDate), (i64, u32)> = BTreeMap::new();
    for row in &daily {
        let day: NaiveDate = row.try_get_by_index(1)?;
        let entry = sums.entry((row.try_get_by_index(0)?, week_of(day).0)).or_default();
        entry.0 += row.try_get_by_index::<i64>(2)?;
        entry.1 += 1;
    }
    let stored: HashMap<(String, NaiveDate), i64> = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT site_id, first_day, source FROM {}", cache.weekly),
        ))
        .await?
        .iter()
        .map(|row| {
            Ok((
                (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
                row.try_get_by_index(2)?,
            ))
        })
        .collect::<Result<_, DbErr>>()?;
    Ok(sums
        .into_iter()
        .filter(|(key, (sum, days))| *days >= 2 && stored.get(key) != Some(sum))
        .take(WEEKS_PER_RUN)
        .map(|((site_id, first_day), _)| Week {
            site_id,
            first_day,
            last_day: week_of(first_day).1,
        })
        .collect())
}

/// The daily rows of `week` in one statement (one snapshot): blob and the
/// column `source` sums.
async fn daily_rows(db: &DatabaseConnection, cache: &Cache, week: &Week) -> Result<Vec<(Vec<u8>, i64)>, DbErr> {
    let backend = db.get_database_backend();
    let sql = crate::db::portable(
        backend,
        &format!(
            "SELECT {}, CAST({} AS BIGINT) FROM {} WHERE site_id = $1 AND day >= $2 AND day <= $3",
            cache.blob, cache.source, cache.daily
        ),
    );
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, week.values()))
        .await?
        .iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// Stores a week's row unless one built from a later snapshot is already
/// there (sources only grow), so racing compactors cannot move a week back.
async fn store(
    db: &DatabaseConnection,
    cache: &Cache,
    week: &Week,
    extra: &[&str],
    values: Vec<Value>,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let cols: Vec<&str> = [cache.blob]
        .into_iter()
        .chain(extra.iter().copied())
        .chain(["source"])
        .collect();
    let updates: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let sql = format!(
        "INSERT INTO {weekly} (site_id, first_day, last_day, {cols}) VALUES {row} \
         ON CONFLICT (site_id, first_day) DO UPDATE SET {updates} WHERE {weekly}.source <= excluded.source",
        weekly = cache.weekly,
        cols = cols.join(", "),
        row = crate::db::values_placeholders(backend, 1, 3 + cols.len()),
        updates = updates.join(", "),
    );
    let mut all = week.values();
    all.extend(values);
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, sql, all))
        .await?
        .rows_affected()
        > 0)
}

async fn rebuild_users(db: &DatabaseConnection, week: &Week) -> Result<bool, DbErr> {
    let mut users = RoaringBitmap::new();
    let mut source = 0;
    for (blob, count) in daily_rows(db, &USERS, week).await? {
        users |= user_sets::decode(&blob)?;
        source += count;
    }
    let count = i64::try_from(users.len()).unwrap_or(i64::MAX);
    let values = vec![user_sets::encode(&users)?.into(), count.into(), source.into()];
    store(db, &USERS, week, &["user_count"], values).await
}

async fn rebuild_paths(db: &DatabaseConnection, week: &Week) -> Result<bool, DbErr> {
    let mut views: BTreeMap<String, i64> = BTreeMap::new();
    let mut source = 0;
    for (blob, rev) in daily_rows(db, &PATHS, week).await? {
        for (path, n) in path_packs::decode(&blob)? {
            *views.entry(path).or_default() += n;
        }
        source += rev;
    }
    let values = vec![path_packs::encode(&views).into(), source.into()];
    store(db, &PATHS, week, &[], values).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default()
    }

    #[test]
    fn weeks_run_monday_to_sunday() {
        // 2026-11-30 is a Monday.
        assert_eq!(week_of(d(11, 30)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 6)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 1)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 7)), (d(12, 7), d(12, 13)));
    }

    #[test]
    fn whole_weeks_inside_a_range() {
        assert_eq!(whole_weeks(d(11, 30), d(12, 6)), Some((d(11, 30), d(12, 6))));
        assert_eq!(whole_weeks(d(11, 30), d(12, 5)), None);
        assert_eq!(whole_weeks(d(12, 1), d(12, 7)), None);
        assert_eq!(whole_weeks(d(12, 1), d(12, 14)), Some((d(12, 7), d(12, 13))));
        // 30 days from a Tuesday: three whole weeks and 9 edge days.
        assert_eq!(whole_weeks(d(11, 3), d(12, 2)), Some((d(11, 9), d(11, 29))));
        // 30 days from a Monday: four whole weeks and 2 edge days.
        assert_eq!(whole_weeks(d(11, 2), d(12, 1)), Some((d(11, 2), d(11, 29))));
        assert_eq!(whole_weeks(d(12, 1), d(12, 1)), None);
    }
}
