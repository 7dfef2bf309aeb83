//! Weekly user sets and path packs, so that a long range reads one row per
//! whole Monday–Sunday week instead of seven: a 30-day `/stats` read 30 sets
//! and 30 packs (about 320 KB at 10M events, most of the api's 2 ms of CPU
//! per answer) and now reads 4 or 5 of each, plus the days at the edges.
//!
//! They are caches of the daily rows, never written by the batch writer
//! (no cost on ingest): the compactor rebuilds a week when its daily rows
//! changed, and stamps the row with the `source` it was built from:
//! - users: the sum of the week's daily `user_count`, plus the site's
//!   deletion epoch times a weight (`schema::WeekCache::epoch_weight`): a
//!   user's deletion takes them out of sets, after which a set could regrow
//!   to the same count, so no week built before a deletion may match after
//!   it. Between deletions a daily set only ever gains users (only a
//!   deletion removes one), so a day's set is unchanged exactly when its
//!   count is, and the week's union is current exactly when the sum is.
//! - paths: the sum of the week's daily packs' `rev`, which a trigger bumps
//!   on every update of a pack (migration 8), whoever makes it.
//!
//! A reader takes a week's row only if its `source` equals the sum it
//! recomputes from the daily rows in the same statement (one snapshot), and
//! the week's daily rows otherwise: a stale or missing week costs speed,
//! never exactness. A processor of the previous release, which knows nothing
//! of these tables, can only make weeks stale.

use crate::codec::{path_pack, user_set};
use crate::store::schema::{WeekCache, PATH_WEEKS, USER_WEEKS};
use crate::store::sql::values_placeholders;
use crate::store::StoreError;
use crate::time::week_of;
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Weeks rebuilt per run and kind; the rest wait for the next run.
const WEEKS_PER_RUN: usize = 2000;

/// Weeks rebuilt by one `refresh`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub user_weeks: usize,
    pub path_weeks: usize,
}

/// Rebuilds every week whose daily rows changed since its row was built (up
/// to `WEEKS_PER_RUN` of each kind), one statement to read a week and one
/// to store it, so it holds no lock a writer could wait on for long.
pub async fn refresh(db: &DatabaseConnection) -> Result<Refreshed, StoreError> {
    let mut done = Refreshed::default();
    for week in stale(db, &USER_WEEKS).await? {
        done.user_weeks += usize::from(rebuild_users(db, &week).await?);
    }
    for week in stale(db, &PATH_WEEKS).await? {
        done.path_weeks += usize::from(rebuild_paths(db, &week).await?);
    }
    Ok(done)
}

/// Rebuilds the weeks of `days` that are stale (their stored `source`
/// differs from their daily rows'): what changed since the last round,
/// without reading every daily row.
pub async fn refresh_days(
    db: &DatabaseConnection,
    days: &BTreeSet<(String, NaiveDate)>,
) -> Result<Refreshed, StoreError> {
    let weeks: BTreeSet<(&str, NaiveDate)> = days
        .iter()
        .map(|(site, day)| (site.as_str(), week_of(*day).0))
        .collect();
    let mut done = Refreshed::default();
    for (site, monday) in weeks {
        let week = Week {
            site_id: site.to_string(),
            first_day: monday,
            last_day: week_of(monday).1,
        };
        if is_stale(db, &USER_WEEKS, &week).await? {
            done.user_weeks += usize::from(rebuild_users(db, &week).await?);
        }
        if is_stale(db, &PATH_WEEKS, &week).await? {
            done.path_weeks += usize::from(rebuild_paths(db, &week).await?);
        }
    }
    Ok(done)
}

