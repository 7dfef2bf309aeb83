//! Rollup: the distinct non-empty users of a site on a UTC day, as a
//! serialized roaring bitmap of user ordinals, and its cardinality.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "daily_user_sets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    pub users: Vec<u8>,
    pub user_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
