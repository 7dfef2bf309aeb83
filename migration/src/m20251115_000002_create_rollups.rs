//! Rollup tables, written in the same transaction as the raw events and read
//! by every stats query.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DailyPathViews {
    Table,
    SiteId,
    Day,
    Path,
    Views,
}

#[derive(DeriveIden)]
enum DailyUsers {
    Table,
    SiteId,
    Day,
    UserId,
}

#[derive(DeriveIden)]
enum HourlyEventCounts {
    Table,
    SiteId,
    Day,
    Hour,
    EventType,
    Events,
}

/// `daily_users` as this migration created it; migration 4 recreates it on
/// `down`.
pub(crate) fn daily_users_table() -> TableCreateStatement {
    Table::create()
        .table(DailyUsers::Table)
        .if_not_exists()
        .col(ColumnDef::new(DailyUsers::SiteId).string_len(100).not_null())
        .col(ColumnDef::new(DailyUsers::Day).date().not_null())
        .col(ColumnDef::new(DailyUsers::UserId).string_len(100).not_null())
        .primary_key(
            Index::create()
                .col(DailyUsers::SiteId)
                .col(DailyUsers::Day)
                .col(DailyUsers::UserId),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyPathViews::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyPathViews::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyPathViews::Day).date().not_null())
                    .col(ColumnDef::new(DailyPathViews::Path).string_len(2048).not_null())
                    .col(ColumnDef::new(DailyPathViews::Views).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(DailyPathViews::SiteId)
                            .col(DailyPathViews::Day)
                            .col(DailyPathViews::Path),
                    )
                    .to_owned(),
            )
            .await?;
        manager.create_table(daily_users_table()).await?;
        manager
            .create_table(
                Table::create()
                    .table(HourlyEventCounts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(HourlyEventCounts::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(HourlyEventCounts::Day).date().not_null())
                    .col(ColumnDef::new(HourlyEventCounts::Hour).small_integer().not_null())
                    .col(ColumnDef::new(HourlyEventCounts::EventType).string_len(50).not_null())
                    .col(ColumnDef::new(HourlyEventCounts::Events).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(HourlyEventCounts::SiteId)
                            .col(HourlyEventCounts::Day)
                            .col(HourlyEventCounts::Hour)
                            .col(HourlyEventCounts::EventType),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HourlyEventCounts::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DailyUsers::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DailyPathViews::Table).if_exists().to_owned())
            .await
    }
}
