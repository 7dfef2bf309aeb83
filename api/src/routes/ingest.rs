//! `POST /events` and `POST /events/batch`.

use super::body::read_json_body;
use super::enrich::RequestClient;
use crate::auth::IngestAuth;
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::event::{self, ClientHints, Event, FieldError, Policy};
use analytics_enrich::BotRule;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde_json::json;

/// One event with generous room for props; a batch is bounded by the contract.
pub const SINGLE_BODY_LIMIT: usize = 64 * 1024;
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;
pub const MAX_BATCH_EVENTS: usize = 1000;

#[utoipa::path(
    post,
    path = "/events",
    tag = "ingest",
    operation_id = "ingest_event",
    summary = "Send one event",
    description = "Validated, enriched and queued; answered 202 once durable. Resending an `event_id` is a no-op. \
                   The body may be gzip-compressed (`Content-Encoding: gzip`), at most 64 KiB either way.",
    request_body(content = crate::openapi::EventInput, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted (or dropped as a bot's: `dropped`)", body = crate::openapi::EventAccepted),
        (status = 400, description = "Not an event, or an invalid one: every field at fault named", body = crate::openapi::ErrorBody),
        (status = 401, description = "`INGEST_AUTH` needs an ingest key and none was sent", body = crate::openapi::ErrorBody),
        (status = 403, description = "The site is not registered, or the key may not send for it", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 64 KiB (also after gzip)", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not `application/json`, or an encoding other than gzip", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn single(
    State(state): State<AppState>,
    client: RequestClient,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let bytes = read_json_body(&headers, body, SINGLE_BODY_LIMIT).await?;
        let incoming =
            event::parse_one(&bytes).map_err(|e| ApiError::invalid("request body is not a valid event", vec![e]))?;
        let parts = incoming
            .validate_parts(Utc::now(), state.policy)
            .map_err(|details| ApiError::invalid("event is invalid", details))?;
        let event_id = parts.0.event_id;
        if accept(&state, &client, &headers, vec![parts], Shape::Single).await? == 0 {
            return Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({"message": "Event dropped: its user_agent is a bot", "event_id": event_id, "dropped": true}),
                ),
            ));
        }
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({"message": "Event accepted", "event_id": event_id})),
        ))
    }
    .await;
    counted(&state, result)
}

