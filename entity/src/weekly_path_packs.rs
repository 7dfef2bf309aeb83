//! Cache: the sum of a site's daily path packs over a Monday–Sunday week,
//! stamped with the sum of their `rev` it was built from
//! (`analytics_core::week_rollups`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "weekly_path_packs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub first_day: Date,
    pub last_day: Date,
    pub paths: Vec<u8>,
    pub source: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
