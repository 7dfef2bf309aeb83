//! The processor as a library: `Processor::build` connects and binds, and
//! `run_until` consumes the events topic in batches and folds each batch
//! into PostgreSQL (raw rows and rollups, one transaction), committing
//! offsets only after the transaction. `main.rs` only parses the
//! configuration and waits for a signal; tests run the same code
//! in-process.

pub mod batch;
pub mod config;
pub mod pipeline;

pub use config::ProcessorConfig;

use analytics_core::maintenance::{self, Maintenance};
use analytics_core::ops::health::{self, Liveness, Readiness};
use analytics_core::ops::kafka;
use analytics_core::ops::metrics::{self, Metrics};
use analytics_core::store::{connect, Writer};
use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The dead-letter producer's delivery timeout and queue bound: dead
/// letters are rare, and a batch waits for its own.
const DLQ_TIMEOUT: Duration = Duration::from_secs(10);
const DLQ_QUEUE_MESSAGES: u32 = 10_000;
const DLQ_QUEUE_KBYTES: u32 = 16 * 1024;
/// Connections besides one per lane: maintenance.
const SPARE_CONNECTIONS: usize = 1;

pub struct Processor {
    cfg: ProcessorConfig,
    consumer: Arc<StreamConsumer>,
    pipeline: pipeline::Pipeline,
    maintenance_db: sea_orm::DatabaseConnection,
    liveness: Arc<Liveness>,
    ops_listener: tokio::net::TcpListener,
    ops: axum::Router,
    metrics: Arc<Metrics>,
}

impl Processor {
    /// Connects (lazily: a database still coming up makes the processor
    /// unready, not dead), subscribes, and binds `METRICS_ADDR`.
    pub async fn build(cfg: ProcessorConfig) -> anyhow::Result<Self> {
        cfg.database_url.check().map_err(anyhow::Error::msg)?;
        let brokers = cfg
            .kafka
            .broker_urls
            .clone()
            .context("KAFKA_BROKER_URLS is required: the processor consumes from Kafka")?;
        let metrics = Metrics::new("processor");
        let liveness = Arc::new(Liveness::default());
        liveness.register(pipeline::LOOP_NAME, pipeline::IDLE_TICK * 30);
        let lanes = pipeline::lane_names(cfg.writer_lanes);
        for name in lanes {
            liveness.register(name, pipeline::IDLE_TICK * 30);
        }

        let pool = u32::try_from(lanes.len() + SPARE_CONNECTIONS).unwrap_or(u32::MAX);
        let db = connect::connect_lazy(cfg.database_url.expose(), pool)
            .await
            .context("DATABASE_URL")?;
        // Readiness has a connection of its own: busy lanes must not make
        // the processor look unready.
        let probe_db = connect::connect_lazy(cfg.database_url.expose(), 1)
            .await
            .context("DATABASE_URL")?;
        let consumer: StreamConsumer =
            kafka::consumer_config(&cfg.kafka, &brokers, &cfg.group_id, cfg.kafka_fetch_max_kbytes)
                .create()
                .context("creating the Kafka consumer")?;
        consumer.subscribe(&[cfg.kafka.topic.as_str()]).context("subscribing")?;
        let consumer = Arc::new(consumer);
        let dlq = kafka::producer(&cfg.kafka, &brokers, DLQ_TIMEOUT, DLQ_QUEUE_MESSAGES, DLQ_QUEUE_KBYTES)
            .context("creating the dead-letter producer")?;

        let (probe, topic) = (consumer.clone(), cfg.kafka.topic.clone());
        let readiness = Readiness::default().with(
            "kafka",
            health::check(move || {
                let (c, t) = (probe.clone(), topic.clone());
                async move {
                    tokio::task::spawn_blocking(move || kafka::topic_available(c.client(), &t))
                        .await
                        .map_err(|e| e.to_string())?
                }
            }),
        );
        let dlq_failing = Arc::new(AtomicBool::new(false));
        let failing = dlq_failing.clone();
        let readiness = readiness.with(
            "dead_letters",
            health::check(move || {
                let failing = failing.load(Ordering::Relaxed);
                async move {
                    if failing {
                        Err("dead letters cannot be written; the batch waits and retries".to_string())
                    } else {
                        Ok(())
                    }
                }
            }),
        );
        let readiness = connect::readiness_checks(readiness, &probe_db, migration::known_versions());
        let ops = metrics::router(metrics.clone()).merge(health::router(liveness.clone(), readiness));
        let ops_listener = tokio::net::TcpListener::bind(cfg.telemetry.metrics_addr)
            .await
            .with_context(|| format!("binding METRICS_ADDR {}", cfg.telemetry.metrics_addr))?;

        let pipeline = pipeline::Pipeline {
            cfg: cfg.clone(),
            consumer: consumer.clone(),
            dlq,
            writer: Writer::open(&db).context("opening the database writer")?,
            metrics: metrics.clone(),
            liveness: liveness.clone(),
            next_offsets: pipeline::NextOffsets::default(),
            dlq_failing,
        };
        Ok(Self {
            cfg,
            consumer,
            pipeline,
            maintenance_db: db,
            liveness,
            ops_listener,
            ops,
            metrics,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub fn ops_addr(&self) -> std::io::Result<SocketAddr> {
        self.ops_listener.local_addr()
    }

    /// Consumes until `shutdown` resolves; then the batch in progress
    /// finishes and commits, or is abandoned uncommitted (and redelivered)
    /// once the grace period is over.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            cfg,
            consumer,
            pipeline,
            maintenance_db,
            liveness,
            ops_listener,
            ops,
            metrics,
        } = self;
        tracing::info!(
            brokers = cfg.kafka.broker_urls.as_deref().unwrap_or_default(),
            topic = %cfg.kafka.topic,
            group = %cfg.group_id,
            metrics = %cfg.telemetry.metrics_addr,
            "processor started"
        );
        let ops_server = tokio::spawn(async move {
            let _ = axum::serve(ops_listener, ops).await;
        });
        let writer = Some(pipeline.writer.state().clone());
        let retention = maintenance::Retention::from_args(&cfg.retention);
        let maintenance = Maintenance::spawn(maintenance_db, liveness, maintenance::EVERY, writer, retention);
        let lag_task = tokio::spawn(pipeline::report_lag(consumer, pipeline.next_offsets.clone(), metrics));
        let grace = cfg.telemetry.shutdown_grace();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut work = tokio::spawn(pipeline.run(stop_rx));
        tokio::select! {
            _ = &mut work => {}
            () = shutdown => {
                let _ = stop_tx.send(true);
                // The current batch finishes and commits; past the grace
                // period it is abandoned uncommitted and will be redelivered.
                if tokio::time::timeout(grace, &mut work).await.is_err() {
                    tracing::warn!("grace period over; exiting with the batch uncommitted");
                }
            }
        }
        let _ = tokio::time::timeout(grace, maintenance.stop()).await;
        lag_task.abort();
        ops_server.abort();
        tracing::info!("stopped");
        Ok(())
    }
}
