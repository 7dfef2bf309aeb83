//! `analytics-api`: ingest, stats and dashboard. With `KAFKA_BROKER_URLS` it
//! publishes to Kafka; without, it is the whole platform in one process
//! (embedded mode, SQLite, same writer, group commit).

mod app;
mod body;
mod config;
mod dashboard;
mod embedded;
mod error;
mod ingest;
mod sink;
mod state;
mod stats;
mod stats_api;

use analytics_core::config::parse_or_exit;
use analytics_core::health::{Liveness, Readiness};
use analytics_core::metrics::Metrics;
use analytics_core::writer::Writer;
use analytics_core::{db, health, kafka, metrics, shutdown, telemetry};
use anyhow::Context;
use config::{ApiConfig, EMBEDDED_DATABASE_URL};
use migration::{Migrator, MigratorTrait};
use rdkafka::producer::Producer;
use std::sync::Arc;

/// glibc malloc was a sixth of the api's CPU under ingest load (arena
/// locks, consolidation); mimalloc's per-thread heaps avoid most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cfg: ApiConfig = parse_or_exit();
    if !cfg.is_embedded() && cfg.database_url.is_none() {
        eprintln!("DATABASE_URL is required when KAFKA_BROKER_URLS is set (stats are read from PostgreSQL)");
        std::process::exit(2);
    }
    let telemetry = telemetry::init_with(
        cfg.telemetry.log_format,
        false,
        "analytics-api",
        cfg.telemetry.otlp_endpoint.as_deref(),
    );
    let result = run(cfg).await;
    telemetry.shutdown();
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "analytics-api failed");
        eprintln!("analytics-api: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cfg: ApiConfig) -> anyhow::Result<()> {
    let metrics = Metrics::new("api");
    let liveness = Arc::new(Liveness::default());
    let embedded = cfg.is_embedded();
    let url = cfg
        .database_url
        .clone()
        .unwrap_or_else(|| EMBEDDED_DATABASE_URL.to_string());

    let mut readiness = Readiness::default();
    let mut writer_task = None;
    let (db, sink) = if let Some(brokers) = &cfg.kafka.broker_urls {
        let db = db::connect_lazy(&url, 16).await.context("DATABASE_URL")?;
        let (kargs, kbrokers, timeout, queue) = (
            cfg.kafka.clone(),
            brokers.clone(),
            cfg.ingest_timeout(),
            cfg.kafka_queue_messages,
        );
        let kafka_sink = Arc::new(
            sink::KafkaSink::new(
                Box::new(move || kafka::producer(&kargs, &kbrokers, timeout, queue)),
                cfg.kafka.topic.clone(),
                metrics.clone(),
                cfg.ingest_timeout(),
            )
            .context("creating the Kafka producer")?,
        );
        let (probe, topic) = (kafka_sink.clone(), cfg.kafka.topic.clone());
        let broker = health::check(move || {
            let (p, t) = (probe.current(), topic.clone());
            async move {
                tokio::task::spawn_blocking(move || kafka::topic_available(p.client(), &t))
                    .await
                    .map_err(|e| e.to_string())?
            }
        });
        readiness = readiness.with("kafka", broker);
        tracing::info!(brokers, topic = %cfg.kafka.topic, "Kafka mode");
        let sink = sink::Sink::Kafka(kafka_sink);
        (db, sink)
    } else {
        let db = db::connect(&url, 4).await.with_context(|| format!("opening {url}"))?;
        Migrator::up(&db, None)
            .await
            .context("migrating the embedded database")?;
        let db_writer = Writer::new(db.clone()).with_context(|| format!("opening {url} for writing"))?;
        let (writer, task) = embedded::EmbeddedWriter::spawn(
            db_writer,
            metrics.clone(),
            liveness.clone(),
            cfg.embedded_batch_events,
            cfg.ingest_timeout(),
        );
        writer_task = Some(task);
        tracing::info!(database = %url, "embedded mode");
        (db, sink::Sink::Embedded(writer))
    };
    let readiness = readiness.with_database(&db, migration::known_versions());

    let state = state::AppState::new(state::Shared {
        db,
        sink: Arc::new(sink),
        metrics: metrics.clone(),
        embedded,
    });
    let sink = state.sink.clone();
    let public = app::router(state, liveness.clone(), readiness.clone());
    let ops = metrics::router(metrics).merge(health::router(liveness, readiness));

    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", cfg.http_addr))?;
    let ops_listener = tokio::net::TcpListener::bind(cfg.telemetry.metrics_addr)
        .await
        .with_context(|| format!("binding METRICS_ADDR {}", cfg.telemetry.metrics_addr))?;
    tracing::info!(http = %cfg.http_addr, metrics = %cfg.telemetry.metrics_addr, "listening");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let ops_server = tokio::spawn(async move {
        let _ = axum::serve(ops_listener, ops).await;
    });
    let server = axum::serve(listener, public).with_graceful_shutdown(async move {
        shutdown::signal().await;
        let _ = stop_tx.send(true);
    });
    let grace = cfg.telemetry.shutdown_grace();
    tokio::select! {
        r = server => r.context("HTTP server")?,
        () = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("grace period over with requests still in flight"),
    }
    // In-flight requests are done: push out what the producer still holds and
    // let the embedded writer drain its queue.
    sink.flush(grace);
    drop(sink);
    if let Some(task) = writer_task {
        let _ = tokio::time::timeout(grace, task).await;
    }
    ops_server.abort();
    tracing::info!("stopped");
    Ok(())
}
