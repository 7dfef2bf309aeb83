//! `GET /api/export/events?site_id=…&from=…&to=…&format=ndjson|csv`: a
//! site's raw events over its local days, streamed
//! (`analytics_core::query::export`); the read keys' rules as `/stats`.

use crate::auth::{access_error, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::sites;
use analytics_core::ops::telemetry::error_chain;
use analytics_core::query::export::{self, ExportQuery};
use analytics_core::query::params::Params;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

#[utoipa::path(
    get,
    path = "/api/export/events",
    tag = "query",
    operation_id = "export_events",
    summary = "A site's raw events, streamed",
    description = "Over the site's local days `from`..`to`, as NDJSON (what `analytics-admin import` reads) or CSV.",
    params(crate::openapi::ExportParams),
    responses(
        (status = 200, description = "The events, one a line", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        ), headers(("Content-Disposition" = String, description = "An attachment's file name"))),
        (status = 400, description = "A parameter is invalid or unknown: each named", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let q = ExportQuery::parse(&params).map_err(|d| ApiError::invalid("invalid export query", d))?;
    reader.check(&q.site_id)?;
    let tz = sites::timezone(&state.db, &q.site_id).await.map_err(access_error)?;
    let site = q.site_id.clone();
    let chunks = export::stream(state.db.clone(), &q, tz).map(move |chunk| {
        chunk.inspect_err(|e| {
            // The status is sent; the client sees the body cut short.
            tracing::error!(site = %site, error = %error_chain(e), "export stopped");
        })
    });
    // Only characters safe in a header's quoted string and a file name.
    let safe: String = q
        .site_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let filename = format!(
        "attachment; filename=\"{safe}-{}-{}.{}\"",
        q.from,
        q.to,
        export::extension(q.format)
    );
    Ok((
        [
            (header::CONTENT_TYPE, export::content_type(q.format).to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
