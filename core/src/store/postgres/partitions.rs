//! The daily partitions of `events` on PostgreSQL (migration 12): one per
//! UTC day, named `events_pYYYYMMDD`, holding the rows whose `timestamp`
//! falls in that day. Retention drops a whole day's partition instead of
//! deleting its rows; the idempotency key lives in `event_keys`, which is
//! not partitioned (see `writer`).
//!
//! A partition must exist before a row of its day arrives: there is no
//! DEFAULT partition, so a row of a missing day is refused rather than
//! parked where retention would never find it by day (and where every new
//! partition would have to be checked against it). The writer creates the
//! days it has not seen before its batch transaction (`ensure`), and the
//! maintenance round creates today and the next days ahead of time, so
//! the hot path runs no DDL; an import of old history creates its days on
//! demand.
//!
//! A partition is created as a plain table and then attached: `ATTACH
//! PARTITION` takes only a SHARE UPDATE EXCLUSIVE lock on `events`, which
//! neither inserts nor reads wait for, where `CREATE TABLE … PARTITION OF`
//! takes ACCESS EXCLUSIVE and so waits behind every open reader (a dump,
//! an export) with every writer queued behind it.

use crate::store::StoreError;
use chrono::{Datelike, NaiveDate};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A day partition's name is this and the day as `YYYYMMDD`.
pub const PREFIX: &str = "events_p";

/// Held (for the transaction) by whoever creates a partition: two writers
/// that both found a day missing would otherwise both create it, and the
/// second would fail on the catalog's unique name.
const CREATE_LOCK: &str = "SELECT pg_advisory_xact_lock(7162534110981220012)";

/// Partitions dropped per transaction: each holds locks on the table, its
/// index and its TOAST table until commit, and the lock table is shared by
/// every session.
const DROPS_PER_TRANSACTION: usize = 32;

/// How long a drop waits for `events`: dropping a partition takes an ACCESS
/// EXCLUSIVE lock on it, and writers queue behind a waiting drop. Past
/// this the drop gives up and the next maintenance round tries again.
const DROP_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// The partition of `day`.
pub fn name(day: NaiveDate) -> String {
    format!("{PREFIX}{:04}{:02}{:02}", day.year(), day.month(), day.day())
}

/// The day of a partition named `name`, if the name follows the convention.
pub fn day_of(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// Midnight UTC of `day` as a `timestamptz` literal, as PostgreSQL prints
/// a bound under `TimeZone = 'UTC'`.
fn midnight(day: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02} 00:00:00+00", day.year(), day.month(), day.day())
}

/// The bounds of `day`'s partition, as `pg_get_expr` prints them under
/// `TimeZone = 'UTC'`.
fn bounds(day: NaiveDate) -> Result<String, StoreError> {
    let next = day
        .succ_opt()
        .ok_or_else(|| StoreError::internal(format!("no day after {day}")))?;
    Ok(format!(
        "FOR VALUES FROM ('{}') TO ('{}')",
        midnight(day),
        midnight(next)
    ))
}

/// The days a writer knows have a partition, so that it checks a day only
/// the first time it sees it.
#[derive(Default)]
pub struct KnownPartitions(Mutex<BTreeSet<NaiveDate>>);

impl KnownPartitions {
    /// Those of `days` not known to exist.
    pub fn unknown(&self, days: &BTreeSet<NaiveDate>) -> BTreeSet<NaiveDate> {
        let known = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        days.difference(&known).copied().collect()
    }

    pub fn learn(&self, days: impl IntoIterator<Item = NaiveDate>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(days);
    }

