//! The dashboard's JSON endpoints, public API like `/stats`:
//! `GET /stats/timeseries`, `GET /stats/breakdown`, `GET /stats/live` and
//! `GET /sites`. Parameters are validated in `analytics_core::dashboard_queries`
//! and a bad one is a 400 naming it.

use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::dashboard_queries::{self as dq, BreakdownQuery, SeriesQuery};
use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

fn invalid(details: Vec<analytics_core::event::FieldError>) -> ApiError {
    ApiError::invalid("invalid stats query", details)
}

pub async fn timeseries(State(state): State<AppState>, Query(params): Params) -> Result<Json<dq::Series>, ApiError> {
    let q = SeriesQuery::parse(&params, Utc::now().date_naive()).map_err(invalid)?;
    Ok(Json(dq::series(&state.db, &q).await?))
}

pub async fn breakdown(State(state): State<AppState>, Query(params): Params) -> Result<Json<dq::Breakdown>, ApiError> {
    let q = BreakdownQuery::parse(&params, Utc::now().date_naive()).map_err(invalid)?;
    Ok(Json(dq::breakdown(&state.db, &q).await?))
}

pub async fn live(State(state): State<AppState>, Query(params): Params) -> Result<Json<dq::Live>, ApiError> {
    let site_id = dq::parse_live(&params).map_err(invalid)?;
    Ok(Json(dq::live(&state.db, &site_id, Utc::now()).await?))
}

pub async fn sites(State(state): State<AppState>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    dq::parse_sites(&params).map_err(|d| ApiError::invalid("invalid sites query", d))?;
    Ok(Json(json!({ "sites": dq::sites(&state.db).await? })))
}
