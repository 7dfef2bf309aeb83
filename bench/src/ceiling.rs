//! The ceiling: a minimal axum server that parses the same JSON as the api
//! (every field of the event contract) and answers 202, doing nothing else.
//! Whatever the load generator reaches against it on this machine is the most
//! any HTTP ingest written with axum and serde can reach here.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

/// The event's fields, as the api's wire form has them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CeilingEvent {
    site_id: Option<String>,
    event_type: Option<String>,
    path: Option<String>,
    user_id: Option<String>,
    timestamp: Option<String>,
    event_id: Option<String>,
    referrer: Option<String>,
    props: Option<Map<String, Value>>,
}

async fn one(body: Bytes) -> Response {
    match serde_json::from_slice::<CeilingEvent>(&body) {
        Ok(_) => (StatusCode::ACCEPTED, Json(json!({"accepted": 1}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn batch(body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<CeilingEvent>>(&body) {
        Ok(events) => (StatusCode::ACCEPTED, Json(json!({"accepted": events.len()}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

pub fn router() -> Router {
    Router::new()
        .route("/events", post(one))
        .route("/events/batch", post(batch))
        .route("/readyz", axum::routing::get(|| async { "ok" }))
}

/// Serves until killed; prints `listening on ADDR` once bound.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, router()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_generated_bodies() {
        let mut g = crate::workload::Generator::new(crate::workload::MixConfig::default());
        let pool = crate::workload::body_pool(&mut g, crate::workload::Shape::Batch(10), 1).unwrap_or_default();
        let events: Option<Vec<CeilingEvent>> = serde_json::from_slice(&pool[0].bytes).ok();
        assert_eq!(events.map(|e| e.len()), Some(10));
        assert!(serde_json::from_slice::<CeilingEvent>(br#"{"site_id":"s","colour":1}"#).is_err());
    }
}
