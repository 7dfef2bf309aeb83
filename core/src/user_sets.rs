//! Unique users as exact sets. Every (site, user) gets a dense per-site
//! ordinal (`site_users`, counter in `sites.user_count`), and every
//! (site, day) and (site, day, hour) keeps the set of its users' ordinals as a
//! serialized roaring bitmap (`daily_user_sets`, `hourly_user_sets`), with its
//! cardinality beside it.
//!
//! Why: with one row per (site, day, user), unique users over 30 days is a
//! `COUNT(DISTINCT)` over hundreds of thousands of rows, and the writer pays an
//! indexed insert per user per day and per hour. With sets, a range is the
//! union of at most a few hundred KB of bitmaps, and a batch updates one row
//! per touched (site, day) and (site, day, hour) plus one row per user never
//! seen before.
//!
//! Concurrency: a writer locks the site's `sites` row before it reads or
//! assigns ordinals or touches the site's sets, and sites are taken in
//! ascending order, so two processors folding the same site serialise on that
//! row and can never deadlock.

use crate::db::{portable, push_placeholder, values_placeholders};
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Rows per statement: far below both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 1000;

/// One site's users in a batch: user → the (day, hour) buckets it was seen
/// in (usually one: a short list beats a set).
pub(crate) type SiteUsers<'a> = foldhash::HashMap<&'a str, Vec<(NaiveDate, i16)>>;

/// The users one batch saw, by site.
///
/// Keys borrow from the batch's events, which outlive the transaction that
/// folds them: copying them cost two allocations an event.
#[derive(Default, Debug)]
pub struct BatchUsers<'a> {
    by_site: foldhash::HashMap<&'a str, SiteUsers<'a>>,
}

impl<'a> BatchUsers<'a> {
    pub fn add(&mut self, site_id: &'a str, user_id: &'a str, day: NaiveDate, hour: i16) {
        let buckets = self.by_site.entry(site_id).or_default().entry(user_id).or_default();
        if !buckets.contains(&(day, hour)) {
            buckets.push((day, hour));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_site.is_empty()
    }

    /// The batch's sites in order (the order writers lock them in), with
    /// their users.
    pub(crate) fn sites(&self) -> Vec<(&'a str, &SiteUsers<'a>)> {
        let mut sites: Vec<(&'a str, &SiteUsers<'a>)> =
            self.by_site.iter().map(|(site, users)| (*site, users)).collect();
        sites.sort_unstable_by_key(|(site, _)| *site);
        sites
    }
}

/// Ordinals this process has seen committed, so that a batch looks up in
/// the database only users it has not met (about 16 ms of a 10,000-event
/// processor transaction, most of its user-set work). Safe because an
/// ordinal, once committed, never changes and is never given to another
/// user: rows of `site_users` are only ever added. Entries are learnt only
/// after the transaction that read or assigned them has committed (a rolled
/// back assignment may be given to someone else by another processor).
/// Bounded: past `KNOWN_ORDINALS_MAX` entries it starts over, which costs
/// lookups, never correctness.
#[derive(Default)]
pub struct KnownOrdinals(Mutex<Known>);

#[derive(Default)]
struct Known {
    by_site: foldhash::HashMap<String, foldhash::HashMap<String, u32>>,
    len: usize,
}

/// About 30 MB of users at most.
const KNOWN_ORDINALS_MAX: usize = 500_000;

/// (site, user, ordinal) that one transaction read or assigned.
pub type Learnt = Vec<(String, String, u32)>;

impl KnownOrdinals {
    /// The known ordinal (or `None`) of each of a site's `users`, in their
    /// order, under one lock.
    pub(crate) fn get_all<'u>(&self, site: &str, users: impl IntoIterator<Item = &'u str>) -> Vec<Option<u32>> {
        let known = self.0.lock().ok();
        let site_users = known.as_ref().and_then(|k| k.by_site.get(site));
        users
            .into_iter()
            .map(|user| site_users.and_then(|m| m.get(user).copied()))
            .collect()
    }

