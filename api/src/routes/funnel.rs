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

pub async fn funnel(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_json_body(&headers, body, QUERY_BODY_LIMIT).await?;
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
