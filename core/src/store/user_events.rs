//! One user's raw events, found without an index on `user_id` (migration 7
//! dropped it: its random keys were most of the embedded writer's commit).
//!
//! The hourly user sets already record every hour in which a user had an
//! event (by the event's timestamp, as the raw row stores it), so a user's
//! events lie in those hours; `idx_events_timestamp_site` reaches each hour's
//! rows, the site compared inside the index, and the `user_id` filter runs
//! over that hour only. The daily sets narrow the days first, so the site's
//! hourly sets are read only for days the user was seen.
//!
//! Deletion (`delete`) takes the user out of everything as if they had never
//! sent an event.

use crate::codec::user_set::decode;
use crate::codec::{path_pack, user_set};
use crate::event::PAGE_VIEW;
use crate::store::schema::{self, SetTable, DAILY_USER_SETS, HOURLY_USER_SETS, READ_ORDINAL};
use crate::store::sql::for_update;
use crate::store::StoreError;
use crate::time::{epoch_minute, week_of};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement, TransactionTrait, Value,
};
use std::collections::{BTreeMap, BTreeSet};

/// The hours (UTC day, hour) in which `user_id` had events on `site_id`,
/// ascending; empty for a user the site never saw.
pub async fn hours<C: ConnectionTrait>(
    conn: &C,
    site_id: &str,
    user_id: &str,
) -> Result<Vec<(NaiveDate, i16)>, StoreError> {
    let backend = conn.get_database_backend();
    let Some(ordinal) = ordinal(conn, backend, site_id, user_id).await? else {
        return Ok(Vec::new());
    };
    let days_sql = "SELECT day, users FROM daily_user_sets WHERE site_id = $1 ORDER BY day";
    let hours_sql = "SELECT hour, users FROM hourly_user_sets WHERE site_id = $1 AND day = $2 ORDER BY hour";
    let mut out = Vec::new();
    for day_row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, days_sql, [site_id.into()]))
        .await?
    {
        if !decode(&day_row.try_get_by_index::<Vec<u8>>(1)?)?.contains(ordinal) {
            continue;
        }
        let day: NaiveDate = day_row.try_get_by_index(0)?;
        let stmt = Statement::from_sql_and_values(backend, hours_sql, [site_id.into(), day.into()]);
        for hour_row in conn.query_all_raw(stmt).await? {
            if decode(&hour_row.try_get_by_index::<Vec<u8>>(1)?)?.contains(ordinal) {
                out.push((day, hour_row.try_get_by_index::<i16>(0)?));
            }
        }
    }
    Ok(out)
}

/// Attempts at a deletion that a concurrent writer deadlocked with (the
/// database picks one transaction to abort; both retry).
const DELETE_ATTEMPTS: u32 = 5;

/// Deletes a user of a site as if they had never sent an event: their raw
/// events, their `site_users` row, their ordinal in every daily and hourly
/// set, and their events' counts in every rollup (path views, in rows and
/// packs; event counts by day, hour and minute), in one transaction. The
/// weekly caches of the weeks they touched are dropped (maintenance
/// rebuilds them). Returns how many raw events there were.
///
/// The site's row is updated first (its deletion epoch bumped: writers'
/// ordinal caches of the site are not used after it), which also holds
/// off the site's batches until the deletion commits.
pub async fn delete(db: &DatabaseConnection, site_id: &str, user_id: &str) -> Result<u64, StoreError> {
    let mut attempt = 1;
    loop {
        match delete_once(db, site_id, user_id).await {
            Err(e) if e.is_transient() && attempt < DELETE_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

async fn delete_once(db: &DatabaseConnection, site_id: &str, user_id: &str) -> Result<u64, StoreError> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    let bumped = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE sites SET deletions = deletions + 1 WHERE site_id = $1",
            [site_id.into()],
        ))
        .await?
        .rows_affected();
    let Some(ordinal) = ordinal(&txn, backend, site_id, user_id).await? else {
        txn.rollback().await?;
        return Ok(0);
    };
    debug_assert_eq!(bumped, 1, "a user's site has a row");
    // The site's stored day blocks hold copies of the user's events: gone
    // with them, in this transaction (the bumped epoch already makes any
    // of them stale for readers).
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        schema::DROP_SITE_BLOCKS,
        [site_id.into()],
    ))
    .await?;
    let hours = hours(&txn, site_id, user_id).await?;
    let ranges = hour_ranges(&hours);
    let mut removed = Removed::default();
    for (from, to) in &ranges {
        let values = || [site_id.into(), (*from).into(), (*to).into(), user_id.into()];
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT event_type, path, timestamp, received_at FROM events \
                 WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 AND user_id = $4",
                values(),
            ))
            .await?;
        for row in &rows {
            removed.add(
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
                row.try_get_by_index(3)?,
            );
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            delete_events_sql(backend),
            values(),
        ))
        .await?;
    }
    removed.subtract(&txn, site_id).await?;
    remove_from_sets(&txn, site_id, ordinal, &hours).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "DELETE FROM site_users WHERE site_id = $1 AND user_id = $2",
        [site_id.into(), user_id.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(removed.events)
}

