//! `POST /api/event`: Plausible's event format, so a site tagged for
//! Plausible (its script, its npm tracker, its server-side clients) sends
//! here unchanged. Answered 202 `ok` as Plausible answers; a bot's event is
//! dropped (and counted) with the same answer, as Plausible does.

use super::body::read_event_body;
use super::enrich::RequestClient;
use super::ingest::{accept, counted, Shape, SINGLE_BODY_LIMIT};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::event::{plausible, EventNames, FieldError, Policy};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;

#[utoipa::path(
    post,
    path = "/api/event",
    tag = "ingest",
    operation_id = "ingest_plausible_event",
    summary = "Send an event in Plausible's format",
    description = "Plausible's Events API payload, with its long or short keys (`n`, `u`, `d`, `r`, `p`, `$`, `i`, \
                   `h`), sent as `application/json` or `text/plain`. A comma list of domains sends to each. \
                   Engagement reports and bots' events are answered and not kept.",
    request_body(content(
        (crate::openapi::PlausibleEventInput = "application/json"),
        (crate::openapi::PlausibleEventInput = "text/plain"),
    )),
    responses(
        (status = 202, description = "Accepted (or dropped)", body = String, content_type = "text/plain", example = "ok"),
        (status = 400, description = "Not a Plausible event, or an invalid one", body = crate::openapi::ErrorBody),
        (status = 401, description = "`INGEST_AUTH` needs an ingest key and none was sent", body = crate::openapi::ErrorBody),
        (status = 403, description = "The site is not registered, or the key may not send for it", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorBody),
        (status = 415, description = "Neither `application/json` nor `text/plain`, or an encoding other than gzip", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn event(
    State(state): State<AppState>,
    client: RequestClient,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let bytes = read_event_body(&headers, body, SINGLE_BODY_LIMIT).await?;
        let mapped = plausible::parse(&bytes)
            .map_err(|e| ApiError::invalid("request body is not a valid Plausible event", vec![e]))?;
        let policy = Policy {
            names: EventNames::Free,
            ..state.policy
        };
        let now = Utc::now();
        let mut parts = Vec::with_capacity(mapped.events.len());
        for mut incoming in mapped.events {
            let domain = incoming.site_id.take().unwrap_or_default();
            incoming.site_id = Some(state.access.site_for_domain(&domain));
            let validated = incoming.validate_parts(now, policy).map_err(|details| {
                let details = details
                    .into_iter()
                    .map(|d| FieldError::new(plausible_field(&d.field), d.message))
                    .collect();
                ApiError::invalid("event is invalid", details)
            })?;
            parts.push(validated);
        }
        accept(
            &state,
            &client,
            &headers,
            parts,
            Shape::Plausible {
                hash_mode: mapped.hash_mode,
            },
        )
        .await?;
        Ok((
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok",
        ))
    }
    .await;
    counted(&state, result)
}

/// Our field names as Plausible's client knows them.
fn plausible_field(ours: &str) -> String {
    match ours {
        "site_id" => "domain",
        "event_type" => "name",
        "path" | "url" => "url",
        other => return other.to_string(),
    }
    .to_string()
}
