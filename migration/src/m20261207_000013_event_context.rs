//! The enrichment of issue 22: every raw event gets the columns of its
//! `context` (the cookieless visitor, the page's hostname and campaign,
//! the source and channel, browser, OS, device and country), and the daily
//! salts of cookieless visitors get their table.
//!
//! Text columns are `NOT NULL DEFAULT ''` (unknown is empty, as in the
//! Kafka message): adding them rewrites nothing on PostgreSQL (a constant
//! default is kept in the catalogue) and costs SQLite one schema change.
//! `visitor_id` is a nullable `BIGINT`: only events without a `user_id`
//! have one.
//!
//! Event names grow from 50 to 120 characters in the tables that hold
//! them (Plausible's names, `/api/event`): on PostgreSQL a longer
//! `varchar` is a catalogue change, no rewrite; SQLite ignores lengths.
//!
//! Cookieless visitors get two rollups: `daily_visitors` (one row per site,
//! day and visitor: what tells a batch whether a visitor is new that day)
//! and `daily_visitor_counts` (their number per site and day, what
//! `/stats` sums). A visitor id mixes in its event's day, so no id is on
//! two days and a range's distinct visitors are the sum of its days'.
//!
//! `visitor_salts` holds at most two rows (today's and yesterday's), each a
//! random 16-byte key; every api replica reads today's from here, so one
//! visitor is one id whichever replica answers.
//!
//! `down` drops the columns and the tables; event names keep their room.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The text columns, in the order the writers insert them.
const TEXT_COLUMNS: [&str; 14] = [
    "hostname",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "country",
];

/// The tables with an event name, and the new bound.
const NAMED_TABLES: [&str; 3] = ["events", "daily_event_counts", "hourly_event_counts"];
const NAME_CHARS: u32 = 120;

#[derive(DeriveIden)]
enum DailyVisitors {
    Table,
    SiteId,
    Day,
    VisitorId,
}

#[derive(DeriveIden)]
enum DailyVisitorCounts {
    Table,
    SiteId,
    Day,
    Visitors,
}

#[derive(DeriveIden)]
enum VisitorSalts {
    Table,
    Day,
    Salt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        for column in TEXT_COLUMNS {
            conn.execute_unprepared(&format!(
                "ALTER TABLE events ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
            ))
            .await?;
        }
        conn.execute_unprepared("ALTER TABLE events ADD COLUMN visitor_id BIGINT")
            .await?;
        widen_names(manager, NAME_CHARS).await?;
        manager
            .create_table(
                Table::create()
                    .table(DailyVisitors::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyVisitors::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyVisitors::Day).date().not_null())
                    .col(ColumnDef::new(DailyVisitors::VisitorId).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(DailyVisitors::SiteId)
                            .col(DailyVisitors::Day)
                            .col(DailyVisitors::VisitorId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DailyVisitorCounts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyVisitorCounts::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyVisitorCounts::Day).date().not_null())
                    .col(ColumnDef::new(DailyVisitorCounts::Visitors).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(DailyVisitorCounts::SiteId)
                            .col(DailyVisitorCounts::Day),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VisitorSalts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(VisitorSalts::Day).date().not_null().primary_key())
                    .col(ColumnDef::new(VisitorSalts::Salt).blob().not_null())
                    .col(
                        ColumnDef::new(VisitorSalts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        manager
            .drop_table(Table::drop().table(VisitorSalts::Table).if_exists().to_owned())
            .await?;
        for table in [DailyVisitorCounts::Table.to_string(), DailyVisitors::Table.to_string()] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        // Event names stay at 120 characters: a wider column is harmless to
        // the older code, and narrowing would fail on (or cut) longer names.
        for column in TEXT_COLUMNS.iter().chain(["visitor_id"].iter()) {
            conn.execute_unprepared(&format!("ALTER TABLE events DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}

/// Sets the event-name columns to `chars` characters on PostgreSQL
/// (SQLite keeps no lengths).
async fn widen_names(manager: &SchemaManager<'_>, chars: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let conn = manager.get_connection();
    for table in NAMED_TABLES {
        conn.execute_unprepared(&format!(
            "ALTER TABLE {table} ALTER COLUMN event_type TYPE VARCHAR({chars})"
        ))
        .await?;
    }
    Ok(())
}
