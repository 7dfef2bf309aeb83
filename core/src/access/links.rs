//! Shared read-only dashboard links: a token per link, one site each,
//! revocable. Opening `/share/<token>` reads that site's dashboard and
//! nothing else.

use super::keys::{Principal, Scope};
use super::{secret, AccessError};
use crate::store::StoreError;
use chrono::Utc;
use entity::share_links;
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
use serde::Serialize;

pub const LINK_KIND: &str = "sl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LinkInfo {
    pub id: String,
    pub site_id: String,
    pub created_at: chrono::DateTime<Utc>,
    pub revoked: bool,
}

/// Creates a link to `site`'s dashboard; returns its token (shown once).
pub async fn create(db: &sea_orm::DatabaseConnection, site: &str) -> Result<String, AccessError> {
    if super::sites::get(db, site).await?.is_none() {
        return Err(AccessError::NotFound(format!("no site `{site}`")));
    }
    let minted = secret::mint(LINK_KIND).map_err(|e| AccessError::Store(StoreError::Internal(e.into())))?;
    share_links::ActiveModel {
        id: Set(minted.prefix),
        hash: Set(minted.hash),
        site_id: Set(site.to_string()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(StoreError::from)?;
    Ok(minted.token)
}

pub async fn list(db: &sea_orm::DatabaseConnection) -> Result<Vec<LinkInfo>, AccessError> {
    Ok(share_links::Entity::find()
        .order_by_asc(share_links::Column::Id)
        .all(db)
        .await
        .map_err(StoreError::from)?
        .into_iter()
        .map(|l| LinkInfo {
            id: l.id,
            site_id: l.site_id,
            created_at: l.created_at,
            revoked: l.revoked_at.is_some(),
        })
        .collect())
}

/// Revokes a link by its id (`sl_…`, as `links list` shows) or its token.
pub async fn revoke(db: &sea_orm::DatabaseConnection, id_or_token: &str) -> Result<(), AccessError> {
    let id = secret::prefix_of(LINK_KIND, id_or_token).unwrap_or(id_or_token);
    let Some(link) = share_links::Entity::find_by_id(id.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?
    else {
        return Err(AccessError::NotFound(format!("no link `{id}`")));
    };
    let mut link: share_links::ActiveModel = link.into();
    link.revoked_at = Set(Some(Utc::now()));
    link.update(db).await.map_err(StoreError::from)?;
    Ok(())
}

/// The read-only principal of a presented link token, if live.
pub async fn verify(db: &sea_orm::DatabaseConnection, token: &str) -> Result<Option<Principal>, AccessError> {
    let Some(id) = secret::prefix_of(LINK_KIND, token) else {
        return Ok(None);
    };
    let row = share_links::Entity::find_by_id(id.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?;
    Ok(match row {
        Some(l) if l.revoked_at.is_none() && secret::matches(token, &l.hash) => Some(Principal {
            name: format!("link:{}", l.id),
            scope: Scope::Read,
            sites: vec![l.site_id],
        }),
        _ => None,
    })
}
