//! Issue 23: a site's IANA time zone (`Europe/Berlin`, `Asia/Kathmandu`,
//! `UTC`), in which its days, hours and weeks are to be read.
//!
//! `sites.timezone` is `VARCHAR(64) NOT NULL DEFAULT 'UTC'`: every existing
//! site, and every row a writer adds on a site's first event (which names
//! only `site_id`), is in UTC, as all of them were read before. Adding a
//! column with a constant default rewrites nothing on PostgreSQL and costs
//! SQLite one schema change. The zone is checked when an admin sets it, not
//! here: the database holds what the code accepted.
//!
//! `down` drops the column.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sites {
    Table,
    Timezone,
}

/// The longest IANA name is 32 characters; room to spare.
const ZONE_CHARS: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(
                        ColumnDef::new(Sites::Timezone)
                            .string_len(ZONE_CHARS)
                            .not_null()
                            .default("UTC"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite drops a column only since 3.35 (the bundled one is newer).
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .drop_column(Sites::Timezone)
                    .to_owned(),
            )
            .await
    }
}