    /// Forgets every day: a partition was dropped (retention, possibly in
    /// another process) after this writer learnt it.
    pub fn forget_all(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The day partitions attached to `events` whose bounds are exactly their
/// day's, by day. A partition named otherwise, or whose bounds do not match
/// its name, is not one of these: retention never drops it.
pub async fn days(db: &DatabaseConnection) -> Result<Vec<(NaiveDate, String)>, StoreError> {
    let txn = db.begin().await?;
    let found = days_in(&txn).await?;
    txn.commit().await?;
    Ok(found)
}

async fn days_in(txn: &DatabaseTransaction) -> Result<Vec<(NaiveDate, String)>, StoreError> {
    // `pg_get_expr` prints the bounds in the session's time zone.
    txn.execute_unprepared("SET LOCAL TimeZone = 'UTC'").await?;
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass",
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (name, bound): (String, String) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        match day_of(&name) {
            Some(day) if bounds(day)? == bound => out.push((day, name)),
            _ => {
                tracing::warn!(partition = %name, %bound, "a partition of events that is not a day partition; left alone")
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Creates the partitions of those of `wanted` that have none, each in a
/// short transaction of its own; returns how many it created. Safe beside
/// other writers and processes creating the same days.
pub async fn ensure(db: &DatabaseConnection, wanted: &BTreeSet<NaiveDate>) -> Result<usize, StoreError> {
    if wanted.is_empty() {
        return Ok(0);
    }
    let existing: BTreeSet<NaiveDate> = days(db).await?.into_iter().map(|(d, _)| d).collect();
    let mut created = 0;
    for &day in wanted.difference(&existing) {
        let txn = db.begin().await?;
        txn.execute_unprepared(CREATE_LOCK).await?;
        // Under the lock: another creator may have made it meanwhile.
        if !days_in(&txn).await?.iter().any(|(d, _)| *d == day) {
            let name = name(day);
            // Everything of the parent (defaults, CHECK constraints,
            // indexes, storage): attaching refuses a table that lacks one
            // of its constraints, and takes the copied indexes as the
            // partition's own instead of building them again.
            txn.execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {name} (LIKE events INCLUDING ALL); \
                 ALTER TABLE events ATTACH PARTITION {name} {}",
                bounds(day)?
            ))
            .await?;
            created += 1;
        }
        txn.commit().await?;
    }
    if created > 0 {
        tracing::debug!(created, "created day partitions of events");
    }
    Ok(created)
}

/// Drops every day partition of a day before `cutoff`, whole; returns the
/// days dropped.
pub async fn drop_before(db: &DatabaseConnection, cutoff: NaiveDate) -> Result<Vec<NaiveDate>, StoreError> {
    let old: Vec<(NaiveDate, String)> = days(db).await?.into_iter().filter(|(d, _)| *d < cutoff).collect();
    let mut dropped = Vec::with_capacity(old.len());
    for chunk in old.chunks(DROPS_PER_TRANSACTION) {
        let names: Vec<&str> = chunk.iter().map(|(_, n)| n.as_str()).collect();
        let txn = db.begin().await?;
        txn.execute_unprepared(DROP_LOCK_TIMEOUT).await?;
        txn.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", names.join(", ")))
            .await?;
        txn.commit().await?;
        dropped.extend(chunk.iter().map(|(d, _)| *d));
    }
    Ok(dropped)
}

/// Whether `e` is PostgreSQL refusing a row for want of its partition
/// (SQLSTATE 23514, "no partition of relation … found for row").
pub fn is_missing_partition(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx = match e {
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match sqlx.as_database_error() {
        Some(db) => db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn names_and_bounds_follow_the_day() {
        assert_eq!(name(d(2026, 12, 6)), "events_p20261206");
        assert_eq!(day_of("events_p20261206"), Some(d(2026, 12, 6)));
        assert_eq!(name(d(1, 1, 1)), "events_p00010101");
        assert_eq!(day_of(&name(d(9999, 12, 31))), Some(d(9999, 12, 31)));
        for not_a_day in [
            "events_p2026120",
            "events_p202612060",
            "events_p20261332",
            "events",
            "events_p+2026120",
        ] {
            assert_eq!(day_of(not_a_day), None, "{not_a_day}");
        }
        assert_eq!(
            bounds(d(2026, 12, 31)).ok().as_deref(),
            Some("FOR VALUES FROM ('2026-12-31 00:00:00+00') TO ('2027-01-01 00:00:00+00')")
        );
        // The last day the api accepts ends in year 10000, which
        // PostgreSQL's timestamptz holds.
        assert_eq!(
            bounds(d(9999, 12, 31)).ok().as_deref(),
            Some("FOR VALUES FROM ('9999-12-31 00:00:00+00') TO ('10000-01-01 00:00:00+00')")
        );
    }

    #[test]
    fn known_days_are_not_checked_again() {
        let known = KnownPartitions::default();
        let days: BTreeSet<NaiveDate> = [d(2026, 12, 6), d(2026, 12, 7)].into();
        assert_eq!(known.unknown(&days), days);
        known.learn([d(2026, 12, 6)]);
        assert_eq!(known.unknown(&days), [d(2026, 12, 7)].into());
        known.forget_all();
        assert!(known.is_empty());
    }
}
