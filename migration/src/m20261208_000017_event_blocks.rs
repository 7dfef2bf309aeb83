//! Issue 23: a site's raw events of one UTC day, encoded as the query
//! engine's columns read them (`analytics_query::engine::Block`), beside
//! the fingerprint they were read under: the day's event count
//! (`hourly_event_counts` summed) and the site's and store's removal
//! epochs. A block whose fingerprint still holds is that day's events; the
//! query API reads it in place of the rows, and writes it after reading a
//! closed day's rows. The raw events stay the source of truth: a block is
//! only ever a copy, dropped with its site, its day (retention) or any
//! user deletion of its site.
//!
//! `down` drops the table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventBlocks {
    Table,
    SiteId,
    Day,
    Events,
    Deletions,
    SiteRemovals,
    Data,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventBlocks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(EventBlocks::SiteId).text().not_null())
                    .col(ColumnDef::new(EventBlocks::Day).date().not_null())
                    .col(ColumnDef::new(EventBlocks::Events).big_integer().not_null())
                    .col(ColumnDef::new(EventBlocks::Deletions).big_integer().not_null())
                    .col(ColumnDef::new(EventBlocks::SiteRemovals).big_integer().not_null())
                    .col(ColumnDef::new(EventBlocks::Data).blob().not_null())
                    .primary_key(Index::create().col(EventBlocks::SiteId).col(EventBlocks::Day))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // The blocks are compressed already: PostgreSQL need not try.
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE event_blocks ALTER COLUMN data SET STORAGE EXTERNAL")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventBlocks::Table).to_owned())
            .await
    }
}
