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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ImportParams {
    /// The site the events are imported into.
    site: String,
    /// `ndjson` (default) or `csv`.
    #[serde(default)]
    #[param(inline, value_type = Option<crate::openapi::ExportFormat>)]
    format: Option<String>,
    /// Import nothing when a line is bad.
    #[serde(default)]
    all_or_nothing: bool,
}

/// `POST /api/admin/import?site=S&format=ndjson|csv&all_or_nothing=true`,
/// the body our export: the report as JSON, 200 (422 when all-or-nothing
/// refused the file).
#[utoipa::path(
    post,
    path = "/api/admin/import",
    tag = "admin",
    operation_id = "admin_import",
    summary = "Import events (our export)",
    description = "NDJSON or CSV of one site, as `/api/export/events` writes it; idempotent on `event_id`. At most 64 MiB.",
    params(ImportParams),
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv"),
    )),
    responses(
        (status = 200, description = "The report", body = crate::openapi::ImportReport),
        (status = 422, description = "All-or-nothing refused the file: the report", body = crate::openapi::ImportReport),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "An invalid parameter, or an unreadable body", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 413, description = "Upload over 64 MiB", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSite {
    #[schema(min_length = 1, max_length = 100, example = "shop")]
    site_id: String,
    /// Host names whose Plausible events go to this site.
    #[schema(example = json!(["shop.example.com"]))]
    #[serde(default)]
    domains: Vec<String>,
    /// An IANA zone; absent: UTC for a new site, unchanged for another.
    #[serde(default)]
    #[schema(example = "Europe/Berlin")]
    timezone: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    /// An IANA zone.
    #[schema(example = "America/New_York")]
    timezone: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[schema(min_length = 1, example = "dashboard")]
    name: String,
    #[schema(value_type = analytics_core::access::keys::Scope)]
    scope: String,
    /// The sites it may read or send for; empty: every site.
    #[serde(default)]
    sites: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserToDelete {
    #[schema(min_length = 1, max_length = 100)]
    site_id: String,
    #[schema(min_length = 1)]
    user_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewLink {
    #[schema(min_length = 1, max_length = 100)]
    site_id: String,
}

#[utoipa::path(
    get,
    path = "/api/admin/sites",
    tag = "admin",
    operation_id = "admin_list_sites",
    summary = "Every site",
    responses(
        (status = 200, description = "The sites", body = crate::openapi::AdminSites),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_sites(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"sites": sites::list(&state.db).await.map_err(access_error)?}),
    ))
}

#[utoipa::path(
    post,
    path = "/api/admin/sites",
    tag = "admin",
    operation_id = "admin_add_site",
    summary = "Register a site (again: add domains)",
    description = "A new site is in UTC unless `timezone` is given; one registered before keeps its zone unless given.",
    request_body(content = NewSite, content_type = "application/json"),
    responses(
        (status = 201, description = "The site", body = analytics_core::access::sites::SiteInfo),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 409, description = "A domain belongs to another site", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_site(
    State(state): State<AppState>,
    _: Admin,
    super::nul::Json(s): super::nul::Json<NewSite>,
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

#[utoipa::path(
    patch,
    path = "/api/admin/sites/{site}",
    tag = "admin",
    operation_id = "admin_change_site",
    summary = "Change a site's time zone",
    params(("site" = String, Path, description = "The site id")),
    request_body(content = SiteChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The site", body = analytics_core::access::sites::SiteInfo),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 404, description = "No such site", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn change_site(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
    super::nul::Json(c): super::nul::Json<SiteChange>,
) -> Result<impl IntoResponse, ApiError> {
    let zone = timezone::parse(&c.timezone).map_err(access_error)?;
    let changed = sites::set_timezone(&state.db, &site, zone)
        .await
        .map_err(access_error)?;
    state.access.refresh(&state.db).await.map_err(access_error)?;
    Ok(Json(changed))
}

#[utoipa::path(
    delete,
    path = "/api/admin/sites/{site}",
    tag = "admin",
    operation_id = "admin_remove_site",
    summary = "Remove a site and its events",
    params(("site" = String, Path, description = "The site id")),
    responses(
        (status = 200, description = "Removed", body = crate::openapi::Removed),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such site", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn remove_site(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let events = sites::remove(&state.db, &site).await.map_err(access_error)?;
    state.access.refresh(&state.db).await.map_err(access_error)?;
    Ok(Json(json!({"site_id": site, "events_removed": events})))
}

#[utoipa::path(
    get,
    path = "/api/admin/keys",
    tag = "admin",
    operation_id = "admin_list_keys",
    summary = "Every API key (never its secret)",
    responses(
        (status = 200, description = "The keys", body = crate::openapi::AdminKeys),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_keys(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"keys": keys::list(&state.db).await.map_err(access_error)?}),
    ))
}

