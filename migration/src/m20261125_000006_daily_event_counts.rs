//! `daily_event_counts`: events per (site, day, event_type). Every period
//! answer is whole days, and summing 24 hourly rows per type per day made the
//! event counts the largest part of a 30-day `/stats` (2,880 rows for one
//! site). `up` fills it from `hourly_event_counts`, which holds every event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DailyEventCounts {
    Table,
    SiteId,
    Day,
    EventType,
    Events,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyEventCounts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyEventCounts::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyEventCounts::Day).date().not_null())
                    .col(ColumnDef::new(DailyEventCounts::EventType).string_len(50).not_null())
                    .col(ColumnDef::new(DailyEventCounts::Events).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(DailyEventCounts::SiteId)
                            .col(DailyEventCounts::Day)
                            .col(DailyEventCounts::EventType),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO daily_event_counts (site_id, day, event_type, events) \
                 SELECT site_id, day, event_type, SUM(events) FROM hourly_event_counts \
                 GROUP BY site_id, day, event_type",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DailyEventCounts::Table).if_exists().to_owned())
            .await
    }
}
