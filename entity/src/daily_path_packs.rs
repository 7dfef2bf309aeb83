//! Rollup: every (path, page views) pair of a site on a UTC day, packed by
//! the compactor out of `daily_path_views` (format in `analytics_core::path_packs`).
//! `rev` counts its changes, for the weekly cache's staleness check.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "daily_path_packs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    pub paths: Vec<u8>,
    /// Bumped by a trigger on every update of `paths` (migration 8).
    pub rev: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
