//! `GET /stats`.

use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::stats::{self, StatsQuery};
use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use std::collections::HashMap;

pub async fn get(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<stats::Stats>, ApiError> {
    let q = StatsQuery::parse(&params, Utc::now().date_naive())
        .map_err(|details| ApiError::invalid("invalid stats query", details))?;
    Ok(Json(stats::query(&state.db, &q).await?))
}
