//! The public router, one file per group of routes (ingest, stats, the
//! dashboard) plus health, with HTTP metrics by route template.

mod admin;
mod body;
mod conversions;
mod dashboard;
mod enrich;
mod export;
mod funnel;
mod ingest;
mod nul;
mod plausible;
mod query;
mod session;
mod stats;
mod tracker;

pub use ingest::{BATCH_BODY_LIMIT, MAX_BATCH_EVENTS, SINGLE_BODY_LIMIT};

use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::ops::health::{self, Liveness, Readiness};
use analytics_core::ops::metrics::Metrics;
use analytics_core::ops::telemetry;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::BoxError;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tower::filter::Predicate;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Per-request limits (`ApiConfig`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// How long a body may pause between two chunks (408).
    pub body_timeout: Duration,
    /// How long a whole request may take (408).
    pub request_timeout: Duration,
    /// Requests served at once; more are shed (503).
    pub max_in_flight: usize,
}

/// Every public route with its limits: rate limit per client address, a
/// deadline per request and per body chunk, and load shedding past
/// `max_in_flight`; then health (unlimited: probes must always answer) and
/// the HTTP metrics around all of it.
pub fn router(state: AppState, liveness: Arc<Liveness>, readiness: Readiness, limits: RequestLimits) -> Router {
    let metrics = state.metrics.clone();
    // One `ServiceBuilder` per group, each applied with a single
    // `Router::layer`: axum boxes a route once per `layer` call and, for
    // every request, clones and calls through each box, so a chain of
    // separate calls costs an allocation and a boxed future per layer per
    // request (bench/README.md, the single-request A/B).
    let request_timeout = limits.request_timeout;
    let limited = ServiceBuilder::new()
        // Every refusal below arrives here as an error: none of these
        // layers boxes the request or its future (`from_fn` would).
        .layer(HandleErrorLayer::new(move |e: BoxError| {
            let metrics = metrics.clone();
            async move { refusal(&metrics, e, request_timeout) }
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
        // The deadline (see `within`).
        .map_future(move |answer| within(request_timeout, answer))
        .filter(AddressLimit(state.clone()))
        // Innermost: it changes the body's type, which only a route takes.
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    // Browsers' trackers post from any origin: CORS is open on ingest, and
    // only there (reads carry credentials and stay same-origin).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
        .max_age(Duration::from_secs(86_400));
    let ingest = Router::new()
        .route("/events", post(ingest::single))
        .route("/events/batch", post(ingest::batch))
        .route("/api/event", post(plausible::event))
        .layer(cors);
    let api = Router::new()
        .merge(admin::router())
        .merge(conversions::router())
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/share/{token}", get(session::share))
        .route("/session", get(session::whoami))
        .route("/stats", get(stats::stats))
        .route("/stats/timeseries", get(stats::timeseries))
        .route("/stats/breakdown", get(stats::breakdown))
        .route("/stats/live", get(stats::live))
        .route("/sites", get(stats::sites))
        .route("/api/v2/query", post(query::query))
        .route("/api/v2/funnel", post(funnel::funnel))
        .route("/api/export/events", get(export::events))
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::script))
        .route("/assets/app.css", get(dashboard::style))
        .route("/js/script.js", get(tracker::script))
        .route("/openapi.json", get(crate::openapi::json))
        .route("/docs", get(crate::openapi::docs))
        .route("/docs/redoc.standalone.js", get(crate::openapi::docs_script))
        // Not on ingest, merged after: its hot path stays unboxed, and its
        // events are checked field by field.
        .route_layer(middleware::from_fn(nul::refuse_in_uri))
        .merge(ingest)
        .with_state(state.clone())
        .layer(limited);
    // Every response: no MIME sniffing, no referrer leaking a dashboard
    // URL, never framed, and a Content-Security-Policy that allows the page
    // its own scripts, styles and API only.
    let set = |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    let security_headers = ServiceBuilder::new()
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP));
    api.merge(health::router(liveness, readiness))
        .route_layer(middleware::from_fn_with_state(state, track))
        .layer(security_headers)
}

/// The routes' part of the OpenAPI document (`crate::openapi`): every
/// handler above, each described by its `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    ingest::single,
    ingest::batch,
    plausible::event,
    session::login_page,
    session::login,
    session::logout,
    session::share,
    session::whoami,
    stats::stats,
    stats::timeseries,
    stats::breakdown,
    stats::live,
    stats::sites,
    query::query,
    funnel::funnel,
    export::events,
    dashboard::index,
    dashboard::script,
    dashboard::style,
    tracker::script,
))]
struct RoutesApi;

pub fn paths() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = RoutesApi::openapi();
    doc.merge(admin::AdminApi::openapi());
    doc.merge(conversions::ConversionsApi::openapi());
    doc
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Whether the request's peer is a trusted proxy (whose forwarding
/// headers, `X-Forwarded-Proto` included, are believed).
pub struct TrustedPeer(pub bool);

