//! The seed's `events` table, columns and three indexes, plus `event_id`
//! (unique: the idempotency key), `received_at`, `referrer` and `props`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventId,
    SiteId,
    EventType,
    Path,
    UserId,
    Timestamp,
    ReceivedAt,
    Referrer,
    Props,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut id = ColumnDef::new(Events::Id);
        // SQLite only auto-increments a column declared exactly INTEGER.
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            id.integer();
        } else {
            id.big_integer();
        }
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(id.not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Events::EventId).uuid().not_null().unique_key())
                    .col(ColumnDef::new(Events::SiteId).string_len(100).not_null())
                    .col(ColumnDef::new(Events::EventType).string_len(50).not_null())
                    .col(ColumnDef::new(Events::Path).string_len(2048).not_null().default(""))
                    .col(ColumnDef::new(Events::UserId).string_len(100).not_null().default(""))
                    .col(ColumnDef::new(Events::Timestamp).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Events::ReceivedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Events::Referrer).text().null())
                    .col(ColumnDef::new(Events::Props).json_binary().null())
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, Vec<Events>); 3] = [
            ("idx_events_site_timestamp", vec![Events::SiteId, Events::Timestamp]),
            ("idx_events_site_event_type", vec![Events::SiteId, Events::EventType]),
            ("idx_events_user_id", vec![Events::UserId]),
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).if_exists().to_owned())
            .await
    }
}
