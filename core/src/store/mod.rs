//! The database: connections (`connect`), the schema as code sees it
//! (`schema`), one SQL convention (`sql`), typed errors (`error`), and the
//! batch writer with one backend per folder: `postgres` (the processor's,
//! an `unnest` insert and multi-row upserts) and `sqlite` (embedded mode's,
//! prepared statements through rusqlite). Both run the same `ingest` steps.
//! Reads are portable SQL through sea-orm, in `query` and `maintenance`.

pub mod connect;
mod error;
pub mod import;
pub mod postgres;
pub mod salts;
pub mod schema;
pub mod sql;
pub mod sqlite;
pub mod user_events;

pub use error::StoreError;

use crate::event::Event;
use crate::ingest::{KnownOrdinals, TouchedDays, WriteOutcome};
use postgres::PostgresWriter;
use sea_orm::{DatabaseConnection, DbBackend};
use sqlite::SqliteWriter;
use std::sync::Arc;

/// What a writer remembers between batches: the user ordinals it has seen
/// committed (so it looks up only new users), the days its commits
/// changed (for the weekly caches) and, on PostgreSQL, the days whose
/// partition of `events` it knows exists.
#[derive(Default)]
pub struct WriterState {
    pub known: KnownOrdinals,
    pub touched: TouchedDays,
    pub partitions: postgres::partitions::KnownPartitions,
}

/// Writes batches of events into one database, exactly once each.
///
/// Exactly-once effect: `(event_id, site_id)` is unique (on PostgreSQL in
/// `event_keys`, beside the partitioned `events`; on SQLite in `events`),
/// keys are inserted with `ON CONFLICT (event_id, site_id) DO NOTHING`,
/// and only the new ones reach the raw rows and the rollups, all in one
/// transaction. A redelivered or resent event is a no-op; another site's
/// event with the same id is not.
///
/// No deadlocks between concurrent writers: every statement touches its
/// rows in one global order (keys by `event_id`, rollups by key, tables
/// always in the same sequence), so lock waits can never form a cycle.
#[derive(Clone)]
pub enum Writer {
    Postgres(PostgresWriter),
    Sqlite(SqliteWriter),
}

impl Writer {
    /// On SQLite this opens the writer's own connection to the same file.
    pub fn open(db: &DatabaseConnection) -> Result<Self, StoreError> {
        Ok(match db.get_database_backend() {
            DbBackend::Sqlite => Self::Sqlite(SqliteWriter::open(db.get_sqlite_connection_pool())?),
            _ => Self::Postgres(PostgresWriter::new(db.clone())),
        })
    }

    pub async fn write(&self, events: &[Event]) -> Result<WriteOutcome, StoreError> {
        match self {
            Self::Postgres(w) => w.write(events).await,
            Self::Sqlite(w) => w.write_returning(events.to_vec()).await.map_err(|(e, _)| e),
        }
    }

    /// `write` for a caller that is done with the events: on SQLite they
    /// move to the blocking thread that writes them instead of being copied.
    /// On failure the events come back, for a caller that splits a refused
    /// batch.
    pub async fn write_owned(&self, events: Vec<Event>) -> Result<WriteOutcome, (StoreError, Vec<Event>)> {
        match self {
            Self::Postgres(w) => w.write(&events).await.map_err(|e| (e, events)),
            Self::Sqlite(w) => w.write_returning(events).await,
        }
    }

    pub fn state(&self) -> &Arc<WriterState> {
        match self {
            Self::Postgres(w) => &w.state,
            Self::Sqlite(w) => &w.state,
        }
    }

    /// Users whose ordinal this writer knows without a lookup.
    pub fn known_users(&self) -> usize {
        self.state().known.len()
    }
}
