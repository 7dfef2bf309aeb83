//! `ingest::UserFold` driven on SQLite, inside the batch transaction, one
//! prepared single-row statement per lookup and write. No row locks: the
//! transaction holds SQLite's only write lock.

use super::batch::date;
use crate::codec::user_set;
use crate::ingest::{merge_stored, ordinal, BatchUsers, KnownOrdinals, Learnt, UserFold};
use crate::store::schema::{
    SetTable, DAILY_USER_SETS, HOURLY_USER_SETS, INSERT_ORDINALS, READ_DELETIONS, READ_ORDINAL, READ_USER_COUNT,
    SET_USER_COUNT,
};
use crate::store::sql::for_rusqlite;
use crate::store::StoreError;
use roaring::RoaringBitmap;
use rusqlite::{params, OptionalExtension, ToSql, Transaction};
use std::collections::HashMap;

/// Folds one batch's users into `site_users` and the sets; returns the
/// ordinals to learn after commit.
pub(super) fn fold(txn: &Transaction<'_>, batch: &BatchUsers<'_>, known: &KnownOrdinals) -> Result<Learnt, StoreError> {
    if batch.is_empty() {
        return Ok(Learnt::new());
    }
    let mut epochs: HashMap<&str, i64> = HashMap::new();
    {
        let mut read = txn.prepare_cached(&for_rusqlite(READ_DELETIONS))?;
        for (site, _) in batch.sites() {
            let epoch: Option<i64> = read.query_row([site], |row| row.get(0)).optional()?;
            epochs.insert(site, epoch.unwrap_or_default());
        }
    }
    let mut fold = UserFold::start(batch, known, |site| epochs.get(site).copied().unwrap_or_default());
    {
        let mut lookup = txn.prepare_cached(&for_rusqlite(READ_ORDINAL))?;
        for (site, user) in fold.lookups().to_vec() {
            let stored: Option<i64> = lookup.query_row([site, user], |row| row.get(0)).optional()?;
            if let Some(o) = stored {
                fold.found(site, user, ordinal(site, o)?);
            }
        }
    }
    let mut counters: HashMap<&str, u32> = HashMap::new();
    {
        let mut read = txn.prepare_cached(&for_rusqlite(READ_USER_COUNT))?;
        for site in fold.sites_with_new_users() {
            let count: i64 = read.query_row([site], |row| row.get(0))?;
            counters.insert(site, ordinal(site, count)?);
        }
    }
    let new = fold.assign(|site| counters.get(site).copied())?;
    {
        let mut insert = txn.prepare_cached(&for_rusqlite(&format!("{INSERT_ORDINALS} VALUES ($1, $2, $3)")))?;
        for (site, user, o) in &new.rows {
            insert.execute(params![site, user, o])?;
        }
        let mut update = txn.prepare_cached(&for_rusqlite(SET_USER_COUNT))?;
        for (site, count) in &new.counters {
            update.execute(params![count, site])?;
        }
    }
    let sets = fold.sets();
    let daily = SetSql::of(&DAILY_USER_SETS);
    for ((site, day), set) in sets.daily {
        merge_set(txn, &daily, &[&site, &date(day)], set)?;
    }
    let hourly = SetSql::of(&HOURLY_USER_SETS);
    for ((site, day, hour), set) in sets.hourly {
        merge_set(txn, &hourly, &[&site, &date(day), &hour], set)?;
    }
    Ok(fold.learnt())
}

/// A set table's two statements, for rusqlite.
struct SetSql {
    read: String,
    write: String,
}

impl SetSql {
    fn of(table: &SetTable) -> Self {
        Self {
            read: for_rusqlite(&table.read_one_sql()),
            write: for_rusqlite(&table.write_sql(1)),
        }
    }
}

/// Unions `set` into the stored set at `key` and writes it back with its
/// cardinality, unless the stored set already holds all of it.
fn merge_set(
    txn: &Transaction<'_>,
    sql: &SetSql,
    key: &[&dyn ToSql],
    mut set: RoaringBitmap,
) -> Result<(), StoreError> {
    let stored: Option<Vec<u8>> = txn
        .prepare_cached(&sql.read)?
        .query_row(key, |row| row.get(0))
        .optional()?;
    if let Some(bytes) = stored {
        if !merge_stored(&mut set, user_set::decode(&bytes)?) {
            return Ok(());
        }
    }
    let bytes = user_set::encode(&set);
    let count = user_set::cardinality(&set);
    let mut values = key.to_vec();
    values.extend([&bytes as &dyn ToSql, &count]);
    txn.prepare_cached(&sql.write)?.execute(values.as_slice())?;
    Ok(())
}
