//! Conversions: a site's goals (`goals`) and saved funnels (`funnels`),
//! managed by `analytics-admin goals|funnels` and `/api/admin/sites/{site}/
//! goals|funnels`, read by the query API (`event:goal`, conversion rates)
//! and `POST /api/v2/funnel`. Only a registered site has them. The
//! definitions and their checks are `analytics_query`'s (`Goal`,
//! `StepSpec`); the rows are SeaORM entities (`entity::goals`,
//! `entity::funnels`): this is CRUD, not a hot path.

pub mod funnels;
pub mod goals;

use crate::access::AccessError;
use crate::store::StoreError;
use entity::sites;
use sea_orm::{ConnectionTrait, EntityTrait};

/// Fails unless `site` is registered.
async fn registered(db: &impl ConnectionTrait, site: &str) -> Result<(), AccessError> {
    match sites::Entity::find_by_id(site.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?
    {
        Some(s) if s.registered => Ok(()),
        _ => Err(AccessError::NotFound(format!("no registered site `{site}`"))),
    }
}
