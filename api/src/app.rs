//! The public router: ingest, stats, landing page and health, with HTTP
//! metrics by route template.

use crate::state::AppState;
use crate::{ingest, landing, stats};
use analytics_core::health::{self, Liveness, Readiness};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

pub fn router(state: AppState, liveness: Arc<Liveness>, readiness: Readiness) -> Router {
    let api = Router::new()
        .route("/events", post(ingest::single))
        .route("/events/batch", post(ingest::batch))
        .route("/stats", get(stats::get))
        .route("/", get(landing::page))
        .with_state(state.clone());
    api.merge(health::router(liveness, readiness))
        .route_layer(middleware::from_fn_with_state(state, track))
}

fn method_label(m: &Method) -> &'static str {
    // Only standard methods become label values; anything else is "other".
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .with_label_values(&[method, route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[method, route.as_str(), resp.status().as_str()])
        .inc();
    resp
}
