//! `POST /api/v2/funnel`: `{site_id, date_range, filters?, steps}` (or
//! `"funnel": name` for a saved one) → each step's visitors, conversion
//! and drop-off (`analytics_query::funnel`), in the site's time zone.
//! Every problem is a 400 naming its part, as in the query API.

use super::body::read_json_body;
use super::query::{invalid, QUERY_BODY_LIMIT};
use crate::auth::{access_error, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::sites;
use analytics_core::conversions::{funnels, goals};
use analytics_core::event::FieldError;
use analytics_core::query::v2;
use analytics_query::funnel::Funnel;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde_json::Value;

#[utoipa::path(
    post,
    path = "/api/v2/funnel",
    tag = "query",
    operation_id = "funnel_v2",
    summary = "A funnel's steps within visits",
    description = "2 to 8 steps (goals by name, inline pages or events) or a saved funnel's name; the range and \
                   filters as in the query API. Per visit, a step is reached by the first kept event matching it \
                   after the previous step's.",
    request_body(content = crate::openapi::FunnelRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Each step's visitors, conversion and drop-off", body = crate::openapi::FunnelResponse),
        (status = 400, description = "Every problem, each named by its part (such as `steps[1].goal`)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not `application/json`", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn funnel(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_json_body(&headers, body, QUERY_BODY_LIMIT).await?;
    super::nul::refuse_in_json(&bytes)?;
    let request: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid(
            "invalid funnel",
            vec![FieldError::new("body", format!("not JSON: {e}"))],
        )
    })?;
    // A saved funnel is looked up only for a site the key may read.
    let site = request.get("site_id").and_then(Value::as_str);
    let saved = match (site, request.get("funnel").and_then(Value::as_str)) {
        (Some(site), Some(name)) => {
            reader.check(site)?;
            funnels::get(&state.db, site, name).await?.map(|f| f.steps)
        }
        _ => None,
    };
    let funnel = Funnel::parse(&request, saved.as_deref()).map_err(|e| invalid("invalid funnel", &e))?;
    reader.check(funnel.site_id())?;
    let site_goals = goals::list(&state.db, funnel.site_id()).await?;
    let funnel = funnel
        .bind_goals(site_goals)
        .map_err(|e| invalid("invalid funnel", &e))?;
    let tz = sites::timezone(&state.db, funnel.site_id())
        .await
        .map_err(access_error)?;
    let response = v2::funnel(&state.db, &state.query_cache, &funnel, tz, Utc::now()).await?;
    Ok(Json(response.to_json()))
}
