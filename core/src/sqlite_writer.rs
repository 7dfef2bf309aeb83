//! The writer's batch transaction on SQLite (embedded mode), through
//! rusqlite on a connection of its own, with one prepared single-row
//! statement per kind of row.
//!
//! Why not sqlx, as on PostgreSQL: SQLite runs in-process, so a statement
//! costs what its VM does, and sqlx added to that a 9,000-parameter
//! `VALUES` list compiled and bound for every 1,000 events, and a round trip
//! to its worker thread for each of a transaction's statements. Measured on
//! 1.5M events in 8,500-event transactions, same schema: prepared
//! single-row inserts took 3.4 µs an event, against 12 µs through sqlx.
//!
//! The rows are encoded exactly as sqlx encodes them (UUID as 16-byte blob,
//! timestamps as RFC 3339 text, dates as `YYYY-MM-DD`, JSON as text), so the
//! readers, which stay on sqlx, decode them unchanged.
//!
//! The transaction is `BEGIN IMMEDIATE`: it takes the database's write lock
//! first and waits (busy timeout) for a compaction holding it, instead of
//! failing halfway when another connection wrote since its first read.

use crate::event::Event;
use crate::payload::TimestampText;
use crate::user_sets::{decode, encode, BatchUsers, KnownOrdinals, Learnt};
use crate::writer::{unique_by_id, Rollups, WriteOutcome};
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior};
use sea_orm::sqlx::SqlitePool;
use sea_orm::DbErr;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// sqlx names an in-memory database `file:sqlx-in-memory-N`, shared-cache.
const SQLX_IN_MEMORY: &str = "file:sqlx-in-memory-";
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Within Linux's 15 characters, so that it shows whole in `ps` and `/proc`.
pub const CHECKPOINT_THREAD: &str = "sqlite-ckpt";

fn db_err(e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("sqlite writer: {e}"))
}

#[derive(Clone)]
pub struct SqliteWriter {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteWriter {
    /// Opens the file the pool points at, with the writer's settings:
    /// - WAL and `synchronous=FULL`, as on every connection: a commit is
    ///   durable before it returns;
    /// - a 32 MiB page cache (SQLite's default is 2 MiB): a large batch keeps
    ///   its dirty pages until the commit instead of spilling them into the
    ///   WAL and writing them again;
    /// - a checkpoint every 16,000 WAL pages instead of 1,000, so pages every
    ///   batch touches are copied into the database once per checkpoint
    ///   rather than after every commit;
    /// - beside it, a thread that checkpoints in the background
    ///   (`copy_checkpoints`).
    pub fn open(pool: &SqlitePool) -> Result<Self, DbErr> {
        let options = pool.connect_options();
        let path = options.get_filename();
        let in_memory = path.to_string_lossy().starts_with(SQLX_IN_MEMORY);
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 16000;",
        )
        .map_err(db_err)?;
        conn.set_prepared_statement_cache_capacity(32);
        let conn = Arc::new(Mutex::new(conn));
        if !in_memory {
            let checkpoints = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(db_err)?;
            checkpoints
                .execute_batch("PRAGMA synchronous = FULL;")
                .map_err(db_err)?;
            let writer = Arc::downgrade(&conn);
            std::thread::Builder::new()
                .name(CHECKPOINT_THREAD.into())
                .spawn(move || copy_checkpoints(&checkpoints, &writer))
                .map_err(db_err)?;
        }
        Ok(Self { conn })
    }

    /// Writes the batch on a blocking thread: SQLite's work is CPU and fsync,
    /// which must not hold up the runtime's request tasks.
    pub async fn write(&self, events: Vec<Event>, known: Arc<KnownOrdinals>) -> Result<WriteOutcome, DbErr> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| db_err("a previous write panicked"))?;
            write_batch(&mut conn, &events, &known).map_err(db_err)
        })
        .await
        .map_err(db_err)?
    }
}

/// Copies committed WAL pages into the database file every
/// `CHECKPOINT_EVERY`, on a thread and connection of its own, until the
/// writer is dropped. A passive checkpoint never waits for and never blocks
/// a writer or a reader, so the copying and the database file's fsync run
/// beside the batches instead of inside the commit that crossed the
/// writer's autocheckpoint threshold. That threshold still bounds the WAL:
/// the writer's own checkpoint then finds only the last frames to copy, and
/// the WAL restarts from its beginning.
fn copy_checkpoints(conn: &Connection, writer: &Weak<Mutex<Connection>>) {
    let mut failing = false;
    while writer.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's own checkpoints go on");
            }
            Err(_) => {}
        }
    }
}