/// Deletes the user's events of one range; on PostgreSQL their keys in
/// `event_keys` too, as if the events had never been sent (a resend is
/// then new, as it is on SQLite, where the key is the row's).
fn delete_events_sql(backend: DbBackend) -> &'static str {
    const EVENTS: &str =
        "DELETE FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 AND user_id = $4";
    match backend {
        DbBackend::Postgres => {
            "WITH gone AS (DELETE FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 \
               AND user_id = $4 RETURNING event_id) \
             DELETE FROM event_keys k USING gone WHERE k.event_id = gone.event_id AND k.site_id = $1"
        }
        _ => EVENTS,
    }
}

/// What a user's events added to the rollups.
#[derive(Default)]
struct Removed {
    events: u64,
    path_views: BTreeMap<(NaiveDate, String), i64>,
    daily: BTreeMap<(NaiveDate, String), i64>,
    hourly: BTreeMap<(NaiveDate, i16, String), i64>,
    minutes: BTreeMap<i64, i64>,
}

impl Removed {
    fn add(&mut self, event_type: String, path: String, timestamp: DateTime<Utc>, received_at: DateTime<Utc>) {
        let day = timestamp.date_naive();
        #[allow(clippy::cast_possible_truncation)] // 0..=23
        let hour = timestamp.hour() as i16;
        self.events += 1;
        if event_type == PAGE_VIEW {
            *self.path_views.entry((day, path)).or_default() += 1;
        }
        *self.hourly.entry((day, hour, event_type.clone())).or_default() += 1;
        *self.daily.entry((day, event_type)).or_default() += 1;
        *self.minutes.entry(epoch_minute(received_at)).or_default() += 1;
    }

    /// Takes the counts off every rollup, dropping rows that reach zero.
    async fn subtract(&self, txn: &DatabaseTransaction, site: &str) -> Result<(), StoreError> {
        let backend = txn.get_database_backend();
        let exec = |sql: &'static str, values: Vec<Value>| {
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        };
        for ((day, event_type), n) in &self.daily {
            let key = vec![site.into(), (*day).into(), event_type.as_str().into()];
            let mut v = vec![(*n).into()];
            v.extend(key.clone());
            exec("UPDATE daily_event_counts SET events = events - $1 WHERE site_id = $2 AND day = $3 AND event_type = $4", v).await?;
            exec(
                "DELETE FROM daily_event_counts WHERE site_id = $1 AND day = $2 AND event_type = $3 AND events <= 0",
                key,
            )
            .await?;
        }
        for ((day, hour, event_type), n) in &self.hourly {
            let key = vec![site.into(), (*day).into(), (*hour).into(), event_type.as_str().into()];
            let mut v = vec![(*n).into()];
            v.extend(key.clone());
            exec("UPDATE hourly_event_counts SET events = events - $1 WHERE site_id = $2 AND day = $3 AND hour = $4 AND event_type = $5", v).await?;
            exec("DELETE FROM hourly_event_counts WHERE site_id = $1 AND day = $2 AND hour = $3 AND event_type = $4 AND events <= 0", key).await?;
        }
        for (minute, n) in &self.minutes {
            exec(
                "UPDATE minute_event_counts SET events = events - $1 WHERE site_id = $2 AND minute = $3",
                vec![(*n).into(), site.into(), (*minute).into()],
            )
            .await?;
            exec(
                "DELETE FROM minute_event_counts WHERE site_id = $1 AND minute = $2 AND events <= 0",
                vec![site.into(), (*minute).into()],
            )
            .await?;
        }
        self.subtract_path_views(txn, site).await
    }

    /// Path views live in `daily_path_views` rows until the compactor packs
    /// them: each is taken off the row first, the rest off the day's pack.
    async fn subtract_path_views(&self, txn: &DatabaseTransaction, site: &str) -> Result<(), StoreError> {
        let backend = txn.get_database_backend();
        let lock = for_update(backend);
        let mut from_packs: BTreeMap<NaiveDate, Vec<(&str, i64)>> = BTreeMap::new();
        for ((day, path), n) in &self.path_views {
            let key = || -> Vec<Value> { vec![site.into(), (*day).into(), path.as_str().into()] };
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!("SELECT views FROM daily_path_views WHERE site_id = $1 AND day = $2 AND path = $3{lock}"),
                    key(),
                ))
                .await?;
            let in_row: i64 = row.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or(0);
            let taken = in_row.min(*n);
            if taken > 0 {
                let mut v = vec![taken.into()];
                v.extend(key());
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "UPDATE daily_path_views SET views = views - $1 WHERE site_id = $2 AND day = $3 AND path = $4",
                    v,
                ))
                .await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "DELETE FROM daily_path_views WHERE site_id = $1 AND day = $2 AND path = $3 AND views <= 0",
                    key(),
                ))
                .await?;
            }
            if *n > taken {
                from_packs.entry(*day).or_default().push((path, *n - taken));
            }
        }
        for (day, paths) in from_packs {
            let stored = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!("SELECT paths FROM daily_path_packs WHERE site_id = $1 AND day = $2{lock}"),
                    [site.into(), day.into()],
                ))
                .await?
                .ok_or_else(|| StoreError::internal(format!("views of {site} on {day} are in no row and no pack")))?;
            let mut counts = path_pack::decode(&stored.try_get_by_index::<Vec<u8>>(0)?)?;
            for (path, n) in paths {
                let left = counts.get(path).copied().unwrap_or(0) - n;
                if left < 0 {
                    return Err(StoreError::internal(format!(
                        "the pack of {site} on {day} has fewer views of a path than its user sent"
                    )));
                }
                if left == 0 {
                    counts.remove(path);
                } else {
                    counts.insert(path.to_string(), left);
                }
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE daily_path_packs SET paths = $1 WHERE site_id = $2 AND day = $3",
                [path_pack::encode(&counts).into(), site.into(), day.into()],
            ))
            .await?;
        }
        Ok(())
    }
}

