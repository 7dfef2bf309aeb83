//! Drops two of the seed's raw-event indexes that no longer earn their place.
//!
//! - `idx_events_user_id`: its keys arrive in random order, so every batch
//!   dirties index pages all over the tree; in embedded mode it was most of
//!   the commit. Per-user deletion finds a user's events without it: the
//!   hourly user sets name the hours in which the user appeared, and
//!   `idx_events_site_timestamp` reaches those hours' events
//!   (`analytics_core::store::user_events`).
//! - `idx_events_site_event_type`: no query reads raw events by type; stats
//!   read the rollups, and an export by time range uses
//!   `idx_events_site_timestamp`.
//!
//! `down` rebuilds both.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    SiteId,
    EventType,
    UserId,
}

const USER_ID: &str = "idx_events_user_id";
const SITE_EVENT_TYPE: &str = "idx_events_site_event_type";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [USER_ID, SITE_EVENT_TYPE] {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let indexes: [(&str, Vec<Events>); 2] = [
            (SITE_EVENT_TYPE, vec![Events::SiteId, Events::EventType]),
            (USER_ID, vec![Events::UserId]),
        ];
        for (name, cols) in indexes {
            let mut idx = Index::create();
            idx.name(name).table(Events::Table).if_not_exists();
            for c in cols {
                idx.col(c);
            }
            manager.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }
}