fn write_batch(conn: &mut Connection, events: &[Event], known: &KnownOrdinals) -> rusqlite::Result<WriteOutcome> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rollups = Rollups::default();
    let mut inserted = 0;
    // A request's events share their received_at, and usually (no client
    // timestamp) their timestamp: formatting each once per run saves two
    // chrono formats an event.
    let (mut ts, mut received) = (TimestampText::sqlx_sqlite(), TimestampText::sqlx_sqlite());
    {
        let mut insert = txn.prepare_cached(
            "INSERT INTO events (event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        )?;
        for e in unique_by_id(events) {
            let props = e
                .props
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
            let new = insert.execute(params![
                e.event_id.as_bytes().as_slice(),
                e.site_id,
                e.event_type,
                e.path,
                e.user_id,
                ts.get(e.timestamp),
                received.get(e.received_at),
                e.referrer,
                props,
            ])?;
            if new == 1 {
                inserted += 1;
                rollups.add(e);
            }
        }
    }
    add_counts(&txn, &rollups)?;
    let learnt = fold_users(&txn, &rollups.users, known)?;
    txn.commit()?;
    known.learn(learnt);
    Ok(WriteOutcome {
        inserted,
        duplicates: events.len() - inserted,
    })
}

/// sqlx's encoding of a `NaiveDate` on SQLite.
fn date(d: NaiveDate) -> String {
    d.format("%F").to_string()
}

fn add_counts(txn: &rusqlite::Transaction<'_>, r: &Rollups<'_>) -> rusqlite::Result<()> {
    let upsert = |table: &str, key: &str, count: &str, marks: &str| {
        format!(
            "INSERT INTO {table} ({key}, {count}) VALUES ({marks}) \
             ON CONFLICT ({key}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}"
        )
    };
    let mut stmt = txn.prepare_cached(&upsert("daily_path_views", "site_id, day, path", "views", "?, ?, ?, ?"))?;
    for (&(site, day, path), n) in r.path_views.sorted() {
        stmt.execute(params![site, date(day), path, n])?;
    }
    let mut stmt = txn.prepare_cached(&upsert(
        "daily_event_counts",
        "site_id, day, event_type",
        "events",
        "?, ?, ?, ?",
    ))?;
    for (&(site, day, event_type), n) in r.daily.sorted() {
        stmt.execute(params![site, date(day), event_type, n])?;
    }
    let mut stmt = txn.prepare_cached(&upsert(
        "hourly_event_counts",
        "site_id, day, hour, event_type",
        "events",
        "?, ?, ?, ?, ?",
    ))?;
    for (&(site, day, hour, event_type), n) in r.hourly.sorted() {
        stmt.execute(params![site, date(day), hour, event_type, n])?;
    }
    let mut stmt = txn.prepare_cached(&upsert("minute_event_counts", "site_id, minute", "events", "?, ?, ?"))?;
    for (&(site, minute), n) in r.minutes.sorted() {
        stmt.execute(params![site, minute, n])?;
    }
    let mut stmt = txn.prepare_cached("INSERT INTO sites (site_id) VALUES (?) ON CONFLICT (site_id) DO NOTHING")?;
    for site in r.sites() {
        stmt.execute([site])?;
    }
    Ok(())
}

