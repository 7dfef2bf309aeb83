//! Idempotency per site: `event_id` is unique within a site, not across
//! all of them, so no site can suppress another's events by sending their
//! ids first. The unique key becomes `(event_id, site_id)`: event id first,
//! so that time-ordered (v7) ids keep landing at the index's right edge as
//! before, and `site_id` in it, as a distributed PostgreSQL (Citus, sharded
//! by `site_id`) requires of every unique key. For the same reason the
//! PostgreSQL primary key becomes `(id, site_id)`.
//!
//! SQLite cannot drop a column's inline UNIQUE constraint, so there the
//! table is rebuilt (copied) with the new key. `down` restores the old key
//! and fails, naming the id, if two sites now share an event id.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Id,
    EventId,
    SiteId,
    EventType,
    Path,
    UserId,
    Timestamp,
    ReceivedAt,
    Referrer,
    Props,
}

const COLUMNS: &str = "id, event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props";
const TIME_INDEX: &str = "CREATE INDEX idx_events_timestamp_site ON events (timestamp, site_id)";

/// The events table as migrations 1, 7 and 9 left it, with `per_site`
/// choosing the unique key.
fn events_table(name: &str, per_site: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name))
        .col(
            ColumnDef::new(Events::Id)
                .integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(ColumnDef::new(Events::EventId).uuid().not_null())
        .col(ColumnDef::new(Events::SiteId).string_len(100).not_null())
        .col(ColumnDef::new(Events::EventType).string_len(50).not_null())
        .col(ColumnDef::new(Events::Path).string_len(2048).not_null().default(""))
        .col(ColumnDef::new(Events::UserId).string_len(100).not_null().default(""))
        .col(ColumnDef::new(Events::Timestamp).timestamp_with_time_zone().not_null())
        .col(ColumnDef::new(Events::ReceivedAt).timestamp_with_time_zone().not_null())
        .col(ColumnDef::new(Events::Referrer).text().null())
        .col(ColumnDef::new(Events::Props).json_binary().null());
    let mut unique = Index::create();
    unique.unique().col(Events::EventId);
    if per_site {
        unique.col(Events::SiteId);
    }
    t.index(&mut unique);
    t.to_owned()
}

async fn rebuild_sqlite(manager: &SchemaManager<'_>, per_site: bool) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    manager.create_table(events_table("events_rebuilt", per_site)).await?;
    conn.execute_unprepared(&format!(
        "INSERT INTO events_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM events"
    ))
    .await?;
    conn.execute_unprepared("DROP TABLE events").await?;
    conn.execute_unprepared("ALTER TABLE events_rebuilt RENAME TO events")
        .await?;
    conn.execute_unprepared(TIME_INDEX).await?;
    Ok(())
}

/// An event id two sites share, if any: `down` cannot restore a key
/// unique across sites then.
async fn shared_event_id(manager: &SchemaManager<'_>) -> Result<Option<String>, DbErr> {
    let conn = manager.get_connection();
    let backend = conn.get_database_backend();
    // SQLite stores the UUID as 16 bytes (sqlx's encoding).
    let id = if backend == DbBackend::Sqlite {
        "hex(event_id)"
    } else {
        "CAST(event_id AS TEXT)"
    };
    let row = conn
        .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
            backend,
            format!("SELECT {id} FROM events GROUP BY event_id HAVING COUNT(*) > 1 LIMIT 1"),
        ))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on SQLite too (sea-orm-migration's default there is
    /// none): the rebuild drops the table, and a crash between that and the
    /// rename must leave the old table, not no table.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return rebuild_sqlite(manager, true).await;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE events DROP CONSTRAINT events_event_id_key; \
                 ALTER TABLE events ADD CONSTRAINT events_event_id_site_id_key UNIQUE (event_id, site_id); \
                 ALTER TABLE events DROP CONSTRAINT events_pkey; \
                 ALTER TABLE events ADD PRIMARY KEY (id, site_id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if let Some(id) = shared_event_id(manager).await? {
            return Err(DbErr::Migration(format!(
                "event id {id} is used by two sites: the old key (unique across sites) cannot be restored"
            )));
        }
        if manager.get_database_backend() == DbBackend::Sqlite {
            return rebuild_sqlite(manager, false).await;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE events DROP CONSTRAINT events_pkey; \
                 ALTER TABLE events ADD PRIMARY KEY (id); \
                 ALTER TABLE events DROP CONSTRAINT events_event_id_site_id_key; \
                 ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (event_id)",
            )
            .await?;
        Ok(())
    }
}
