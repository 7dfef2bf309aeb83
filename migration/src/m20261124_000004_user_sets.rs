//! Unique users move from one row per (site, day, user) and per (site, day,
//! hour, user) to exact sets of per-site user ordinals (roaring bitmaps in
//! roaring's portable format): a 30-day unique count becomes a union of 30
//! bitmaps instead of a `COUNT(DISTINCT)` over every user-day, and the writer
//! stops paying two indexed inserts per user per batch.
//!
//! `up` builds the sets from `hourly_users` (every event with a user wrote both
//! old tables, so it holds all of `daily_users`), then drops the old tables;
//! `down` writes them back from the sets.
//!
//! Like every migration, this one uses only its own code: replaying history
//! on a fresh database must not depend on how today's writer folds users.

use crate::m20251115_000002_create_rollups::daily_users_table;
use crate::m20251201_000003_create_dashboard_rollups::hourly_users_table;
use roaring::RoaringBitmap;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Date;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use std::collections::BTreeMap;

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
}

#[derive(DeriveIden)]
enum HourlyUsers {
    Table,
}

async fn sites_of<C: ConnectionTrait>(conn: &C, table: &str) -> Result<Vec<String>, DbErr> {
    let sql = format!("SELECT DISTINCT site_id FROM {table} ORDER BY site_id");
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

/// Rows per INSERT: far below both backends' bind-parameter limits.
const ROWS_PER_INSERT: usize = 500;

/// Inserts `rows` into `table (cols)`, `ROWS_PER_INSERT` a statement, with
/// `suffix` (an `ON CONFLICT` clause) after each.
async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Value>>,
    suffix: &str,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut n = 0;
        let tuples: Vec<String> = chunk
            .iter()
            .map(|row| {
                let marks: Vec<String> = row
                    .iter()
                    .map(|_| {
                        n += 1;
                        format!("${n}")
                    })
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} {suffix}",
            cols.join(", "),
            tuples.join(", ")
        );
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        conn.execute_raw(Statement::from_sql_and_values(conn.get_database_backend(), sql, values))
            .await?;
    }
    Ok(())
}

fn serialize(set: &RoaringBitmap) -> Result<Vec<u8>, DbErr> {
    let mut out = Vec::with_capacity(set.serialized_size());
    set.serialize_into(&mut out)
        .map_err(|e| DbErr::Migration(e.to_string()))?;
    Ok(out)
}

/// One site's ordinals (users in byte order), sets and counter, from its
/// `hourly_users` rows.
async fn build_sets<C: ConnectionTrait>(conn: &C, site: &str) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT user_id, day, hour FROM hourly_users WHERE site_id = $1",
            [site.into()],
        ))
        .await?;
    let mut facts: Vec<(String, Date, i16)> = Vec::with_capacity(rows.len());
    for row in rows {
        facts.push((
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
        ));
    }
    facts.sort();
    let mut ordinals: BTreeMap<&str, u32> = BTreeMap::new();
    let mut daily: BTreeMap<Date, RoaringBitmap> = BTreeMap::new();
    let mut hourly: BTreeMap<(Date, i16), RoaringBitmap> = BTreeMap::new();
    for (user, day, hour) in &facts {
        let next = <u32 as TryFrom<_>>::try_from(ordinals.len())
            .map_err(|_| DbErr::Migration(format!("site {site}: too many users")))?;
        let ordinal = *ordinals.entry(user.as_str()).or_insert(next);
        daily.entry(*day).or_default().insert(ordinal);
        hourly.entry((*day, *hour)).or_default().insert(ordinal);
    }
    let users: Vec<Vec<Value>> = ordinals
        .iter()
        .map(|(user, o)| vec![site.into(), (*user).into(), i64::from(*o).into()])
        .collect();
    insert_rows(conn, "site_users", &["site_id", "user_id", "ordinal"], users, "").await?;
    let mut day_rows = Vec::with_capacity(daily.len());
    for (day, set) in &daily {
        day_rows.push(vec![
            site.into(),
            (*day).into(),
            serialize(set)?.into(),
            <i64 as TryFrom<_>>::try_from(set.len()).unwrap_or(i64::MAX).into(),
        ]);
    }
    insert_rows(
        conn,
        "daily_user_sets",
        &["site_id", "day", "users", "user_count"],
        day_rows,
        "",
    )
    .await?;
    let mut hour_rows = Vec::with_capacity(hourly.len());
    for ((day, hour), set) in &hourly {
        hour_rows.push(vec![
            site.into(),
            (*day).into(),
            (*hour).into(),
            serialize(set)?.into(),
            <i64 as TryFrom<_>>::try_from(set.len()).unwrap_or(i64::MAX).into(),
        ]);
    }
    insert_rows(
        conn,
        "hourly_user_sets",
        &["site_id", "day", "hour", "users", "user_count"],
        hour_rows,
        "",
    )
    .await?;
    let count = <i64 as TryFrom<_>>::try_from(ordinals.len()).unwrap_or(i64::MAX);
    insert_rows(
        conn,
        "sites",
        &["site_id", "user_count"],
        vec![vec![site.into(), count.into()]],
        "ON CONFLICT (site_id) DO UPDATE SET user_count = excluded.user_count",
    )
    .await
}

/// One site's `hourly_users` and `daily_users` rows, from its sets.
async fn write_back<C: ConnectionTrait>(conn: &C, site: &str) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT ordinal, user_id FROM site_users WHERE site_id = $1",
            [site.into()],
        ))
        .await?
    {
        let ordinal = <u32 as TryFrom<_>>::try_from(row.try_get_by_index::<i64>(0)?)
            .map_err(|e| DbErr::Migration(e.to_string()))?;
        names.insert(ordinal, row.try_get_by_index(1)?);
    }
    let (mut hourly, mut daily) = (Vec::new(), Vec::new());
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT day, hour, users FROM hourly_user_sets WHERE site_id = $1 ORDER BY day, hour",
            [site.into()],
        ))
        .await?
    {
        let (day, hour): (Date, i16) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        let set = RoaringBitmap::deserialize_from(&row.try_get_by_index::<Vec<u8>>(2)?[..])
            .map_err(|e| DbErr::Migration(format!("site {site}: a stored user set is corrupt: {e}")))?;
        for ordinal in set {
            let user = names
                .get(&ordinal)
                .ok_or_else(|| DbErr::Migration(format!("site {site}: user ordinal {ordinal} has no name")))?;
            hourly.push(vec![site.into(), day.into(), hour.into(), user.as_str().into()]);
            daily.push(vec![site.into(), day.into(), user.as_str().into()]);
        }
    }
    insert_rows(conn, "hourly_users", &["site_id", "day", "hour", "user_id"], hourly, "").await?;
    insert_rows(
        conn,
        "daily_users",
        &["site_id", "day", "user_id"],
        daily,
        "ON CONFLICT (site_id, day, user_id) DO NOTHING",
    )
    .await
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
            build_sets(conn, &site).await?;
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
            write_back(conn, &site).await?;
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
