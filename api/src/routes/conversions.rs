//! Goals and saved funnels: managed under `/api/admin/sites/{site}/goals`
//! and `/funnels` by an admin key (`POST` adds, 201; `DELETE /{name}`
//! removes; `GET` lists), and listed to readers of the site at
//! `GET /api/v2/goals?site_id=` and `/api/v2/funnels?site_id=` (the
//! dashboard's goal and funnel views). A definition the rules refuse is
//! a 400 naming its field (`page`, `event`, `steps[1].goal`).

use crate::auth::{access_error, Admin, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::conversions::{funnels, goals};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sites/{site}/goals", get(admin_goals).post(add_goal))
        .route("/api/admin/sites/{site}/goals/{name}", delete(remove_goal))
        .route("/api/admin/sites/{site}/funnels", get(admin_funnels).post(add_funnel))
        .route("/api/admin/sites/{site}/funnels/{name}", delete(remove_funnel))
        .route("/api/v2/goals", get(read_goals))
        .route("/api/v2/funnels", get(read_funnels))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGoal {
    name: String,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    event: Option<String>,
    /// At most one `{"key": "value"}`.
    #[serde(default)]
    prop: Option<BTreeMap<String, String>>,
    /// A revenue goal's ISO 4217 currency.
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFunnel {
    name: String,
    steps: Value,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SiteParam {
    site_id: String,
}

async fn goals_json(state: &AppState, site: &str) -> Result<Json<Value>, ApiError> {
    let list = goals::list(&state.db, site).await?;
    Ok(Json(
        json!({"site_id": site, "goals": list.iter().map(analytics_query::Goal::to_json).collect::<Vec<_>>()}),
    ))
}

async fn funnels_json(state: &AppState, site: &str) -> Result<Json<Value>, ApiError> {
    let list = funnels::list(&state.db, site).await?;
    Ok(Json(
        json!({"site_id": site, "funnels": list.iter().map(funnels::SavedFunnel::to_json).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(
    get,
    path = "/api/admin/sites/{site}/goals",
    tag = "admin",
    operation_id = "admin_list_goals",
    summary = "A site's goals",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123")),
    responses(
        (status = 200, description = "The goals", body = crate::openapi::Goals),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn admin_goals(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
) -> Result<Json<Value>, ApiError> {
    goals_json(&state, &site).await
}

#[utoipa::path(
    post,
    path = "/api/admin/sites/{site}/goals",
    tag = "admin",
    operation_id = "admin_add_goal",
    summary = "Add a goal",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123")),
    request_body(content = crate::openapi::Goal, content_type = "application/json"),
    responses(
        (status = 201, description = "The goal", body = crate::openapi::Goal),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 404, description = "No registered site", body = crate::openapi::ErrorBody),
        (status = 409, description = "A goal of that name exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_goal(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
    super::nul::Json(g): super::nul::Json<NewGoal>,
) -> Result<impl IntoResponse, ApiError> {
    let prop = match &g.prop {
        None => None,
        Some(m) if m.len() == 1 => m.iter().next().map(|(k, v)| (k.as_str(), v.as_str())),
        Some(_) => {
            return Err(ApiError::invalid(
                "prop: one {\"key\": \"value\"} pair",
                vec![analytics_core::event::FieldError::new(
                    "prop",
                    "a goal matches at most one property: {\"key\": \"value\"}",
                )],
            ))
        }
    };
    let goal = goals::definition(
        &g.name,
        g.page.as_deref(),
        g.event.as_deref(),
        prop,
        g.currency.as_deref(),
    )
    .map_err(access_error)?;
    goals::add(&state.db, &site, &goal).await.map_err(access_error)?;
    Ok((StatusCode::CREATED, Json(goal.to_json())))
}

#[utoipa::path(
    delete,
    path = "/api/admin/sites/{site}/goals/{name}",
    tag = "admin",
    operation_id = "admin_remove_goal",
    summary = "Remove a goal",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123"), ("name" = String, Path, description = "The goal's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such goal", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn remove_goal(
    State(state): State<AppState>,
    _: Admin,
    Path((site, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    goals::remove(&state.db, &site, &name).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/admin/sites/{site}/funnels",
    tag = "admin",
    operation_id = "admin_list_funnels",
    summary = "A site's saved funnels",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123")),
    responses(
        (status = 200, description = "The funnels", body = crate::openapi::Funnels),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn admin_funnels(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
) -> Result<Json<Value>, ApiError> {
    funnels_json(&state, &site).await
}

#[utoipa::path(
    post,
    path = "/api/admin/sites/{site}/funnels",
    tag = "admin",
    operation_id = "admin_add_funnel",
    summary = "Save a funnel",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123")),
    request_body(content = crate::openapi::SavedFunnel, content_type = "application/json"),
    responses(
        (status = 201, description = "The funnel", body = crate::openapi::SavedFunnel),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 400, description = "Invalid: the field at fault named (or, as text, a body that is not JSON)", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 415, description = "Not `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "JSON of the wrong shape (a missing or unknown field)", body = String, content_type = "text/plain"),
        (status = 404, description = "No registered site", body = crate::openapi::ErrorBody),
        (status = 409, description = "A funnel of that name exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_funnel(
    State(state): State<AppState>,
    _: Admin,
    Path(site): Path<String>,
    super::nul::Json(f): super::nul::Json<NewFunnel>,
) -> Result<impl IntoResponse, ApiError> {
    let funnel = funnels::definition(&f.name, &f.steps).map_err(access_error)?;
    funnels::add(&state.db, &site, &funnel).await.map_err(access_error)?;
    Ok((StatusCode::CREATED, Json(funnel.to_json())))
}

#[utoipa::path(
    delete,
    path = "/api/admin/sites/{site}/funnels/{name}",
    tag = "admin",
    operation_id = "admin_remove_funnel",
    summary = "Remove a saved funnel",
    params(("site" = String, Path, description = "The site id", example = "site-abc-123"), ("name" = String, Path, description = "The funnel's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No key", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin key (for every site)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such funnel", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn remove_funnel(
    State(state): State<AppState>,
    _: Admin,
    Path((site, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    funnels::remove(&state.db, &site, &name).await.map_err(access_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v2/goals",
    tag = "conversions",
    operation_id = "list_goals",
    summary = "A site's goals, for its readers",
    params(SiteParam),
    responses(
        (status = 200, description = "The goals", body = crate::openapi::Goals),
        (status = 400, description = "A missing or unknown parameter", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
async fn read_goals(
    State(state): State<AppState>,
    reader: Reader,
    Query(p): Query<SiteParam>,
) -> Result<Json<Value>, ApiError> {
    reader.check(&p.site_id)?;
    goals_json(&state, &p.site_id).await
}

#[utoipa::path(
    get,
    path = "/api/v2/funnels",
    tag = "conversions",
    operation_id = "list_funnels",
    summary = "A site's saved funnels, for its readers",
    params(SiteParam),
    responses(
        (status = 200, description = "The funnels", body = crate::openapi::Funnels),
        (status = 400, description = "A missing or unknown parameter", content((crate::openapi::ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
async fn read_funnels(
    State(state): State<AppState>,
    reader: Reader,
    Query(p): Query<SiteParam>,
) -> Result<Json<Value>, ApiError> {
    reader.check(&p.site_id)?;
    funnels_json(&state, &p.site_id).await
}

/// The routes' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    admin_goals,
    add_goal,
    remove_goal,
    admin_funnels,
    add_funnel,
    remove_funnel,
    read_goals,
    read_funnels
))]
pub(super) struct ConversionsApi;
