//! The public router, one file per group of routes (ingest, stats, the
//! dashboard) plus health, with HTTP metrics by route template.

mod body;
mod dashboard;
mod ingest;
mod stats;

pub use ingest::{BATCH_BODY_LIMIT, MAX_BATCH_EVENTS, SINGLE_BODY_LIMIT};

use crate::state::AppState;
use analytics_core::ops::health::{self, Liveness, Readiness};
use analytics_core::ops::telemetry;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub fn router(state: AppState, liveness: Arc<Liveness>, readiness: Readiness) -> Router {
    let api = Router::new()
        .route("/events", post(ingest::single))
        .route("/events/batch", post(ingest::batch))
        .route("/stats", get(stats::stats))
        .route("/stats/timeseries", get(stats::timeseries))
        .route("/stats/breakdown", get(stats::breakdown))
        .route("/stats/live", get(stats::live))
        .route("/sites", get(stats::sites))
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::script))
        .route("/assets/app.css", get(dashboard::style))
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
    let span = tracing::info_span!(
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route.as_str(),
        url.path = req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    // A caller's W3C trace context makes this request part of its trace.
    if let Some(tp) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        let _ = span.set_parent(telemetry::context_from_traceparent(tp));
    }
    let tid = telemetry::trace_id(&span);
    if !tid.is_empty() {
        span.record("trace_id", tid.as_str());
    }
    let started = Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    span.record("http.response.status_code", status.as_u16());
    span.in_scope(|| {
        // Access log: debug for the normal case (it runs at full ingest rate),
        // warn when the service itself failed.
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms, "request");
        }
    });
    let m = &state.metrics;
    m.http_duration
        .with_label_values(&[method, route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[method, route.as_str(), resp.status().as_str()])
        .inc();
    resp
}