#[utoipa::path(
    post,
    path = "/events/batch",
    tag = "ingest",
    operation_id = "ingest_batch",
    summary = "Send up to 1,000 events",
    description = "All or nothing: one invalid event rejects the batch and is named by its index. At most 1 MiB \
                   (gzip allowed) and 1,000 events.",
    request_body(content = Vec<crate::openapi::EventInput>, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted; events dropped as bots' counted apart", body = crate::openapi::BatchAccepted),
        (status = 400, description = "Not an array of events, empty, or an invalid event (named by index)", body = crate::openapi::ErrorBody),
        (status = 401, description = "`INGEST_AUTH` needs an ingest key and none was sent", body = crate::openapi::ErrorBody),
        (status = 403, description = "A site is not registered, or the key may not send for it", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 1 MiB (also after gzip) or more than 1,000 events", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not `application/json`, or an encoding other than gzip", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
/// All-or-nothing: the first invalid event rejects the whole batch, and the
/// error names its index and every broken field.
pub async fn batch(
    State(state): State<AppState>,
    client: RequestClient,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let result: Result<_, ApiError> = async {
        let bytes = read_json_body(&headers, body, BATCH_BODY_LIMIT).await?;
        let incoming = event::parse_batch(&bytes)
            .map_err(|e| ApiError::invalid("request body is not a valid JSON array of events", vec![e]))?;
        if incoming.is_empty() {
            return Err(ApiError::invalid(
                "batch is empty",
                vec![FieldError::new("", "must contain at least one event")],
            ));
        }
        if incoming.len() > MAX_BATCH_EVENTS {
            return Err(ApiError::TooLarge(format!(
                "batch has {} events; at most {MAX_BATCH_EVENTS} are allowed",
                incoming.len()
            )));
        }
        let parts = validate_all(incoming, state.policy)?;
        let sent = parts.len();
        let n = accept(&state, &client, &headers, parts, Shape::Batch).await?;
        let body = if n == sent {
            json!({"accepted": n})
        } else {
            json!({"accepted": n, "dropped_bots": sent - n})
        };
        Ok((StatusCode::ACCEPTED, Json(body)))
    }
    .await;
    counted(&state, result)
}

/// How a route's events are named in errors and enriched.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// `/events`: one event, `site_id`.
    Single,
    /// `/events/batch`: `[i].site_id`.
    Batch,
    /// `/api/event`: Plausible's, from a browser (its agent judged for
    /// bots), its URL read in hash mode or not.
    Plausible { hash_mode: bool },
}

/// What every ingest route does once its events are valid: the sites'
/// rate limits, the ingest rules (`INGEST_AUTH`), enrichment (bots dropped
/// and counted), the sink. How many events were published.
pub(super) async fn accept(
    state: &AppState,
    client: &RequestClient,
    headers: &HeaderMap,
    parts: Vec<(Event, ClientHints)>,
    shape: Shape,
) -> Result<usize, ApiError> {
    let (batch, hash_mode, rule) = match shape {
        Shape::Single => (false, false, BotRule::ForwardedAgentOnly),
        Shape::Batch => (true, false, BotRule::ForwardedAgentOnly),
        Shape::Plausible { hash_mode } => (false, hash_mode, BotRule::RequestAgent),
    };
    limit_sites(state, &parts)?;
    admit(state, headers, &parts, batch).await?;
    let events = client.enrich(state, parts, hash_mode, rule).await?;
    let n = events.len();
    if n > 0 {
        state.sink.publish(events).await?;
        state.metrics.events_ingested.inc_by(n as u64);
    }
    Ok(n)
}

/// `result`, a refusal counted in `analytics_events_rejected_total` by
/// its reason: every ingest route ends here.
pub(super) fn counted<T>(state: &AppState, result: Result<T, ApiError>) -> Result<T, ApiError> {
    result.inspect_err(|e| state.metrics.events_rejected.with_label_values(&[e.reason()]).inc())
}

/// Whether the request may send its sites' events (`INGEST_AUTH`): a site
/// that is not registered is a 403 naming the event's `site_id` (and its
/// index in a batch); so is one its ingest key does not cover.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    events: &[(Event, ClientHints)],
    batch: bool,
) -> Result<(), ApiError> {
    let (registered, key) = match state.access.ingest {
        IngestAuth::Open => return Ok(()),
        IngestAuth::Registered => (true, false),
        IngestAuth::Key => (false, true),
        IngestAuth::RegisteredAndKey => (true, true),
    };
    let field = |i: usize| {
        if batch {
            format!("[{i}].site_id")
        } else {
            "site_id".to_string()
        }
    };
    if registered {
        let mut checked: Vec<&str> = Vec::new();
        for (i, (e, _)) in events.iter().enumerate() {
            if checked.contains(&e.site_id.as_str()) {
                continue;
            }
            if !state.access.is_registered(&state.db, &e.site_id).await {
                return Err(ApiError::UnknownSite {
                    message: format!("site `{}` is not registered; nothing was accepted", e.site_id),
                    details: vec![FieldError::new(
                        field(i),
                        "is not a registered site (analytics-admin sites add)",
                    )],
                });
            }
            checked.push(&e.site_id);
        }
    }
    if key {
        let principal =
            state.access.principal(&state.db, headers).await?.ok_or_else(|| {
                ApiError::Unauthorized("an ingest key is required: `Authorization: Bearer KEY`".into())
            })?;
        if let Some((i, (e, _))) = events
            .iter()
            .enumerate()
            .find(|(_, (e, _))| !principal.can_ingest(&e.site_id))
        {
            return Err(ApiError::Forbidden(format!(
                "this key may not send events for site `{}` ({})",
                e.site_id,
                field(i)
            )));
        }
    }
    Ok(())
}

/// 429, naming the site, when a site of the request is past its event
/// rate; nothing of the request is accepted then.
fn limit_sites(state: &AppState, events: &[(Event, ClientHints)]) -> Result<(), ApiError> {
    let mut per_site: Vec<(&str, u32)> = Vec::new();
    for (e, _) in events {
        match per_site.iter_mut().find(|(s, _)| *s == e.site_id) {
            Some((_, n)) => *n += 1,
            None => per_site.push((&e.site_id, 1)),
        }
    }
    for (site, n) in per_site {
        if let Err(wait) = state.rate_limits.events(site, n) {
            state.metrics.rate_limited.with_label_values(&["site"]).inc();
            return Err(ApiError::RateLimited {
                message: format!("site `{site}` is sending events faster than its limit; nothing was accepted"),
                retry_after: crate::limits::retry_after_seconds(wait),
            });
        }
    }
    Ok(())
}

fn validate_all(incoming: Vec<event::IncomingEvent>, policy: Policy) -> Result<Vec<(Event, ClientHints)>, ApiError> {
    let now = Utc::now();
    let mut out = Vec::with_capacity(incoming.len());
    for (i, raw) in incoming.into_iter().enumerate() {
        match raw.validate_parts(now, policy) {
            Ok(ev) => out.push(ev),
            Err(details) => {
                let details = details
                    .into_iter()
                    .map(|d| FieldError::new(format!("[{i}].{}", d.field), d.message))
                    .collect();
                return Err(ApiError::invalid(
                    format!("event at index {i} is invalid; no events were accepted"),
                    details,
                ));
            }
        }
    }
    Ok(out)
}
