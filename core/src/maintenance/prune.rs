//! Drops the live panel's old minutes.

use crate::store::StoreError;
use crate::time::epoch_minute;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// How long `minute_event_counts` rows are kept: the live panel reads five
/// minutes; the rest is slack for clock skew between api replicas.
pub const MINUTE_RETENTION: i64 = 60;

/// Deletes live-panel rows older than `MINUTE_RETENTION` minutes before
/// `now`. Outside any batch transaction: it touches only old rows no batch
/// writes. Returns the rows deleted.
pub async fn old_minutes(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        "DELETE FROM minute_event_counts WHERE minute < $1",
        [(epoch_minute(now) - MINUTE_RETENTION).into()],
    );
    Ok(db.execute_raw(stmt).await?.rows_affected())
}