    /// Records what a committed transaction read or assigned.
    pub fn learn(&self, learnt: Learnt) {
        let Ok(mut known) = self.0.lock() else { return };
        if known.len + learnt.len() > KNOWN_ORDINALS_MAX {
            *known = Known::default();
        }
        for (site, user, ordinal) in learnt {
            if known.by_site.entry(site).or_default().insert(user, ordinal).is_none() {
                known.len += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |k| k.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn db_err(msg: impl Into<String>) -> DbErr {
    DbErr::Custom(msg.into())
}

pub fn encode(set: &RoaringBitmap) -> Result<Vec<u8>, DbErr> {
    let mut out = Vec::with_capacity(set.serialized_size());
    set.serialize_into(&mut out)
        .map_err(|e| db_err(format!("serializing a user set: {e}")))?;
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<RoaringBitmap, DbErr> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| db_err(format!("a stored user set is corrupt: {e}")))
}

fn cardinality(set: &RoaringBitmap) -> i64 {
    i64::try_from(set.len()).unwrap_or(i64::MAX)
}

/// Folds one batch's users into `site_users` and the sets, inside the
/// caller's transaction, in a fixed number of statements whatever the number
/// of sites. The `sites` rows must already exist. Returns the ordinals it
/// read or assigned, for `known.learn` once the transaction has committed.
pub async fn fold<C: ConnectionTrait>(
    conn: &C,
    batch: &BatchUsers<'_>,
    known: &KnownOrdinals,
) -> Result<Learnt, DbErr> {
    if batch.is_empty() {
        return Ok(Learnt::new());
    }
    let backend = conn.get_database_backend();
    let (ordinals, learnt) = ordinals_for(conn, backend, batch, known).await?;
    let mut daily: BTreeMap<(String, NaiveDate), RoaringBitmap> = BTreeMap::new();
    let mut hourly: BTreeMap<(String, NaiveDate, i16), RoaringBitmap> = BTreeMap::new();
    for (site, users) in batch.sites() {
        let site_ordinals = ordinals.get(site);
        for (&user, buckets) in users {
            let ordinal = site_ordinals
                .and_then(|o| o.get(user))
                .copied()
                .ok_or_else(|| db_err(format!("no ordinal for a user of site {site}")))?;
            for &(day, hour) in buckets {
                daily.entry((site.to_string(), day)).or_default().insert(ordinal);
                hourly.entry((site.to_string(), day, hour)).or_default().insert(ordinal);
            }
        }
    }
    merge_sets(
        conn,
        backend,
        "daily_user_sets",
        &["site_id", "day"],
        daily,
        |(site, day)| vec![site.as_str().into(), (*day).into()],
        |row| {
            Ok((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<NaiveDate>(1)?,
            ))
        },
    )
    .await?;
    merge_sets(
        conn,
        backend,
        "hourly_user_sets",
        &["site_id", "day", "hour"],
        hourly,
        |(site, day, hour)| vec![site.as_str().into(), (*day).into(), (*hour).into()],
        |row| {
            Ok((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<NaiveDate>(1)?,
                row.try_get_by_index::<i16>(2)?,
            ))
        },
    )
    .await?;
    Ok(learnt)
}

type Ordinals<'a> = HashMap<&'a str, HashMap<&'a str, u32>>;

/// `WITH k(<cols>) AS (VALUES (…), …)`: the keys a statement joins against,
/// written once for both backends (SQLite names no columns on a bare VALUES).
fn keys_cte(backend: DbBackend, cols: &[&str], rows: usize) -> String {
    format!(
        "WITH k({}) AS (VALUES {})",
        cols.join(", "),
        values_placeholders(backend, rows, cols.len())
    )
}

/// Locks the batch's sites' counters (ascending site order), then returns
/// the ordinal of every user of the batch, assigning the next ordinals of
/// their site to users never seen before, and the ordinals it did not find
/// in `known`.
async fn ordinals_for<'a, C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    batch: &BatchUsers<'a>,
    known: &KnownOrdinals,
) -> Result<(Ordinals<'a>, Learnt), DbErr> {
    let sites: Vec<&'a str> = batch.sites().into_iter().map(|(site, _)| site).collect();
    let mut next: HashMap<&'a str, u32> = HashMap::with_capacity(sites.len());
    for chunk in sites.chunks(ROWS_PER_STATEMENT) {
        let lock = if backend == DbBackend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let mut sql = String::from("SELECT site_id, user_count FROM sites WHERE site_id IN (");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            push_placeholder(&mut sql, backend, i + 1);
        }
        sql.push_str(") ORDER BY site_id");
        sql.push_str(lock);
        let values: Vec<Value> = chunk.iter().map(|s| (*s).into()).collect();
        for row in conn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let site: String = row.try_get_by_index(0)?;
            let count = u32::try_from(row.try_get_by_index::<i64>(1)?)
                .map_err(|_| db_err(format!("site {site} has more users than a set can hold")))?;
            if let Some((&key, _)) = batch.by_site.get_key_value(site.as_str()) {
                next.insert(key, count);
            }
        }
    }

