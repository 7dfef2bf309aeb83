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
//! Deletion takes the site's `sites` row first, as the writer does before it
//! touches the site's users, so no batch can add events for the user between
//! the lookup and the delete.

use crate::codec::user_set::decode;
use crate::store::schema::READ_ORDINAL;
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

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

/// Deletes every raw event of `user_id` on `site_id` and returns how many
/// there were. Rollups are left as they are: they hold counts and the user's
/// ordinal, not the events.
pub async fn delete(db: &DatabaseConnection, site_id: &str, user_id: &str) -> Result<u64, StoreError> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    let lock = match backend {
        DbBackend::Postgres => "SELECT 1 FROM sites WHERE site_id = $1 FOR UPDATE",
        // SQLite has one writer: taking the write lock now keeps batches out.
        _ => "UPDATE sites SET user_count = user_count WHERE site_id = $1",
    };
    txn.execute_raw(Statement::from_sql_and_values(backend, lock, [site_id.into()]))
        .await?;
    let sql = "DELETE FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 AND user_id = $4";
    let mut deleted = 0;
    for (from, to) in hour_ranges(&hours(&txn, site_id, user_id).await?) {
        let values = [site_id.into(), from.into(), to.into(), user_id.into()];
        deleted += txn
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .rows_affected();
    }
    txn.commit().await?;
    Ok(deleted)
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
