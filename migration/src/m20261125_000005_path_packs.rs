//! `daily_path_packs`: one row per (site, day) holding that day's (path,
//! views) pairs, packed by the compactor out of `daily_path_views`, in pack
//! format 1 (`unpack_v1` below reads it, so that this migration depends on
//! nothing of today's code).
//!
//! `up` only creates the table: rows already in `daily_path_views` stay valid
//! and are packed by the first compaction. `down` unpacks every pack back into
//! `daily_path_views`, adding to rows written since, then drops the table.

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

/// Reads a format-1 pack front to back.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A LEB128 varint.
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or("truncated")?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err("number too long")
    }

    fn length(&mut self) -> Result<usize, &'static str> {
        <usize as TryFrom<_>>::try_from(self.varint()?).map_err(|_| "length out of range")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let (head, rest) = self.bytes.split_at_checked(n).ok_or("truncated")?;
        self.bytes = rest;
        Ok(head)
    }
}

/// The (path, views) pairs of a format-1 pack: a format byte (1), a count,
/// then per pair the bytes shared with the previous path, the length and
/// bytes of the rest, and the views.
fn unpack_v1(pack: &[u8]) -> Result<Vec<(String, i64)>, DbErr> {
    let corrupt = |what: &str| DbErr::Migration(format!("a stored path pack is corrupt: {what}"));
    let Some((1, body)) = pack.split_first() else {
        return Err(corrupt("not format 1"));
    };
    let mut read = Reader { bytes: body };
    let mut pairs = Vec::new();
    let mut path: Vec<u8> = Vec::new();
    for _ in 0..read.varint().map_err(corrupt)? {
        let shared = read.length().map_err(corrupt)?;
        let len = read.length().map_err(corrupt)?;
        if shared > path.len() {
            return Err(corrupt("shared prefix longer than the previous path"));
        }
        path.truncate(shared);
        path.extend_from_slice(read.take(len).map_err(corrupt)?);
        let views = <i64 as TryFrom<_>>::try_from(read.varint().map_err(corrupt)?)
            .map_err(|_| corrupt("views out of range"))?;
        let text = String::from_utf8(path.clone()).map_err(|_| corrupt("a path is not UTF-8"))?;
        pairs.push((text, views));
    }
    Ok(pairs)
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
            for (path, views) in unpack_v1(&pack.try_get_by_index::<Vec<u8>>(2)?)? {
                conn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "INSERT INTO daily_path_views (site_id, day, path, views) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (site_id, day, path) DO UPDATE SET views = daily_path_views.views + excluded.views",
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
