//! The writer: one transaction per batch that inserts raw events and folds
//! only the newly inserted ones into the rollups. Used by the processor (from
//! Kafka into PostgreSQL) and by the api in embedded mode (into SQLite, where
//! the transaction runs in `sqlite_writer`; the rest is shared).
//!
//! Exactly-once effect: `event_id` is unique, raw rows are inserted with
//! `ON CONFLICT (event_id) DO NOTHING RETURNING event_id`, and only returned
//! ids reach the rollups, all in the same transaction. A redelivered or resent
//! event is therefore a no-op.
//!
//! No deadlocks between concurrent writers: every statement touches its rows
//! in one global order (events by `event_id`, rollups by primary key, tables
//! always in the same sequence), so lock waits can never form a cycle.

use crate::db::{portable, values_placeholders};
use crate::event::Event;
use crate::sqlite_writer::SqliteWriter;
use crate::user_sets::{self, BatchUsers, KnownOrdinals, Learnt};
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Rows per rollup INSERT: keeps bind parameters under PostgreSQL's 65,535.
const ROLLUP_ROWS_PER_STATEMENT: usize = 2000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events that were new and are now counted.
    pub inserted: usize,
    /// Events already stored (resent or redelivered): skipped.
    pub duplicates: usize,
}

/// Counts by key. Accumulated in a hash map, which a batch's repeating
/// string keys reach faster than a B-tree (walking one was most of the time
/// spent building the rollups), and read in key order, the order every
/// writer touches rows in.
pub(crate) struct Counts<K>(foldhash::HashMap<K, i64>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(foldhash::HashMap::default())
    }
}

impl<K: Hash + Eq + Ord> Counts<K> {
    fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    pub(crate) fn sorted(&self) -> Vec<(&K, i64)> {
        let mut rows: Vec<(&K, i64)> = self.0.iter().map(|(k, n)| (k, *n)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }
}

/// What one batch adds to the rollups.
#[derive(Default)]
pub(crate) struct Rollups<'a> {
    pub(crate) path_views: Counts<(&'a str, NaiveDate, &'a str)>,
    pub(crate) users: BatchUsers<'a>,
    pub(crate) daily: Counts<(&'a str, NaiveDate, &'a str)>,
    pub(crate) hourly: Counts<(&'a str, NaiveDate, i16, &'a str)>,
    /// Keyed by the minute the event was *received* (epoch minutes): the live
    /// panel shows what is arriving now, whatever time the event claims.
    pub(crate) minutes: Counts<(&'a str, i64)>,
}

impl<'a> Rollups<'a> {
    /// Keys borrow from the events, which outlive the transaction: owned keys
    /// cost five allocations an event.
    pub(crate) fn add(&mut self, e: &'a Event) {
        let day = e.timestamp.date_naive();
        #[allow(clippy::cast_possible_truncation)]
        let hour = e.timestamp.hour() as i16;
        if e.is_page_view() {
            self.path_views.add((&e.site_id, day, &e.path));
        }
        if !e.user_id.is_empty() {
            self.users.add(&e.site_id, &e.user_id, day, hour);
        }
        self.minutes.add((&e.site_id, epoch_minute(e.received_at)));
        self.daily.add((&e.site_id, day, &e.event_type));
        self.hourly.add((&e.site_id, day, hour, &e.event_type));
    }

    /// The batch's sites, in order: every event counts in `daily`.
    pub(crate) fn sites(&self) -> Vec<&'a str> {
        let mut sites: Vec<&'a str> = self.daily.0.keys().map(|(site, _, _)| *site).collect();
        sites.sort_unstable();
        sites.dedup();
        sites
    }
}

