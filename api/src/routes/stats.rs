//! The read API: `GET /stats` (the seed's answer) and the dashboard's
//! endpoints, public API like it: `/stats/timeseries`, `/stats/breakdown`,
//! `/stats/live` and `/sites` (with each site's zone). Parameters are
//! validated in `analytics_core::query` and a bad one is a 400 naming it. A
//! site in a zone other than UTC is answered in its local days and hours
//! (`analytics_core::query::zoned`).

use crate::auth::{access_error, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::sites as registry;
use analytics_core::event::FieldError;
use analytics_core::query::params::Params;
use analytics_core::query::{breakdown, live, series, sites, stats, zoned};
use axum::extract::{Query, State};
use axum::Json;
use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

fn invalid(details: Vec<FieldError>) -> ApiError {
    ApiError::invalid("invalid stats query", details)
}

/// The site's zone, when it is not UTC, and its local today (what a
/// period without dates means there).
async fn zone(state: &AppState, site: &str) -> Result<Option<(Tz, NaiveDate)>, ApiError> {
    let tz = registry::timezone(&state.db, site).await.map_err(access_error)?;
    Ok((tz != chrono_tz::UTC).then(|| (tz, Utc::now().with_timezone(&tz).date_naive())))
}

#[utoipa::path(
    get,
    path = "/stats",
    tag = "stats",
    operation_id = "stats",
    summary = "Totals and top paths of a period",
    description = "Views, unique users, visitors, events and the top paths over a day (`date`) or a range (`from`/`to`, at most 366 days); today without either. `compare=previous` adds the totals of the period just before.",
    params(crate::openapi::StatsParams),
    responses(
        (status = 200, description = "The answer", body = analytics_core::query::stats::Stats),
        (status = 400, description = "A parameter is invalid or unknown: each named", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Json<stats::Stats>, ApiError> {
    let q = stats::StatsQuery::parse(&params, Utc::now().date_naive()).map_err(invalid)?;
    reader.check(&q.site_id)?;
    if let Some((tz, today)) = zone(&state, &q.site_id).await? {
        let q = stats::StatsQuery::parse(&params, today).map_err(invalid)?;
        return Ok(Json(zoned::stats(&state.db, &state.query_cache, &q, tz).await?));
    }
    Ok(Json(stats::query(&state.db, &q).await?))
}

#[utoipa::path(
    get,
    path = "/stats/timeseries",
    tag = "stats",
    operation_id = "stats_timeseries",
    summary = "Views, users and events per hour or day",
    description = "Every bucket of the period, zeros included, in the site's time zone; hourly for one or two days unless `interval` says otherwise (hour: at most 31 days).",
    params(crate::openapi::SeriesParams),
    responses(
        (status = 200, description = "The answer", body = analytics_core::query::series::Series),
        (status = 400, description = "A parameter is invalid or unknown: each named", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn timeseries(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Json<series::Series>, ApiError> {
    let q = series::SeriesQuery::parse(&params, Utc::now().date_naive()).map_err(invalid)?;
    reader.check(&q.site_id)?;
    if let Some((tz, today)) = zone(&state, &q.site_id).await? {
        let q = series::SeriesQuery::parse(&params, today).map_err(invalid)?;
        return Ok(Json(zoned::series(&state.db, &state.query_cache, &q, tz).await?));
    }
    Ok(Json(series::series(&state.db, &q).await?))
}

#[utoipa::path(
    get,
    path = "/stats/breakdown",
    tag = "stats",
    operation_id = "stats_breakdown",
    summary = "Page views per path, or events per type",
    description = "Largest first, ties by key in byte order.",
    params(crate::openapi::BreakdownParams),
    responses(
        (status = 200, description = "The answer", body = analytics_core::query::breakdown::Breakdown),
        (status = 400, description = "A parameter is invalid or unknown: each named", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn breakdown(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Json<breakdown::Breakdown>, ApiError> {
    let q = breakdown::BreakdownQuery::parse(&params, Utc::now().date_naive()).map_err(invalid)?;
    reader.check(&q.site_id)?;
    if let Some((tz, today)) = zone(&state, &q.site_id).await? {
        let q = breakdown::BreakdownQuery::parse(&params, today).map_err(invalid)?;
        return Ok(Json(zoned::breakdown(&state.db, &state.query_cache, &q, tz).await?));
    }
    Ok(Json(breakdown::breakdown(&state.db, &q).await?))
}

#[utoipa::path(
    get,
    path = "/stats/live",
    tag = "stats",
    operation_id = "stats_live",
    summary = "Events received in the last five minutes",
    description = "The current minute and the four before it (UTC, by arrival), per minute and in all.",
    params(crate::openapi::LiveParams),
    responses(
        (status = 200, description = "The answer", body = analytics_core::query::live::Live),
        (status = 400, description = "A parameter is invalid or unknown: each named", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
pub async fn live(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Json<live::Live>, ApiError> {
    let site_id = live::parse_live(&params).map_err(invalid)?;
    reader.check(&site_id)?;
    Ok(Json(live::live(&state.db, &site_id, Utc::now()).await?))
}

#[utoipa::path(
    get,
    path = "/sites",
    tag = "stats",
    operation_id = "sites",
    summary = "The sites the caller may read",
    description = "Sites that have data, byte order, and each one's IANA time zone. Takes no parameter.",
    responses(
        (status = 200, description = "The sites", body = crate::openapi::SitesList),
        (status = 400, description = "A parameter was given (none is known)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No key, session or shared link (reads need one unless open)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key may not read statistics", body = crate::openapi::ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
/// The sites the caller may read, byte order, and each one's time zone
/// (what its days and hours are read in: the registered zone, UTC for a
/// site that is not registered).
pub async fn sites(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    sites::parse_sites(&params).map_err(|d| ApiError::invalid("invalid sites query", d))?;
    let all = sites::sites(&state.db).await?;
    let readable: Vec<String> = all.into_iter().filter(|s| reader.0.can_read(s)).collect();
    let registered: std::collections::HashMap<String, String> = registry::list(&state.db)
        .await
        .map_err(access_error)?
        .into_iter()
        .filter(|s| s.registered)
        .map(|s| (s.site_id, s.timezone))
        .collect();
    let timezones: serde_json::Map<String, Value> = readable
        .iter()
        .map(|s| {
            let zone = registered.get(s).map_or(chrono_tz::UTC.name(), String::as_str);
            (s.clone(), Value::from(zone))
        })
        .collect();
    Ok(Json(json!({ "sites": readable, "timezones": timezones })))
}
