//! Stored day blocks (migration 17): a site's raw events of one closed UTC
//! day as the engine's `Block`, so that a cold read of a month is thirty
//! blocks fetched and pushed, not millions of rows decoded and interned.
//!
//! A block is kept with the fingerprint it was read under: its events
//! (equal to the day's count in `hourly_event_counts` when it was made)
//! and the site's and store's removal epochs. Events are only ever added
//! otherwise, so while the day's count and the epochs are the same, the
//! day's events are the block's. A late event changes the count, a user
//! deletion the site's epoch (and drops the site's blocks), a site's
//! removal the store's: the day is read from its rows again, and its
//! block written anew. Days retention dropped are never read from blocks.

use super::removals::Removals;
use super::QueryError;
use crate::store::StoreError;
use analytics_query::engine::Block;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::collections::HashMap;

/// The window's days a block may answer for, and which stored blocks
/// still hold.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Every UTC day wholly inside the window, closed (before today) and
    /// kept by retention, in order: consecutive days.
    pub days: Vec<NaiveDate>,
    /// Each day's events now (days without any are absent).
    counts: HashMap<NaiveDate, i64>,
    /// The days whose stored block holds.
    holds: Vec<NaiveDate>,
    removals: Removals,
}

impl Plan {
    pub fn holds(&self, day: NaiveDate) -> bool {
        self.holds.binary_search(&day).is_ok()
    }

    /// Whether `day` has no events at all (its hourly counts say none):
    /// nothing to read, by block or by rows.
    pub fn empty(&self, day: NaiveDate) -> bool {
        self.counts.get(&day).is_none_or(|&n| n <= 0)
    }

    /// The block to store for `day`, read now as `block`: none when its
    /// events are not the day's count (rows changed by hand: the block
    /// would never hold) or there are none.
    pub fn to_store(&self, day: NaiveDate, block: &Block) -> Result<Option<StoredBlock>, QueryError> {
        let events = i64::try_from(block.len()).unwrap_or(i64::MAX);
        if events == 0 || self.counts.get(&day) != Some(&events) {
            return Ok(None);
        }
        let data = block
            .encode()
            .map_err(|e| StoreError::internal(format!("encoding the block of {day}: {e}")))?;
        Ok(Some(StoredBlock {
            day,
            events,
            removals: self.removals,
            data,
        }))
    }
}

/// A day's block to store, with the fingerprint it was read under.
#[derive(Debug)]
pub struct StoredBlock {
    day: NaiveDate,
    events: i64,
    removals: Removals,
    data: Vec<u8>,
}

/// Midnight (UTC) starting `day`.
pub(super) fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Which days of `[low, high]` blocks may answer for as of `today`, and
/// which stored ones hold, in `db`'s snapshot.
pub(super) async fn plan<C: ConnectionTrait>(
    db: &C,
    site: &str,
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    today: NaiveDate,
) -> Result<Plan, QueryError> {
    let removals = Removals::read(db, site).await?;
    let mut first = low.date_naive();
    if start_of(first) < low {
        first += Duration::days(1);
    }
    if let Some(kept) = removals.first_day_kept {
        first = first.max(kept);
    }
    let mut days = Vec::new();
    let mut day = first;
    // A day is whole in the window when its last instant is.
    while day < today && start_of(day) + Duration::days(1) - Duration::nanoseconds(1) <= high {
        days.push(day);
        day += Duration::days(1);
    }
    let (Some(&from), Some(&to)) = (days.first(), days.last()) else {
        return Ok(Plan::default());
    };
    let backend = db.get_database_backend();
    let counts = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT day, CAST(SUM(events) AS BIGINT) FROM hourly_event_counts \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 GROUP BY day",
            [site.into(), from.into(), to.into()],
        ))
        .await?
        .iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect::<Result<HashMap<NaiveDate, i64>, StoreError>>()?;
    let mut holds = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT day, events, deletions, site_removals FROM event_blocks \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            [site.into(), from.into(), to.into()],
        ))
        .await?
    {
        let day: NaiveDate = row.try_get_by_index(0)?;
        let events: i64 = row.try_get_by_index(1)?;
        let deletions: i64 = row.try_get_by_index(2)?;
        let site_removals: i64 = row.try_get_by_index(3)?;
        if counts.get(&day) == Some(&events)
            && deletions == removals.deletions
            && site_removals == removals.site_removals
        {
            holds.push(day);
        }
    }
    Ok(Plan {
        days,
        counts,
        holds,
        removals,
    })
}

/// The stored block of `day`; none when it cannot be decoded (it is then
/// read from the rows and written again).
pub(super) async fn load<C: ConnectionTrait>(db: &C, site: &str, day: NaiveDate) -> Result<Option<Block>, QueryError> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT data FROM event_blocks WHERE site_id = $1 AND day = $2",
            [site.into(), day.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let data: Vec<u8> = row.try_get_by_index(0)?;
    match Block::decode(&data) {
        Ok(block) => Ok(Some(block)),
        Err(e) => {
            tracing::warn!(site, %day, error = %e, "a stored day block could not be decoded; reading the day's events");
            Ok(None)
        }
    }
}

/// Stores `blocks` of `site`, each only while the site's removal epochs
/// are still the ones it was read under: a user deletion that committed
/// since (and dropped the site's blocks) keeps a block with their events
/// from coming back, as does the site's removal. On PostgreSQL the site's
/// row is locked for share, so a deletion under way either waits for this
/// or is seen by it.
pub async fn store(db: &DatabaseConnection, site: &str, blocks: Vec<StoredBlock>) -> Result<usize, StoreError> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        " FOR SHARE"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO event_blocks (site_id, day, events, deletions, site_removals, data) \
         SELECT $1, $2, $3, $4, $5, $6 FROM sites WHERE site_id = $1 AND deletions = $4 \
           AND (SELECT site_removals FROM store_epochs WHERE id = 1) = $5{lock} \
         ON CONFLICT (site_id, day) DO UPDATE SET events = excluded.events, deletions = excluded.deletions, \
         site_removals = excluded.site_removals, data = excluded.data"
    );
    let mut stored = 0;
    for b in blocks {
        stored += db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                &sql,
                [
                    site.into(),
                    b.day.into(),
                    b.events.into(),
                    b.removals.deletions.into(),
                    b.removals.site_removals.into(),
                    b.data.into(),
                ],
            ))
            .await?
            .rows_affected() as usize;
    }
    Ok(stored)
}
