//! A site's goals: `kind` `page` (a path `pattern`) or `event` (an `event`
//! name, optionally with `prop_key` = `prop_value`, and a `currency` for a
//! revenue goal).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "goals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub kind: String,
    pub pattern: Option<String>,
    pub event: Option<String>,
    pub prop_key: Option<String>,
    pub prop_value: Option<String>,
    /// A revenue goal's ISO 4217 currency.
    pub currency: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