    let mut ordinals: Ordinals<'a> = HashMap::with_capacity(sites.len());
    let mut pairs: Vec<(&'a str, &'a str)> = Vec::new();
    for (site, users) in batch.sites() {
        let found = known.get_all(site, users.keys().copied());
        for (&user, o) in users.keys().zip(found) {
            match o {
                Some(o) => {
                    ordinals.entry(site).or_default().insert(user, o);
                }
                None => pairs.push((site, user)),
            }
        }
    }
    let mut learnt = Learnt::with_capacity(pairs.len());
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            // A correlated lookup per key: one primary-key probe each, where a
            // join would let the planner pick a scan of the whole table.
            "{} SELECT k.site_id, k.user_id, \
               (SELECT s.ordinal FROM site_users s WHERE s.site_id = k.site_id AND s.user_id = k.user_id) \
             FROM k",
            keys_cte(backend, &["site_id", "user_id"], chunk.len())
        );
        let values: Vec<Value> = chunk.iter().flat_map(|(s, u)| [(*s).into(), (*u).into()]).collect();
        for row in conn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let Some(stored) = row.try_get_by_index::<Option<i64>>(2)? else {
                continue;
            };
            let (site, user): (String, String) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            let ordinal = u32::try_from(stored).map_err(|_| db_err("a stored user ordinal is out of range"))?;
            if let Some((&site_key, users)) = batch.by_site.get_key_value(site.as_str()) {
                if let Some((&user_key, _)) = users.get_key_value(user.as_str()) {
                    ordinals.entry(site_key).or_default().insert(user_key, ordinal);
                    learnt.push((site, user, ordinal));
                }
            }
        }
    }

    let mut new_rows: Vec<(&'a str, &'a str, u32)> = Vec::new();
    for (site, user) in pairs {
        if ordinals.get(site).is_some_and(|o| o.contains_key(user)) {
            continue;
        }
        let counter = next
            .get_mut(site)
            .ok_or_else(|| db_err(format!("site {site} has no row in sites")))?;
        new_rows.push((site, user, *counter));
        learnt.push((site.to_string(), user.to_string(), *counter));
        ordinals.entry(site).or_default().insert(user, *counter);
        *counter = counter
            .checked_add(1)
            .ok_or_else(|| db_err(format!("site {site} has more users than a set can hold")))?;
    }
    for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO site_users (site_id, user_id, ordinal) VALUES {}",
            values_placeholders(backend, chunk.len(), 3)
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, u, o)| [(*s).into(), (*u).into(), i64::from(*o).into()])
            .collect();
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    let mut grown: Vec<(&str, u32)> = new_rows.iter().map(|(s, _, _)| (*s, next[s])).collect();
    grown.dedup();
    for (site, count) in grown {
        let sql = portable(backend, "UPDATE sites SET user_count = $1 WHERE site_id = $2");
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [i64::from(count).into(), site.into()],
        ))
        .await?;
    }
    Ok((ordinals, learnt))
}

