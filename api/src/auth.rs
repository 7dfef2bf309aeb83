//! Who may read, ingest and administer. In Kafka mode, and in embedded mode
//! bound off loopback, reads need a key (`Authorization: Bearer KEY`, or the
//! dashboard's session cookie, or a shared link's), ingest is for registered
//! sites (and, if configured, an ingest key), and `/api/admin/` for an admin
//! key. Embedded mode on loopback keeps the seed's zero-setup flow: anyone
//! who can reach it (only this machine) reads and sends for any site.

use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::keys::{self, Principal, Scope};
use analytics_core::access::sites::Registry;
use analytics_core::access::{links, session, AccessError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use clap::ValueEnum;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "analytics_session";
pub const SHARE_COOKIE: &str = "analytics_share";

/// Which sites may send events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IngestAuth {
    /// Any site (embedded mode on loopback).
    Open,
    /// Sites an admin registered.
    Registered,
    /// Requests carrying an ingest key scoped to the site.
    Key,
    /// Both.
    RegisteredAndKey,
}

/// How often the registered sites are reloaded for ingest.
pub const REGISTRY_EVERY: Duration = Duration::from_secs(5);
/// The soonest an unknown site may make ingest reload the registry.
const REGISTRY_MISS_RELOAD: Duration = Duration::from_secs(1);

pub struct Access {
    /// Reads and administration without a key (embedded on loopback).
    pub open: bool,
    pub ingest: IngestAuth,
    pub session_secret: Vec<u8>,
    registry: RwLock<(Instant, Registry)>,
    reloading: tokio::sync::Mutex<()>,
    cache: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
    cache_for: Duration,
}

/// The principal of embedded mode on loopback.
fn local() -> Principal {
    Principal {
        name: "local".into(),
        scope: Scope::Admin,
        sites: Vec::new(),
    }
}

impl Access {
    /// `cache_for`: how long a checked key (or session, or link) is trusted
    /// before it is looked up again; a revoked key stops working within it.
    pub fn new(open: bool, ingest: IngestAuth, session_secret: Vec<u8>, cache_for: Duration) -> Self {
        Self {
            open,
            ingest,
            session_secret,
            registry: RwLock::new((Instant::now(), Registry::default())),
            reloading: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            cache_for,
        }
    }

