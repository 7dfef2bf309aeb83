//! Puts the raw events' time index in time order first:
//! `idx_events_timestamp_site (timestamp, site_id)` replaces
//! `idx_events_site_timestamp (site_id, timestamp)`.
//!
//! Site first, every site's newest events went into the middle of the
//! index, at the end of that site's range: twenty sites kept twenty
//! insertion points, and each of them split pages by rebalancing three
//! siblings and their parent. In embedded mode that index was 113 of the
//! 247 pages a 1,600-event transaction wrote to the WAL. Time first, new
//! events land at the right edge of the index, which fills pages in order
//! and splits them cheaply: 29 pages, and the transaction 177
//! (bench/README.md).
//!
//! What read the old index still finds its rows: a site's events in a time
//! range are one range of the new index, with the site compared inside the
//! index entries (per-user deletion, `analytics_core::store::user_events`, and raw
//! export). It now passes over the other sites' entries of that range; those
//! reads are rare and bounded by the range, while every write paid for the
//! old order.
//!
//! `down` restores the site-first index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    SiteId,
    Timestamp,
}

const SITE_FIRST: &str = "idx_events_site_timestamp";
const TIME_FIRST: &str = "idx_events_timestamp_site";

async fn swap(
    manager: &SchemaManager<'_>,
    create: &str,
    (first, second): (Events, Events),
    drop: &str,
) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name(create)
                .table(Events::Table)
                .col(first)
                .col(second)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
    manager
        .drop_index(Index::drop().name(drop).table(Events::Table).if_exists().to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        swap(manager, TIME_FIRST, (Events::Timestamp, Events::SiteId), SITE_FIRST).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        swap(manager, SITE_FIRST, (Events::SiteId, Events::Timestamp), TIME_FIRST).await
    }
}
