//! PostgreSQL: `events` becomes partitioned by range of `timestamp`, one
//! partition per UTC day (`events_pYYYYMMDD`), so that retention drops a
//! whole day instead of deleting its rows one by one.
//!
//! PostgreSQL wants the partition key in every unique key of a partitioned
//! table, and the idempotency key `(event_id, site_id)` cannot carry the
//! timestamp: a client that resends an event without one gets a new
//! timestamp from the api each time, and the resend would count twice. So
//! the key moves to `event_keys (event_id, site_id, day)`, a narrow table
//! of no personal data, keyed as `events` was unique (event id first, so
//! that time-ordered ids land at the index's right edge; `site_id` in the
//! key, as a sharded PostgreSQL requires), with an index on `day` for
//! retention. `events` keeps its columns, its ids (a sequence continues
//! where the identity left off) and its time index (on every partition),
//! and has no unique key of its own.
//!
//! There is no DEFAULT partition: a row of a day with no partition is
//! refused (the writer creates its days' partitions first), not parked
//! where retention by day would never find it.
//!
//! `up` creates a partition for every day that has events, copies the rows
//! and their keys, builds the indexes after the copy and drops the old
//! table, in one transaction. `down` copies the rows back into a table keyed
//! as migration 10 left it, `id` an identity column again. SQLite is unchanged: its retention deletes in
//! batches, and its `events` keeps the unique key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &str = "id, event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props";

/// The columns as migration 1 made them, but `id`: an identity column
/// there, here a default from a sequence of its own, which every
/// partition copies as it is (identity columns of partitioned tables
/// behave differently before PostgreSQL 17).
const COLUMN_DEFS: &str = "\
    id BIGINT NOT NULL DEFAULT nextval('events_id_seq'), \
    event_id UUID NOT NULL, \
    site_id VARCHAR(100) NOT NULL, \
    event_type VARCHAR(50) NOT NULL, \
    path VARCHAR(2048) NOT NULL DEFAULT '', \
    user_id VARCHAR(100) NOT NULL DEFAULT '', \
    timestamp TIMESTAMPTZ NOT NULL, \
    received_at TIMESTAMPTZ NOT NULL, \
    referrer TEXT NULL, \
    props JSONB NULL";

/// Renames `table` to `aside`, drops its time index (the name is the new
/// table's) and renames its id sequence (identity or serial) to
/// `aside_id_seq`: it goes when `aside` is dropped, after its position
/// has been carried over.
fn set_aside(table: &str, aside: &str) -> String {
    format!(
        "ALTER TABLE {table} RENAME TO {aside}; \
         DROP INDEX idx_events_timestamp_site; \
         DO $$ BEGIN \
           EXECUTE format('ALTER SEQUENCE %s RENAME TO {aside}_id_seq', pg_get_serial_sequence('{aside}', 'id')); \
         END $$"
    )
}

/// Carries the id sequence's position over from the table set aside.
fn carry_ids(aside: &str) -> String {
    format!("SELECT setval(pg_get_serial_sequence('events', 'id'), s.last_value, s.is_called) FROM {aside}_id_seq s")
}

/// One partition per UTC day that has events, named and bounded as the
/// writer's (`analytics_core::store::postgres::partitions`) are; bounds
/// written in UTC whatever the session's time zone.
const DAY_PARTITIONS: &str = "\
    DO $$ DECLARE d date; BEGIN \
      FOR d IN SELECT DISTINCT CAST(timestamp AT TIME ZONE 'UTC' AS date) FROM events_unpartitioned LOOP \
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', \
          'events_p' || to_char(d, 'YYYYMMDD'), \
          to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00', \
          to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00'); \
      END LOOP; \
    END $$";

const KEYS: &str = "\
    CREATE TABLE event_keys (event_id UUID NOT NULL, site_id VARCHAR(100) NOT NULL, day DATE NOT NULL)";

/// After the copy: a sorted build beats inserting entry by entry.
const INDEXES: &str = "\
    ALTER TABLE event_keys ADD CONSTRAINT event_keys_pkey PRIMARY KEY (event_id, site_id); \
    CREATE INDEX idx_event_keys_day ON event_keys (day); \
    CREATE INDEX idx_events_timestamp_site ON events (timestamp, site_id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let conn = manager.get_connection();
        conn.execute_unprepared(&set_aside("events", "events_unpartitioned"))
            .await?;
        conn.execute_unprepared(&format!(
            "CREATE SEQUENCE events_id_seq AS BIGINT; \
             CREATE TABLE events ({COLUMN_DEFS}) PARTITION BY RANGE (timestamp); \
             ALTER SEQUENCE events_id_seq OWNED BY events.id"
        ))
        .await?;
        conn.execute_unprepared(DAY_PARTITIONS).await?;
        conn.execute_unprepared(&format!(
            "INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_unpartitioned"
        ))
        .await?;
        conn.execute_unprepared(KEYS).await?;
        conn.execute_unprepared(
            "INSERT INTO event_keys (event_id, site_id, day) \
             SELECT event_id, site_id, CAST(timestamp AT TIME ZONE 'UTC' AS date) FROM events_unpartitioned \
             ORDER BY event_id, site_id",
        )
        .await?;
        conn.execute_unprepared(INDEXES).await?;
        conn.execute_unprepared(&carry_ids("events_unpartitioned")).await?;
        conn.execute_unprepared("DROP TABLE events_unpartitioned").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let conn = manager.get_connection();
        conn.execute_unprepared(&set_aside("events", "events_partitioned"))
            .await?;
        let identity = COLUMN_DEFS.replace(
            "id BIGINT NOT NULL DEFAULT nextval('events_id_seq')",
            "id BIGINT GENERATED BY DEFAULT AS IDENTITY",
        );
        conn.execute_unprepared(&format!(
            "CREATE TABLE events ({identity}, \
               CONSTRAINT events_pkey PRIMARY KEY (id, site_id), \
               CONSTRAINT events_event_id_site_id_key UNIQUE (event_id, site_id))"
        ))
        .await?;
        conn.execute_unprepared(&format!(
            "INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_partitioned ORDER BY id"
        ))
        .await?;
        conn.execute_unprepared(&carry_ids("events_partitioned")).await?;
        conn.execute_unprepared(
            "CREATE INDEX idx_events_timestamp_site ON events (timestamp, site_id); \
             DROP TABLE events_partitioned; \
             DROP TABLE event_keys",
        )
        .await?;
        Ok(())
    }
}
