//! `weekly_user_sets` and `weekly_path_packs`: per (site, Monday–Sunday
//! week), the union of the week's daily user sets and the sum of its daily
//! path packs, so that a long range reads one row per whole week instead of
//! seven (see `analytics_core::maintenance::weeks`).
//!
//! Both are caches the compactor rebuilds from the daily rows, each stamped
//! with a `source` the readers recompute in SQL: the sum of the daily sets'
//! `user_count` (a set only ever grows, so an unchanged sum is an unchanged
//! week), and the sum of the daily packs' `rev`. `rev` is bumped by a
//! trigger on every update of a pack, whoever makes it, so a pack changed by
//! a processor of the previous release during an upgrade still shows as a
//! stale week, never as a wrong answer.
//!
//! `up` creates empty tables (the first compaction fills them; until then
//! readers use the daily rows). `down` drops them and the column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WeeklyUserSets {
    Table,
    SiteId,
    FirstDay,
    LastDay,
    Users,
    UserCount,
    Source,
}

#[derive(DeriveIden)]
enum WeeklyPathPacks {
    Table,
    SiteId,
    FirstDay,
    LastDay,
    Paths,
    Source,
}

const PG_REV_TRIGGER: &str = "\
    ALTER TABLE daily_path_packs ADD COLUMN rev BIGINT NOT NULL DEFAULT 1; \
    CREATE FUNCTION daily_path_packs_bump_rev() RETURNS trigger LANGUAGE plpgsql AS \
      $$ BEGIN NEW.rev := OLD.rev + 1; RETURN NEW; END $$; \
    CREATE TRIGGER daily_path_packs_rev BEFORE UPDATE ON daily_path_packs \
      FOR EACH ROW EXECUTE FUNCTION daily_path_packs_bump_rev(); \
    ALTER TABLE weekly_user_sets ALTER COLUMN users SET STORAGE EXTERNAL; \
    ALTER TABLE weekly_path_packs ALTER COLUMN paths SET STORAGE EXTERNAL";

// `UPDATE OF paths`: the trigger's own update touches only `rev`, so it
// does not fire itself.
const SQLITE_REV_TRIGGER: &str = "\
    ALTER TABLE daily_path_packs ADD COLUMN rev INTEGER NOT NULL DEFAULT 1; \
    CREATE TRIGGER daily_path_packs_rev AFTER UPDATE OF paths ON daily_path_packs FOR EACH ROW \
    BEGIN UPDATE daily_path_packs SET rev = OLD.rev + 1 WHERE site_id = NEW.site_id AND day = NEW.day; END";

const PG_DROP_REV: &str = "\
    DROP TRIGGER IF EXISTS daily_path_packs_rev ON daily_path_packs; \
    DROP FUNCTION IF EXISTS daily_path_packs_bump_rev(); \
    ALTER TABLE daily_path_packs DROP COLUMN IF EXISTS rev";

const SQLITE_DROP_REV: &str = "\
    DROP TRIGGER IF EXISTS daily_path_packs_rev; \
    ALTER TABLE daily_path_packs DROP COLUMN rev";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WeeklyUserSets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WeeklyUserSets::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(WeeklyUserSets::FirstDay).date().not_null())
                    .col(ColumnDef::new(WeeklyUserSets::LastDay).date().not_null())
                    .col(ColumnDef::new(WeeklyUserSets::Users).blob().not_null())
                    .col(ColumnDef::new(WeeklyUserSets::UserCount).big_integer().not_null())
                    .col(ColumnDef::new(WeeklyUserSets::Source).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(WeeklyUserSets::SiteId)
                            .col(WeeklyUserSets::FirstDay),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WeeklyPathPacks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WeeklyPathPacks::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(WeeklyPathPacks::FirstDay).date().not_null())
                    .col(ColumnDef::new(WeeklyPathPacks::LastDay).date().not_null())
                    .col(ColumnDef::new(WeeklyPathPacks::Paths).blob().not_null())
                    .col(ColumnDef::new(WeeklyPathPacks::Source).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(WeeklyPathPacks::SiteId)
                            .col(WeeklyPathPacks::FirstDay),
                    )
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        let sql = match conn.get_database_backend() {
            DbBackend::Postgres => PG_REV_TRIGGER,
            _ => SQLITE_REV_TRIGGER,
        };
        conn.execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let sql = match conn.get_database_backend() {
            DbBackend::Postgres => PG_DROP_REV,
            _ => SQLITE_DROP_REV,
        };
        conn.execute_unprepared(sql).await?;
        manager
            .drop_table(Table::drop().table(WeeklyPathPacks::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WeeklyUserSets::Table).if_exists().to_owned())
            .await
    }
}
