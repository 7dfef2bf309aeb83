//! Retention by age (`RETENTION_DAYS`): raw events older than the bound are
//! deleted in bounded batches through the time index, so that no statement
//! holds locks for long or grows the WAL by a whole table. The rollups hold
//! no personal data and are kept (answers for old days stay), unless
//! `RETENTION_ROLLUPS=drop` drops their rows of those days too.
//!
//! Why not daily partitions of `events`, dropped whole: PostgreSQL requires
//! the partition key in every unique key, and the idempotency key
//! `(event_id, site_id)` would have to carry the timestamp; a client that
//! resends an event without a timestamp gets a new one each time, so a
//! resend would be counted twice. Exactness comes first (docs/design.md).

use crate::store::schema::dated_rollups;
use crate::store::StoreError;
use chrono::{DateTime, Days, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

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
}

/// Deletes what `r` says is too old at `now`; returns the raw events deleted.
pub async fn apply(db: &DatabaseConnection, r: Retention, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let backend = db.get_database_backend();
    let cutoff = (now.date_naive() - Days::new(u64::from(r.days)))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let mut deleted = 0;
    loop {
        let n = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE timestamp < $1 LIMIT $2)",
                [cutoff.into(), BATCH.into()],
            ))
            .await?
            .rows_affected();
        deleted += n;
        if n < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            break;
        }
    }
    if r.rollups {
        let day = cutoff.date_naive();
        for (table, column) in dated_rollups() {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {table} WHERE {column} < $1"),
                [day.into()],
            ))
            .await?;
        }
    }
    Ok(deleted)
}
