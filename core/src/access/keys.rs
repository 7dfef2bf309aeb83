//! API keys: created by an admin (`analytics-admin keys create`, or the
//! admin API), shown once, stored as a prefix and a hash, with a scope and
//! the sites they may use.

use super::secret;
use super::AccessError;
use crate::store::StoreError;
use chrono::Utc;
use entity::api_keys;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;

pub const KEY_KIND: &str = "ak";

/// What a key may do. `admin` includes `read`; neither includes `ingest`
/// (a key that sends events is kept apart from one that reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Ingest,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, AccessError> {
        match s {
            "read" => Ok(Self::Read),
            "ingest" => Ok(Self::Ingest),
            "admin" => Ok(Self::Admin),
            other => Err(AccessError::Invalid(format!(
                "scope must be read, ingest or admin (got `{other}`)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Ingest => "ingest",
            Self::Admin => "admin",
        }
    }
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub name: String,
    pub prefix: String,
    pub scope: Scope,
    /// Empty: every site.
    pub sites: Vec<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub last_used_at: Option<chrono::DateTime<Utc>>,
    pub revoked: bool,
}

/// Who a request is, once its key (or session, or link) is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scope: Scope,
    /// Empty: every site.
    pub sites: Vec<String>,
}

impl Principal {
    fn covers(&self, site: &str) -> bool {
        self.sites.is_empty() || self.sites.iter().any(|s| s == site)
    }

    pub fn can_read(&self, site: &str) -> bool {
        matches!(self.scope, Scope::Read | Scope::Admin) && self.covers(site)
    }

    pub fn can_ingest(&self, site: &str) -> bool {
        self.scope == Scope::Ingest && self.covers(site)
    }

    pub fn is_admin(&self) -> bool {
        self.scope == Scope::Admin && self.sites.is_empty()
    }
}

/// Key names: what a session cookie carries, so a plain alphabet.
fn check_name(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AccessError::Invalid(
            "a key name is 1 to 100 letters, digits, - or _".into(),
        ))
    }
}

fn info(m: api_keys::Model) -> Result<KeyInfo, AccessError> {
    Ok(KeyInfo {
        scope: Scope::parse(&m.scope)?,
        sites: serde_json::from_str(&m.sites).map_err(|e| AccessError::Store(StoreError::Corrupt(e.into())))?,
        name: m.name,
        prefix: m.prefix,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        revoked: m.revoked_at.is_some(),
    })
}

/// Creates a key and returns it whole: the only time it is shown.
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    scope: Scope,
    sites: &[String],
) -> Result<String, AccessError> {
    check_name(name)?;
    for site in sites {
        super::sites::check_site_id(site)?;
    }
    if api_keys::Entity::find_by_id(name.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?
        .is_some()
    {
        return Err(AccessError::Conflict(format!("a key named `{name}` exists")));
    }
    let minted = secret::mint(KEY_KIND).map_err(|e| AccessError::Store(StoreError::Internal(e.into())))?;
    api_keys::ActiveModel {
        name: Set(name.to_string()),
        prefix: Set(minted.prefix),
        hash: Set(minted.hash),
        scope: Set(scope.as_str().to_string()),
        sites: Set(serde_json::to_string(sites).unwrap_or_else(|_| "[]".into())),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(StoreError::from)?;
    Ok(minted.token)
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<KeyInfo>, AccessError> {
    api_keys::Entity::find()
        .order_by_asc(api_keys::Column::Name)
        .all(db)
        .await
        .map_err(StoreError::from)?
        .into_iter()
        .map(info)
        .collect()
}

pub async fn revoke(db: &DatabaseConnection, name: &str) -> Result<(), AccessError> {
    let Some(key) = api_keys::Entity::find_by_id(name.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?
    else {
        return Err(AccessError::NotFound(format!("no key named `{name}`")));
    };
    let mut key: api_keys::ActiveModel = key.into();
    key.revoked_at = Set(Some(Utc::now()));
    key.update(db).await.map_err(StoreError::from)?;
    Ok(())
}

/// The principal of a presented key, if it is a live key.
pub async fn verify(db: &DatabaseConnection, token: &str) -> Result<Option<Principal>, AccessError> {
    let Some(prefix) = secret::prefix_of(KEY_KIND, token) else {
        return Ok(None);
    };
    let row = api_keys::Entity::find()
        .filter(api_keys::Column::Prefix.eq(prefix))
        .one(db)
        .await
        .map_err(StoreError::from)?;
    match row {
        Some(m) if m.revoked_at.is_none() && secret::matches(token, &m.hash) => principal(m).map(Some),
        _ => Ok(None),
    }
}

/// A live key's row as the principal it authenticates.
fn principal(m: api_keys::Model) -> Result<Principal, AccessError> {
    let i = info(m)?;
    Ok(Principal {
        name: i.name,
        scope: i.scope,
        sites: i.sites,
    })
}

/// The principal of a key by name (a session carries the name), if live.
pub async fn by_name(db: &DatabaseConnection, name: &str) -> Result<Option<Principal>, AccessError> {
    let row = api_keys::Entity::find_by_id(name.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?;
    match row {
        Some(m) if m.revoked_at.is_none() => principal(m).map(Some),
        _ => Ok(None),
    }
}

/// Records that `name` was used now.
pub async fn touch(db: &DatabaseConnection, name: &str) -> Result<(), AccessError> {
    api_keys::Entity::update_many()
        .col_expr(
            api_keys::Column::LastUsedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(api_keys::Column::Name.eq(name))
        .exec(db)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_sites_decide() {
        let read_all = Principal {
            name: "r".into(),
            scope: Scope::Read,
            sites: vec![],
        };
        let read_a = Principal {
            sites: vec!["a".into()],
            ..read_all.clone()
        };
        let ingest_a = Principal {
            scope: Scope::Ingest,
            ..read_a.clone()
        };
        assert!(read_all.can_read("x") && !read_all.can_ingest("x") && !read_all.is_admin());
        assert!(read_a.can_read("a") && !read_a.can_read("b"));
        assert!(ingest_a.can_ingest("a") && !ingest_a.can_ingest("b") && !ingest_a.can_read("a"));
        let admin = Principal {
            scope: Scope::Admin,
            ..read_all
        };
        assert!(admin.is_admin() && admin.can_read("any"));
        assert!(Scope::parse("write").is_err());
        assert!(check_name("ok-name_1").is_ok() && check_name("no.dots").is_err() && check_name("").is_err());
    }
}
