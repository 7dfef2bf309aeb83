//! `ingest::UserFold` driven on PostgreSQL, inside the batch transaction,
//! in a fixed number of statements whatever the number of sites.
//!
//! Concurrency: the batch's `sites` rows are locked (`FOR UPDATE`, ascending
//! site order) before any ordinal is read or assigned or any set touched,
//! so two processors folding the same site serialise on that row and can
//! never deadlock.

use crate::codec::user_set;
use crate::ingest::{sets_to_write, BatchUsers, KnownOrdinals, Learnt, UserFold};
use crate::store::schema::{SetTable, DAILY_USER_SETS, HOURLY_USER_SETS, INSERT_ORDINALS, SET_USER_COUNT};
use crate::store::sql::{keys_cte, list_placeholders, values_placeholders};
use crate::store::StoreError;
use roaring::RoaringBitmap;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, Statement, Value};
use std::collections::{BTreeMap, HashMap};

/// Rows per statement: far below the bind-parameter limit.
const ROWS_PER_STATEMENT: usize = 1000;

fn stmt(sql: impl Into<String>, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Folds one batch's users into `site_users` and the sets. The `sites`
/// rows must already exist. Returns the ordinals it read or assigned, for
/// `known.learn` once the transaction has committed.
pub async fn fold(
    txn: &DatabaseTransaction,
    batch: &BatchUsers<'_>,
    known: &KnownOrdinals,
) -> Result<Learnt, StoreError> {
    if batch.is_empty() {
        return Ok(Learnt::new());
    }
    let counters = lock_sites(txn, batch).await?;
    let mut fold = UserFold::start(batch, known, |site| counters.get(site).map_or(0, |(_, epoch)| *epoch));
    for chunk in fold.lookups().to_vec().chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            // A correlated lookup per key: one primary-key probe each, where a
            // join would let the planner pick a scan of the whole table.
            "{} SELECT k.site_id, k.user_id, \
               (SELECT s.ordinal FROM site_users s WHERE s.site_id = k.site_id AND s.user_id = k.user_id) \
             FROM k",
            keys_cte(&["site_id", "user_id"], chunk.len())
        );
        let values: Vec<Value> = chunk.iter().flat_map(|(s, u)| [(*s).into(), (*u).into()]).collect();
        for row in txn.query_all_raw(stmt(sql, values)).await? {
            let Some(stored) = row.try_get_by_index::<Option<i64>>(2)? else {
                continue;
            };
            let (site, user): (String, String) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            fold.found(&site, &user, crate::ingest::ordinal(&site, stored)?);
        }
    }
    let new = fold.assign(|site| counters.get(site).map(|(count, _)| *count))?;
    for chunk in new.rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("{INSERT_ORDINALS} VALUES {}", values_placeholders(chunk.len(), 3));
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, u, o)| [(*s).into(), (*u).into(), i64::from(*o).into()])
            .collect();
        txn.execute_raw(stmt(sql, values)).await?;
    }
    for (site, count) in &new.counters {
        txn.execute_raw(stmt(SET_USER_COUNT, vec![i64::from(*count).into(), (*site).into()]))
            .await?;
    }
    let sets = fold.sets();
    let daily = sets
        .daily
        .into_iter()
        .map(|((s, d), set)| ((s.to_string(), d), set))
        .collect();
    merge_sets(
        txn,
        &DAILY_USER_SETS,
        daily,
        |(site, day)| vec![site.as_str().into(), (*day).into()],
        |row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
    )
    .await?;
    let hourly = sets
        .hourly
        .into_iter()
        .map(|((s, d, h), set)| ((s.to_string(), d, h), set))
        .collect();
    merge_sets(
        txn,
        &HOURLY_USER_SETS,
        hourly,
        |(site, day, hour)| vec![site.as_str().into(), (*day).into(), (*hour).into()],
        |row| {
            Ok((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
            ))
        },
    )
    .await?;
    Ok(fold.learnt())
}

/// Locks the batch's sites' rows, in ascending order, and returns their
/// user counters and deletion epochs.
async fn lock_sites(
    txn: &DatabaseTransaction,
    batch: &BatchUsers<'_>,
) -> Result<HashMap<String, (u32, i64)>, StoreError> {
    let sites: Vec<&str> = batch.sites().into_iter().map(|(site, _)| site).collect();
    let mut counters = HashMap::with_capacity(sites.len());
    for chunk in sites.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT site_id, user_count, deletions FROM sites WHERE site_id IN ({}) ORDER BY site_id FOR UPDATE",
            list_placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|s| (*s).into()).collect();
        for row in txn.query_all_raw(stmt(sql, values)).await? {
            let site: String = row.try_get_by_index(0)?;
            let count = crate::ingest::ordinal(&site, row.try_get_by_index::<i64>(1)?)?;
            let epoch: i64 = row.try_get_by_index(2)?;
            counters.insert(site, (count, epoch));
        }
    }
    Ok(counters)
}

/// Unions `sets` into the stored sets of `table` and writes back, with
/// their cardinality, those the batch added users to.
async fn merge_sets<K: Ord>(
    txn: &DatabaseTransaction,
    table: &SetTable,
    sets: BTreeMap<K, RoaringBitmap>,
    key_values: impl Fn(&K) -> Vec<Value>,
    row_key: impl Fn(&QueryResult) -> Result<K, DbErr>,
) -> Result<(), StoreError> {
    let keys: Vec<&K> = sets.keys().collect();
    let mut stored: Vec<(K, RoaringBitmap)> = Vec::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<Value> = chunk.iter().flat_map(|k| key_values(k)).collect();
        for row in txn.query_all_raw(stmt(table.read_sql(chunk.len()), values)).await? {
            let set = user_set::decode(&row.try_get_by_index::<Vec<u8>>(table.key.len())?)?;
            stored.push((row_key(&row)?, set));
        }
    }
    let write: Vec<(K, RoaringBitmap)> = sets_to_write(sets, stored).into_iter().collect();
    for chunk in write.chunks(ROWS_PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * (table.key.len() + 2));
        for (key, set) in chunk {
            values.extend(key_values(key));
            values.push(user_set::encode(set).into());
            values.push(user_set::cardinality(set).into());
        }
        txn.execute_raw(stmt(table.write_sql(chunk.len()), values)).await?;
    }
    Ok(())
}
