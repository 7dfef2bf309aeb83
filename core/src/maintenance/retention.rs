//! Retention by age (`RETENTION_DAYS`): raw events older than the bound
//! are dropped. The rollups hold no personal data and are kept (answers
//! for old days stay), unless `RETENTION_ROLLUPS=drop` drops their rows of
//! those days too.
//!
//! On PostgreSQL `events` is partitioned by UTC day (migration 12), and a
//! day past the bound is dropped whole, its partition with it: no row is
//! deleted one by one, nothing is left for vacuum, and the WAL carries a
//! few catalog records instead of every row. The idempotency keys of those
//! days (`event_keys`, not partitioned: its key cannot carry the day, see
//! the writer) are then deleted in bounded batches through their `day`
//! index; a key is a few dozen bytes, so a day's keys are a small fraction
//! of its rows. Partitions go first: a key outliving its row only turns a
//! resend of that old event into a no-op, while a row outliving its key
//! would let the resend in twice.
//!
//! On SQLite the old rows are deleted in bounded batches through the time
//! index, so that no statement holds the write lock for long.
//!
//! Before anything is dropped, the first day kept is recorded
//! (`store_epochs.first_day_kept`): the query API's column cache reads it
//! to know that events of a window it holds are gone.

use crate::store::postgres::partitions;
use crate::store::schema::{dated_rollups, DROP_BLOCKS_BEFORE, RAISE_FIRST_DAY_KEPT};
use crate::store::StoreError;
use chrono::{DateTime, Days, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Rows deleted per statement.
const BATCH: i64 = 10_000;

/// What retention keeps and drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw events older than this many days are deleted.
    pub days: u32,
    /// Also drop the rollups' rows of those days.
    pub rollups: bool,
}

impl Retention {
    /// What the settings ask for; `None` when raw events are kept forever.
    pub fn from_args(a: &crate::ops::config::RetentionArgs) -> Option<Self> {
        (a.retention_days > 0).then_some(Self {
            days: a.retention_days,
            rollups: a.retention_rollups == crate::ops::config::RetainRollups::Drop,
        })
    }

    /// The first day kept at `now`: midnight UTC of this day starts what
    /// is kept.
    pub fn first_day_kept(self, now: DateTime<Utc>) -> NaiveDate {
        let today = now.date_naive();
        today.checked_sub_days(Days::new(u64::from(self.days))).unwrap_or(today)
    }
}

/// What one run of retention dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Raw events (on PostgreSQL counted by their keys, one a row).
    pub events: u64,
    /// The days whose partition was dropped (PostgreSQL).
    pub partitions: Vec<NaiveDate>,
}

/// Drops what `r` says is too old at `now`.
pub async fn apply(db: &DatabaseConnection, r: Retention, now: DateTime<Utc>) -> Result<Dropped, StoreError> {
    let backend = db.get_database_backend();
    let first_kept = r.first_day_kept(now);
    let mut dropped = Dropped::default();
    // First, so that a reader that sees any of the drop sees the new floor.
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        RAISE_FIRST_DAY_KEPT,
        [first_kept.into()],
    ))
    .await?;
    if backend == DbBackend::Postgres {
        dropped.partitions = partitions::drop_before(db, first_kept).await?;
        dropped.events = delete_in_batches(
            db,
            "DELETE FROM event_keys WHERE (event_id, site_id) IN \
             (SELECT event_id, site_id FROM event_keys WHERE day < $1 LIMIT $2)",
            first_kept.into(),
        )
        .await?;
    } else {
        let cutoff = first_kept.and_time(chrono::NaiveTime::MIN).and_utc();
        dropped.events = delete_in_batches(
            db,
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE timestamp < $1 LIMIT $2)",
            cutoff.into(),
        )
        .await?;
    }
    // The day blocks are copies of raw events: they go with them.
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        DROP_BLOCKS_BEFORE,
        [first_kept.into()],
    ))
    .await?;
    if r.rollups {
        for (table, column) in dated_rollups() {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {table} WHERE {column} < $1"),
                [first_kept.into()],
            ))
            .await?;
        }
    }
    Ok(dropped)
}

/// Runs `sql` (a `DELETE` of at most `$2` rows below `$1`) until it
/// deletes fewer than a batch; returns the rows deleted.
async fn delete_in_batches(db: &DatabaseConnection, sql: &str, below: sea_orm::Value) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let n = db
            .execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                [below.clone(), BATCH.into()],
            ))
            .await?
            .rows_affected();
        deleted += n;
        if n < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            return Ok(deleted);
        }
    }
}
