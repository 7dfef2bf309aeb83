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

mod batch;
mod checkpoint;
mod user_sets;

pub use checkpoint::CHECKPOINT_THREAD;

use crate::event::Event;
use crate::ingest::WriteOutcome;
use crate::store::{StoreError, WriterState};
use rusqlite::{Connection, OpenFlags};
use sea_orm::sqlx::SqlitePool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// sqlx names an in-memory database `file:sqlx-in-memory-N`, shared-cache.
const SQLX_IN_MEMORY: &str = "file:sqlx-in-memory-";
/// How long a batch waits for the write lock (a compaction holding it).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The writer's settings (see `SqliteWriter::open`): the page cache in KiB
/// (negative: a size, not a page count) and the autocheckpoint in pages.
const WRITER_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 16000;";
/// Prepared statements the writer keeps: one per kind of row, with room.
const STATEMENT_CACHE: usize = 32;

#[derive(Clone)]
pub struct SqliteWriter {
    conn: Arc<Mutex<Connection>>,
    pub(crate) state: Arc<WriterState>,
}

impl SqliteWriter {
    /// Opens the file the pool points at, with the writer's settings:
    /// - WAL and `synchronous=FULL`, as on every connection: a commit is
    ///   durable before it returns;
    /// - a 16 MiB page cache (SQLite's default is 2 MiB): a large batch keeps
    ///   its dirty pages until the commit instead of spilling them into the
    ///   WAL and writing them again (a batch of 10,000 events dirties a few
    ///   MiB; 32 MiB was no faster and put the embedded api's peak RSS past
    ///   its 100 MB target, bench/README.md);
    /// - a checkpoint every 16,000 WAL pages instead of 1,000, so pages every
    ///   batch touches are copied into the database once per checkpoint
    ///   rather than after every commit;
    /// - beside it, a thread that checkpoints in the background
    ///   (`checkpoint::copy_checkpoints`).
    pub fn open(pool: &SqlitePool) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let path = options.get_filename();
        let in_memory = path.to_string_lossy().starts_with(SQLX_IN_MEMORY);
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(WRITER_PRAGMAS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let conn = Arc::new(Mutex::new(conn));
        if !in_memory {
            let checkpoints = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            checkpoints.execute_batch("PRAGMA synchronous = FULL;")?;
            let writer = Arc::downgrade(&conn);
            std::thread::Builder::new()
                .name(CHECKPOINT_THREAD.into())
                .spawn(move || checkpoint::copy_checkpoints(&checkpoints, &writer))
                .map_err(|e| StoreError::Unavailable(e.into()))?;
        }
        Ok(Self {
            conn,
            state: Arc::default(),
        })
    }

    /// Writes the batch on a blocking thread: SQLite's work is CPU and fsync,
    /// which must not hold up the runtime's request tasks. On failure the
    /// events come back with the error.
    pub async fn write_returning(&self, events: Vec<Event>) -> Result<WriteOutcome, (StoreError, Vec<Event>)> {
        let (conn, state) = (self.conn.clone(), self.state.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let result = match conn.lock() {
                Ok(mut conn) => batch::write(&mut conn, &events, &state),
                Err(_) => Err(StoreError::internal("a previous write panicked")),
            };
            result.map_err(|e| (e, events))
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) => Err((StoreError::Internal(e.into()), Vec::new())),
        }
    }
}
