//! `POST /api/v2/query`: Plausible's Stats API v2 request and response,
//! validated in `analytics_query` (every problem a 400 naming its part,
//! such as `filters[0][1]`) and answered in the site's time zone by
//! `analytics_core::query::v2`; as CSV with `Accept: text/csv`. A query
//! naming `event:goal` is bound to the site's goals first.

use super::body::read_json_body;
use crate::auth::{access_error, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::sites;
use analytics_core::conversions::goals;
use analytics_core::event::FieldError;
use analytics_core::query::v2;
use analytics_query::{Dimension, Filter, Query, ValidationErrors};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::Value;

/// A query is a few kilobytes; filters with thousands of clauses fit.
pub(super) const QUERY_BODY_LIMIT: usize = 1024 * 1024;

/// The 400 of a request the validation refused, one detail per problem.
pub(super) fn invalid(what: &str, errors: &ValidationErrors) -> ApiError {
    let details = errors
        .iter()
        .map(|e| FieldError::new(if e.path.is_empty() { "body" } else { &e.path }, e.message.clone()))
        .collect();
    ApiError::invalid(what, details)
}

/// Whether the client asked for CSV (`Accept: text/csv`) rather than JSON.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        })
}

#[utoipa::path(
    post,
    path = "/api/v2/query",
    tag = "query",
    operation_id = "query_v2",
    summary = "Plausible's Stats API v2 query",
    description = "Metrics over any dimensions and nested filters, exact, in the site's time zone; \
                   query/README.md lists metrics, dimensions, operators and periods. `Accept: text/csv` answers CSV.",
    request_body(content = crate::openapi::QueryRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The results", content(
            (crate::openapi::QueryResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Every problem of the query, each named by its part (such as `filters[0][1]`)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not `application/json`", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn query(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(&headers, body, QUERY_BODY_LIMIT).await?;
    super::nul::refuse_in_json(&bytes)?;
    let request: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid("invalid query", vec![FieldError::new("body", format!("not JSON: {e}"))]))?;
    let query = Query::parse(&request).map_err(|e| invalid("invalid query", &e))?;
    reader.check(query.site_id())?;
    // Goals are read only for a query that names them.
    let names_goals =
        query.dimensions().contains(&Dimension::Goal) || query.filters().iter().any(Filter::mentions_goal);
    let query = if names_goals {
        let site_goals = goals::list(&state.db, query.site_id()).await?;
        query.bind_goals(site_goals).map_err(|e| invalid("invalid query", &e))?
    } else {
        query
    };
    let tz = sites::timezone(&state.db, query.site_id())
        .await
        .map_err(access_error)?;
    let response = v2::run(&state.db, &state.query_cache, &query, tz, Utc::now()).await?;
    if wants_csv(&headers) {
        let csv = analytics_query::csv::to_csv(&query, &response);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response());
    }
    Ok(Json(response.to_json()).into_response())
}
