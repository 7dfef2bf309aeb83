//! Access control: sites registered by an admin (with the domains they are
//! served on), API keys (a public prefix and the SHA-256 of the whole key,
//! never the key), and shared read-only dashboard links. `sites` keeps its
//! rows for every site with data; `registered` marks those an admin added,
//! and `deletions` counts user deletions (writers' ordinal caches follow it).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sites {
    Table,
    Registered,
    CreatedAt,
    Deletions,
}

#[derive(DeriveIden)]
enum SiteDomains {
    Table,
    Domain,
    SiteId,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Name,
    Prefix,
    Hash,
    Scope,
    Sites,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ShareLinks {
    Table,
    Id,
    Hash,
    SiteId,
    CreatedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::Registered).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::CreatedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // Bumped by each user deletion: writers' caches of user ordinals
        // learnt under an older value are not used.
        manager
            .alter_table(
                Table::alter()
                    .table(Sites::Table)
                    .add_column(ColumnDef::new(Sites::Deletions).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SiteDomains::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SiteDomains::Domain)
                            .string_len(253)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SiteDomains::SiteId).string_len(100).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_site_domains_site")
                    .table(SiteDomains::Table)
                    .col(SiteDomains::SiteId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ApiKeys::Name).string_len(100).not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::Prefix).string_len(32).not_null().unique_key())
                    .col(ColumnDef::new(ApiKeys::Hash).string_len(64).not_null())
                    .col(ColumnDef::new(ApiKeys::Scope).string_len(16).not_null())
                    .col(ColumnDef::new(ApiKeys::Sites).text().not_null())
                    .col(ColumnDef::new(ApiKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ApiKeys::LastUsedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ShareLinks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ShareLinks::Id).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(ShareLinks::Hash).string_len(64).not_null())
                    .col(ColumnDef::new(ShareLinks::SiteId).string_len(100).not_null())
                    .col(
                        ColumnDef::new(ShareLinks::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ShareLinks::RevokedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["share_links", "api_keys", "site_domains"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
                .await?;
        }
        // SQLite drops a column only since 3.35 (the bundled one is newer).
        for column in ["deletions", "created_at", "registered"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sites::Table)
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
