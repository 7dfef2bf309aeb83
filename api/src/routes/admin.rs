//! `/api/admin/…`: what `analytics-admin` does, over HTTP, for an admin key
//! (a key of scope `admin` for every site). JSON in and out.
//!
//! Sites: `GET` lists them (each with its `timezone`), `POST {"site_id",
//! "domains"?, "timezone"?}` registers one (201), `PATCH /{site}
//! {"timezone"}` changes its zone (200), `DELETE /{site}` removes it. A zone
//! that is not an IANA name is a 400 naming `timezone`. `POST import`
//! takes our export's NDJSON or CSV for one site.

use crate::auth::{access_error, Admin};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::{keys, links, sites, timezone};
use analytics_core::store::{import, user_events};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sites", get(list_sites).post(add_site))
        .route("/api/admin/sites/{site}", delete(remove_site).patch(change_site))
        .route("/api/admin/keys", get(list_keys).post(create_key))
        .route("/api/admin/keys/{name}", delete(revoke_key))
        .route("/api/admin/users/delete", post(delete_user))
        .route("/api/admin/links", get(list_links).post(create_link))
        .route("/api/admin/links/{id}", delete(revoke_link))
        .route("/api/admin/import", post(import_events))
}

/// An upload is read whole (all-or-nothing reads it twice) within the
/// request deadline: larger histories go through `analytics-admin import`.
const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    site: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    all_or_nothing: bool,
}

/// `POST /api/admin/import?site=S&format=ndjson|csv&all_or_nothing=true`,
/// the body our export: the report as JSON, 200 (422 when all-or-nothing
/// refused the file).
async fn import_events(
    State(state): State<AppState>,
    _: Admin,
    axum::extract::Query(p): axum::extract::Query<ImportParams>,
    body: axum::body::Body,
) -> Result<impl IntoResponse, ApiError> {
    use analytics_core::event::exchange::Format;
    use analytics_core::event::FieldError;
    let format = match p.format.as_deref() {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid import",
                vec![FieldError::new(
                    "format",
                    format!("must be `ndjson` or `csv` (got `{other}`)"),
                )],
            ))
        }
    };
    let bytes = axum::body::to_bytes(body, IMPORT_BODY_LIMIT).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "an import upload is at most {} MiB; use analytics-admin import",
            IMPORT_BODY_LIMIT >> 20
        ))
    })?;
    let writer = analytics_core::store::Writer::open(&state.db)?;
    let report = import::import(
        &writer,
        || Ok(std::io::Cursor::new(&bytes[..])),
        format,
        &p.site,
        p.all_or_nothing,
        |_| {},
    )
    .await
    .map_err(|e| match e {
        import::ImportError::Store(e) => ApiError::from(e),
        import::ImportError::Read(e) => {
            ApiError::invalid("invalid import", vec![FieldError::new("body", e.to_string())])
        }
    })?;
    let status = if report.aborted {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let bad: Vec<serde_json::Value> = report
        .bad
        .iter()
        .map(|b| json!({"line": b.line, "message": b.message}))
        .collect();
    Ok((
        status,
        Json(
            json!({"site_id": p.site, "read": report.read, "inserted": report.inserted, "duplicates": report.duplicates,
                    "bad_lines": report.bad_lines, "bad": bad, "aborted": report.aborted}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    site_id: String,
    #[serde(default)]
    domains: Vec<String>,
    /// An IANA zone; absent: UTC for a new site, unchanged for another.
    #[serde(default)]
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    timezone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scope: String,
    #[serde(default)]
    sites: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserToDelete {
    site_id: String,
    user_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    site_id: String,
}

async fn list_sites(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"sites": sites::list(&state.db).await.map_err(access_error)?}),
    ))
}

async fn add_site(
    State(state): State<AppState>,
    _: Admin,
    Json(s): Json<NewSite>,
) -> Result<impl IntoResponse, ApiError> {
    let zone = s
        .timezone
        .as_deref()
        .map(timezone::parse)
        .transpose()
        .map_err(access_error)?;
    let site = sites::add_in(&state.db, &s.site_id, &s.domains, zone)
        .await
        .map_err(access_error)?;
    state.access.refresh(&state.db).await.map_err(access_error)?;
    Ok((StatusCode::CREATED, Json(site)))
}

async fn change_site(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
    Json(c): Json<SiteChange>,
) -> Result<impl IntoResponse, ApiError> {
    let zone = timezone::parse(&c.timezone).map_err(access_error)?;
    let changed = sites::set_timezone(&state.db, &site, zone)
        .await
        .map_err(access_error)?;
    state.access.refresh(&state.db).await.map_err(access_error)?;
    Ok(Json(changed))
}

async fn remove_site(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let events = sites::remove(&state.db, &site).await.map_err(access_error)?;
    state.access.refresh(&state.db).await.map_err(access_error)?;
    Ok(Json(json!({"site_id": site, "events_removed": events})))
}

async fn list_keys(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"keys": keys::list(&state.db).await.map_err(access_error)?}),
    ))
}

async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    Json(k): Json<NewKey>,
) -> Result<impl IntoResponse, ApiError> {
    let scope = keys::Scope::parse(&k.scope).map_err(access_error)?;
    let key = keys::create(&state.db, &k.name, scope, &k.sites)
        .await
        .map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": k.name, "scope": scope, "sites": k.sites, "key": key})),
    ))
}

async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    keys::revoke(&state.db, &name).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(
    State(state): State<AppState>,
    _: Admin,
    Json(u): Json<UserToDelete>,
) -> Result<impl IntoResponse, ApiError> {
    let events = user_events::delete(&state.db, &u.site_id, &u.user_id).await?;
    Ok(Json(json!({"site_id": u.site_id, "events_removed": events})))
}

async fn list_links(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"links": links::list(&state.db).await.map_err(access_error)?}),
    ))
}

async fn create_link(
    State(state): State<AppState>,
    _: Admin,
    Json(l): Json<NewLink>,
) -> Result<impl IntoResponse, ApiError> {
    let token = links::create(&state.db, &l.site_id).await.map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"site_id": l.site_id, "path": format!("/share/{token}")})),
    ))
}

async fn revoke_link(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    links::revoke(&state.db, &id).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}