    /// Reloads the registered sites and their domains.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<(), AccessError> {
        // Stamped with when the query began: what it saw is at least that new.
        let started = Instant::now();
        let fresh = Registry::load(db).await?;
        if let Ok(mut r) = self.registry.write() {
            *r = (started, fresh);
        }
        Ok(())
    }

    /// The site a Plausible `domain` sends to: the site that registered
    /// the domain (`analytics-admin sites add S --domain D`; `www.` or not),
    /// else the domain itself as the site id.
    pub fn site_for_domain(&self, domain: &str) -> String {
        let bare = domain.strip_prefix("www.").unwrap_or(domain);
        self.registry
            .read()
            .ok()
            .and_then(|r| r.1.domains.get(domain).or_else(|| r.1.domains.get(bare)).cloned())
            .unwrap_or_else(|| domain.to_string())
    }

    fn registered_now(&self, site: &str) -> Option<bool> {
        self.registry.read().ok().map(|r| r.1.sites.contains(site))
    }

    /// Whether `site` is registered. An unknown site is looked for again in
    /// a registry loaded after the question was asked, so a site registered
    /// a moment ago is never refused; reloads happen at most once a
    /// `REGISTRY_MISS_RELOAD`, shared by every request waiting on one (a
    /// flood of unknown sites costs one small query a second).
    pub async fn is_registered(&self, db: &DatabaseConnection, site: &str) -> bool {
        if self.registered_now(site) == Some(true) {
            return true;
        }
        let asked = Instant::now();
        let _one_at_a_time = self.reloading.lock().await;
        let loaded = self.registry.read().map(|r| r.0).unwrap_or(asked);
        if loaded < asked {
            let wait = REGISTRY_MISS_RELOAD.saturating_sub(loaded.elapsed());
            tokio::time::sleep(wait).await;
            if self.refresh(db).await.is_err() {
                return false;
            }
        }
        self.registered_now(site) == Some(true)
    }

    async fn cached<F>(&self, key: String, lookup: F) -> Result<Option<Principal>, AccessError>
    where
        F: std::future::Future<Output = Result<Option<Principal>, AccessError>>,
    {
        if let Some((at, p)) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            if at.elapsed() < self.cache_for {
                return Ok(p);
            }
        }
        let p = lookup.await?;
        if let Ok(mut c) = self.cache.lock() {
            // Bounded: a flood of made-up tokens cannot grow it forever.
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, (Instant::now(), p.clone()));
        }
        Ok(p)
    }

    /// The principal of a request: open mode's, a bearer key's, the
    /// session's, or a shared link's; `None` without any.
    pub async fn principal(&self, db: &DatabaseConnection, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
        if self.open {
            return Ok(Some(local()));
        }
        if let Some(token) = bearer(headers) {
            let found = self
                .cached(format!("key:{token}"), async {
                    let p = keys::verify(db, &token).await?;
                    if let Some(p) = &p {
                        // Last use, to within the cache's time.
                        let _ = keys::touch(db, &p.name).await;
                    }
                    Ok(p)
                })
                .await
                .map_err(access_error)?;
            return Ok(found);
        }
        if let Some(value) = cookie(headers, SESSION_COOKIE) {
            let now = chrono::Utc::now().timestamp();
            if let Some(name) = session::verify(&self.session_secret, &value, now) {
                let found = self
                    .cached(format!("session:{name}"), keys::by_name(db, &name))
                    .await
                    .map_err(access_error)?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        if let Some(token) = cookie(headers, SHARE_COOKIE) {
            return self
                .cached(format!("link:{token}"), links::verify(db, &token))
                .await
                .map_err(access_error);
        }
        Ok(None)
    }
}

pub fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Invalid(m) => ApiError::invalid(m, vec![]),
        AccessError::Field(f) => ApiError::invalid(format!("{}: {}", f.field, f.message), vec![f]),
        AccessError::NotFound(m) => ApiError::NotFound(m),
        AccessError::Conflict(m) => ApiError::Conflict(m),
        AccessError::Store(e) => e.into(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when the
/// dashboard is served over TLS; `max_age` 0 clears it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A request that may read: its principal, or a 401.
pub struct Reader(pub Principal);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.access.principal(&state.db, &parts.headers).await? {
            Some(p) if matches!(p.scope, Scope::Read | Scope::Admin) => Ok(Self(p)),
            Some(_) => Err(ApiError::Forbidden("this key may not read statistics".into())),
            None => Err(ApiError::Unauthorized(
                "a key is required: send `Authorization: Bearer KEY`, or log in at /login".into(),
            )),
        }
    }
}

impl Reader {
    /// 403 unless the principal may read `site`.
    pub fn check(&self, site: &str) -> Result<(), ApiError> {
        if self.0.can_read(site) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this key may not read site `{site}`")))
        }
    }
}

/// A request from an admin, or 401/403.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.access.principal(&state.db, &parts.headers).await? {
            Some(p) if p.is_admin() => Ok(Self),
            Some(_) => Err(ApiError::Forbidden("an admin key (for every site) is required".into())),
            None => Err(ApiError::Unauthorized(
                "an admin key is required: `Authorization: Bearer KEY`".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_and_cookies_are_read() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  ak_1_2 "));
        h.append(header::COOKIE, HeaderValue::from_static("a=1; analytics_session=x.1.y"));
        h.append(header::COOKIE, HeaderValue::from_static("analytics_share=sl_z"));
        assert_eq!(bearer(&h).as_deref(), Some("ak_1_2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("x.1.y"));
        assert_eq!(cookie(&h, SHARE_COOKIE).as_deref(), Some("sl_z"));
        assert_eq!(cookie(&h, "missing"), None);
        assert!(set_cookie("n", "v", 0, true).ends_with("SameSite=Strict; Secure"));
    }
}