/// Takes `ordinal` out of the daily and hourly sets of `hours`, and drops
/// the weekly caches of their weeks (a set shrinking is something the
/// caches' `source` sums do not expect; maintenance rebuilds them).
async fn remove_from_sets(
    txn: &DatabaseTransaction,
    site: &str,
    ordinal: u32,
    hours: &[(NaiveDate, i16)],
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let days: BTreeSet<NaiveDate> = hours.iter().map(|(d, _)| *d).collect();
    let shrink = |table: &'static SetTable, key: Vec<Value>| async move {
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                table.read_one_sql(),
                key.clone(),
            ))
            .await?;
        let Some(row) = row else {
            return Ok::<(), StoreError>(());
        };
        let mut set = user_set::decode(&row.try_get_by_index::<Vec<u8>>(0)?)?;
        if set.remove(ordinal) {
            let mut values = key;
            values.push(user_set::encode(&set).into());
            values.push(user_set::cardinality(&set).into());
            txn.execute_raw(Statement::from_sql_and_values(backend, table.write_sql(1), values))
                .await?;
        }
        Ok(())
    };
    for day in &days {
        shrink(&DAILY_USER_SETS, vec![site.into(), (*day).into()]).await?;
    }
    for (day, hour) in hours {
        shrink(&HOURLY_USER_SETS, vec![site.into(), (*day).into(), (*hour).into()]).await?;
    }
    let weeks: BTreeSet<NaiveDate> = days.iter().map(|d| week_of(*d).0).collect();
    for monday in weeks {
        for table in ["weekly_user_sets", "weekly_path_packs"] {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {table} WHERE site_id = $1 AND first_day = $2"),
                [site.into(), monday.into()],
            ))
            .await?;
        }
    }
    Ok(())
}

async fn ordinal<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    site_id: &str,
    user_id: &str,
) -> Result<Option<u32>, StoreError> {
    let stmt = Statement::from_sql_and_values(backend, READ_ORDINAL, [site_id.into(), user_id.into()]);
    match conn.query_one_raw(stmt).await? {
        Some(row) => Ok(Some(crate::ingest::ordinal(site_id, row.try_get_by_index::<i64>(0)?)?)),
        None => Ok(None),
    }
}

/// Half-open time ranges covering the given hours, consecutive hours merged
/// into one range so that a user active all day costs one statement.
fn hour_ranges(hours: &[(NaiveDate, i16)]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for &(day, hour) in hours {
        let Some(start) = u32::try_from(hour)
            .ok()
            .and_then(|h| NaiveTime::from_hms_opt(h, 0, 0))
            .map(|t| day.and_time(t).and_utc())
        else {
            continue;
        };
        let end = start + TimeDelta::hours(1);
        match out.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2025, 11, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or_default()
    }

    #[test]
    fn consecutive_hours_merge_across_midnight() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 11, d).unwrap_or_default();
        let hours = [
            (day(14), 3),
            (day(14), 4),
            (day(14), 23),
            (day(15), 0),
            (day(15), 7),
            (day(15), 99),
        ];
        assert_eq!(
            hour_ranges(&hours),
            [(at(14, 3), at(14, 5)), (at(14, 23), at(15, 1)), (at(15, 7), at(15, 8))]
        );
        assert!(hour_ranges(&[]).is_empty());
    }
}