/// Unions `sets` into the stored sets of `table` (keyed by `key_cols`) and
/// writes back, with their cardinality, those the batch added users to.
async fn merge_sets<C, K>(
    conn: &C,
    backend: DbBackend,
    table: &str,
    key_cols: &[&str],
    mut sets: BTreeMap<K, RoaringBitmap>,
    key_values: impl Fn(&K) -> Vec<Value>,
    row_key: impl Fn(&sea_orm::QueryResult) -> Result<K, DbErr>,
) -> Result<(), DbErr>
where
    C: ConnectionTrait,
    K: Ord + Clone,
{
    let keys: Vec<K> = sets.keys().cloned().collect();
    let cols = key_cols.join(", ");
    let join: Vec<String> = key_cols.iter().map(|c| format!("t.{c} = k.{c}")).collect();
    let selected: Vec<String> = key_cols.iter().map(|c| format!("t.{c}")).collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "{} SELECT {}, t.users FROM {table} t JOIN k ON {}",
            keys_cte(backend, key_cols, chunk.len()),
            selected.join(", "),
            join.join(" AND ")
        );
        let values: Vec<Value> = chunk.iter().flat_map(&key_values).collect();
        for row in conn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let key = row_key(&row)?;
            let Some(set) = sets.get_mut(&key) else { continue };
            let stored = decode(&row.try_get_by_index::<Vec<u8>>(key_cols.len())?)?;
            if set.is_subset(&stored) {
                // Nothing new: the stored set (up to 8 KB per 65,536 users)
                // is not rewritten.
                sets.remove(&key);
            } else {
                *set |= stored;
            }
        }
    }
    let rows: Vec<(K, RoaringBitmap)> = sets.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({cols}, users, user_count) VALUES {} \
             ON CONFLICT ({cols}) DO UPDATE SET users = excluded.users, user_count = excluded.user_count",
            values_placeholders(backend, chunk.len(), key_cols.len() + 2)
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * (key_cols.len() + 2));
        for (key, set) in chunk {
            values.extend(key_values(key));
            values.push(encode(set)?.into());
            values.push(cardinality(set).into());
        }
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// One stored (site, day, hour, user) fact, as the old per-user rollups held
/// it: what the migration reads to build the sets and writes back on `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHour {
    pub site_id: String,
    pub day: NaiveDate,
    pub hour: i16,
    pub user_id: String,
}

/// Every (site, day, hour, user) the sets of `site_id` hold.
pub async fn expand<C: ConnectionTrait>(conn: &C, site_id: &str) -> Result<Vec<UserHour>, DbErr> {
    let backend = conn.get_database_backend();
    let users_sql = portable(backend, "SELECT ordinal, user_id FROM site_users WHERE site_id = $1");
    let mut names: HashMap<u32, String> = HashMap::new();
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, users_sql, [site_id.into()]))
        .await?
    {
        let ordinal = u32::try_from(row.try_get_by_index::<i64>(0)?)
            .map_err(|_| db_err("a stored user ordinal is out of range"))?;
        names.insert(ordinal, row.try_get_by_index(1)?);
    }
    let sets_sql = portable(
        backend,
        "SELECT day, hour, users FROM hourly_user_sets WHERE site_id = $1 ORDER BY day, hour",
    );
    let mut out = Vec::new();
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, sets_sql, [site_id.into()]))
        .await?
    {
        let (day, hour): (NaiveDate, i16) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        for ordinal in decode(&row.try_get_by_index::<Vec<u8>>(2)?)? {
            let user_id = names
                .get(&ordinal)
                .cloned()
                .ok_or_else(|| db_err(format!("site {site_id}: user ordinal {ordinal} has no name")))?;
            out.push(UserHour {
                site_id: site_id.to_string(),
                day,
                hour,
                user_id,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_and_corruption_is_an_error() {
        let set: RoaringBitmap = [0u32, 7, 70_000, 4_000_000].into_iter().collect();
        let bytes = encode(&set).unwrap_or_default();
        assert_eq!(decode(&bytes).ok(), Some(set));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"not a bitmap").is_err());
    }

    #[test]
    fn batch_users_group_buckets_per_site_and_user() {
        let d = NaiveDate::from_ymd_opt(2025, 11, 15).unwrap_or_default();
        let mut b = BatchUsers::default();
        b.add("s", "u1", d, 3);
        b.add("s", "u1", d, 3);
        b.add("s", "u1", d, 4);
        b.add("t", "u1", d, 3);
        assert_eq!(b.by_site.len(), 2);
        assert_eq!(b.by_site["s"]["u1"].len(), 2);
        assert!(!b.is_empty());
    }
}