/// Whether `week` has at least two daily rows and a stored `source` (if
/// any) other than their current sum.
async fn is_stale(db: &DatabaseConnection, cache: &WeekCache, week: &Week) -> Result<bool, StoreError> {
    let WeekCache {
        weekly, daily, source, ..
    } = cache;
    let epoch = cache.epoch_term("$1");
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(SUM(d.{source}){epoch} AS BIGINT), \
           (SELECT w.source FROM {weekly} w WHERE w.site_id = $1 AND w.first_day = $2) \
         FROM {daily} d WHERE d.site_id = $1 AND d.day >= $2 AND d.day <= $3"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            week.values(),
        ))
        .await?;
    let Some(row) = row else { return Ok(false) };
    let (days, sum, stored): (i64, Option<i64>, Option<i64>) = (
        row.try_get_by_index(0)?,
        row.try_get_by_index(1)?,
        row.try_get_by_index(2)?,
    );
    Ok(days >= 2 && stored != sum)
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
async fn stale(db: &DatabaseConnection, cache: &WeekCache) -> Result<Vec<Week>, StoreError> {
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
    let epochs: HashMap<String, i64> = if cache.epoch_weight == 0 {
        HashMap::new()
    } else {
        db.query_all_raw(Statement::from_string(backend, "SELECT site_id, deletions FROM sites"))
            .await?
            .iter()
            .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
            .collect::<Result<_, StoreError>>()?
    };
    let mut sums: BTreeMap<(String, NaiveDate), (i64, u32)> = BTreeMap::new();
    for row in &daily {
        let (site, day): (String, NaiveDate) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        let epoch = epochs.get(&site).copied().unwrap_or(0) * cache.epoch_weight;
        let entry = sums.entry((site, week_of(day).0)).or_insert((epoch, 0));
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
        .collect::<Result<_, StoreError>>()?;
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

/// The daily rows of `week` in one statement (one snapshot): blobs, and
/// the `source` they make (the sum, and the epoch term).
async fn daily_rows(
    db: &DatabaseConnection,
    cache: &WeekCache,
    week: &Week,
) -> Result<(Vec<Vec<u8>>, i64), StoreError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT {}, CAST({} AS BIGINT), CAST(0{} AS BIGINT) FROM {} \
         WHERE site_id = $1 AND day >= $2 AND day <= $3",
        cache.blob,
        cache.source,
        cache.epoch_term("$1"),
        cache.daily
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, week.values()))
        .await?;
    let mut blobs = Vec::with_capacity(rows.len());
    let mut source = 0;
    for (i, row) in rows.iter().enumerate() {
        blobs.push(row.try_get_by_index(0)?);
        source += row.try_get_by_index::<i64>(1)?;
        if i == 0 {
            source += row.try_get_by_index::<i64>(2)?;
        }
    }
    Ok((blobs, source))
}

/// Stores a week's row. Racing rounds (two processors) may leave the one
/// built from the older snapshot: its `source` then differs from the daily
/// rows' and readers do not use it, and the next round rebuilds it. (A
/// source may also shrink: a user's deletion takes them out of the sets.)
async fn store(
    db: &DatabaseConnection,
    cache: &WeekCache,
    week: &Week,
    extra: &[&str],
    values: Vec<Value>,
) -> Result<bool, StoreError> {
    let backend = db.get_database_backend();
    let cols: Vec<&str> = [cache.blob]
        .into_iter()
        .chain(extra.iter().copied())
        .chain(["source"])
        .collect();
    let updates: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let sql = format!(
        "INSERT INTO {weekly} (site_id, first_day, last_day, {cols}) VALUES {row} \
         ON CONFLICT (site_id, first_day) DO UPDATE SET {updates}",
        weekly = cache.weekly,
        cols = cols.join(", "),
        row = values_placeholders(1, 3 + cols.len()),
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

async fn rebuild_users(db: &DatabaseConnection, week: &Week) -> Result<bool, StoreError> {
    let mut users = RoaringBitmap::new();
    let (blobs, source) = daily_rows(db, &USER_WEEKS, week).await?;
    for blob in blobs {
        users |= user_set::decode(&blob)?;
    }
    let count = i64::try_from(users.len()).unwrap_or(i64::MAX);
    let values = vec![user_set::encode(&users).into(), count.into(), source.into()];
    store(db, &USER_WEEKS, week, &["user_count"], values).await
}

async fn rebuild_paths(db: &DatabaseConnection, week: &Week) -> Result<bool, StoreError> {
    let mut views: BTreeMap<String, i64> = BTreeMap::new();
    let (blobs, source) = daily_rows(db, &PATH_WEEKS, week).await?;
    for blob in blobs {
        for (path, n) in path_pack::decode(&blob)? {
            *views.entry(path).or_default() += n;
        }
    }
    let values = vec![path_pack::encode(&views).into(), source.into()];
    store(db, &PATH_WEEKS, week, &[], values).await
}