#[utoipa::path(
    post,
    path = "/api/admin/keys",
    tag = "admin",
    operation_id = "admin_create_key",
    summary = "Create an API key",
    description = "The answer holds the key, shown this once.",
    request_body(content = NewKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The key", body = crate::openapi::KeyCreated),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 409, description = "A key of that name exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    super::nul::Json(k): super::nul::Json<NewKey>,
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

#[utoipa::path(
    delete,
    path = "/api/admin/keys/{name}",
    tag = "admin",
    operation_id = "admin_revoke_key",
    summary = "Revoke an API key (and its sessions)",
    params(("name" = String, Path, description = "The key's name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such key", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    keys::revoke(&state.db, &name).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/admin/users/delete",
    tag = "admin",
    operation_id = "admin_delete_user",
    summary = "Delete a user's events",
    description = "Gone from every count, exactly.",
    request_body(content = UserToDelete, content_type = "application/json"),
    responses(
        (status = 200, description = "Removed", body = crate::openapi::Removed),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
    ),
    security(("bearer" = []))
)]
async fn delete_user(
    State(state): State<AppState>,
    _: Admin,
    super::nul::Json(u): super::nul::Json<UserToDelete>,
) -> Result<impl IntoResponse, ApiError> {
    let events = user_events::delete(&state.db, &u.site_id, &u.user_id).await?;
    Ok(Json(json!({"site_id": u.site_id, "events_removed": events})))
}

#[utoipa::path(
    get,
    path = "/api/admin/links",
    tag = "admin",
    operation_id = "admin_list_links",
    summary = "Every shared link",
    responses(
        (status = 200, description = "The links", body = crate::openapi::AdminLinks),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_links(State(state): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"links": links::list(&state.db).await.map_err(access_error)?}),
    ))
}

#[utoipa::path(
    post,
    path = "/api/admin/links",
    tag = "admin",
    operation_id = "admin_create_link",
    summary = "Create a shared link to a site's dashboard",
    request_body(content = NewLink, content_type = "application/json"),
    responses(
        (status = 201, description = "The link", body = crate::openapi::LinkCreated),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 404, description = "No such site", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_link(
    State(state): State<AppState>,
    _: Admin,
    super::nul::Json(l): super::nul::Json<NewLink>,
) -> Result<impl IntoResponse, ApiError> {
    let token = links::create(&state.db, &l.site_id).await.map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"site_id": l.site_id, "path": format!("/share/{token}")})),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/admin/links/{id}",
    tag = "admin",
    operation_id = "admin_revoke_link",
    summary = "Revoke a shared link",
    params(("id" = String, Path, description = "The link's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such link", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn revoke_link(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    links::revoke(&state.db, &id).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// These routes' part of the OpenAPI document (`crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_sites,
    add_site,
    change_site,
    remove_site,
    list_keys,
    create_key,
    revoke_key,
    delete_user,
    list_links,
    create_link,
    revoke_link,
    import_events,
))]
pub(super) struct AdminApi;