/// `user_sets::fold` for this connection: ordinals for the batch's users
/// (from `known` when this process has seen them committed, else looked up,
/// and new users get their site's next ones), then the day and hour sets
/// unioned with the stored ones. No row locks: the transaction holds
/// SQLite's only write lock. Returns the ordinals to learn after commit.
fn fold_users(
    txn: &rusqlite::Transaction<'_>,
    batch: &BatchUsers<'_>,
    known: &KnownOrdinals,
) -> rusqlite::Result<Learnt> {
    let mut learnt = Learnt::new();
    for (site, users) in batch.sites() {
        // The site's next ordinal, read when the batch brings a new user.
        let mut next: Option<u32> = None;
        let mut daily: BTreeMap<NaiveDate, RoaringBitmap> = BTreeMap::new();
        let mut hourly: BTreeMap<(NaiveDate, i16), RoaringBitmap> = BTreeMap::new();
        let found = known.get_all(site, users.keys().copied());
        for ((&user, buckets), o) in users.iter().zip(found) {
            let ordinal = match o {
                Some(o) => o,
                None => {
                    let o = ordinal_of(txn, site, user, &mut next)?;
                    learnt.push((site.to_string(), user.to_string(), o));
                    o
                }
            };
            for &(day, hour) in buckets {
                daily.entry(day).or_default().insert(ordinal);
                hourly.entry((day, hour)).or_default().insert(ordinal);
            }
        }
        if let Some(next) = next {
            txn.prepare_cached("UPDATE sites SET user_count = ? WHERE site_id = ?")?
                .execute(params![next, site])?;
        }
        for (day, set) in daily {
            merge_set(txn, "daily_user_sets", "site_id, day", &[&site, &date(day)], set)?;
        }
        for ((day, hour), set) in hourly {
            merge_set(
                txn,
                "hourly_user_sets",
                "site_id, day, hour",
                &[&site, &date(day), &hour],
                set,
            )?;
        }
    }
    Ok(learnt)
}

/// The stored ordinal of `user`, or the site's next one (`next`, read from
/// `sites.user_count` on the first new user), assigned.
fn ordinal_of(
    txn: &rusqlite::Transaction<'_>,
    site: &str,
    user: &str,
    next: &mut Option<u32>,
) -> rusqlite::Result<u32> {
    let stored: Option<i64> = txn
        .prepare_cached("SELECT ordinal FROM site_users WHERE site_id = ? AND user_id = ?")?
        .query_row([site, user], |row| row.get(0))
        .optional()?;
    if let Some(o) = stored {
        return u32::try_from(o).map_err(|_| too_many_users(site));
    }
    let ordinal = match *next {
        Some(n) => n,
        None => {
            let count: i64 = txn
                .prepare_cached("SELECT user_count FROM sites WHERE site_id = ?")?
                .query_row([site], |row| row.get(0))?;
            u32::try_from(count).map_err(|_| too_many_users(site))?
        }
    };
    txn.prepare_cached("INSERT INTO site_users (site_id, user_id, ordinal) VALUES (?, ?, ?)")?
        .execute(params![site, user, ordinal])?;
    *next = Some(ordinal.checked_add(1).ok_or_else(|| too_many_users(site))?);
    Ok(ordinal)
}

fn too_many_users(site: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(format!("site {site} has more users than a set can hold").into())
}

/// Unions `set` into the stored set at `key` and writes it back with its
/// cardinality, unless the stored set already holds every user of `set`
/// (the common case once a day's regular users have been seen): a set is
/// rewritten whole, up to 8 KB per 65,536 users, and is most of the pages a
/// small transaction writes.
fn merge_set(
    txn: &rusqlite::Transaction<'_>,
    table: &str,
    key_cols: &str,
    key: &[&dyn ToSql],
    mut set: RoaringBitmap,
) -> rusqlite::Result<()> {
    let filter = key_cols.replace(", ", " = ? AND ") + " = ?";
    let stored: Option<Vec<u8>> = txn
        .prepare_cached(&format!("SELECT users FROM {table} WHERE {filter}"))?
        .query_row(key, |row| row.get(0))
        .optional()?;
    if let Some(bytes) = stored {
        let stored = decode(&bytes).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))?;
        if set.is_subset(&stored) {
            return Ok(());
        }
        set |= stored;
    }
    let bytes = encode(&set).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))?;
    let marks = vec!["?"; key.len() + 2].join(", ");
    let mut stmt = txn.prepare_cached(&format!(
        "INSERT INTO {table} ({key_cols}, users, user_count) VALUES ({marks}) \
         ON CONFLICT ({key_cols}) DO UPDATE SET users = excluded.users, user_count = excluded.user_count"
    ))?;
    let count = i64::try_from(set.len()).unwrap_or(i64::MAX);
    let mut values = key.to_vec();
    values.extend([&bytes as &dyn ToSql, &count]);
    stmt.execute(values.as_slice())?;
    Ok(())
}
