//! `POST /api/v2/query`: Plausible's Stats API v2 request and response,
//! validated in `analytics_query` (every problem a 400 naming its part,
//! such as `filters[0][1]`) and answered in the site's time zone by
//! `analytics_core::query::v2`.

use super::body::read_json_body;
use crate::auth::{access_error, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::sites;
use analytics_core::event::FieldError;
use analytics_core::query::v2;
use analytics_query::Query;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde_json::Value;

/// A query is a few kilobytes; filters with thousands of clauses fit.
const QUERY_BODY_LIMIT: usize = 1024 * 1024;

pub async fn query(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_json_body(&headers, body, QUERY_BODY_LIMIT).await?;
    let request: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid("invalid query", vec![FieldError::new("body", format!("not JSON: {e}"))]))?;
    let query = Query::parse(&request).map_err(|errors| {
        let details = errors
            .iter()
            .map(|e| FieldError::new(if e.path.is_empty() { "body" } else { &e.path }, e.message.clone()))
            .collect();
        ApiError::invalid("invalid query", details)
    })?;
    reader.check(query.site_id())?;
    let tz = sites::timezone(&state.db, query.site_id())
        .await
        .map_err(access_error)?;
    let response = v2::run(&state.db, &state.query_cache, &query, tz, Utc::now()).await?;
    Ok(Json(response.to_json()))
}
