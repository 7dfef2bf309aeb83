//! Unique users move from one row per (site, day, user) and per (site, day,
//! hour, user) to exact sets of per-site user ordinals (see
//! `analytics_core::user_sets`): a 30-day unique count becomes a union of 30
//! bitmaps instead of a `COUNT(DISTINCT)` over every user-day, and the writer
//! stops paying two indexed inserts per user per batch.
//!
//! `up` builds the sets from `hourly_users` (every event with a user wrote both
//! old tables, so it holds all of `daily_users`), then drops the old tables;
//! `down` writes them back from the sets.

use crate::m20251115_000002_create_rollups::daily_users_table;
use crate::m20251201_000003_create_dashboard_rollups::hourly_users_table;
use analytics_core::user_sets::{self, BatchUsers};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SiteUsers {
    Table,
    SiteId,
    UserId,
    Ordinal,
}

#[derive(DeriveIden)]
enum DailyUserSets {
    Table,
    SiteId,
    Day,
    Users,
    UserCount,
}

#[derive(DeriveIden)]
enum HourlyUserSets {
    Table,
    SiteId,
    Day,
    Hour,
    Users,
    UserCount,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    UserCount,
}

#[derive(DeriveIden)]
enum DailyUsers {
    Table,
    SiteId,
    Day,
    UserId,
}

#[derive(DeriveIden)]
enum HourlyUsers {
    Table,
    SiteId,
    Day,
    Hour,
    UserId,
}

async fn sites_of<C: ConnectionTrait>(conn: &C, table: &str) -> Result<Vec<String>, DbErr> {
    let sql = format!("SELECT DISTINCT site_id FROM {table} ORDER BY site_id");
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SiteUsers::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SiteUsers::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(SiteUsers::UserId).string_len(100).not_null())
                    .col(ColumnDef::new(SiteUsers::Ordinal).big_integer().not_null())
                    .primary_key(Index::create().col(SiteUsers::SiteId).col(SiteUsers::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DailyUserSets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DailyUserSets::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(DailyUserSets::Day).date().not_null())
                    .col(ColumnDef::new(DailyUserSets::Users).blob().not_null())
                    .col(ColumnDef::new(DailyUserSets::UserCount).big_integer().not_null())
                    .primary_key(Index::create().col(DailyUserSets::SiteId).col(DailyUserSets::Day))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HourlyUserSets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(HourlyUserSets::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(HourlyUserSets::Day).date().not_null())
                    .col(ColumnDef::new(HourlyUserSets::Hour).small_integer().not_null())
                    .col(ColumnDef::new(HourlyUserSets::Users).blob().not_null())
                    .col(ColumnDef::new(HourlyUserSets::UserCount).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(HourlyUserSets::SiteId)
                            .col(HourlyUserSets::Day)
                            .col(HourlyUserSets::Hour),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::UserCount).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            // Bitmaps barely compress and are rewritten on every batch:
            // skipping pglz saves CPU on both write and read.
            conn.execute_unprepared(
                "ALTER TABLE daily_user_sets ALTER COLUMN users SET STORAGE EXTERNAL; \
                 ALTER TABLE hourly_user_sets ALTER COLUMN users SET STORAGE EXTERNAL",
            )
            .await?;
        }

        for site in sites_of(conn, "hourly_users").await? {
            let backend = conn.get_database_backend();
            let sql = if backend == DbBackend::Postgres {
                "SELECT day, hour, user_id FROM hourly_users WHERE site_id = $1"
            } else {
                "SELECT day, hour, user_id FROM hourly_users WHERE site_id = ?"
            };
            let mut rows: Vec<(sea_orm_migration::sea_orm::prelude::Date, i16, String)> = Vec::new();
            for row in conn
                .query_all_raw(Statement::from_sql_and_values(backend, sql, [site.as_str().into()]))
                .await?
            {
                rows.push((
                    row.try_get_by_index(0)?,
                    row.try_get_by_index(1)?,
                    row.try_get_by_index(2)?,
                ));
            }
            let mut batch = BatchUsers::default();
            for (day, hour, user) in &rows {
                batch.add(&site, user, *day, *hour);
            }
            user_sets::fold(conn, &batch, &user_sets::KnownOrdinals::default()).await?;
        }

        manager
            .drop_table(Table::drop().table(DailyUsers::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(HourlyUsers::Table).if_exists().to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(daily_users_table()).await?;
        manager.create_table(hourly_users_table()).await?;

        let conn = manager.get_connection();
        for site in sites_of(conn, "site_users").await? {
            for fact in user_sets::expand(conn, &site).await? {
                let hourly = Query::insert()
                    .into_table(HourlyUsers::Table)
                    .columns([
                        HourlyUsers::SiteId,
                        HourlyUsers::Day,
                        HourlyUsers::Hour,
                        HourlyUsers::UserId,
                    ])
                    .values_panic([
                        fact.site_id.clone().into(),
                        fact.day.into(),
                        fact.hour.into(),
                        fact.user_id.clone().into(),
                    ])
                    .to_owned();
                manager.exec_stmt(hourly).await?;
                let daily = Query::insert()
                    .into_table(DailyUsers::Table)
                    .columns([DailyUsers::SiteId, DailyUsers::Day, DailyUsers::UserId])
                    .values_panic([fact.site_id.into(), fact.day.into(), fact.user_id.into()])
                    .on_conflict(
                        OnConflict::columns([DailyUsers::SiteId, DailyUsers::Day, DailyUsers::UserId])
                            .do_nothing()
                            .to_owned(),
                    )
                    .to_owned();
                manager.exec_stmt(daily).await?;
            }
        }

        for table in ["hourly_user_sets", "daily_user_sets", "site_users"] {
            conn.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        conn.execute_unprepared("ALTER TABLE sites DROP COLUMN user_count")
            .await?;
        Ok(())
    }
}
