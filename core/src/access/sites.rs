//! Sites an admin registers (`analytics-admin sites add`), with the domains
//! they are served on and their IANA time zone (`UTC` unless set: `sites add
//! --timezone`, `sites set-timezone`); and removing a site with every row of
//! its data.

use super::{timezone, AccessError};
use crate::event::{text, MAX_SITE_ID_CHARS};
use crate::store::schema::{COUNT_SITE_REMOVAL, POSTGRES_SITE_TABLES, SITE_TABLES};
use crate::store::StoreError;
use chrono::Utc;
use chrono_tz::Tz;
use entity::{site_domains, sites};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
    TransactionTrait,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The same rules as an event's `site_id`.
pub fn check_site_id(site: &str) -> Result<(), AccessError> {
    let n = site.chars().count();
    if n == 0 || n > MAX_SITE_ID_CHARS {
        return Err(AccessError::Invalid(format!(
            "a site id is 1 to {MAX_SITE_ID_CHARS} characters"
        )));
    }
    if let Some(found) = text::control_char(site, text::IN_NAMES) {
        return Err(AccessError::Invalid(format!("the site id {found}")));
    }
    Ok(())
}

/// A host name as Plausible's `d=` sends it: lower case, no scheme, port or
/// path, no `www.`.
pub fn normalize_domain(raw: &str) -> Result<String, AccessError> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = d.strip_prefix("www.").unwrap_or(&d).to_string();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err(AccessError::Invalid(format!(
            "`{raw}` is not a host name such as example.com"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteInfo {
    pub site_id: String,
    pub registered: bool,
    pub domains: Vec<String>,
    pub created_at: Option<chrono::DateTime<Utc>>,
    /// Users ever seen (0: no data yet).
    pub users: i64,
    /// Its IANA time zone's name (`UTC` unless an admin set another).
    pub timezone: String,
}

/// Registers `site` (again: adds domains) with `domains`. A new site is in
/// UTC; one registered before keeps its zone.
pub async fn add(db: &DatabaseConnection, site: &str, domains: &[String]) -> Result<SiteInfo, AccessError> {
    add_in(db, site, domains, None).await
}

/// `add`, and when `zone` is given the site's time zone is set to it (a new
/// site without one is in UTC, one registered before keeps its own).
pub async fn add_in(
    db: &DatabaseConnection,
    site: &str,
    domains: &[String],
    zone: Option<Tz>,
) -> Result<SiteInfo, AccessError> {
    check_site_id(site)?;
    let domains: Vec<String> = domains.iter().map(|d| normalize_domain(d)).collect::<Result<_, _>>()?;
    // A write transaction from its start (SQLite's `BEGIN IMMEDIATE`, which
    // waits its turn): a deferred one reads the domains first, and SQLite
    // refuses at once ("database is locked", a 503) to turn that read into
    // a write after another writer committed, as a concurrent add does.
    let immediate = sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = db.begin_with_options(immediate).await.map_err(StoreError::from)?;
    for d in &domains {
        if let Some(owner) = site_domains::Entity::find_by_id(d.clone())
            .one(&txn)
            .await
            .map_err(StoreError::from)?
        {
            if owner.site_id != site {
                return Err(AccessError::Conflict(format!(
                    "domain `{d}` belongs to site `{}`",
                    owner.site_id
                )));
            }
        }
    }
    sites::Entity::insert(sites::ActiveModel {
        site_id: Set(site.to_string()),
        user_count: Set(0),
        registered: Set(true),
        created_at: Set(Some(Utc::now())),
        deletions: Set(0),
        timezone: Set(zone.unwrap_or(timezone::DEFAULT).name().to_string()),
    })
    .on_conflict(
        OnConflict::column(sites::Column::SiteId)
            .update_columns(std::iter::once(sites::Column::Registered).chain(zone.map(|_| sites::Column::Timezone)))
            .to_owned(),
    )
    .exec(&txn)
    .await
    .map_err(StoreError::from)?;
    // A site that had data before it was registered keeps its first date.
    sites::Entity::update_many()
        .col_expr(sites::Column::CreatedAt, sea_orm::sea_query::Expr::value(Utc::now()))
        .filter(sites::Column::SiteId.eq(site))
        .filter(sites::Column::CreatedAt.is_null())
        .exec(&txn)
        .await
        .map_err(StoreError::from)?;
    for d in &domains {
        site_domains::Entity::insert(site_domains::ActiveModel {
            domain: Set(d.clone()),
            site_id: Set(site.to_string()),
        })
        .on_conflict_do_nothing_on([site_domains::Column::Domain])
        .exec(&txn)
        .await
        .map_err(StoreError::from)?;
    }
    txn.commit().await.map_err(StoreError::from)?;
    get(db, site)
        .await?
        .ok_or_else(|| AccessError::Store(StoreError::internal("a site vanished after it was added")))
}

/// Sets the time zone of the registered `site`.
pub async fn set_timezone(db: &DatabaseConnection, site: &str, zone: Tz) -> Result<SiteInfo, AccessError> {
    let updated = sites::Entity::update_many()
        .col_expr(sites::Column::Timezone, sea_orm::sea_query::Expr::value(zone.name()))
        .filter(sites::Column::SiteId.eq(site))
        .filter(sites::Column::Registered.eq(true))
        .exec(db)
        .await
        .map_err(StoreError::from)?
        .rows_affected;
    if updated == 0 {
        return Err(AccessError::NotFound(format!(
            "no registered site `{site}` (register it with `sites add {site} --timezone {}`)",
            zone.name()
        )));
    }
    get(db, site)
        .await?
        .ok_or_else(|| AccessError::Store(StoreError::internal("a site vanished after its zone was set")))
}

/// The time zone `site`'s days, hours and weeks are read in: the one an
/// admin set for it, UTC when it is not registered. One lookup by primary
/// key; the api keeps every registered site's zone in memory
/// (`Registry::timezone`) for reads.
pub async fn timezone(db: &DatabaseConnection, site: &str) -> Result<Tz, AccessError> {
    match sites::Entity::find_by_id(site.to_string())
        .one(db)
        .await
        .map_err(StoreError::from)?
    {
        Some(s) if s.registered => Ok(timezone::stored(site, &s.timezone)?),
        _ => Ok(timezone::DEFAULT),
    }
}

pub async fn get(db: &DatabaseConnection, site: &str) -> Result<Option<SiteInfo>, AccessError> {
    Ok(list(db).await?.into_iter().find(|s| s.site_id == site))
}

/// Every site, registered or with data, in byte order.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<SiteInfo>, AccessError> {
    let mut domains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in site_domains::Entity::find()
        .order_by_asc(site_domains::Column::Domain)
        .all(db)
        .await
        .map_err(StoreError::from)?
    {
        domains.entry(d.site_id).or_default().push(d.domain);
    }
    let mut out: Vec<SiteInfo> = sites::Entity::find()
        .all(db)
        .await
        .map_err(StoreError::from)?
        .into_iter()
        .map(|s| SiteInfo {
            domains: domains.remove(&s.site_id).unwrap_or_default(),
            site_id: s.site_id,
            registered: s.registered,
            created_at: s.created_at,
            users: s.user_count,
            timezone: s.timezone,
        })
        .collect();
    out.sort_by(|a, b| a.site_id.as_bytes().cmp(b.site_id.as_bytes()));
    Ok(out)
}

/// Removes `site`: its registration, domains, links and every row of its
/// data, in one transaction. Returns the raw events removed.
pub async fn remove(db: &DatabaseConnection, site: &str) -> Result<u64, AccessError> {
    if get(db, site).await?.is_none() {
        return Err(AccessError::NotFound(format!("no site `{site}`")));
    }
    let txn = db.begin().await.map_err(StoreError::from)?;
    let backend = txn.get_database_backend();
    let mut events = 0;
    let postgres_only = POSTGRES_SITE_TABLES.iter().filter(|_| backend == DbBackend::Postgres);
    for table in postgres_only.chain(SITE_TABLES.iter()) {
        let deleted = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {table} WHERE site_id = $1"),
                [site.into()],
            ))
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        if *table == "events" {
            events = deleted;
        }
    }
    // Readers' kept columns of this site are stale from now on, whatever
    // is sent for it later (`query::v2::cache`).
    txn.execute_raw(Statement::from_string(backend, COUNT_SITE_REMOVAL))
        .await
        .map_err(StoreError::from)?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(events)
}