impl axum::extract::FromRequestParts<AppState> for TrustedPeer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer.is_some_and(|p| state.proxies.trusts(p))))
    }
}

/// The request's client address under the trusted-proxy rule.
pub fn client_addr(state: &AppState, req: &Request) -> Option<std::net::IpAddr> {
    client_of(state, req.extensions(), req.headers())
}

/// `client_addr` from a request's parts (extractors see only those).
pub fn client_of(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<std::net::IpAddr> {
    crate::serve::peer(extensions).map(|peer| state.proxies.client(peer, headers))
}

/// 429 past the client address's rate, as an error for `refusal`.
#[derive(Clone)]
struct AddressLimit(AppState);

impl Predicate<Request> for AddressLimit {
    type Request = Request;

    fn check(&mut self, req: Request) -> Result<Request, BoxError> {
        let state = &self.0;
        if let Some(addr) = client_addr(state, &req) {
            if let Err(wait) = state.rate_limits.request(addr) {
                state.metrics.rate_limited.with_label_values(&["address"]).inc();
                return Err(Box::new(ApiError::RateLimited {
                    message: "too many requests from this address".into(),
                    retry_after: crate::limits::retry_after_seconds(wait),
                }));
            }
        }
        Ok(req)
    }
}

/// `answer` under `tokio::time::timeout`, its lapse an error for
/// `refusal` (408). Not `tower::timeout`: it polls the handler first and
/// then its timer, and a timer polled after the handler has used up
/// tokio's cooperative budget answers Pending even when it has elapsed; a
/// handler that always finds work ready (rows streaming in as fast as it
/// decodes them) uses it up at every poll, and its deadline was seen
/// seconds late. `tokio::time::timeout` polls its timer outside the
/// budget then.
async fn within<T, E: Into<BoxError>>(
    limit: Duration,
    answer: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout(limit, answer).await {
        Ok(answer) => answer.map_err(Into::into),
        Err(elapsed) => Err(elapsed.into()),
    }
}

/// The answer to a request a limit refused: the rate limit's own 429, 408
/// past the request deadline (whatever the handler was waiting for), else
/// shed (503).
fn refusal(metrics: &Metrics, e: BoxError, request_timeout: Duration) -> ApiError {
    match e.downcast::<ApiError>() {
        Ok(refused) => *refused,
        Err(e) if e.is::<tokio::time::error::Elapsed>() => {
            ApiError::Timeout(format!("the request took longer than {} s", request_timeout.as_secs()))
        }
        Err(_) => {
            metrics.shed.inc();
            ApiError::Overloaded
        }
    }
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

/// The request's metrics and access log, and, when traces are exported,
/// its server span (continuing a caller's `traceparent`). Without export
/// there is no span: the access and failure lines carry the method, route
/// and path themselves.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(req.method());
    // A shared-bytes clone, not a copy: the path is only read if a line is logged.
    let uri = req.uri().clone();
    let path = uri.path();
    let started = Instant::now();
    let (resp, span) = if state.traced {
        let span = request_span(&req, method, route);
        (next.run(req).instrument(span.clone()).await, span)
    } else {
        (next.run(req).await, tracing::Span::none())
    };
    let (status, elapsed) = (resp.status(), started.elapsed().as_secs_f64());
    span.record("http.response.status_code", status.as_u16());
    span.in_scope(|| {
        // Access log: debug for the normal case (it runs at full ingest rate),
        // warn when the service itself failed.
        let latency_ms = elapsed * 1000.0;
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                method,
                route,
                path,
                latency_ms,
                "request failed"
            );
        } else {
            tracing::debug!(status = status.as_u16(), method, route, path, latency_ms, "request");
        }
    });
    let m = &state.metrics;
    m.http_duration.with_label_values(&[method, route]).observe(elapsed);
    m.http_requests
        .with_label_values(&[method, route, status.as_str()])
        .inc();
    resp
}

/// The server span of a request, with its trace id recorded for the logs.
fn request_span(req: &Request, method: &'static str, route: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
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
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that always finds work ready uses up tokio's budget at
    /// every poll; its deadline must still end it, long before it would
    /// answer. (Under `tower::timeout` this one answered after its 5 s.)
    #[tokio::test]
    async fn the_deadline_ends_a_handler_that_never_waits() {
        let busy = async {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                tokio::task::consume_budget().await;
            }
            Ok::<_, BoxError>("answered")
        };
        let answer = within(Duration::from_millis(100), busy).await;
        let lapse = answer.expect_err("answered past its deadline");
        assert!(lapse.is::<tokio::time::error::Elapsed>(), "{lapse}");
    }

    #[tokio::test]
    async fn an_answer_in_time_and_its_error_pass_through() {
        assert_eq!(
            within(Duration::from_secs(5), async { Ok::<_, BoxError>(7) })
                .await
                .unwrap(),
            7
        );
        let refused = within(Duration::from_secs(5), async { Err::<u8, _>(ApiError::Overloaded) }).await;
        assert!(refused.unwrap_err().is::<ApiError>());
    }
}
