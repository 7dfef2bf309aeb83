//! Wiring both modes into one `Application`: `build` connects, migrates
//! (embedded mode), starts the writer and binds both listeners;
//! `run_until` serves until its shutdown future resolves, then drains.

use crate::auth::Access;
use crate::config::{ApiConfig, EMBEDDED_DATABASE_URL};
use crate::serve::ConnectionLimits;
use crate::sink::{EmbeddedWriter, KafkaSink, Sink};
use crate::state::{AppState, Shared};
use analytics_core::maintenance::{self, Maintenance};
use analytics_core::ops::config::DatabaseUrl;
use analytics_core::ops::health::{self, Liveness, Readiness};
use analytics_core::ops::kafka;
use analytics_core::ops::metrics::{self, Metrics};
use analytics_core::store::{connect, Writer, WriterState};
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use rdkafka::producer::Producer;
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Connections the read endpoints share in Kafka mode.
const QUERY_POOL_KAFKA: u32 = 16;
/// Readers of the embedded SQLite file: each holds its own page cache.
const QUERY_POOL_EMBEDDED: u32 = 4;

/// How often the rate limiters drop the buckets of idle clients and sites.
const FORGET_IDLE_LIMITS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What embedded mode's maintenance task is started with once serving.
struct EmbeddedMaintenance {
    db: DatabaseConnection,
    liveness: Arc<Liveness>,
    writer: Arc<WriterState>,
    retention: Option<maintenance::Retention>,
}

/// A built api: listeners bound, ready to serve.
pub struct Application {
    http: TcpListener,
    ops: TcpListener,
    public: axum::Router,
    ops_router: axum::Router,
    state: AppState,
    metrics: Arc<Metrics>,
    limits: ConnectionLimits,
    sink: Arc<Sink>,
    /// Embedded mode: the writer task and the maintenance task.
    writer_task: Option<JoinHandle<()>>,
    maintenance: Option<EmbeddedMaintenance>,
    grace: std::time::Duration,
}

impl Application {
    pub async fn build(cfg: ApiConfig) -> anyhow::Result<Self> {
        cfg.check().map_err(anyhow::Error::msg)?;
        let metrics = Metrics::new("api");
        let liveness = Arc::new(Liveness::default());
        let embedded = cfg.is_embedded();
        let traced = cfg.telemetry.otlp_endpoint.is_some();
        let database = cfg
            .database_url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::new(EMBEDDED_DATABASE_URL));
        let url = database.expose();

