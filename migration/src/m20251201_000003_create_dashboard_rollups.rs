//! Rollups the dashboard needs beyond the first three: unique users per hour
//! (the hourly chart), events per received minute (the live panel) and the
//! list of sites (the site picker). Like every rollup they are written in the
//! same transaction as the raw events, so no dashboard query reads `events`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum HourlyUsers {
    Table,
    SiteId,
    Day,
    Hour,
    UserId,
}

#[derive(DeriveIden)]
enum MinuteEventCounts {
    Table,
    SiteId,
    /// Minutes since the Unix epoch (UTC) of `received_at`: an integer key
    /// compares and prunes the same way on both backends.
    Minute,
    Events,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    SiteId,
}

/// `hourly_users` as this migration created it; migration 4 recreates it on
/// `down`.
pub(crate) fn hourly_users_table() -> TableCreateStatement {
    Table::create()
        .table(HourlyUsers::Table)
        .if_not_exists()
        .col(ColumnDef::new(HourlyUsers::SiteId).string_len(100).not_null())
        .col(ColumnDef::new(HourlyUsers::Day).date().not_null())
        .col(ColumnDef::new(HourlyUsers::Hour).small_integer().not_null())
        .col(ColumnDef::new(HourlyUsers::UserId).string_len(100).not_null())
        .primary_key(
            Index::create()
                .col(HourlyUsers::SiteId)
                .col(HourlyUsers::Day)
                .col(HourlyUsers::Hour)
                .col(HourlyUsers::UserId),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(hourly_users_table()).await?;
        manager
            .create_table(
                Table::create()
                    .table(MinuteEventCounts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(MinuteEventCounts::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(MinuteEventCounts::Minute).big_integer().not_null())
                    .col(ColumnDef::new(MinuteEventCounts::Events).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(MinuteEventCounts::SiteId)
                            .col(MinuteEventCounts::Minute),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sites::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Sites::SiteId).string_len(100).not_null().primary_key())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sites::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MinuteEventCounts::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(HourlyUsers::Table).if_exists().to_owned())
            .await
    }
}