/// What ingest checks a site against, in memory: the registered sites and
/// the domains that map to them, reloaded by the api on a schedule
/// (`refresh`), so no event waits on a query; and the registered sites'
/// time zones, so no read does either.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub sites: HashSet<String>,
    pub domains: HashMap<String, String>,
    /// The registered sites not in UTC, and their zones.
    pub timezones: HashMap<String, Tz>,
}

impl Registry {
    pub async fn load(db: &DatabaseConnection) -> Result<Self, AccessError> {
        let registered = sites::Entity::find()
            .filter(sites::Column::Registered.eq(true))
            .all(db)
            .await
            .map_err(StoreError::from)?;
        let mut timezones = HashMap::new();
        for s in &registered {
            // One bad row must not stop ingest for every site: it reads as
            // UTC, loudly (`timezone()` answers it with an error).
            match timezone::stored(&s.site_id, &s.timezone) {
                Ok(tz) if tz != timezone::DEFAULT => {
                    timezones.insert(s.site_id.clone(), tz);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(site = %s.site_id, zone = %s.timezone, "{e}; read as UTC"),
            }
        }
        let sites = registered.into_iter().map(|s| s.site_id).collect();
        let domains = site_domains::Entity::find()
            .all(db)
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .map(|d| (d.domain, d.site_id))
            .collect();
        Ok(Self {
            sites,
            domains,
            timezones,
        })
    }

    /// `site`'s time zone: UTC when it is not registered.
    pub fn timezone(&self, site: &str) -> Tz {
        self.timezones.get(site).copied().unwrap_or(timezone::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(
            normalize_domain(" WWW.Example.COM. ").ok().as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_domain("shop.example.co.uk").ok().as_deref(),
            Some("shop.example.co.uk")
        );
        assert!(normalize_domain("https://example.com").is_err());
        assert!(normalize_domain("example.com:8080").is_err());
        assert!(normalize_domain("a..b").is_err());
        assert!(check_site_id("site-1").is_ok() && check_site_id("").is_err() && check_site_id("a\u{0}").is_err());
    }
}