/// Minutes since the Unix epoch: the key of `minute_event_counts`.
pub fn epoch_minute(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// How long `minute_event_counts` rows are kept: the live panel reads five
/// minutes; the rest is slack for clock skew between api replicas.
pub const MINUTE_RETENTION: i64 = 60;

/// Writes batches into one database, and after its commits keeps that
/// database tidy: prunes the live panel's old minutes and packs path rows
/// (`path_packs`), each at most once a minute per writer whatever the batch
/// rate. Cloning shares the schedule; two writers on one database (two
/// processors) each keep their own, which is safe: both chores are
/// idempotent and never hold a batch's locks.
#[derive(Clone)]
pub struct Writer {
    db: DatabaseConnection,
    /// On SQLite, batches go through this connection; `db` keeps the chores.
    sqlite: Option<SqliteWriter>,
    upkeep: Arc<Upkeep>,
    known: Arc<KnownOrdinals>,
}

/// The current epoch minute, unless `last` already holds it; records it.
fn first_time_this_minute(last: &AtomicI64) -> Option<i64> {
    let now = epoch_minute(Utc::now());
    (last.swap(now, Ordering::Relaxed) != now).then_some(now)
}

struct Upkeep {
    last_prune: AtomicI64,
    last_compaction: AtomicI64,
    compacting: AtomicBool,
}

impl Writer {
    /// On SQLite this opens the writer's own connection to the same file.
    pub fn new(db: DatabaseConnection) -> Result<Self, DbErr> {
        let sqlite = match db.get_database_backend() {
            DbBackend::Sqlite => Some(SqliteWriter::open(db.get_sqlite_connection_pool())?),
            _ => None,
        };
        Ok(Self {
            db,
            sqlite,
            upkeep: Arc::new(Upkeep {
                last_prune: AtomicI64::new(i64::MIN),
                last_compaction: AtomicI64::new(i64::MIN),
                compacting: AtomicBool::new(false),
            }),
            known: Arc::default(),
        })
    }

    /// Whether a background packing started by this writer's commits is
    /// still running (it is started before `write` returns).
    pub fn tidying(&self) -> bool {
        self.upkeep.compacting.load(Ordering::Acquire)
    }

    /// Users whose ordinal this writer knows without a lookup.
    pub fn known_users(&self) -> usize {
        self.known.len()
    }

    pub async fn write(&self, events: &[Event]) -> Result<WriteOutcome, DbErr> {
        match &self.sqlite {
            Some(_) => self.write_owned(events.to_vec()).await,
            None => self.write_postgres(events).await,
        }
    }

    /// `write` for a caller that is done with the events: on SQLite they move
    /// to the blocking thread that writes them instead of being copied.
    pub async fn write_owned(&self, events: Vec<Event>) -> Result<WriteOutcome, DbErr> {
        let outcome = match &self.sqlite {
            Some(sqlite) => sqlite.write(events, self.known.clone()).await?,
            None => return self.write_postgres(&events).await,
        };
        self.after_commit().await;
        Ok(outcome)
    }

    async fn write_postgres(&self, events: &[Event]) -> Result<WriteOutcome, DbErr> {
        let txn = self.db.begin().await?;
        let (outcome, learnt) = write_in(&txn, events, &self.known).await?;
        txn.commit().await?;
        self.known.learn(learnt);
        self.after_commit().await;
        Ok(outcome)
    }

    async fn after_commit(&self) {
        self.prune_minutes().await;
        self.compact_soon();
    }

    /// Deletes live-panel rows older than `MINUTE_RETENTION` minutes. Outside
    /// the batch transaction on purpose: it touches only old rows no batch
    /// writes, it must never fail a batch, and a missed prune is redone a
    /// minute later.
    async fn prune_minutes(&self) {
        let Some(now) = first_time_this_minute(&self.upkeep.last_prune) else {
            return;
        };
        let backend = self.db.get_database_backend();
        let sql = portable(backend, "DELETE FROM minute_event_counts WHERE minute < $1");
        let stmt = Statement::from_sql_and_values(backend, sql, [(now - MINUTE_RETENTION).into()]);
        if let Err(e) = self.db.execute_raw(stmt).await {
            tracing::warn!(error = %e, "pruning minute_event_counts failed; retrying next minute");
        }
    }

    /// Packs path rows and rebuilds stale weekly rollups in the background
    /// if no compaction started this minute and none is running; a failure
    /// is logged and retried a minute later, and never touches the batch.
    fn compact_soon(&self) {
        if first_time_this_minute(&self.upkeep.last_compaction).is_none()
            || self.upkeep.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (db, upkeep) = (self.db.clone(), self.upkeep.clone());
        tokio::spawn(async move {
            match crate::path_packs::compact(&db).await {
                Ok(moved) => tracing::debug!(moved, "packed daily_path_views rows"),
                Err(e) => tracing::warn!(error = %e, "packing daily_path_views failed; retrying next minute"),
            }
            // After the packing, so that the weeks it changed are rebuilt now
            // rather than a minute later.
            match crate::week_rollups::refresh(&db).await {
                Ok(done) => tracing::debug!(?done, "rebuilt stale weekly rollups"),
                Err(e) => tracing::warn!(error = %e, "rebuilding weekly rollups failed; retrying next minute"),
            }
            upkeep.compacting.store(false, Ordering::Release);
        });
    }
}

/// The batch without repeated `event_id`s (first one kept), in `event_id`
/// order.
pub(crate) fn unique_by_id(events: &[Event]) -> Vec<&Event> {
    let mut unique: Vec<&Event> = Vec::with_capacity(events.len());
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    for e in events {
        if seen.insert(e.event_id) {
            unique.push(e);
        }
    }
    unique.sort_by_key(|e| e.event_id);
    unique
}

/// The batch transaction on PostgreSQL.
async fn write_in(
    txn: &DatabaseTransaction,
    events: &[Event],
    known: &KnownOrdinals,
) -> Result<(WriteOutcome, Learnt), DbErr> {
    let backend = txn.get_database_backend();
    let unique = unique_by_id(events);
    let inserted_ids = insert_events(txn, &unique).await?;

    let mut rollups = Rollups::default();
    for e in unique.iter().filter(|e| inserted_ids.contains(&e.event_id)) {
        rollups.add(e);
    }
    let learnt = upsert_rollups(txn, backend, &rollups, known).await?;

    Ok((
        WriteOutcome {
            inserted: inserted_ids.len(),
            duplicates: events.len() - inserted_ids.len(),
        },
        learnt,
    ))
}

/// Inserts the raw rows, in `event_id` order, and returns the ids that were
/// new. The whole batch is one statement of ten array parameters: a
/// 1,000-row `VALUES` list costs the server more to parse and plan than to
/// insert.
async fn insert_events(txn: &DatabaseTransaction, events: &[&Event]) -> Result<HashSet<Uuid>, DbErr> {
    let mut inserted = HashSet::with_capacity(events.len());
    for row in txn.query_all_raw(unnest_insert(events)).await? {
        inserted.insert(row.try_get_by_index::<Uuid>(0)?);
    }
    Ok(inserted)
}

const INSERT_EVENTS: &str =
    "INSERT INTO events (event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props)";
const ON_NEW_EVENT_ID: &str = "ON CONFLICT (event_id) DO NOTHING RETURNING event_id";

/// Arrays cannot carry SQL NULLs through sea-query, so the optional columns
/// travel as a presence flag (referrer, which may be empty) and as `''` for
/// no props (a JSON object is never empty text).
fn unnest_insert(events: &[&Event]) -> Statement {
    let n = events.len();
    let (mut ids, mut sites, mut types, mut paths, mut users) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut times, mut received, mut referrers, mut has_referrer, mut props) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in events {
        ids.push(e.event_id);
        sites.push(e.site_id.clone());
        types.push(e.event_type.clone());
        paths.push(e.path.clone());
        users.push(e.user_id.clone());
        times.push(e.timestamp);
        received.push(e.received_at);
        referrers.push(e.referrer.clone().unwrap_or_default());
        has_referrer.push(e.referrer.is_some());
        props.push(
            e.props
                .as_ref()
                .map(|p| serde_json::Value::Object(p.clone()).to_string())
                .unwrap_or_default(),
        );
    }
    let sql = format!(
        "{INSERT_EVENTS} SELECT e.id, e.site, e.etype, e.path, e.usr, e.ts, e.recv, \
           CASE WHEN e.has_ref THEN e.ref END, CAST(NULLIF(e.props, '') AS jsonb) \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], \
                     $7::timestamptz[], $8::text[], $9::bool[], $10::text[]) \
           AS e(id, site, etype, path, usr, ts, recv, ref, has_ref, props) \
         {ON_NEW_EVENT_ID}"
    );
    let values: Vec<Value> = vec![
        ids.into(),
        sites.into(),
        types.into(),
        paths.into(),
        users.into(),
        times.into(),
        received.into(),
        referrers.into(),
        has_referrer.into(),
        props.into(),
    ];
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Adds counts to a rollup: `INSERT … ON CONFLICT (<key>) DO UPDATE SET
/// <count> = <table>.<count> + excluded.<count>`, rows in the caller's
/// (primary-key) order, `ROLLUP_ROWS_PER_STATEMENT` rows a statement.
async fn add_counts(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    table: &str,
    key: &[&str],
    count: &str,
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    // Collected before the first await: the caller's iterator borrows its rollups.
    let mut rows: Vec<Vec<Value>> = rows.collect();
    let key = key.join(", ");
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(ROLLUP_ROWS_PER_STATEMENT));
        let chunk = std::mem::replace(&mut rows, rest);
        let sql = format!(
            "INSERT INTO {table} ({key}, {count}) VALUES {} \
             ON CONFLICT ({key}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}",
            values_placeholders(backend, chunk.len(), chunk.first().map_or(0, Vec::len))
        );
        let values: Vec<Value> = chunk.into_iter().flatten().collect();
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

async fn upsert_rollups(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    r: &Rollups<'_>,
    known: &KnownOrdinals,
) -> Result<Learnt, DbErr> {
    add_counts(
        txn,
        backend,
        "daily_path_views",
        &["site_id", "day", "path"],
        "views",
        r.path_views
            .sorted()
            .into_iter()
            .map(|(&(site, day, path), n)| vec![site.into(), day.into(), path.into(), n.into()]),
    )
    .await?;
    add_counts(
        txn,
        backend,
        "daily_event_counts",
        &["site_id", "day", "event_type"],
        "events",
        r.daily
            .sorted()
            .into_iter()
            .map(|(&(site, day, event_type), n)| vec![site.into(), day.into(), event_type.into(), n.into()]),
    )
    .await?;
    add_counts(
        txn,
        backend,
        "hourly_event_counts",
        &["site_id", "day", "hour", "event_type"],
        "events",
        r.hourly
            .sorted()
            .into_iter()
            .map(|(&(site, day, hour, event_type), n)| {
                vec![site.into(), day.into(), hour.into(), event_type.into(), n.into()]
            }),
    )
    .await?;
    add_counts(
        txn,
        backend,
        "minute_event_counts",
        &["site_id", "minute"],
        "events",
        r.minutes
            .sorted()
            .into_iter()
            .map(|(&(site, minute), n)| vec![site.into(), minute.into(), n.into()]),
    )
    .await?;

    let site_rows = r.sites();
    for chunk in site_rows.chunks(ROLLUP_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO sites (site_id) VALUES {} ON CONFLICT (site_id) DO NOTHING",
            values_placeholders(backend, chunk.len(), 1)
        );
        let values: Vec<Value> = chunk.iter().map(|site| (*site).into()).collect();
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    // Last: it locks each site's row, so the sites must exist, and holding
    // those locks for the shortest time keeps concurrent writers moving.
    user_sets::fold(txn, &r.users, known).await
}