        let mut readiness = Readiness::default();
        let mut writer_task = None;
        let mut maintenance = None;
        let (db, sink) = if let Some(brokers) = &cfg.kafka.broker_urls {
            let db = connect::connect_lazy(url, QUERY_POOL_KAFKA)
                .await
                .context("DATABASE_URL")?;
            let (kargs, kbrokers, timeout, queue, queue_kbytes) = (
                cfg.kafka.clone(),
                brokers.clone(),
                cfg.ingest_timeout(),
                cfg.kafka_queue_messages,
                cfg.kafka_queue_kbytes,
            );
            let kafka_sink = Arc::new(
                KafkaSink::new(
                    Box::new(move || kafka::producer(&kargs, &kbrokers, timeout, queue, queue_kbytes)),
                    cfg.kafka.topic.clone(),
                    metrics.clone(),
                    cfg.ingest_timeout(),
                    traced,
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
            (db, Sink::Kafka(kafka_sink))
        } else {
            let db = connect::connect(url, QUERY_POOL_EMBEDDED)
                .await
                .with_context(|| format!("opening {database}"))?;
            Migrator::up(&db, None)
                .await
                .context("migrating the embedded database")?;
            let db_writer = Writer::open(&db).with_context(|| format!("opening {database} for writing"))?;
            maintenance = Some(EmbeddedMaintenance {
                db: db.clone(),
                liveness: liveness.clone(),
                writer: db_writer.state().clone(),
                retention: maintenance::Retention::from_args(&cfg.retention),
            });
            let (writer, task) = EmbeddedWriter::spawn(
                db_writer,
                metrics.clone(),
                liveness.clone(),
                cfg.embedded_batch_events,
                cfg.embedded_queue_mb.saturating_mul(1 << 20),
                cfg.ingest_timeout(),
            );
            writer_task = Some(task);
            tracing::info!(%database, "embedded mode");
            (db, Sink::Embedded(writer))
        };
        // Readiness has a connection of its own: a flood of queries must not
        // make the api look unready (and the Ingress stop sending events).
        let probe_db = connect::connect_lazy(url, 1).await.context("DATABASE_URL")?;
        let readiness = connect::readiness_checks(readiness, &probe_db, migration::known_versions());

        let sink = Arc::new(sink);
        let access = Access::new(
            cfg.open_reads(),
            cfg.ingest_auth(),
            cfg.session_secret(),
            std::time::Duration::from_secs(cfg.key_cache_seconds),
        );
        if let Err(e) = access.refresh(&db).await {
            // Not fatal: the database may come up later; ingest reloads.
            tracing::warn!(error = %crate::auth::access_error(e), "loading the registered sites failed");
        }
        if cfg.open_access() && cfg.open_reads() {
            tracing::info!(
                addr = %cfg.listen_addr(),
                "embedded mode on loopback: reads and ingest need no key (only this machine can reach it)"
            );
        } else if cfg.open_reads() {
            tracing::warn!(
                addr = %cfg.listen_addr(),
                "READ_AUTH=open: anyone who reaches this api reads every site"
            );
        } else {
            tracing::info!(
                addr = %cfg.listen_addr(),
                ingest = ?cfg.ingest_auth(),
                "reads need a key (Authorization: Bearer KEY, or /login); create one with \
                 `analytics-admin keys create --name NAME --scope read`"
            );
        }
        let enricher = if cfg.enrich {
            let geo = analytics_enrich::Geo::open(cfg.geoip_database.as_deref(), cfg.trust_cdn_country)
                .context("GEOIP_DATABASE")?;
            Some(Arc::new(
                analytics_enrich::Enricher::new(geo).context("the User-Agent patterns")?,
            ))
        } else {
            tracing::warn!("ENRICH=false: events are stored without browser, source, country or visitor");
            None
        };
        let salts = crate::visitors::Salts::default();
        if let Err(e) = salts.today(&db).await {
            // Not fatal: ingest makes the salt once the database answers.
            tracing::warn!(error = %e, "reading today's visitor salt failed");
        }
        let query_cache = Arc::new(analytics_core::query::v2::ColumnCache::new(
            cfg.query_cache_mb.saturating_mul(1 << 20),
            analytics_core::query::v2::DEFAULT_MAX_AGE,
            cfg.query_max_events,
        ));
        // Names are fixed and unique: registration cannot collide.
        let _ = metrics
            .registry
            .register(Box::new(analytics_core::query::v2::CacheMetrics::new(
                query_cache.clone(),
            )));
        let state = AppState::new(Shared {
            db,
            sink: sink.clone(),
            metrics: metrics.clone(),
            embedded,
            policy: cfg.policy(),
            proxies: cfg.trusted_proxies.clone(),
            rate_limits: cfg.rate_limits(),
            access,
            cookie_secure: cfg.cookie_secure,
            traced,
            enricher,
            salts,
            query_cache: query_cache.clone(),
        });
        let public = crate::routes::router(state.clone(), liveness.clone(), readiness.clone(), cfg.request_limits());
        let metrics_for_serve = metrics.clone();
        let ops_router = metrics::router(metrics).merge(health::router(liveness, readiness));

        let listen = cfg.listen_addr();
        let http = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding HTTP_ADDR {listen}"))?;
        let ops = TcpListener::bind(cfg.telemetry.metrics_addr)
            .await
            .with_context(|| format!("binding METRICS_ADDR {}", cfg.telemetry.metrics_addr))?;
        Ok(Self {
            http,
            ops,
            public,
            ops_router,
            state,
            metrics: metrics_for_serve,
            limits: cfg.connection_limits(),
            sink,
            writer_task,
            maintenance,
            grace: cfg.telemetry.shutdown_grace(),
        })
    }

    /// Where the public API answers.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub fn ops_addr(&self) -> std::io::Result<SocketAddr> {
        self.ops.local_addr()
    }

    /// Serves until `shutdown` resolves; then stops accepting, finishes
    /// in-flight requests (for at most the grace period), flushes the
    /// producer and lets the embedded writer drain its queue.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self {
            http,
            ops,
            public,
            ops_router,
            state,
            metrics,
            limits,
            sink,
            writer_task,
            maintenance,
            grace,
        } = self;
        tracing::info!(
            http = %http.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            metrics = %ops.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "listening"
        );
        let maintenance =
            maintenance.map(|m| Maintenance::spawn(m.db, m.liveness, maintenance::EVERY, Some(m.writer), m.retention));
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let ops_server = tokio::spawn(async move {
            let _ = axum::serve(ops, ops_router).await;
        });
        let forget = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FORGET_IDLE_LIMITS_EVERY).await;
                    state.rate_limits.forget_idle();
                }
            })
        };
        let salts = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(crate::visitors::ROTATE_EVERY).await;
                    if let Err(e) = state.salts.today(&state.db).await {
                        tracing::warn!(error = %e, "rotating the visitor salt failed");
                    }
                }
            })
        };
        let registry = tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::auth::REGISTRY_EVERY).await;
                if let Err(e) = state.access.refresh(&state.db).await {
                    tracing::warn!(error = %crate::auth::access_error(e), "reloading the registered sites failed");
                }
            }
        });
        let server = crate::serve::serve(http, public, limits, metrics, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        tokio::select! {
            () = server => {},
            () = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => tracing::warn!("grace period over with requests still in flight"),
        }
        // The background tasks hold the state, and with it the embedded
        // queue's sender: the writer only sees its queue close once they
        // are gone (else the drain below waits out its whole grace).
        for task in [forget, salts, registry] {
            task.abort();
            let _ = task.await;
        }
        // In-flight requests are done: push out what the producer still
        // holds and let the embedded writer drain its queue.
        sink.flush(grace);
        drop(sink);
        if let Some(task) = writer_task {
            let _ = tokio::time::timeout(grace, task).await;
        }
        if let Some(m) = maintenance {
            let _ = tokio::time::timeout(grace, m.stop()).await;
        }
        ops_server.abort();
        tracing::info!("stopped");
        Ok(())
    }
}
