//! `analytics-processor`: consumes the events topic in batches and folds each
//! batch into PostgreSQL (raw rows and rollups, one transaction), committing
//! offsets only after the transaction.

mod batch;
mod config;
mod pipeline;

use analytics_core::config::parse_or_exit;
use analytics_core::health::{Liveness, Readiness};
use analytics_core::metrics::Metrics;
use analytics_core::writer::Writer;
use analytics_core::{db, health, kafka, metrics, shutdown, telemetry};
use anyhow::Context;
use config::ProcessorConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::sync::Arc;

/// glibc malloc was a sixth of the api's CPU under ingest load (arena
/// locks, consolidation); mimalloc's per-thread heaps avoid most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cfg: ProcessorConfig = parse_or_exit();
    if cfg.kafka.broker_urls.is_none() {
        eprintln!("KAFKA_BROKER_URLS is required: the processor consumes from Kafka");
        std::process::exit(2);
    }
    let telemetry = telemetry::init_with(
        cfg.telemetry.log_format,
        false,
        "analytics-processor",
        cfg.telemetry.otlp_endpoint.as_deref(),
    );
    let result = run(cfg).await;
    telemetry.shutdown();
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "analytics-processor failed");
        eprintln!("analytics-processor: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cfg: ProcessorConfig) -> anyhow::Result<()> {
    let brokers = cfg.kafka.broker_urls.clone().unwrap_or_default();
    let metrics = Metrics::new("processor");
    let liveness = Arc::new(Liveness::default());
    liveness.register(pipeline::LOOP_NAME, pipeline::IDLE_TICK * 30);
    let lanes = pipeline::lane_names(cfg.writer_lanes);
    for name in lanes {
        liveness.register(name, pipeline::IDLE_TICK * 30);
    }

    // A connection per lane, and two for readiness and the compactor.
    let pool = u32::try_from(lanes.len() + 2).unwrap_or(10);
    let db = db::connect_lazy(&cfg.database_url, pool)
        .await
        .context("DATABASE_URL")?;
    let consumer: StreamConsumer = kafka::consumer_config(&cfg.kafka, &brokers, &cfg.group_id)
        .create()
        .context("creating the Kafka consumer")?;
    consumer.subscribe(&[cfg.kafka.topic.as_str()]).context("subscribing")?;
    let consumer = Arc::new(consumer);
    let dlq = kafka::producer(&cfg.kafka, &brokers, std::time::Duration::from_secs(10), 10_000)
        .context("creating the dead-letter producer")?;

    let (probe, topic) = (consumer.clone(), cfg.kafka.topic.clone());
    let readiness = Readiness::default()
        .with(
            "kafka",
            health::check(move || {
                let (c, t) = (probe.clone(), topic.clone());
                async move {
                    tokio::task::spawn_blocking(move || kafka::topic_available(c.client(), &t))
                        .await
                        .map_err(|e| e.to_string())?
                }
            }),
        )
        .with_database(&db, migration::known_versions());

    let ops = metrics::router(metrics.clone()).merge(health::router(liveness.clone(), readiness));
    let ops_listener = tokio::net::TcpListener::bind(cfg.telemetry.metrics_addr)
        .await
        .with_context(|| format!("binding METRICS_ADDR {}", cfg.telemetry.metrics_addr))?;
    let ops_server = tokio::spawn(async move {
        let _ = axum::serve(ops_listener, ops).await;
    });
    tracing::info!(brokers, topic = %cfg.kafka.topic, group = %cfg.group_id, metrics = %cfg.telemetry.metrics_addr, "processor started");

    let grace = cfg.telemetry.shutdown_grace();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let next_offsets = pipeline::NextOffsets::default();
    let lag_task = tokio::spawn(pipeline::report_lag(
        consumer.clone(),
        next_offsets.clone(),
        metrics.clone(),
    ));
    let pipeline = pipeline::Pipeline {
        cfg,
        consumer,
        dlq,
        writer: Writer::new(db).context("opening the database writer")?,
        metrics,
        liveness,
        next_offsets,
    };
    let mut work = tokio::spawn(pipeline.run(stop_rx));
    tokio::select! {
        _ = &mut work => {}
        () = shutdown::signal() => {
            let _ = stop_tx.send(true);
            // The current batch finishes and commits; past the grace period
            // it is abandoned uncommitted and will be redelivered.
            if tokio::time::timeout(grace, &mut work).await.is_err() {
                tracing::warn!("grace period over; exiting with the batch uncommitted");
            }
        }
    }
    lag_task.abort();
    ops_server.abort();
    tracing::info!("stopped");
    Ok(())
}
