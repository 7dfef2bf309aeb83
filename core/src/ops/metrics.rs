//! Prometheus metrics of both binaries, served on `METRICS_ADDR`. Names follow
//! Prometheus conventions with the `analytics_` prefix; labels only ever hold
//! bounded values (route templates, status codes, fixed reasons).

use axum::{http::header, response::IntoResponse, routing::get, Router};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;

/// Seconds, from sub-millisecond handlers to multi-second broker timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0,
];

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub open_connections: IntGauge,
    pub connection_limit_reached: IntCounter,
    pub header_timeouts: IntCounter,
    pub shed: IntCounter,
    pub rate_limited: IntCounterVec,
    pub events_ingested: IntCounter,
    pub events_rejected: IntCounterVec,
    pub bots_dropped: IntCounterVec,
    pub producer_delivery: Histogram,
    pub producer_queue_depth: IntGauge,
    pub messages_consumed: IntCounter,
    pub events_written: IntCounter,
    pub events_duplicate: IntCounter,
    pub events_dead_lettered: IntCounter,
    pub events_refused: IntCounter,
    pub dead_letter_failures: IntCounter,
    pub dead_letter_failing: IntGauge,
    pub batch_size: Histogram,
    pub transaction_duration: Histogram,
    pub known_users: IntGauge,
    pub lag_messages: IntGaugeVec,
    pub lag_seconds: prometheus::Gauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    // Names are fixed and unique, so registration cannot collide.
    let _ = r.register(Box::new(m.clone()));
    m
}

impl Metrics {
    #[allow(clippy::expect_used)] // static names and buckets: a failure is a programming error caught by every test
    pub fn new(component: &str) -> Arc<Self> {
        let r = Registry::new_custom(Some("analytics".into()), None).expect("registry");
        let build = IntGaugeVec::new(
            Opts::new("build_info", "Build information; always 1."),
            &["version", "component"],
        )
        .expect("build_info");
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), component]).set(1);
        let _ = r.register(Box::new(build));
        Arc::new(Self {
            http_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "http_requests_total",
                        "HTTP requests by method, route template and status.",
                    ),
                    &["method", "route", "status"],
                )
                .expect("m"),
            ),
            http_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "HTTP request latency.")
                        .buckets(LATENCY_BUCKETS.to_vec()),
                    &["method", "route"],
                )
                .expect("m"),
            ),
            open_connections: reg(
                &r,
                IntGauge::new("http_open_connections", "Open connections to the public listener.").expect("m"),
            ),
            connection_limit_reached: reg(
                &r,
                IntCounter::new(
                    "http_connection_limit_reached_total",
                    "Times the listener stopped accepting because HTTP_MAX_CONNECTIONS were open.",
                )
                .expect("m"),
            ),
            header_timeouts: reg(
                &r,
                IntCounter::new(
                    "http_header_timeouts_total",
                    "Connections closed because a request's headers did not arrive within HTTP_HEADER_TIMEOUT_SECONDS (slow or idle clients).",
                )
                .expect("m"),
            ),
            shed: reg(
                &r,
                IntCounter::new(
                    "http_shed_total",
                    "Requests answered 503 because HTTP_MAX_IN_FLIGHT requests were already being served.",
                )
                .expect("m"),
            ),
            rate_limited: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "rate_limited_total",
                        "Requests answered 429, by the limit they hit (address or site).",
                    ),
                    &["scope"],
                )
                .expect("m"),
            ),
            events_ingested: reg(
                &r,
                IntCounter::new(
                    "events_ingested_total",
                    "Events accepted with 202 (durable in Kafka or the database).",
                )
                .expect("m"),
            ),
            bots_dropped: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "events_dropped_bots_total",
                        "Events dropped before storage because their User-Agent is a bot, by reason.",
                    ),
                    &["reason"],
                )
                .expect("m"),
            ),
            events_rejected: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("events_rejected_total", "Events or requests refused, by reason."),
                    &["reason"],
                )
                .expect("m"),
            ),
            producer_delivery: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "producer_delivery_duration_seconds",
                        "Time from enqueue to broker acknowledgement.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("m"),
            ),
            producer_queue_depth: reg(
                &r,
                IntGauge::new("producer_queue_depth", "Messages waiting in the producer queue.").expect("m"),
            ),
            messages_consumed: reg(
                &r,
                IntCounter::new("processor_messages_consumed_total", "Kafka messages consumed.").expect("m"),
            ),
            events_written: reg(
                &r,
                IntCounter::new(
                    "events_written_total",
                    "Events newly written to the database (and folded into rollups).",
                )
                .expect("m"),
            ),
            events_duplicate: reg(
                &r,
                IntCounter::new(
                    "events_duplicate_total",
                    "Events skipped because their event_id was already stored.",
                )
                .expect("m"),
            ),
            events_dead_lettered: reg(
                &r,
                IntCounter::new(
                    "processor_dead_lettered_total",
                    "Messages sent to the dead-letter topic.",
                )
                .expect("m"),
            ),
            events_refused: reg(
                &r,
                IntCounter::new(
                    "processor_refused_total",
                    "Events the database refused for their data, isolated from their batch and dead-lettered.",
                )
                .expect("m"),
            ),
            dead_letter_failures: reg(
                &r,
                IntCounter::new(
                    "processor_dead_letter_failures_total",
                    "Failed attempts to write a dead letter (each is retried; its batch waits).",
                )
                .expect("m"),
            ),
            dead_letter_failing: reg(
                &r,
                IntGauge::new(
                    "processor_dead_letter_failing",
                    "1 while dead letters cannot be written (the batch waits and retries), else 0.",
                )
                .expect("m"),
            ),
            known_users: reg(
                &r,
                IntGauge::new(
                    "writer_known_users",
                    "User ordinals the writer remembers between batches (bounded; memory grows with it).",
                )
                .expect("m"),
            ),
            batch_size: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("processor_batch_size", "Events per written batch.")
                        .buckets(BATCH_BUCKETS.to_vec()),
                )
                .expect("m"),
            ),
            transaction_duration: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "writer_transaction_duration_seconds",
                        "Duration of one batch transaction.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("m"),
            ),
            lag_messages: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "processor_lag_messages",
                        "Messages behind the partition's high watermark.",
                    ),
                    &["partition"],
                )
                .expect("m"),
            ),
            lag_seconds: reg(
                &r,
                prometheus::Gauge::new(
                    "processor_lag_seconds",
                    "Age of the newest written message when its batch committed.",
                )
                .expect("m"),
            ),
            registry: r,
        })
    }

    /// The writer's remembered user ordinals (`known_users`).
    pub fn set_known_users(&self, n: usize) {
        self.known_users.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    m.render(),
                )
                    .into_response()
            }
        }),
    )
}
