//! Issue 24: a site's goals and saved funnels.
//!
//! `goals` (`site_id`, `name`) holds one goal: `kind` `page` with a path
//! `pattern`, or `event` with an `event` name and optionally a property
//! (`prop_key`, `prop_value`), and a `currency` for a revenue goal. `funnels` (`site_id`, `name`) holds a saved
//! funnel's 2 to 8 steps as the JSON text of the API's `steps` (portable
//! between both stores, and read and written whole). Both are checked by
//! the code before they are written (`analytics_core::conversions`).
//!
//! `down` drops both tables.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Goals {
    Table,
    SiteId,
    Name,
    Kind,
    Pattern,
    Event,
    PropKey,
    PropValue,
    Currency,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Funnels {
    Table,
    SiteId,
    Name,
    Steps,
    CreatedAt,
}

/// As `events.site_id`.
const SITE_CHARS: u32 = 100;
/// Goal names, patterns, event names and properties (the code allows 256 bytes).
const TEXT_CHARS: u32 = 256;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Goals::Table)
                    .col(ColumnDef::new(Goals::SiteId).string_len(SITE_CHARS).not_null())
                    .col(ColumnDef::new(Goals::Name).string_len(TEXT_CHARS).not_null())
                    .col(ColumnDef::new(Goals::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Goals::Pattern).string_len(TEXT_CHARS).null())
                    .col(ColumnDef::new(Goals::Event).string_len(TEXT_CHARS).null())
                    .col(ColumnDef::new(Goals::PropKey).string_len(TEXT_CHARS).null())
                    .col(ColumnDef::new(Goals::PropValue).string_len(TEXT_CHARS).null())
                    .col(ColumnDef::new(Goals::Currency).string_len(3).null())
                    .col(ColumnDef::new(Goals::CreatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(Goals::SiteId).col(Goals::Name))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Funnels::Table)
                    .col(ColumnDef::new(Funnels::SiteId).string_len(SITE_CHARS).not_null())
                    .col(ColumnDef::new(Funnels::Name).string_len(TEXT_CHARS).not_null())
                    .col(ColumnDef::new(Funnels::Steps).text().not_null())
                    .col(ColumnDef::new(Funnels::CreatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(Funnels::SiteId).col(Funnels::Name))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Funnels::Table).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Goals::Table).to_owned()).await
    }
}
