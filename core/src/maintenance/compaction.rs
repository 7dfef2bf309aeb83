//! Packs closed-out path rows: each (site, day)'s `daily_path_views` rows
//! move into its `daily_path_packs` row (`codec::path_pack`), so a range
//! reads at most one pack per day plus the rows written since the last
//! compaction.
//!
//! Exactness: the compactor deletes rows with `DELETE … RETURNING` and folds
//! exactly the returned rows into the pack in the same transaction, so a view
//! is always in exactly one of the two tables. A writer that upserts a row
//! being deleted waits for the compaction to commit and then inserts a fresh
//! row, which the next compaction packs.
//!
//! No deadlocks: the compactor never waits for a writer. It takes only the
//! rows no transaction holds (`FOR UPDATE SKIP LOCKED`; a held row is packed
//! on the next run), then the pack row, which writers never touch. Writers may
//! wait for the compactor, briefly; compactors may wait for each other's
//! pack row, holding nothing a writer could be waiting to release to them.

use crate::codec::path_pack;
use crate::store::sql::for_update;
use crate::store::StoreError;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use std::collections::BTreeMap;

/// (site, day) groups packed per compaction run; the rest wait for the next.
const GROUPS_PER_RUN: i64 = 5000;

/// Moves one (site, day)'s `daily_path_views` rows into its pack, in the
/// caller's transaction. Returns the number of rows moved.
pub async fn compact_group<C: ConnectionTrait>(conn: &C, site_id: &str, day: NaiveDate) -> Result<usize, StoreError> {
    let backend = conn.get_database_backend();
    let key = || -> Vec<Value> { vec![site_id.into(), day.into()] };
    // PostgreSQL: only rows no writer holds right now are moved (a held row
    // waits for the next run), so the compactor never waits on a writer.
    let delete = if backend == DbBackend::Postgres {
        "DELETE FROM daily_path_views d USING ( \
           SELECT path FROM daily_path_views WHERE site_id = $1 AND day = $2 FOR UPDATE SKIP LOCKED \
         ) free WHERE d.site_id = $1 AND d.day = $2 AND d.path = free.path RETURNING d.path, d.views"
    } else {
        "DELETE FROM daily_path_views WHERE site_id = ? AND day = ? RETURNING path, views"
    };
    let moved = conn
        .query_all_raw(Statement::from_sql_and_values(backend, delete, key()))
        .await?;
    if moved.is_empty() {
        return Ok(0);
    }
    let mut values = key();
    values.push(path_pack::encode(&BTreeMap::new()).into());
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO daily_path_packs (site_id, day, paths) VALUES ($1, $2, $3) \
         ON CONFLICT (site_id, day) DO NOTHING",
        values,
    ))
    .await?;
    let stored = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT paths FROM daily_path_packs WHERE site_id = $1 AND day = $2{}",
                for_update(backend)
            ),
            key(),
        ))
        .await?
        .ok_or_else(|| StoreError::internal(format!("the pack of {site_id} on {day} vanished")))?;
    let mut counts = path_pack::decode(&stored.try_get_by_index::<Vec<u8>>(0)?)?;
    for row in &moved {
        *counts.entry(row.try_get_by_index::<String>(0)?).or_default() += row.try_get_by_index::<i64>(1)?;
    }
    let mut values = vec![path_pack::encode(&counts).into()];
    values.extend(key());
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE daily_path_packs SET paths = $1 WHERE site_id = $2 AND day = $3",
        values,
    ))
    .await?;
    Ok(moved.len())
}

/// Packs every (site, day) that has rows in `daily_path_views` (up to
/// `GROUPS_PER_RUN` of them), one short transaction each. Returns the rows
/// moved.
pub async fn compact(db: &DatabaseConnection) -> Result<usize, StoreError> {
    Ok(compact_groups(db).await?.iter().map(|(_, n)| n).sum())
}

/// `compact`, returning each (site, day) packed with the rows it moved.
pub async fn compact_groups(db: &DatabaseConnection) -> Result<Vec<((String, NaiveDate), usize)>, StoreError> {
    let backend = db.get_database_backend();
    let groups = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT DISTINCT site_id, day FROM daily_path_views ORDER BY site_id, day LIMIT $1",
            [GROUPS_PER_RUN.into()],
        ))
        .await?;
    let mut packed = Vec::with_capacity(groups.len());
    for row in groups {
        let (site, day): (String, NaiveDate) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        let txn = db.begin().await?;
        let moved = compact_group(&txn, &site, day).await?;
        txn.commit().await?;
        if moved > 0 {
            packed.push(((site, day), moved));
        }
    }
    Ok(packed)
}
