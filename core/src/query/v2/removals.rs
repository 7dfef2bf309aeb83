//! What removes a site's raw events, as epochs a reader compares: events
//! are otherwise only ever added, so a copy of them (the column cache's
//! entries, the stored day blocks) holds while its counts and these hold.

use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, Statement};

/// Everything that removes raw events, as epochs: the site's user
/// deletions, sites' removals, and the first day retention keeps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Removals {
    pub(super) deletions: i64,
    pub(super) site_removals: i64,
    pub(super) first_day_kept: Option<NaiveDate>,
}

impl Removals {
    /// Whether `now` removed nothing from a window starting at `low` that
    /// `self` had not: retention's floor may rise below the window.
    pub(super) fn none_since(&self, now: &Removals, low: DateTime<Utc>) -> bool {
        self.deletions == now.deletions
            && self.site_removals == now.site_removals
            && (self.first_day_kept == now.first_day_kept || now.first_day_kept.is_none_or(|d| d <= low.date_naive()))
    }

    /// The row of `REMOVALS`' columns from `at` on.
    pub(super) fn from_row(row: &sea_orm::QueryResult, at: usize) -> Result<Self, StoreError> {
        Ok(Self {
            deletions: row.try_get_by_index::<Option<i64>>(at)?.unwrap_or(0),
            site_removals: row.try_get_by_index::<Option<i64>>(at + 1)?.unwrap_or(0),
            first_day_kept: row.try_get_by_index::<Option<NaiveDate>>(at + 2)?,
        })
    }
}

/// `Removals`' three columns for the site `$1`, as subqueries (none of
/// their rows need exist: no deletion, no removal, nothing dropped).
pub(super) const REMOVALS: &str = "(SELECT deletions FROM sites WHERE site_id = $1), \
                        (SELECT site_removals FROM store_epochs WHERE id = 1), \
                        (SELECT first_day_kept FROM store_epochs WHERE id = 1)";

impl Removals {
    /// The site's epochs now (in `db`'s snapshot).
    pub(super) async fn read<C: ConnectionTrait>(db: &C, site: &str) -> Result<Removals, StoreError> {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!("SELECT {REMOVALS}"),
                [site.into()],
            ))
            .await?;
        match row {
            Some(row) => Removals::from_row(&row, 0),
            None => Ok(Removals::default()),
        }
    }
}
