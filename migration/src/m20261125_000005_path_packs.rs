//! `daily_path_packs`: one row per (site, day) holding that day's (path,
//! views) pairs, packed by the compactor out of `daily_path_views` (see
//! `analytics_core::path_packs`).
//!
//! `up` only creates the table: rows already in `daily_path_views` stay valid
//! and are packed by the first compaction. `down` unpacks every pack back into
//! `daily_path_views`, adding to rows written since, then drops the table.

use analytics_core::db::portable;
use analytics_core::path_packs;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Date;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DailyPathPacks {
    Table,
    SiteId,
    Day,
    Paths,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyPathPacks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyPathPacks::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyPathPacks::Day).date().not_null())
                    .col(ColumnDef::new(DailyPathPacks::Paths).blob().not_null())
                    .primary_key(Index::create().col(DailyPathPacks::SiteId).col(DailyPathPacks::Day))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Front coding already shrinks the paths; pglz on top would cost
            // more at read time (30 packs per 30-day answer) than it saves.
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE daily_path_packs ALTER COLUMN paths SET STORAGE EXTERNAL")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = conn.get_database_backend();
        let packs = conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT site_id, day, paths FROM daily_path_packs ORDER BY site_id, day",
            ))
            .await?;
        for pack in packs {
            let (site, day): (String, Date) = (pack.try_get_by_index(0)?, pack.try_get_by_index(1)?);
            for (path, views) in path_packs::decode(&pack.try_get_by_index::<Vec<u8>>(2)?)? {
                conn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    portable(
                        backend,
                        "INSERT INTO daily_path_views (site_id, day, path, views) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (site_id, day, path) DO UPDATE SET views = daily_path_views.views + excluded.views",
                    ),
                    [site.as_str().into(), day.into(), path.into(), views.into()],
                ))
                .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(DailyPathPacks::Table).if_exists().to_owned())
            .await
    }
}
