//! Raw events: one row per distinct `(event_id, site_id)`, kept for
//! per-user deletion and raw export. Stats never read this table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: Uuid,
    pub site_id: String,
    pub event_type: String,
    pub path: String,
    pub user_id: String,
    pub timestamp: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub referrer: Option<String>,
    pub props: Option<Json>,
    // The enrichment (migration 13): empty when unknown.
    pub hostname: String,
    pub source: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
    pub country: String,
    pub visitor_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
