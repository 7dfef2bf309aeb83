//! Issue 23: what removes raw events besides a user deletion (which bumps
//! `sites.deletions`), in one row (`id` 1) a reader checks in the same
//! statement as the hourly counts: the first day retention keeps
//! (`first_day_kept`, NULL until it first runs) and how many sites were
//! removed (`site_removals`). Events are otherwise only added, so the
//! query API's column cache can keep a window's columns for as long as
//! neither its counts nor these change, instead of expiring every entry
//! after minutes because retention left no trace it could check.
//!
//! `down` drops the table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StoreEpochs {
    Table,
    Id,
    FirstDayKept,
    SiteRemovals,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StoreEpochs::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StoreEpochs::Id).small_integer().not_null().primary_key())
                    .col(ColumnDef::new(StoreEpochs::FirstDayKept).date().null())
                    .col(
                        ColumnDef::new(StoreEpochs::SiteRemovals)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        // The one row, so that writers only ever update it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(StoreEpochs::Table)
                    .columns([StoreEpochs::Id])
                    .values_panic([1.into()])
                    .on_conflict(OnConflict::column(StoreEpochs::Id).do_nothing().to_owned())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StoreEpochs::Table).to_owned())
            .await
    }
}
